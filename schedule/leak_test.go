package schedule_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jetworker/jetworker/schedule"
)

// TestGoroutinesEndWithRun is not parallel: it runs before the parallel
// tests resume, so every goroutine of package schedule it finds after Run
// returns was left behind by this scheduler.
func TestGoroutinesEndWithRun(t *testing.T) {
	b := setup(t)
	b.put(t, schedule.Entry{Name: "tick", Spec: "@every 1s", Subject: "tasks.tick"})
	r := b.start(t, "leakcheck", schedule.Config{LeaseTTL: 2 * time.Second})
	waitGain(t, r, 5*time.Second)
	if n, _ := scheduleGoroutines(); n == 0 {
		t.Fatal("found no scheduler goroutines while running: the check cannot see them")
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if n, stacks := scheduleGoroutines(); n != 0 {
		t.Fatalf("%d goroutines of package schedule still run after Run returned:\n%s", n, stacks)
	}
}

func scheduleGoroutines() (int, string) {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var stacks []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "jetworker/schedule.") && !strings.Contains(g, "testing.tRunner") {
			stacks = append(stacks, g)
		}
	}
	return len(stacks), strings.Join(stacks, "\n\n")
}
