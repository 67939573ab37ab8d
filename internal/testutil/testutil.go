// Package testutil holds test helpers shared by jetworker's packages.
package testutil

import (
	"testing"
	"time"
)

// Eventually polls cond every 10ms until it returns nil, failing the test
// with cond's last error if that has not happened within timeout. Use it
// for server-side state; wait on channels for events.
func Eventually(tb testing.TB, timeout time.Duration, cond func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met within %s: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
