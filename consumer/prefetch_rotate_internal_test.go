package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/streams"
)

// TestDeepeningStartsBeforeTheOldPullDrains: deepening the prefetch must
// not wait for the shallow Consume to hand out its buffer (nats.go looks at
// a draining subscription only every 100 ms, and here its buffer cannot
// drain at all while every handler is busy). The deeper Consume opens at
// once; afterwards every task still runs exactly once.
func TestDeepeningStartsBeforeTheOldPullDrains(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.Start(t, embedded.Config{})
	_, js := embeddedtest.Connect(t, srv)
	if err := streams.Provision(t.Context(), js, streams.Config{}); err != nil {
		t.Fatalf("provision: %v", err)
	}
	pub, err := publisher.New(js, publisher.Config{})
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}
	const tasks = 200
	for i := range tasks {
		if _, err := pub.PublishAsync(t.Context(), "tasks.deepen", nil, &publisher.PublishOpts{ID: fmt.Sprintf("t-%03d", i)}); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if err := pub.Wait(t.Context()); err != nil {
		t.Fatalf("publish: %v", err)
	}

	release := make(chan struct{})
	releaseAll := sync.OnceFunc(func() { close(release) })
	var mu sync.Mutex
	runs := map[string]int{}
	h := jetworker.HandlerFunc(func(_ context.Context, task *jetworker.Task) error {
		<-release
		mu.Lock()
		runs[task.ID]++
		mu.Unlock()
		return nil
	})
	c, err := New(js, h, Config{Concurrency: 2, DisablePresence: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// The controller's own retunes need finished handlers; none finish
	// here, so only the test's rotate below changes the depth.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	defer releaseAll() // before Run's end, also when the test fails
	<-c.Ready()

	// Both handlers blocked, the shallow Consume's callback blocked on a
	// busy worker: its buffer cannot drain.
	testutil.Eventually(t, 10*time.Second, func() error {
		if n := c.inFlight.Load(); n != 2 {
			return fmt.Errorf("%d handlers running, want 2", n)
		}
		return nil
	})
	p := c.prefetch
	p.mu.Lock()
	old := p.cc
	if p.current != 2 {
		p.mu.Unlock()
		t.Fatalf("prefetch starts at %d, want Concurrency (2)", p.current)
	}
	p.rotate(ctx, 100, false)
	p.mu.Unlock()

	testutil.Eventually(t, 10*time.Second, func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.current != 100 || p.cc == old {
			return errors.New("the deeper Consume has not started")
		}
		return nil
	})
	select {
	case <-old.Closed():
		t.Fatal("the shallow Consume closed although its buffer could not drain: the test proves nothing")
	default:
	}

	releaseAll()
	testutil.Eventually(t, 30*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(runs) != tasks {
			return fmt.Errorf("%d of %d tasks ran", len(runs), tasks)
		}
		return nil
	})
	select {
	case <-old.Closed():
	case <-time.After(10 * time.Second):
		t.Fatal("the shallow Consume did not close after handing out its buffer")
	}
	mu.Lock()
	defer mu.Unlock()
	for id, n := range runs {
		if n != 1 {
			t.Errorf("%s ran %d times, want 1", id, n)
		}
	}
}
