package bench

import (
	"testing"
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
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median of an even count = %v, want 2.5", m)
	}
	if m := median(nil); m != 0 {
		t.Errorf("median(nil) = %v, want 0", m)
	}
}
