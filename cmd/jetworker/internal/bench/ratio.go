package bench

import (
	"slices"
)

// Ratio is one jetworker/baseline figure over the rounds of a run: each
// round gives one ratio of the two sides it measured, and the report
// gives their median and their spread (the lowest and highest round).
type Ratio struct {
	// Figure names what is compared: "enqueue/s", "process/s", "p99",
	// "fire lag p99", ...
	Figure string `json:"figure"`
	// Side and Baseline name the two sides: Side's figure over
	// Baseline's.
	Side     string `json:"side"`
	Baseline string `json:"baseline"`
	// LowerIsBetter is set for latencies and memory, where a ratio below
	// 1 means jetworker is better; for throughput a higher ratio is.
	LowerIsBetter bool `json:"lower_is_better,omitempty"`
	// Median, Min and Max summarise Rounds.
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	// Rounds holds each round's ratio in the order the rounds ran.
	Rounds []float64 `json:"rounds"`
}

// Name is "side/baseline figure", as the text report prints it.
func (r Ratio) Name() string { return r.Side + "/" + r.Baseline + " " + r.Figure }

// ratios collects per-round ratios, keeping the order in which figures
// were first added.
type ratios struct{ list []Ratio }

// add records one round's ratio of side's value a to baseline's value b.
func (rs *ratios) add(figure, side, baseline string, lowerIsBetter bool, a, b float64) {
	v := ratio(a, b)
	for i := range rs.list {
		r := &rs.list[i]
		if r.Figure == figure && r.Side == side && r.Baseline == baseline {
			r.Rounds = append(r.Rounds, v)
			return
		}
	}
	rs.list = append(rs.list, Ratio{Figure: figure, Side: side, Baseline: baseline, LowerIsBetter: lowerIsBetter, Rounds: []float64{v}})
}

// summary returns the ratios with their medians and spreads.
func (rs *ratios) summary() []Ratio {
	out := make([]Ratio, len(rs.list))
	for i, r := range rs.list {
		r.Median, r.Min, r.Max = spread(r.Rounds)
		out[i] = r
	}
	return out
}

// spread returns the median, lowest and highest of v without changing v;
// zeros for none.
func spread(v []float64) (med, lo, hi float64) {
	if len(v) == 0 {
		return 0, 0, 0
	}
	return median(slices.Clone(v)), slices.Min(v), slices.Max(v)
}

// median returns the middle value (the mean of the two middle ones for an
// even count); v is sorted in place.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	m := len(v) / 2
	if len(v)%2 == 0 {
		return (v[m-1] + v[m]) / 2
	}
	return v[m]
}

// ratio is a/b, 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// FindRatio returns the ratio of side over baseline for figure, and
// whether the report has one.
func FindRatio(rs []Ratio, figure, side, baseline string) (Ratio, bool) {
	for _, r := range rs {
		if r.Figure == figure && r.Side == side && r.Baseline == baseline {
			return r, true
		}
	}
	return Ratio{}, false
}
