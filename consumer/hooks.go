package consumer

import (
	"context"
	"slices"
	"time"

	"github.com/jetworker/jetworker"
	tasks "github.com/jetworker/jetworker/task"
)

// Outcome is what the consumer did with a task's message.
type Outcome int

const (
	// Acked: the handler succeeded and the message was acknowledged.
	Acked Outcome = iota + 1
	// Retried: the attempt failed and the message was Nak'ed with a delay.
	Retried
	// DeadLettered: the task was copied to the dead-letter stream and
	// terminated.
	DeadLettered
	// Requeued: shutdown interrupted the handler and the message was
	// Nak'ed without delay for another worker.
	Requeued
	// Cancelled: the task was cancelled (task.Store.Cancel) before or
	// while it ran; the message was terminated, neither retried nor
	// dead-lettered.
	Cancelled
)

// String returns the outcome's lowercase name.
func (o Outcome) String() string {
	switch o {
	case Acked:
		return "acked"
	case Retried:
		return "retried"
	case DeadLettered:
		return "dead_lettered"
	case Requeued:
		return "requeued"
	case Cancelled:
		return "cancelled"
	}
	return "unknown"
}

// state is the task state an outcome records.
func (o Outcome) state() tasks.State {
	switch o {
	case Acked:
		return tasks.Succeeded
	case Retried:
		return tasks.Retrying
	case DeadLettered:
		return tasks.Failed
	case Cancelled:
		return tasks.Cancelled
	}
	return "" // requeued: the next delivery moves it on
}

// Hooks let metrics and tracing observe the consumer without the consumer
// depending on them. Every field is optional. Hooks run on the worker's
// goroutine, so they must be fast and safe for concurrent use.
type Hooks struct {
	// StartFunc is called before the handler runs. The context it returns
	// is the handler's (a tracer continues the task's trace here).
	StartFunc func(ctx context.Context, t *jetworker.Task) context.Context
	// DoneFunc is called once the message is settled, with the context
	// StartFunc returned, the outcome, the handler's run time and its
	// error (nil when it succeeded).
	DoneFunc func(ctx context.Context, t *jetworker.Task, o Outcome, d time.Duration, err error)
	// DeadLetterFunc is called after a task's dead-letter copy is stored,
	// on both paths: a handler's result, and the max-deliveries advisory
	// (where no handler ran, so no StartFunc or DoneFunc call surrounds
	// it and ctx is the consumer's).
	DeadLetterFunc func(ctx context.Context, t *jetworker.Task, reason string)
}

// JoinHooks combines consumer hooks (metrics and tracing, say) into one.
// StartFuncs run in the order given, each receiving the context the
// previous one returned; DoneFuncs run in reverse order, so the first hook
// wraps the others like a deferred call; DeadLetterFuncs run in order.
// Missing functions are skipped.
func JoinHooks(hooks ...Hooks) Hooks {
	var starts []func(context.Context, *jetworker.Task) context.Context
	var dones []func(context.Context, *jetworker.Task, Outcome, time.Duration, error)
	var deads []func(context.Context, *jetworker.Task, string)
	for _, h := range hooks {
		if h.StartFunc != nil {
			starts = append(starts, h.StartFunc)
		}
		if h.DoneFunc != nil {
			dones = append(dones, h.DoneFunc)
		}
		if h.DeadLetterFunc != nil {
			deads = append(deads, h.DeadLetterFunc)
		}
	}
	var out Hooks
	if len(starts) > 0 {
		out.StartFunc = func(ctx context.Context, t *jetworker.Task) context.Context {
			for _, f := range starts {
				ctx = f(ctx, t)
			}
			return ctx
		}
	}
	if len(dones) > 0 {
		out.DoneFunc = func(ctx context.Context, t *jetworker.Task, o Outcome, d time.Duration, err error) {
			for _, f := range slices.Backward(dones) {
				f(ctx, t, o, d, err)
			}
		}
	}
	if len(deads) > 0 {
		out.DeadLetterFunc = func(ctx context.Context, t *jetworker.Task, reason string) {
			for _, f := range deads {
				f(ctx, t, reason)
			}
		}
	}
	return out
}
