package task_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/handlers"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/task"
)

// TestTrackerRunFailsWhenTheConnectionCloses, as every Run of jetworker
// does: it does not retry against a connection that never comes back.
func TestTrackerRunFailsWhenTheConnectionCloses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	nc, js := embeddedtest.Connect(t, b.srv)
	store, err := task.New(js, task.Config{Logger: testutil.Logger(t, slog.LevelWarn)})
	if err != nil {
		t.Fatal(err)
	}
	tr := store.NewTracker("w1", false)
	done := make(chan error, 1)
	go func() { done <- tr.Run(context.Background()) }()
	<-tr.Ready()
	nc.Close()
	select {
	case err := <-done:
		if !errors.Is(err, nats.ErrConnectionClosed) {
			t.Fatalf("Run: got %v, want an error wrapping nats.ErrConnectionClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its connection closed")
	}
}

// TestUniquePendingCancelledBeforeItRunsReleasesItsLock: a UniquePending
// task whose cancel request reaches the worker before the task does is
// skipped, and its lock, held until a start that never comes, is
// released.
func TestUniquePendingCancelledBeforeItRunsReleasesItsLock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := b.pub.Publish(t.Context(), "tasks.upc", nil, &publisher.PublishOpts{ID: "upc", Unique: publisher.UniquePending}); err != nil {
		t.Fatal(err)
	}
	// Untracked: Cancel finds no record, but records the request.
	if _, err := b.store.Cancel(t.Context(), "upc"); !errors.Is(err, task.ErrNotFound) {
		t.Fatalf("Cancel of an untracked task: got %v, want ErrNotFound", err)
	}
	outcome := make(chan consumer.Outcome, 1)
	var ran atomic.Bool
	b.worker(t, func(context.Context, *jetworker.Task) error {
		ran.Store(true)
		return nil
	}, consumer.Config{Durable: "upc", FilterSubjects: []string{"tasks.upc"}, Hooks: consumer.Hooks{
		DoneFunc: func(_ context.Context, _ *jetworker.Task, o consumer.Outcome, _ time.Duration, _ error) { outcome <- o },
	}})
	if o := <-outcome; o != consumer.Cancelled || ran.Load() {
		t.Fatalf("outcome %s, ran %v; want cancelled without running", o, ran.Load())
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if _, err := b.store.Lock(t.Context(), "upc", time.Second, 0); err != nil {
			return fmt.Errorf("the lock of a task cancelled before it ran is still held: %w", err)
		}
		return nil
	})
}

// TestLateDuplicateAfterLostAck: a tracked task succeeded but its ack was
// lost (its worker ran it, wrote the record, and went away before
// acknowledging). The server redelivers it; the next worker acknowledges
// it without running it again, keeps the record as it was, and releases a
// uniqueness lock the first worker did not get to release.
func TestLateDuplicateAfterLostAck(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	res, err := b.pub.Publish(ctx, "tasks.late", nil, &publisher.PublishOpts{ID: "late", Track: true, Unique: publisher.UniqueActive})
	if err != nil {
		t.Fatal(err)
	}
	cfg := consumer.Config{Durable: "late", FilterSubjects: []string{"tasks.late"}, AckWait: time.Second, HeartbeatInterval: 300 * time.Millisecond}
	// The first worker: a raw fetch, run through a tracker, never acked.
	_, first := fetchOne(t, b, cfg)
	tr := b.store.NewTracker("first", false)
	trCtx, stopTr := context.WithCancel(ctx)
	trDone := make(chan error, 1)
	go func() { trDone <- tr.Run(trCtx) }()
	_, ex, skip := tr.Begin(ctx, first)
	if skip != task.Run {
		t.Fatalf("first delivery: skip %v", skip)
	}
	ex.End(task.Succeeded, nil)
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	stopTr()
	if err := <-trDone; err != nil {
		t.Fatal(err)
	}
	// Its lock release was lost with the ack: the lock is taken again.
	if _, err := b.store.Lock(ctx, "late", 0, 0); err != nil {
		t.Fatal(err)
	}

	var ran atomic.Int32
	outcome := make(chan consumer.Outcome, 1)
	cfg.Hooks.DoneFunc = func(_ context.Context, tk *jetworker.Task, o consumer.Outcome, _ time.Duration, _ error) {
		if tk.Delivered > 1 {
			outcome <- o
		}
	}
	b.worker(t, func(context.Context, *jetworker.Task) error {
		ran.Add(1)
		return nil
	}, cfg)
	if o := <-outcome; o != consumer.Acked || ran.Load() != 0 {
		t.Fatalf("redelivery: outcome %s, handler ran %d times; want acked without running", o, ran.Load())
	}
	info, err := b.store.Get(ctx, "late")
	if err != nil || info.State != task.Succeeded || info.Attempt != 1 {
		t.Fatalf("record %s attempt %d (%v); want succeeded on attempt 1", info.State, info.Attempt, err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if n := msgs(t, b.js, "TASKS"); n != 0 {
			return fmt.Errorf("%d messages left (task %s)", n, res.Ref())
		}
		if _, err := b.store.Lock(ctx, "late", time.Second, 0); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		return nil
	})
}

