package bench

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Latency summarises a set of durations.
type Latency struct {
	Count int           `json:"count"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	Max   time.Duration `json:"max_ns"`
}

// summarize returns the percentiles of d, which it sorts.
func summarize(d []time.Duration) Latency {
	slices.Sort(d)
	return Latency{Count: len(d), P50: pct(d, 50), P90: pct(d, 90), P99: pct(d, 99), Max: pct(d, 100)}
}

// pct returns the p-th percentile of sorted by the nearest-rank method:
// the smallest value that at least p% of the values do not exceed.
func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

// medianLatency takes each percentile's median over rounds and the
// highest maximum; Count is the smallest.
func medianLatency(ls []Latency) Latency {
	if len(ls) == 0 {
		return Latency{}
	}
	pick := func(f func(Latency) time.Duration) time.Duration {
		v := make([]float64, len(ls))
		for i, l := range ls {
			v[i] = float64(f(l))
		}
		return time.Duration(median(v))
	}
	out := Latency{
		Count: ls[0].Count,
		P50:   pick(func(l Latency) time.Duration { return l.P50 }),
		P90:   pick(func(l Latency) time.Duration { return l.P90 }),
		P99:   pick(func(l Latency) time.Duration { return l.P99 }),
	}
	for _, l := range ls {
		out.Count = min(out.Count, l.Count)
		out.Max = max(out.Max, l.Max)
	}
	return out
}

// resetPeakRSS resets the kernel's peak RSS (VmHWM) of this process to
// its current RSS.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSSMiB reads VmHWM from /proc/self/status; 0 where unavailable.
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	return statusMiB(string(b), "VmHWM:")
}

// statusMiB reads a "Key:   1234 kB" line of /proc/<pid>/status in MiB; 0
// when it is missing.
func statusMiB(status, key string) float64 {
	for line := range strings.SplitSeq(status, "\n") {
		if v, ok := strings.CutPrefix(line, key); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}
