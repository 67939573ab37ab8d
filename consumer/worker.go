package consumer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/internal/logkey"
	"github.com/jetworker/jetworker/internal/wire"
	tasks "github.com/jetworker/jetworker/task"
)

// slot is one worker's current message: the consumer's heartbeat loop
// marks it in progress while the handler runs, and shutdown can Nak a
// handler that never returns.
type slot struct {
	log *slog.Logger

	mu       sync.Mutex
	msg      jetstream.Msg
	began    time.Time // when the handler started
	beaten   time.Time // the last heartbeat, or began
	deadline time.Time // no heartbeats after it; zero means none
	active   bool      // a handler is running on msg
	settled  bool      // shutdown already Nak'ed msg
}

func newSlot(log *slog.Logger) *slot { return &slot{log: log} }

// start marks msg's handler running from began, with heartbeats until
// deadline if it is not zero. It costs no timer: one loop per consumer
// beats for every slot (see heartbeats).
func (s *slot) start(msg jetstream.Msg, began, deadline time.Time) {
	s.mu.Lock()
	s.msg, s.began, s.beaten, s.deadline, s.active, s.settled = msg, began, began, deadline, true, false
	s.mu.Unlock()
}

// stop ends heartbeats and reports whether shutdown already settled the
// message.
func (s *slot) stop() (settled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active = false
	settled = s.settled
	s.msg = nil
	return settled
}

// running returns how long the current handler has run, 0 when idle.
func (s *slot) running(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active {
		return 0
	}
	return now.Sub(s.began)
}

// beat marks the message in progress if its last heartbeat (or start) is
// at least due ago, unless the handler has finished or passed its
// deadline (a hung handler must not keep its message forever).
func (s *slot) beat(now time.Time, due time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active || s.settled || now.Sub(s.beaten) < due {
		return
	}
	if !s.deadline.IsZero() && now.After(s.deadline) {
		return
	}
	if err := s.msg.InProgress(); err != nil {
		s.log.Warn("heartbeat", slog.String(logkey.Subject, s.msg.Subject()), slog.Any(logkey.Err, err))
	}
	s.beaten = now
}

// heartbeats marks running handlers' messages in progress until ctx ends:
// it looks at every slot four times per HeartbeatInterval and beats those
// whose last heartbeat is three quarters of an interval old, so two
// heartbeats of a message are never more than HeartbeatInterval apart. One
// loop for all slots costs a handler call nothing (a timer per call cost
// ~4% of a no-op task's CPU).
func (c *Consumer) heartbeats(ctx context.Context, slots []*slot) {
	tick := max(c.cfg.HeartbeatInterval/4, time.Millisecond)
	due := c.cfg.HeartbeatInterval - tick
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, s := range slots {
				s.beat(now, due)
			}
		}
	}
}

// abandon Naks the message of a handler that ignored cancellation, so
// another worker takes it at once.
func (s *slot) abandon() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active || s.settled {
		return
	}
	s.settled = true
	if err := s.msg.Nak(); err != nil {
		s.log.Warn("nak stuck handler's message", slog.String(logkey.Subject, s.msg.Subject()), slog.Any(logkey.Err, err))
	}
}

// work runs handlers on messages from msgs until it is closed. dl is nil
// when handlers have no timeout.
func (c *Consumer) work(hctx context.Context, dl *deadlines, msgs <-chan jetstream.Msg, s *slot) {
	var task jetworker.Task // reused: handlers must not keep it
	for msg := range msgs {
		c.process(hctx, dl, msg, s, &task)
	}
}

