package schedule_test

import (
	"errors"
	"testing"
	"time"

	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/schedule"
)

func TestLeaderNamesTheLeaseHolder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if got, err := schedule.Leader(t.Context(), b.js, ""); err != nil || got != "" {
		t.Fatalf("before any scheduler: got %q, %v; want no leader", got, err)
	}
	r := b.start(t, "sched-a", schedule.Config{LeaseTTL: 2 * time.Second})
	waitGain(t, r, 5*time.Second)
	if got, err := schedule.Leader(t.Context(), b.js, ""); err != nil || got != "sched-a" {
		t.Fatalf("while leading: got %q, %v; want sched-a", got, err)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		got, err := schedule.Leader(t.Context(), b.js, "")
		if err != nil {
			return err
		}
		if got != "" {
			return errors.New("lease still held by " + got)
		}
		return nil
	})
}
