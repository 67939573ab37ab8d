package jetworker_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetworker/jetworker"
)

func TestOutcomeErrorsSurviveWrapping(t *testing.T) {
	t.Parallel()
	base := errors.New("card declined")
	tests := []struct {
		name      string
		err       error
		permanent bool
		delay     time.Duration
		retry     bool
	}{
		{name: "plain error", err: base},
		{name: "permanent", err: jetworker.Permanent(base), permanent: true},
		{name: "wrapped permanent", err: fmt.Errorf("charge: %w", jetworker.Permanent(base)), permanent: true},
		{name: "joined permanent", err: errors.Join(errors.New("x"), jetworker.Permanent(base)), permanent: true},
		{name: "retry after", err: jetworker.RetryAfter(base, 3*time.Second), retry: true, delay: 3 * time.Second},
		{name: "wrapped retry after", err: fmt.Errorf("gateway: %w", jetworker.RetryAfter(base, time.Minute)), retry: true, delay: time.Minute},
		{name: "negative delay clamps to zero", err: jetworker.RetryAfter(base, -time.Second), retry: true, delay: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := jetworker.IsPermanent(tt.err); got != tt.permanent {
				t.Errorf("IsPermanent: got %v, want %v", got, tt.permanent)
			}
			var pe *jetworker.PermanentError
			if got := errors.As(tt.err, &pe); got != tt.permanent {
				t.Errorf("errors.As PermanentError: got %v, want %v", got, tt.permanent)
			}
			var re *jetworker.RetryError
			if got := errors.As(tt.err, &re); got != tt.retry {
				t.Fatalf("errors.As RetryError: got %v, want %v", got, tt.retry)
			}
			if tt.retry && re.Delay != tt.delay {
				t.Errorf("Delay: got %v, want %v", re.Delay, tt.delay)
			}
			if !errors.Is(tt.err, base) {
				t.Errorf("errors.Is(err, base) = false: the cause is lost")
			}
		})
	}
}

func TestOutcomeErrorsOfNilAreNil(t *testing.T) {
	t.Parallel()
	if err := jetworker.Permanent(nil); err != nil {
		t.Errorf("Permanent(nil) = %v, want nil", err)
	}
	if err := jetworker.RetryAfter(nil, time.Second); err != nil {
		t.Errorf("RetryAfter(nil) = %v, want nil", err)
	}
}

func TestTaskIDAndEnqueuedAt(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 21, 8, 0, 0, 123, time.UTC)
	tests := []struct {
		name      string
		header    nats.Header
		published time.Time
		id        string
		at        time.Time
		atOK      bool
	}{
		{name: "nil header"},
		{name: "msg id", header: nats.Header{jetworker.HeaderMsgID: {"a"}}, id: "a"},
		{name: "delayed task id", header: nats.Header{jetworker.HeaderTaskID: {"b"}}, id: "b"},
		{name: "task id header wins over the de-duplication key", header: nats.Header{jetworker.HeaderMsgID: {"replay-DLQ-7"}, jetworker.HeaderTaskID: {"b"}}, id: "b"},
		{name: "enqueued at", header: nats.Header{jetworker.HeaderEnqueuedAt: {at.Format(time.RFC3339Nano)}}, at: at, atOK: true},
		{name: "malformed enqueued at", header: nats.Header{jetworker.HeaderEnqueuedAt: {"yesterday"}}, published: at},
		{name: "stored time without header", header: nats.Header{jetworker.HeaderMsgID: {"a"}}, id: "a", published: at, at: at, atOK: true},
		{name: "header wins over stored time", header: nats.Header{jetworker.HeaderEnqueuedAt: {at.Format(time.RFC3339Nano)}}, published: at.Add(time.Second), at: at, atOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := jetworker.TaskID(tt.header); got != tt.id {
				t.Errorf("TaskID: got %q, want %q", got, tt.id)
			}
			task := &jetworker.Task{Header: tt.header, Published: tt.published}
			got, ok := task.EnqueuedAt()
			if ok != tt.atOK || !got.Equal(tt.at) {
				t.Errorf("EnqueuedAt: got %v %v, want %v %v", got, ok, tt.at, tt.atOK)
			}
		})
	}
}

