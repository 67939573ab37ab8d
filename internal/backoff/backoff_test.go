package backoff

import (
	"testing"
	"time"
)

func TestExponential(t *testing.T) {
	t.Parallel()
	e := Exponential{Base: time.Second, Max: 30 * time.Second, Jitter: 0.2}
	tests := []struct {
		attempt int
		ceil    time.Duration
	}{
		{attempt: 0, ceil: time.Second},
		{attempt: 1, ceil: time.Second},
		{attempt: 2, ceil: 2 * time.Second},
		{attempt: 3, ceil: 4 * time.Second},
		{attempt: 5, ceil: 16 * time.Second},
		{attempt: 6, ceil: 30 * time.Second},
		{attempt: 60, ceil: 30 * time.Second},
	}
	for _, tt := range tests {
		if got := e.Nominal(tt.attempt); got != tt.ceil {
			t.Errorf("Nominal(%d): got %v, want %v", tt.attempt, got, tt.ceil)
		}
		lo, hi := e.Bounds(tt.attempt)
		if want := tt.ceil - tt.ceil/5; lo != want {
			t.Errorf("Bounds(%d) low: got %v, want %v", tt.attempt, lo, want)
		}
		if want := tt.ceil + tt.ceil/5; hi != want {
			t.Errorf("Bounds(%d) high: got %v, want %v", tt.attempt, hi, want)
		}
		for range 100 {
			if d := e.Delay(tt.attempt); d < lo || d > hi {
				t.Fatalf("Delay(%d) = %v, outside [%v, %v]", tt.attempt, d, lo, hi)
			}
		}
	}
}

func TestExponentialWithoutJitterIsExact(t *testing.T) {
	t.Parallel()
	e := Exponential{Base: 100 * time.Millisecond, Max: time.Second}
	if got := e.Delay(3); got != 400*time.Millisecond {
		t.Fatalf("Delay(3): got %v, want 400ms", got)
	}
}

// TestJitterIsSymmetric: the jitter lengthens as often as it shortens, so
// the delays average the nominal value (with 20% jitter, one sample's
// standard deviation is 11.5% of it; 20,000 samples put the mean within
// 0.1%, so 2% is 20 standard deviations away).
func TestJitterIsSymmetric(t *testing.T) {
	t.Parallel()
	e := Exponential{Base: time.Second, Max: time.Minute, Jitter: 0.2}
	const n = 20000
	var sum float64
	longer := 0
	for range n {
		d := e.Delay(1)
		sum += float64(d)
		if d > time.Second {
			longer++
		}
	}
	if mean := time.Duration(sum / n); mean < 980*time.Millisecond || mean > 1020*time.Millisecond {
		t.Fatalf("mean delay %v, want about the nominal 1s", mean)
	}
	if longer < n/3 || longer > 2*n/3 {
		t.Fatalf("%d of %d delays are longer than nominal, want about half", longer, n)
	}
}