// TestWorkerDiesMidTask: a tracked task's worker loses its connection for
// good mid-task (as a killed process does: no ack, no nak, no record
// write after it); the server redelivers the task after AckWait to
// another worker, whose attempt supersedes the dead one's in the record.
func TestWorkerDiesMidTask(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	cfg := consumer.Config{Durable: "dies", FilterSubjects: []string{"tasks.dies"}, AckWait: time.Second,
		ShutdownGrace: time.Millisecond, HardStopTimeout: time.Second, DisablePresence: true}

	nc, js := embeddedtest.Connect(t, b.srv)
	deadStore, err := task.New(js, task.Config{Logger: testutil.Logger(t, slog.LevelError)})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	dying := cfg
	dying.Tasks = deadStore
	dying.Logger = testutil.Logger(t, slog.LevelError)
	c, err := consumer.New(js, jetworker.HandlerFunc(func(ctx context.Context, _ *jetworker.Task) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}), dying)
	if err != nil {
		t.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(context.Background()) }()
	<-c.Ready()
	if _, err := b.pub.Publish(ctx, "tasks.dies", nil, &publisher.PublishOpts{ID: "dies", Track: true}); err != nil {
		t.Fatal(err)
	}
	<-started
	testutil.Eventually(t, 10*time.Second, func() error {
		if info, err := b.store.Get(ctx, "dies"); err != nil || info.State != task.Active || info.Attempt != 1 {
			return fmt.Errorf("record %s attempt %d (%v), want active on attempt 1", info.State, info.Attempt, err)
		}
		return nil
	})
	nc.Close() // the worker is gone
	if err := <-runDone; !errors.Is(err, nats.ErrConnectionClosed) {
		t.Fatalf("the dead worker's Run: %v", err)
	}

	b.worker(t, func(context.Context, *jetworker.Task) error { return nil }, cfg)
	info := b.wait(t, "dies")
	if info.State != task.Succeeded || info.Attempt != 2 {
		t.Fatalf("record %s on attempt %d, want succeeded on attempt 2", info.State, info.Attempt)
	}
	var got []string
	for _, h := range info.History {
		got = append(got, fmt.Sprintf("%s/%d", h.State, h.Attempt))
	}
	if want := "pending/0 active/1 active/2 succeeded/2"; strings.Join(got, " ") != want {
		t.Fatalf("history %v, want %s", got, want)
	}
}

// TestTypedHandlerReports: a handler written with the typed JSON adapter
// reports progress and a result through its context like any other.
func TestTypedHandlerReports(t *testing.T) {
	t.Parallel()
	b := setup(t)
	type report struct {
		Month string `json:"month"`
	}
	b.worker(t, handlers.JSON(func(ctx context.Context, _ *jetworker.Task, r report) error {
		if err := jetworker.SetProgress(ctx, 50, "rendering "+r.Month); err != nil {
			return err
		}
		return jetworker.SetResult(ctx, []byte(`{"pages":3,"month":"`+r.Month+`"}`))
	}).Handle, consumer.Config{Durable: "typed", FilterSubjects: []string{"tasks.typed"}})
	res, err := publisher.PublishJSON(t.Context(), b.pub, "tasks.typed", report{Month: "2026-11"}, &publisher.PublishOpts{Track: true})
	if err != nil {
		t.Fatal(err)
	}
	info := b.wait(t, res.ID)
	if info.State != task.Succeeded || string(info.Result) != `{"pages":3,"month":"2026-11"}` {
		t.Fatalf("record %s result %q, want succeeded with the result", info.State, info.Result)
	}
	if info.Progress == nil || info.Progress.Percent != 50 || info.Progress.Message != "rendering 2026-11" {
		t.Fatalf("progress %+v, want 50%% rendering 2026-11", info.Progress)
	}
}
