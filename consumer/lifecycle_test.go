package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/internal/testutil"
)

// A running handler's message is marked in progress often enough that a
// task three AckWaits long is delivered once, with the default heartbeat
// (AckWait/3) and with one just under AckWait (heartbeats are never more
// than HeartbeatInterval apart).
func TestHeartbeatKeepsLongTaskWithOneDelivery(t *testing.T) {
	t.Parallel()
	const ackWait = 600 * time.Millisecond
	for name, interval := range map[string]time.Duration{"default": 0, "just under AckWait": 540 * time.Millisecond} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			var deliveries atomic.Int64
			done := make(chan struct{})
			h := jetworker.HandlerFunc(func(ctx context.Context, task *jetworker.Task) error {
				if deliveries.Add(1) > 1 {
					return nil
				}
				select {
				case <-time.After(3 * ackWait): // the work itself
				case <-ctx.Done():
					return ctx.Err()
				}
				close(done)
				return nil
			})
			start(t, newConsumer(t, b.js, h, consumer.Config{AckWait: ackWait, HeartbeatInterval: interval, Concurrency: 2}))
			publish(t, b.pub, "tasks.long", "x", "long-1")
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("long task did not finish")
			}
			testutil.Eventually(t, 5*time.Second, func() error {
				if m := streamMsgs(t, b.js, "TASKS"); m != 0 {
					return fmt.Errorf("TASKS still holds %d", m)
				}
				return nil
			})
			if got := deliveries.Load(); got != 1 {
				t.Fatalf("task delivered %d times, want exactly 1", got)
			}
		})
	}
}

func TestCrashedWorkersTaskIsRedelivered(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const ackWait = time.Second
	cfg := consumer.Config{Durable: "shared", AckWait: ackWait, ShutdownGrace: 10 * time.Millisecond, HardStopTimeout: 10 * time.Millisecond}

	// Worker A on its own connection takes the task and never finishes.
	ncA, jsA := embeddedtest.Connect(t, b.srv)
	startedA := make(chan struct{})
	var releaseA sync.Once
	unblock := make(chan struct{})
	defer releaseA.Do(func() { close(unblock) })
	a := newConsumer(t, jsA, jetworker.HandlerFunc(func(ctx context.Context, task *jetworker.Task) error {
		close(startedA)
		<-unblock
		return nil
	}), cfg)
	start(t, a)
	publish(t, b.pub, "tasks.crash", "x", "crash-me")
	select {
	case <-startedA:
	case <-time.After(5 * time.Second):
		t.Fatal("worker A never got the task")
	}
	crashed := time.Now()
	ncA.Close() // the crash: no ack, no nak, no heartbeats

	got := make(chan *jetworker.Task, 1)
	start(t, newConsumer(t, b.js, jetworker.HandlerFunc(func(ctx context.Context, task *jetworker.Task) error {
		c := *task
		got <- &c
		return nil
	}), cfg))
	select {
	case task := <-got:
		if since := time.Since(crashed); since < ackWait/2 {
			t.Fatalf("redelivered %s after the crash, before AckWait", since)
		}
		if task.ID != "crash-me" || task.Delivered != 2 {
			t.Fatalf("got task %q delivery %d, want crash-me delivery 2", task.ID, task.Delivered)
		}
	case <-time.After(ackWait + 5*time.Second):
		t.Fatal("task of the crashed worker was not redelivered")
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if m := streamMsgs(t, b.js, "TASKS"); m != 0 {
			return fmt.Errorf("TASKS still holds %d", m)
		}
		return nil
	})
}

func TestShutdownFinishesOrHandsOver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := consumer.Config{Durable: "graceful", Concurrency: 4, AckWait: 30 * time.Second, ShutdownGrace: 500 * time.Millisecond}

	var (
		started   = make(chan string, 4)
		finishedA sync.Map // task ID -> runs that returned nil on A
		running   atomic.Int64
	)
	a := newConsumer(t, b.js, jetworker.HandlerFunc(func(ctx context.Context, task *jetworker.Task) error {
		running.Add(1)
		defer running.Add(-1)
		started <- task.ID
		if task.Subject == "tasks.quick" {
			time.Sleep(200 * time.Millisecond) // finishes inside the grace
			v, _ := finishedA.LoadOrStore(task.ID, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
			return nil
		}
		<-ctx.Done() // slow: still running when the grace ends
		return ctx.Err()
	}), cfg)
	stopA := start(t, a)
	for i := range 2 {
		publish(t, b.pub, "tasks.quick", "x", fmt.Sprintf("quick-%d", i))
		publish(t, b.pub, "tasks.slow", "x", fmt.Sprintf("slow-%d", i))
	}
	for range 4 {
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("not all four tasks started on A")
		}
	}
	stopAt := time.Now()
	if err := stopA(); err != nil {
		t.Fatalf("Run A: %v", err)
	}
	if took := time.Since(stopAt); took > cfg.ShutdownGrace+2*time.Second {
		t.Fatalf("Run took %s to return, want about the grace of %s", took, cfg.ShutdownGrace)
	}
	if n := running.Load(); n != 0 {
		t.Fatalf("%d handlers still running after Run returned", n)
	}

	var mu sync.Mutex
	onB := map[string]int{}
	handedOver := make(chan time.Time, 4)
	start(t, newConsumer(t, b.js, jetworker.HandlerFunc(func(ctx context.Context, task *jetworker.Task) error {
		mu.Lock()
		onB[task.ID]++
		mu.Unlock()
		handedOver <- time.Now()
		return nil
	}), cfg))
	for range 2 {
		select {
		case at := <-handedOver:
			if wait := at.Sub(stopAt); wait > 10*time.Second {
				t.Fatalf("slow task reached B %s after shutdown began, not at once (AckWait %s)", wait, cfg.AckWait)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("interrupted tasks were not handed over well before AckWait")
		}
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if m := streamMsgs(t, b.js, "TASKS"); m != 0 {
			return fmt.Errorf("TASKS still holds %d", m)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	for i := range 2 {
		q, s := fmt.Sprintf("quick-%d", i), fmt.Sprintf("slow-%d", i)
		if v, ok := finishedA.Load(q); !ok || v.(*atomic.Int64).Load() != 1 || onB[q] != 0 {
			t.Errorf("%s: want finished once on A and never on B, got B=%d", q, onB[q])
		}
		if onB[s] != 1 {
			t.Errorf("%s: ran %d times on B, want 1", s, onB[s])
		}
	}
}

func TestShutdownWithStuckHandler(t *testing.T) {
	t.Parallel()
	b := setup(t)
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{}, 1)
	a := newConsumer(t, b.js, jetworker.HandlerFunc(func(ctx context.Context, task *jetworker.Task) error {
		started <- struct{}{}
		<-release // ignores its context entirely
		return nil
	}), consumer.Config{Durable: "stuck", ShutdownGrace: 100 * time.Millisecond, HardStopTimeout: 100 * time.Millisecond})
	stop := start(t, a)
	publish(t, b.pub, "tasks.stuck", "x", "stuck-1")
	<-started
	if err := stop(); !errors.Is(err, consumer.ErrHandlersStuck) {
		t.Fatalf("Run: got %v, want ErrHandlersStuck", err)
	}
	got := make(chan string, 1)
	start(t, newConsumer(t, b.js, jetworker.HandlerFunc(func(ctx context.Context, task *jetworker.Task) error {
		got <- task.ID
		return nil
	}), consumer.Config{Durable: "stuck"}))
	select {
	case id := <-got:
		if id != "stuck-1" {
			t.Fatalf("got %s, want stuck-1", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stuck handler's task was not handed over")
	}
}
