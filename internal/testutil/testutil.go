// Package testutil holds the test helpers jetworker's packages share: one
// way to wait for a condition and one way to log into a test's output.
package testutil

import (
	"io"
	"log/slog"
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

// Logger returns a logger that writes lines at level and above into the
// test's output (shown with -v or when the test fails), and discards
// everything when the test is not verbose.
func Logger(tb testing.TB, level slog.Level) *slog.Logger {
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = tb.Output()
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
