package bench

import (
	"slices"
	"testing"
	"time"
)

func TestMedianResult(t *testing.T) {
	t.Parallel()
	rs := []Result{
		{Name: "x", EnqueuePerSec: 300, ProcessPerSec: 10, P50: 3, P95: 30, P99: 300, Max: 3000, AllocsPerTask: 3, BytesPerTask: 300, GCCycles: 1, PeakRSSMiB: 50, Processed: 10},
		{Name: "x", EnqueuePerSec: 100, ProcessPerSec: 30, P50: 1, P95: 10, P99: 100, Max: 1000, AllocsPerTask: 1, BytesPerTask: 100, GCCycles: 5, PeakRSSMiB: 90, Processed: 10},
		{Name: "x", EnqueuePerSec: 200, ProcessPerSec: 20, P50: 2, P95: 20, P99: 200, Max: 2000, AllocsPerTask: 2, BytesPerTask: 200, GCCycles: 3, PeakRSSMiB: 70, Processed: 9},
	}
	got := medianResult(rs)
	want := Result{Name: "x", EnqueuePerSec: 200, ProcessPerSec: 20, P50: 2, P95: 20, P99: 200, Max: 2000, AllocsPerTask: 2, BytesPerTask: 200, GCCycles: 3, PeakRSSMiB: 90, Processed: 9}
	if got != want {
		t.Errorf("medianResult = %+v, want %+v", got, want)
	}
}

func TestMedian(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		v    []float64
		want float64
	}{
		{"none", nil, 0},
		{"one", []float64{7}, 7},
		{"odd count: the middle one", []float64{3, 1, 2}, 2},
		{"even count: the mean of the two middle ones", []float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tt.v); got != tt.want {
			t.Errorf("%s: median = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestSpread(t *testing.T) {
	t.Parallel()
	v := []float64{0.9, 1.2, 0.8, 1.0}
	med, lo, hi := spread(v)
	if med != 0.95 || lo != 0.8 || hi != 1.2 {
		t.Errorf("spread = %v, %v, %v, want 0.95, 0.8, 1.2", med, lo, hi)
	}
	if !slices.Equal(v, []float64{0.9, 1.2, 0.8, 1.0}) {
		t.Errorf("spread reordered its input: %v", v)
	}
	if med, lo, hi := spread(nil); med != 0 || lo != 0 || hi != 0 {
		t.Errorf("spread(nil) = %v, %v, %v, want zeros", med, lo, hi)
	}
}

// Ratios are kept per figure and pair, in the order first added, with
// each round's ratio in round order.
func TestRatios(t *testing.T) {
	t.Parallel()
	var rs ratios
	rs.add("enqueue/s", "jetworker", "raw", false, 90, 100)
	rs.add("p99", "jetworker", "raw", true, 3, 2)
	rs.add("enqueue/s", "jetworker", "raw", false, 100, 100)
	rs.add("enqueue/s", "jetworker", "raw", false, 110, 100)
	rs.add("enqueue/s", "bulk", "raw", false, 5, 0) // no baseline: 0
	got := rs.summary()
	if len(got) != 3 {
		t.Fatalf("got %d ratios, want 3: %+v", len(got), got)
	}
	enq := got[0]
	if enq.Name() != "jetworker/raw enqueue/s" || !slices.Equal(enq.Rounds, []float64{0.9, 1, 1.1}) || enq.Median != 1 || enq.Min != 0.9 || enq.Max != 1.1 || enq.LowerIsBetter {
		t.Errorf("enqueue ratio %+v: want rounds 0.9, 1, 1.1, median 1, spread 0.9-1.1", enq)
	}
	if p99 := got[1]; p99.Figure != "p99" || !p99.LowerIsBetter || p99.Median != 1.5 {
		t.Errorf("p99 ratio %+v: want 1.5, lower is better", p99)
	}
	if bulk := got[2]; bulk.Median != 0 {
		t.Errorf("ratio over a zero baseline = %v, want 0", bulk.Median)
	}
	if r, ok := FindRatio(got, "p99", "jetworker", "raw"); !ok || r.Median != 1.5 {
		t.Errorf("FindRatio = %+v, %v", r, ok)
	}
	if _, ok := FindRatio(got, "p99", "bulk", "raw"); ok {
		t.Error("FindRatio found a ratio the run does not have")
	}
}

func TestPercentiles(t *testing.T) {
	t.Parallel()
	d := make([]time.Duration, 0, 100)
	for i := 100; i >= 1; i-- { // unsorted: summarize sorts
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	got := summarize(d)
	want := Latency{Count: 100, P50: 50 * time.Millisecond, P90: 90 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}
	if got != want {
		t.Errorf("summarize(1..100 ms) = %+v, want %+v", got, want)
	}
	for _, tt := range []struct {
		name   string
		sorted []time.Duration
		p      int
		want   time.Duration
	}{
		{"empty", nil, 99, 0},
		{"one value is every percentile", []time.Duration{5}, 1, 5},
		{"p99 of 10 is the largest", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 99, 10},
		{"p50 of 10 is the fifth", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 50, 5},
		{"p0 is the smallest", []time.Duration{1, 2, 3}, 0, 1},
	} {
		if got := pct(tt.sorted, tt.p); got != tt.want {
			t.Errorf("%s: pct(%v, %d) = %v, want %v", tt.name, tt.sorted, tt.p, got, tt.want)
		}
	}
	m := medianLatency([]Latency{
		{Count: 10, P50: 1, P90: 10, P99: 100, Max: 1000},
		{Count: 9, P50: 3, P90: 30, P99: 300, Max: 500},
		{Count: 10, P50: 2, P90: 20, P99: 200, Max: 700},
	})
	if want := (Latency{Count: 9, P50: 2, P90: 20, P99: 200, Max: 1000}); m != want {
		t.Errorf("medianLatency = %+v, want %+v", m, want)
	}
}

func TestStatusMiB(t *testing.T) {
	t.Parallel()
	status := "Name:\tjetworker\nVmPeak:\t  300000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n"
	if got := statusMiB(status, "VmHWM:"); got != 50 {
		t.Errorf("VmHWM = %v MiB, want 50", got)
	}
	if got := statusMiB(status, "VmSwap:"); got != 0 {
		t.Errorf("missing key = %v, want 0", got)
	}
}
