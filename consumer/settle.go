package consumer

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/internal/logkey"
	tasks "github.com/jetworker/jetworker/task"
)

// settle turns a handler result into the message's fate, as the package
// documentation's table says, and logs it: the consumer is the one layer
// that logs task outcomes. ctx is the handler's context (its values, such
// as a trace, flow into the logs and hooks; its cancellation does not
// stop the settlement); hctx is cancelled only by a hard shutdown.
func (c *Consumer) settle(ctx, hctx context.Context, msg jetstream.Msg, t *jetworker.Task, herr error) Outcome {
	if herr == nil {
		if c.cfg.DoubleAck { // the handler's deadline must not cut the ack short
			ctx = context.WithoutCancel(ctx) // it allocates: not on the plain path
		}
		if err := c.ack(ctx, msg); err != nil {
			// The handler's work is done; the server will redeliver after
			// AckWait and the handler must tolerate that.
			c.log.LogAttrs(ctx, slog.LevelWarn, "ack", taskAttrs(t, slog.Any(logkey.Err, err))...)
		} else if c.log.Enabled(ctx, slog.LevelDebug) {
			c.log.LogAttrs(ctx, slog.LevelDebug, "task done", taskAttrs(t)...)
		}
		return Acked
	}

	cctx := ctx // keeps the cancellation cause
	ctx = context.WithoutCancel(ctx)
	attrs := func(extra ...slog.Attr) []slog.Attr { return taskAttrs(t, extra...) }

	// One line per outcome: a recovered panic's stack rides on it.
	failure := []slog.Attr{slog.Any(logkey.Err, herr)}
	var pe *jetworker.PanicError
	if errors.As(herr, &pe) {
		failure = append(failure, slog.String(logkey.Stack, string(pe.Stack)))
	}

	// Cancelled (task.Store.Cancel): end it, neither retried nor
	// dead-lettered.
	if errors.Is(context.Cause(cctx), tasks.ErrCancelled) {
		if err := msg.Term(); err != nil {
			c.log.LogAttrs(ctx, slog.LevelWarn, "term cancelled task", attrs(slog.Any(logkey.Err, err))...)
		}
		c.log.LogAttrs(ctx, slog.LevelInfo, "task cancelled", attrs(failure...)...)
		return Cancelled
	}

	// Shutdown cancelled the handler: hand the task to another worker now.
	if hctx.Err() != nil {
		c.requeue(msg)
		c.log.LogAttrs(ctx, slog.LevelWarn, "task interrupted by shutdown, requeued", attrs(failure...)...)
		return Requeued
	}

	permanent := jetworker.IsPermanent(herr)
	if permanent || t.LastAttempt() {
		if c.deadLetterAndTerm(ctx, msg, t, herr, failure) {
			return DeadLettered
		}
		return Retried
	}

	var delay time.Duration
	var re *jetworker.RetryError
	if errors.As(herr, &re) {
		delay = re.Delay
	} else {
		delay = c.cfg.Backoff(int(t.Delivered), herr)
	}
	if err := msg.NakWithDelay(delay); err != nil {
		c.log.LogAttrs(ctx, slog.LevelWarn, "nak", attrs(slog.Any(logkey.Err, err))...)
	}
	c.log.LogAttrs(ctx, slog.LevelWarn, "task failed, will retry", attrs(append(failure, slog.Duration(logkey.Delay, delay))...)...)
	return Retried
}

func (c *Consumer) ack(ctx context.Context, msg jetstream.Msg) error {
	if !c.cfg.DoubleAck {
		return msg.Ack()
	}
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	return msg.DoubleAck(ctx)
}

// taskAttrs are the log attributes that name a task, then extra.
func taskAttrs(t *jetworker.Task, extra ...slog.Attr) []slog.Attr {
	return append([]slog.Attr{
		slog.String(logkey.Subject, t.Subject),
		slog.Uint64(logkey.Seq, t.Sequence),
		slog.Uint64(logkey.Delivered, t.Delivered),
		slog.String(logkey.TaskID, t.ID),
		slog.String(logkey.Task, t.Ref()),
	}, extra...)
}

// deadLetterAndTerm copies the task to the dead-letter stream and, once
// that is acknowledged, terminates the message. If the copy cannot be
// stored it Naks the message instead, so the task is never lost, and
// reports false. failure holds the handler error's log attributes.
func (c *Consumer) deadLetterAndTerm(ctx context.Context, msg jetstream.Msg, t *jetworker.Task, herr error, failure []slog.Attr) bool {
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	if err := c.deadLetter(ctx, deadTask{
		subject: t.Subject, data: t.Data, header: t.Header, seq: t.Sequence, attempts: t.Delivered,
	}, herr.Error()); err != nil {
		delay := c.cfg.Backoff(int(t.Delivered), herr)
		if nerr := msg.NakWithDelay(delay); nerr != nil {
			err = errors.Join(err, nerr)
		}
		// err is what failed here; the handler's error is the cause.
		c.log.LogAttrs(ctx, slog.LevelError, "dead-letter failed, task kept and retried",
			taskAttrs(t, slog.Any(logkey.Err, err), slog.Any(logkey.Cause, herr), slog.Duration(logkey.Delay, delay))...)
		return false
	}
	if err := msg.Term(); err != nil {
		// The copy is stored; the original comes back after AckWait or via
		// the max-deliveries advisory, whose copy the DLQ de-duplicates.
		c.log.LogAttrs(ctx, slog.LevelWarn, "term after dead-letter", taskAttrs(t, slog.Any(logkey.Err, err))...)
	}
	c.log.LogAttrs(ctx, slog.LevelError, "task dead-lettered", taskAttrs(t, failure...)...)
	if c.cfg.Hooks.DeadLetterFunc != nil {
		c.cfg.Hooks.DeadLetterFunc(ctx, t, herr.Error())
	}
	return true
}
