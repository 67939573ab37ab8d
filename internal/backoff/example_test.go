package backoff_test

import (
	"fmt"
	"time"

	"github.com/jetworker/jetworker/internal/backoff"
)

// Example shows the delay bounds of the consumer's default backoff.
func Example() {
	e := backoff.Exponential{Base: time.Second, Max: 5 * time.Minute, Jitter: 0.2}
	for _, attempt := range []int{1, 2, 3, 10} {
		lo, hi := e.Bounds(attempt)
		fmt.Printf("after attempt %d: %s to %s\n", attempt, lo, hi)
	}
	// Output:
	// after attempt 1: 800ms to 1.2s
	// after attempt 2: 1.6s to 2.4s
	// after attempt 3: 3.2s to 4.8s
	// after attempt 10: 4m0s to 6m0s
}
