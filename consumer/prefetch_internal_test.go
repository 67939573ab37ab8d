package consumer

import (
	"testing"
	"time"
)

func TestPrefetchFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		concurrency int
		ackWait, d  time.Duration
		maxP, want  int
	}{
		{"unmeasured is deep", 10, 30 * time.Second, 0, 500, 500},
		{"fast handlers hit the cap", 10, 30 * time.Second, 50 * time.Microsecond, 500, 500},
		{"100ms handlers", 10, 30 * time.Second, 100 * time.Millisecond, 500, 500},
		{"1s handlers", 10, 30 * time.Second, time.Second, 500, 75},
		{"10s handlers", 10, 30 * time.Second, 10 * time.Second, 500, 7},
		{"handlers longer than AckWait", 10, 30 * time.Second, time.Minute, 500, 1},
		{"never below 1", 1, time.Second, time.Hour, 500, 1},
	}
	for _, tt := range tests {
		if got := prefetchFor(tt.concurrency, tt.ackWait, tt.d, tt.maxP); got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, got, tt.want)
		}
	}
}