func (c *Consumer) process(hctx context.Context, dl *deadlines, msg jetstream.Msg, s *slot, task *jetworker.Task) {
	ack, ok := parseAckReply(msg.Reply())
	if !ok {
		// A form this parser does not know: nats.go's parser decides.
		meta, err := msg.Metadata()
		if err != nil {
			// Not a JetStream message: nothing to retry.
			c.log.ErrorContext(hctx, "message without JetStream metadata", slog.String(logkey.Subject, msg.Subject()), slog.Any(logkey.Err, err))
			_ = msg.Term()
			return
		}
		ack = ackInfo{delivered: meta.NumDelivered, streamSeq: meta.Sequence.Stream, timestamp: meta.Timestamp.UnixNano()}
	}
	hdr := msg.Headers()
	*task = jetworker.Task{
		ID:          jetworker.TaskID(hdr),
		Subject:     msg.Subject(),
		Data:        msg.Data(),
		Header:      hdr,
		Stream:      c.cfg.Stream,
		Consumer:    c.cfg.Durable,
		Sequence:    ack.streamSeq,
		Delivered:   ack.delivered,
		Published:   time.Unix(0, ack.timestamp),
		MaxAttempts: c.cfg.MaxDeliver,
	}
	var timeout time.Duration // a task's own, lower handler timeout
	if hdr != nil {
		if n, err := strconv.Atoi(wire.Value(hdr, jetworker.HeaderMaxAttempts)); err == nil && n > 0 {
			task.MaxAttempts = min(n, c.cfg.MaxDeliver)
		}
		if d, err := time.ParseDuration(wire.Value(hdr, jetworker.HeaderTimeout)); err == nil && d > 0 &&
			(c.cfg.HandlerTimeout < 0 || d < c.cfg.HandlerTimeout) {
			timeout = d
		}
	}

	c.inFlight.Add(1)
	defer c.inFlight.Add(-1)

	// A real deadline, so handlers can pass it on (HTTP calls, SQL) and
	// see context.DeadlineExceeded; shared by tasks starting together.
	began := time.Now()
	ctx := hctx
	var deadline time.Time
	if dl != nil {
		ctx = dl.context(began)
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	deadline, _ = ctx.Deadline()
	c.waits.observe(task, began)
	if c.cfg.Hooks.StartFunc != nil {
		ctx = c.cfg.Hooks.StartFunc(ctx, task)
	}
	var ex *tasks.Execution
	if tr := c.trackerFor(hdr); tr != nil {
		var skip tasks.Skip
		ctx, ex, skip = tr.Begin(ctx, task)
		if skip != tasks.Run {
			c.skip(ctx, msg, task, ex, skip)
			return
		}
	}
	s.start(msg, began, deadline)
	herr := c.call(ctx, task, timeout)
	took := time.Since(began)
	c.prefetch.observe(took)
	if s.stop() {
		ex.End("", herr)
		c.done(ctx, task, Requeued, took, herr)
		return
	}
	if herr == nil {
		c.processed.Add(1)
	} else {
		c.failed.Add(1)
	}
	o := c.settle(ctx, hctx, msg, task, herr)
	ex.End(o.state(), herr)
	c.done(ctx, task, o, took, herr)
}

// skip settles a task its tracker says must not run: a cancelled one ends
// Cancelled (terminated: neither retried nor dead-lettered), one whose
// record says it already ended is acknowledged.
func (c *Consumer) skip(ctx context.Context, msg jetstream.Msg, t *jetworker.Task, ex *tasks.Execution, why tasks.Skip) {
	attrs := []slog.Attr{slog.String(logkey.Subject, t.Subject), slog.String(logkey.TaskID, t.ID), slog.String(logkey.Task, t.Ref())}
	if why == tasks.SkipCancelled {
		if err := msg.Term(); err != nil {
			c.log.LogAttrs(ctx, slog.LevelWarn, "term cancelled task", append(attrs, slog.Any(logkey.Err, err))...)
		}
		ex.End(tasks.Cancelled, tasks.ErrCancelled)
		c.log.LogAttrs(ctx, slog.LevelInfo, "task cancelled before it ran", attrs...)
		c.done(ctx, t, Cancelled, 0, tasks.ErrCancelled)
		return
	}
	if err := c.ack(ctx, msg); err != nil {
		c.log.LogAttrs(ctx, slog.LevelWarn, "ack finished task", append(attrs, slog.Any(logkey.Err, err))...)
	}
	c.log.LogAttrs(ctx, slog.LevelInfo, "task already finished; acknowledged without running it", attrs...)
	c.done(ctx, t, Acked, 0, nil)
}

func (c *Consumer) done(ctx context.Context, t *jetworker.Task, o Outcome, d time.Duration, err error) {
	if c.cfg.Hooks.DoneFunc != nil {
		c.cfg.Hooks.DoneFunc(ctx, t, o, d, err)
	}
}

// call runs the handler, turning a panic into an error. timeout is the
// task's own, when lower than the consumer's.
func (c *Consumer) call(ctx context.Context, t *jetworker.Task, timeout time.Duration) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &jetworker.PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	err = c.h.Handle(ctx, t)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("handler timeout after %s: %w", cmp.Or(timeout, c.cfg.HandlerTimeout), err)
	}
	return err
}
