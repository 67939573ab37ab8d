package consumer

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// retuneEvery is how often the prefetch controller looks at handler
// durations once running.
const retuneEvery = 100 * time.Millisecond

// firstRetune is the controller's first look. It doubles on each look up
// to retuneEvery, so fast handlers get a deep prefetch within milliseconds
// of start instead of spending a tenth of a second on a shallow one.
const firstRetune = 5 * time.Millisecond

// minSamples is how many finished handler calls a window needs before the
// controller deepens the prefetch. Shrinking needs no minimum.
const minSamples = 16

// prefetchFor returns how many messages to request ahead of free handlers
// so that a message waiting in the local buffer starts within a quarter of
// ackWait: the buffer of p messages drains at concurrency/d messages per
// second. The result is in [1, maxP].
func prefetchFor(concurrency int, ackWait, d time.Duration, maxP int) int {
	if d <= 0 {
		return maxP
	}
	p := int(float64(concurrency) * float64(ackWait/4) / float64(d))
	return min(max(p, 1), maxP)
}

// prefetch adapts the pull's PullMaxMessages to the handlers' speed:
// deep for fast handlers (throughput), shallow for slow ones, because only
// running handlers' messages get heartbeats and a buffered message must not
// sit until its AckWait runs out. Changing the depth means draining the
// current Consume and starting a new one. When it deepens, the new one
// starts at once while the old one hands out what it buffered: nats.go
// looks at a draining subscription only every 100 ms, a stall tasks would
// otherwise wait through. When it shrinks, the new one starts after the
// old one has closed, and dispatch takes the drained messages into its own
// hands and keeps them alive with InProgress until workers are free (see
// [Consumer.deliverHeld]).
//
// It deepens on the smoothed duration of finished handlers (at least
// minSamples per window) and shrinks at once when finished handlers, or
// the longest-running one, show the current depth is unsafe.
type prefetch struct {
	c     *Consumer
	slots []*slot

	durSum   atomic.Int64 // handler nanoseconds in the current window
	durCount atomic.Int64

	mu        sync.Mutex
	cc        jetstream.ConsumeContext
	deepened  chan struct{} // closed when cc is drained to deepen
	current   int
	next      int
	est       time.Duration // smoothed handler duration; 0 until measured
	rotating  bool
	shrinking bool
	stopped   bool
}

// observe records one handler run.
func (p *prefetch) observe(d time.Duration) {
	p.durSum.Add(int64(d))
	p.durCount.Add(1)
}

// open starts consuming with the current prefetch and registers it, or
// returns nil if the controller has stopped. deepened is closed when the
// controller drains cc to start a deeper Consume.
func (p *prefetch) open(cons jetstream.Consumer, handle jetstream.MessageHandler, fail jetstream.ConsumeErrHandlerFunc) (cc jetstream.ConsumeContext, deepened <-chan struct{}, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil, nil, nil
	}
	p.current = p.next
	p.rotating, p.shrinking = false, false
	cc, err = cons.Consume(handle, jetstream.PullMaxMessages(p.current), jetstream.PullExpiry(p.c.cfg.PullExpiry), jetstream.ConsumeErrHandler(fail))
	if err != nil {
		return nil, nil, err
	}
	p.cc, p.deepened = cc, make(chan struct{})
	return cc, p.deepened, nil
}

// state reports whether the current Consume is being drained for a retune
// and whether that retune shrinks the prefetch.
func (p *prefetch) state() (rotating, shrinking bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rotating && !p.stopped, p.shrinking && !p.stopped
}

// run retunes every retuneEvery until ctx ends, then drains the
// current Consume and stops.
func (p *prefetch) run(ctx context.Context) {
	every := firstRetune
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.mu.Lock()
			p.stopped = true
			if p.cc != nil {
				p.cc.Drain()
			}
			p.mu.Unlock()
			return
		case now := <-t.C:
			p.retune(ctx, now)
			every = min(2*every, retuneEvery)
			t.Reset(every)
		}
	}
}

func (p *prefetch) retune(ctx context.Context, now time.Time) {
	n := p.durCount.Swap(0)
	sum := p.durSum.Swap(0)
	var avg time.Duration
	if n > 0 {
		avg = time.Duration(sum / n)
	}
	var longest time.Duration
	for _, s := range p.slots {
		longest = max(longest, s.running(now))
	}
	cfg := p.c.cfg

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rotating || p.stopped || p.cc == nil {
		return
	}
	if n >= minSamples {
		if p.est == 0 {
			p.est = avg
		} else {
			p.est = (p.est + avg) / 2
		}
	}
	// Shrink at once when what we see now makes the depth unsafe.
	if worst := max(avg, longest); worst > 0 {
		if safe := prefetchFor(cfg.Concurrency, cfg.AckWait, worst, cfg.PullMaxMessages); 2*safe <= p.current {
			p.est = max(p.est, worst)
			p.rotate(ctx, safe, true)
			return
		}
	}
	if n < minSamples || p.est == 0 {
		return
	}
	if target := prefetchFor(cfg.Concurrency, cfg.AckWait, p.est, cfg.PullMaxMessages); target >= 2*p.current {
		p.rotate(ctx, target, false)
	}
}

// rotate drains the current Consume so pull starts another with depth to.
// p.mu is held.
func (p *prefetch) rotate(ctx context.Context, to int, shrinking bool) {
	p.c.log.LogAttrs(ctx, slog.LevelDebug, "prefetch retuned",
		slog.Int("from", p.current), slog.Int("to", to), slog.Duration("handler_avg", p.est))
	p.next = to
	p.rotating, p.shrinking = true, shrinking
	p.cc.Drain()
	if !shrinking {
		close(p.deepened)
	}
}
