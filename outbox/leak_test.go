package outbox_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jetworker/jetworker/internal/pgtest"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/outbox"
)

// TestGoroutinesEndWithRun is not parallel: it runs before the parallel
// tests resume, so every goroutine of package outbox it finds after Run
// returns was left behind by this relay.
func TestGoroutinesEndWithRun(t *testing.T) {
	b := setup(t, pgtest.Start(t, pgtest.Options{}))
	rr := b.relay(t, outbox.RelayConfig{Concurrency: 3})
	b.enqueue(t, "tasks.leak", "x", &outbox.EnqueueOpts{Key: "k"})
	b.drained(t)
	if n, _ := outboxGoroutines(); n == 0 {
		t.Fatal("found no relay goroutines while running: the check cannot see them")
	}
	if err := rr.halt(); err != nil {
		t.Fatal(err)
	}
	// Run has returned; give the runtime a moment to reap exited
	// goroutines from its list.
	testutil.Eventually(t, time.Second, func() error {
		if n, stacks := outboxGoroutines(); n != 0 {
			return fmt.Errorf("%d goroutines of package outbox still run after Run returned:\n%s", n, stacks)
		}
		return nil
	})
}

func outboxGoroutines() (int, string) {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var stacks []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "jetworker/outbox.") && !strings.Contains(g, "testing.tRunner") && !strings.Contains(g, "outbox_test.") {
			stacks = append(stacks, g)
		}
	}
	return len(stacks), strings.Join(stacks, "\n\n")
}
