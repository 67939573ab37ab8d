package task_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/task"
)

// logWatch is a slog handler that reports the messages starting with
// prefix on seen.
type logWatch struct {
	prefix string
	seen   chan string
}

func (l logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (l logWatch) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l logWatch) WithGroup(string) slog.Handler            { return l }
func (l logWatch) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, l.prefix) {
		select {
		case l.seen <- r.Message:
		default:
		}
	}
	return nil
}

// TestFailedRecordWriteIsRetried: a worker's terminal write that fails
// while the bucket is away is written once it is back, so the record ends
// succeeded (and Wait returns) instead of staying active for the TTL.
func TestFailedRecordWriteIsRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	failed := make(chan string, 1)
	store, err := task.New(b.js, task.Config{Logger: slog.New(logWatch{prefix: "write task record", seen: failed})})
	if err != nil {
		t.Fatal(err)
	}
	b.store = store
	release := make(chan struct{})
	b.worker(t, func(ctx context.Context, tk *jetworker.Task) error {
		<-release
		return jetworker.SetResult(ctx, []byte("done"))
	}, consumer.Config{Durable: "retried", FilterSubjects: []string{"tasks.retried"}})
	pub, _ := publisher.New(b.js, publisher.Config{Tasks: store, Logger: testutil.Logger(t, slog.LevelWarn)})
	if _, err := pub.Publish(t.Context(), "tasks.retried", nil, &publisher.PublishOpts{ID: "retried", Track: true}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if info, err := store.Get(t.Context(), "retried"); err != nil || info.State != task.Active {
			return fmt.Errorf("record %s, %v; want active", info.State, err)
		}
		return nil
	})
	if err := b.js.DeleteKeyValue(t.Context(), task.DefaultBucket); err != nil {
		t.Fatal(err)
	}
	close(release)
	select {
	case msg := <-failed:
		t.Logf("the end's write failed: %s", msg)
	case <-time.After(10 * time.Second):
		t.Fatal("the end's write did not fail with the bucket gone")
	}
	if err := store.Provision(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The bucket came back empty: the record reappears with the retry.
	testutil.Eventually(t, 10*time.Second, func() error {
		info, err := store.Get(t.Context(), "retried")
		if err != nil || info.State != task.Succeeded || string(info.Result) != "done" {
			return fmt.Errorf("record %s result %q (%v), want succeeded with the result", info.State, info.Result, err)
		}
		return nil
	})
	if n := store.Lost(); n != 0 {
		t.Fatalf("Lost() = %d, want 0: the write was retried, not lost", n)
	}
}

// TestWorkerWritesIntoAFullBucket: with the bucket full, tracked tasks run
// once each and are acknowledged; the records that cannot be written are
// given up after RetryFor and counted in Lost.
func TestWorkerWritesIntoAFullBucket(t *testing.T) {
	t.Parallel()
	b := setup(t)
	store, err := task.New(b.js, task.Config{Bucket: "full", MaxBytes: 512, RetryFor: 300 * time.Millisecond,
		Logger: testutil.Logger(t, slog.LevelError)})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Provision(t.Context()); err != nil {
		t.Fatal(err)
	}
	b.store = store
	var mu sync.Mutex
	runs := map[string]int{}
	b.worker(t, func(ctx context.Context, tk *jetworker.Task) error {
		mu.Lock()
		runs[tk.ID]++
		mu.Unlock()
		return nil
	}, consumer.Config{Durable: "full", FilterSubjects: []string{"tasks.full"}})
	// The publisher's own store: its failed record writes are counted
	// there, and the workers' here.
	pubStore, _ := task.New(b.js, task.Config{Bucket: "full"})
	pub, _ := publisher.New(b.js, publisher.Config{Tasks: pubStore, Logger: testutil.Logger(t, slog.LevelError)})
	const n = 10
	for i := range n {
		if _, err := pub.Publish(t.Context(), "tasks.full", nil, &publisher.PublishOpts{ID: fmt.Sprint("full-", i), Track: true}); err != nil {
			t.Fatalf("tracked publish %d into a full bucket: %v; want the task stored regardless", i, err)
		}
	}
	testutil.Eventually(t, 20*time.Second, func() error {
		if m := msgsOn(t, b.js, "TASKS", "tasks.full"); m != 0 {
			return fmt.Errorf("%d tasks not acknowledged", m)
		}
		if store.Lost() == 0 {
			return fmt.Errorf("no worker record write counted lost")
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if len(runs) != n {
		t.Fatalf("%d tasks ran, want %d", len(runs), n)
	}
	for id, r := range runs {
		if r != 1 {
			t.Errorf("task %s ran %d times, want once: a failed record write must not repeat it", id, r)
		}
	}
}
