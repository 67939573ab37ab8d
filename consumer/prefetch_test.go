package consumer_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/publisher"
)

// TestPrefetchShrinksWhenHandlersSlowDown: fast tasks deepen the prefetch;
// then slow tasks (a backlog far longer than AckWait to work through)
// arrive in the deep buffer. None may be redelivered while it waits.
func TestPrefetchShrinksWhenHandlersSlowDown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const (
		fast    = 3000
		slow    = 30
		ackWait = time.Second
		work    = 250 * time.Millisecond
	)
	var (
		mu        sync.Mutex
		runs      = map[string]int{}
		redeliver []string
		doneSlow  atomic.Int64
	)
	h := jetworker.HandlerFunc(func(ctx context.Context, task *jetworker.Task) error {
		if task.Subject == "tasks.slow" {
			mu.Lock()
			runs[task.ID]++
			if task.Delivered > 1 {
				redeliver = append(redeliver, fmt.Sprintf("%s delivery %d", task.ID, task.Delivered))
			}
			mu.Unlock()
			time.Sleep(work)
			doneSlow.Add(1)
		}
		return nil
	})
	start(t, newConsumer(t, b.js, h, consumer.Config{Concurrency: 2, AckWait: ackWait}))
	for i := range fast {
		if _, err := b.pub.PublishAsync(t.Context(), "tasks.fast", nil, nil); err != nil {
			t.Fatalf("publish fast %d: %v", i, err)
		}
	}
	for i := range slow {
		if _, err := b.pub.PublishAsync(t.Context(), "tasks.slow", nil, &publisher.PublishOpts{ID: fmt.Sprintf("slow-%02d", i)}); err != nil {
			t.Fatalf("publish slow %d: %v", i, err)
		}
	}
	if err := b.pub.Wait(t.Context()); err != nil {
		t.Fatalf("publish: %v", err)
	}
	// 30 tasks x 250ms / 2 handlers = about 4s, four times AckWait.
	testutil.Eventually(t, 30*time.Second, func() error {
		if n := doneSlow.Load(); n < slow {
			return fmt.Errorf("%d of %d slow tasks done", n, slow)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if len(redeliver) > 0 {
		t.Fatalf("%d slow tasks were redelivered while buffered, e.g. %s", len(redeliver), redeliver[0])
	}
	for id, n := range runs {
		if n != 1 {
			t.Errorf("%s ran %d times, want 1", id, n)
		}
	}
	if len(runs) != slow {
		t.Fatalf("%d distinct slow tasks ran, want %d", len(runs), slow)
	}
}
