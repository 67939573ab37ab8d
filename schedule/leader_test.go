package schedule_test

import (
	"errors"
	"strings"
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

// TestProvisionLeases: the zero LeaseConfig provisions the bucket of
// schedulers with the default Config, a second call updates it, and a bad
// config is refused, every problem named, before any I/O.
func TestProvisionLeases(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	ttl := func() time.Duration {
		t.Helper()
		kv, err := b.js.KeyValue(ctx, schedule.LeaseBucket)
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.TTL()
	}
	if err := schedule.ProvisionLeases(ctx, b.js, schedule.LeaseConfig{}); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	if got := ttl(); got != schedule.DefaultLeaseTTL {
		t.Fatalf("bucket TTL %s, want the default %s", got, schedule.DefaultLeaseTTL)
	}
	if err := schedule.ProvisionLeases(ctx, b.js, schedule.LeaseConfig{TTL: 3 * time.Second, Replicas: 1}); err != nil {
		t.Fatalf("update: %v", err)
	}
	if got := ttl(); got != 3*time.Second {
		t.Fatalf("bucket TTL %s after the update, want 3s", got)
	}
	err := schedule.ProvisionLeases(ctx, b.js, schedule.LeaseConfig{TTL: 500 * time.Millisecond, Replicas: 7})
	for _, w := range []string{"TTL", "500ms", "Replicas", "7"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("bad config: got %v, want an error naming %s", err, w)
		}
	}
	if got := ttl(); got != 3*time.Second {
		t.Fatalf("bucket TTL %s after a refused config, want 3s unchanged", got)
	}
}
