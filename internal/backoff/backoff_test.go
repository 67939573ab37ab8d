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
		if got := e.Ceiling(tt.attempt); got != tt.ceil {
			t.Errorf("Ceiling(%d): got %v, want %v", tt.attempt, got, tt.ceil)
		}
		floor := e.Floor(tt.attempt)
		if want := tt.ceil - tt.ceil/5; floor != want {
			t.Errorf("Floor(%d): got %v, want %v", tt.attempt, floor, want)
		}
		for range 100 {
			if d := e.Delay(tt.attempt); d < floor || d > tt.ceil {
				t.Fatalf("Delay(%d) = %v, outside [%v, %v]", tt.attempt, d, floor, tt.ceil)
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
