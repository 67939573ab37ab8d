package task_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/task"
)

// TestCancelRef: cancelling a tracked unique task by its stream and
// sequence, before any worker has it, removes it, writes its record
// Cancelled and releases its lock, as a cancel by ID does.
func TestCancelRef(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	res, err := b.pub.Publish(ctx, "tasks.idle.ref", nil, &publisher.PublishOpts{ID: "by-ref", Track: true, Unique: publisher.UniqueActive})
	if err != nil {
		t.Fatal(err)
	}
	removed, err := b.store.CancelRef(ctx, res.Stream, res.Sequence)
	if err != nil || !removed {
		t.Fatalf("CancelRef: %v, %v; want removed", removed, err)
	}
	info, err := b.store.Get(ctx, "by-ref")
	if err != nil || info.State != task.Cancelled {
		t.Fatalf("record after CancelRef: %s, %v; want cancelled", info.State, err)
	}
	if _, err := b.store.Lock(ctx, "by-ref", 0, 0); err != nil {
		t.Fatalf("the lock of a task cancelled by its ref is still held: %v", err)
	}
}

// fetchOne hands the next message of a new durable to the test, as a
// worker that received it and has not settled it yet.
func fetchOne(t *testing.T, b testBundle, cfg consumer.Config) (jetstream.Msg, *jetworker.Task) {
	t.Helper()
	cons, err := consumer.Provision(t.Context(), b.js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var msg jetstream.Msg
	for m := range batch.Messages() {
		msg = m
	}
	if msg == nil {
		t.Fatalf("no message fetched: %v", batch.Error())
	}
	meta, _ := msg.Metadata()
	return msg, &jetworker.Task{ID: jetworker.TaskID(msg.Headers()), Subject: msg.Subject(), Header: msg.Headers(), Stream: "TASKS",
		Consumer: cfg.Durable, Sequence: meta.Sequence.Stream, Delivered: meta.NumDelivered, MaxAttempts: 5}
}

// TestCancelOfADeliveredTask: a task a worker has received while its
// record still says pending (the worker's start not written yet) is not
// removed nor recorded "cancelled before it ran": a handler may be
// running it. The cancel is requested and the worker ends it.
func TestCancelOfADeliveredTask(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	res, err := b.pub.Publish(ctx, "tasks.held", nil, &publisher.PublishOpts{ID: "held", Track: true, Unique: publisher.UniqueActive})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := b.pub.Publish(ctx, "tasks.held", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, tk := fetchOne(t, b, consumer.Config{Durable: "held", FilterSubjects: []string{"tasks.held"}})
	if tk.ID != "held" {
		t.Fatalf("fetched %q first, want held", tk.ID)
	}
	info, err := b.store.Cancel(ctx, "held")
	if err != nil {
		t.Fatal(err)
	}
	if info.State != task.Pending || !info.CancelRequested {
		t.Fatalf("cancel of a delivered task: record %s (cancel requested %v), want pending with the cancel requested", info.State, info.CancelRequested)
	}
	st, _ := b.js.Stream(ctx, "TASKS")
	if _, err := st.GetMsg(ctx, res.Sequence); err != nil {
		t.Fatalf("the delivered task's message was removed: %v", err)
	}
	if _, err := b.store.Lock(ctx, "held", 0, 0); !errors.Is(err, task.ErrLocked) {
		t.Fatalf("lock of the delivered task: got %v, want still held (its worker releases it)", err)
	}

	// Its worker sees the request and ends it, releasing the lock.
	tr := b.store.NewTracker("w", false)
	trCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- tr.Run(trCtx) }()
	<-tr.Ready()
	_, ex, skip := tr.Begin(ctx, tk)
	if skip != task.SkipCancelled {
		t.Fatalf("the worker's Begin: skip %v, want SkipCancelled", skip)
	}
	ex.End(task.Cancelled, task.ErrCancelled)
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if info := b.wait(t, "held"); info.State != task.Cancelled {
		t.Fatalf("ended %s, want cancelled", info.State)
	}
	if _, err := b.store.Lock(ctx, "held", 0, 0); err != nil {
		t.Fatalf("lock after the worker ended it: %v", err)
	}

	// The untracked task after it, not delivered yet: removed.
	removed, err := b.store.CancelRef(ctx, plain.Stream, plain.Sequence)
	if err != nil || !removed {
		t.Fatalf("CancelRef of the task no worker has: %v, %v; want removed", removed, err)
	}
}

// TestCancelOnTwoWorkers: tasks running on two workers of one durable,
// each cancelled twice at once, end Cancelled on the worker that ran
// them: each handler runs once and sees ErrCancelled, nothing is retried
// or dead-lettered.
func TestCancelOnTwoWorkers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 6
	var mu sync.Mutex
	runs := map[string]int{}
	causes := make(chan error, 2*n)
	started := make(chan string, 2*n)
	h := func(ctx context.Context, tk *jetworker.Task) error {
		mu.Lock()
		runs[tk.ID]++
		mu.Unlock()
		started <- tk.ID
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return context.Cause(ctx)
	}
	cfg := consumer.Config{Durable: "two", FilterSubjects: []string{"tasks.two"}, Concurrency: n}
	b.worker(t, h, cfg)
	b.worker(t, h, cfg)
	for i := range n {
		if _, err := b.pub.Publish(t.Context(), "tasks.two", nil, &publisher.PublishOpts{ID: fmt.Sprint("two-", i), Track: true}); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		<-started
	}
	var wg sync.WaitGroup
	var finished atomic.Int32
	for i := range n {
		for range 2 {
			wg.Go(func() {
				if _, err := b.store.Cancel(t.Context(), fmt.Sprint("two-", i)); errors.Is(err, task.ErrFinished) {
					finished.Add(1) // the other cancel and the worker were faster
				} else if err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	for i := range n {
		info := b.wait(t, fmt.Sprint("two-", i))
		if info.State != task.Cancelled || info.Attempt != 1 {
			t.Errorf("task %s: %s on attempt %d, want cancelled on attempt 1", info.ID, info.State, info.Attempt)
		}
	}
	for range n {
		if err := <-causes; !errors.Is(err, task.ErrCancelled) {
			t.Errorf("a handler's context ended with %v, want ErrCancelled", err)
		}
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if m := msgsOn(t, b.js, "TASKS", "tasks.two"); m != 0 {
			return fmt.Errorf("%d cancelled tasks still stored", m)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	for id, r := range runs {
		if r != 1 {
			t.Errorf("task %s ran %d times, want once", id, r)
		}
	}
	if d := msgs(t, b.js, "DLQ"); d != 0 {
		t.Errorf("%d cancelled tasks dead-lettered", d)
	}
}