func TestQueueWait(t *testing.T) {
	t.Parallel()
	stored := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	due := stored.Add(time.Hour)
	started := due.Add(250 * time.Millisecond)
	tests := []struct {
		name string
		task jetworker.Task
		want time.Duration
		ok   bool
	}{
		{name: "first delivery from the stored time", task: jetworker.Task{Delivered: 1, Published: due}, want: 250 * time.Millisecond, ok: true},
		{name: "a delayed task from when it became due", task: jetworker.Task{Delivered: 1, Published: stored,
			Header: nats.Header{jetworker.HeaderEnqueuedAt: {due.Format(time.RFC3339Nano)}}}, want: 250 * time.Millisecond, ok: true},
		{name: "never negative", task: jetworker.Task{Delivered: 1, Published: started.Add(time.Second)}, want: 0, ok: true},
		{name: "a retry", task: jetworker.Task{Delivered: 2, Published: due}},
		{name: "a replayed dead letter", task: jetworker.Task{Delivered: 1, Published: due, Header: nats.Header{jetworker.HeaderReplayedFrom: {"DLQ/3"}}}},
		{name: "no enqueue time", task: jetworker.Task{Delivered: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := tt.task.QueueWait(started)
			if got != tt.want || ok != tt.ok {
				t.Errorf("QueueWait: got %v %v, want %v %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestRunAllStopsEveryPartWhenOneFails(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	var stopped atomic.Int32
	waiter := jetworker.RunnerFunc(func(ctx context.Context) error {
		<-ctx.Done()
		stopped.Add(1)
		return nil
	})
	failer := jetworker.RunnerFunc(func(ctx context.Context) error { return boom })
	err := jetworker.RunAll(t.Context(), waiter, failer, waiter)
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
	if got := stopped.Load(); got != 2 {
		t.Fatalf("%d parts saw their context end, want 2", got)
	}
}

func TestRunAllReturnsNilOnCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	started := make(chan struct{}, 2)
	part := jetworker.RunnerFunc(func(ctx context.Context) error {
		started <- struct{}{}
		<-ctx.Done()
		return nil
	})
	done := make(chan error, 1)
	go func() { done <- jetworker.RunAll(ctx, part, part) }()
	<-started
	<-started
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("got %v, want nil after a clean shutdown", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunAll did not return after cancel")
	}
}

func TestRunAllRejectsNilPart(t *testing.T) {
	t.Parallel()
	if err := jetworker.RunAll(t.Context(), nil); err == nil {
		t.Fatal("got nil error for a nil part")
	}
}

func TestRunAllLeavesOutEchoesOfItsCancel(t *testing.T) {
	t.Parallel()
	boom := errors.New("permission denied")
	failer := jetworker.RunnerFunc(func(ctx context.Context) error { return boom })
	echo := jetworker.RunnerFunc(func(ctx context.Context) error {
		<-ctx.Done()
		return fmt.Errorf("provision: %w", ctx.Err())
	})
	other := errors.New("disk full")
	late := jetworker.RunnerFunc(func(ctx context.Context) error {
		<-ctx.Done()
		return other
	})
	err := jetworker.RunAll(t.Context(), failer, echo, late)
	if !errors.Is(err, boom) || !errors.Is(err, other) || errors.Is(err, context.Canceled) {
		t.Fatalf("got %v; want the failure and the other real error, without the cancellation echo", err)
	}
}

func TestRef(t *testing.T) {
	t.Parallel()
	task := &jetworker.Task{Stream: "TASKS", Sequence: 42}
	if got := task.Ref(); got != "TASKS/42" {
		t.Fatalf("Ref: got %q, want TASKS/42", got)
	}
	stream, seq, ok := jetworker.ParseRef("TASKS/42")
	if !ok || stream != "TASKS" || seq != 42 {
		t.Fatalf("ParseRef(TASKS/42): got %q %d %v, want TASKS 42 true", stream, seq, ok)
	}
	for _, bad := range []string{"", "TASKS", "TASKS/", "/42", "TASKS/0", "TASKS/x", "TASKS/-1"} {
		if _, _, ok := jetworker.ParseRef(bad); ok {
			t.Errorf("ParseRef(%q): got ok, want false", bad)
		}
	}
}

func TestPanicErrorUnwrapsErrorValues(t *testing.T) {
	t.Parallel()
	cause := jetworker.Permanent(errors.New("bad input"))
	pe := &jetworker.PanicError{Value: cause, Stack: []byte("stack")}
	if !jetworker.IsPermanent(pe) {
		t.Fatal("a panic with a Permanent value: got not permanent, want permanent")
	}
	if got := (&jetworker.PanicError{Value: 42}).Unwrap(); got != nil {
		t.Fatalf("Unwrap of a non-error value: got %v, want nil", got)
	}
	if got := pe.Error(); got != "handler panic: permanent: bad input" {
		t.Fatalf("Error: got %q", got)
	}
}
