package schedule

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/textproto"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/internal/logkey"
	"github.com/jetworker/jetworker/internal/natsconn"
)

// firer owns the entries, the slot heap and one timer. Only the loop's
// goroutine touches it.
type firer struct {
	s     *Scheduler
	lease *lease
	state jetstream.KeyValue
	items map[string]*item
	heap  slotHeap
	term  uint64 // the leadership term the heap was built for; 0 = not leading
	// windows caches recordEvery per stream for the term.
	windows map[string]time.Duration
	dirty   []*item // items whose cursor is to be written after the fires
}

func newFirer(s *Scheduler, l *lease, state jetstream.KeyValue) *firer {
	return &firer{s: s, lease: l, state: state, items: map[string]*item{}, windows: map[string]time.Duration{}}
}

// loop applies entry changes from the watch, follows leadership and fires
// due slots until ctx ends (nil), the connection closes or the watch ends
// (an error).
func (f *firer) loop(ctx context.Context, w jetstream.KeyWatcher, changed <-chan struct{}, campaignReady <-chan struct{}, closed <-chan struct{}) error {
	timer := time.NewTimer(maxWait)
	defer timer.Stop()
	loaded := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-closed:
			return natsconn.Error("schedule")
		case kve, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil // the watch ends with ctx
				}
				if natsconn.ClosedWithin(f.s.js.Conn(), time.Second) {
					return natsconn.Error("schedule")
				}
				return fmt.Errorf("schedule: watch of %q ended", SchedulesBucket)
			}
			if kve == nil {
				if !loaded {
					loaded = true
					select {
					case <-campaignReady:
					case <-ctx.Done():
						return nil
					}
					close(f.s.ready)
				}
			} else {
				f.apply(ctx, kve)
			}
			if !loaded {
				continue // take the snapshot in one go
			}
		case <-changed:
		case <-timer.C:
		}
		if !loaded {
			continue
		}
		f.checkTerm(ctx)
		if f.term != 0 {
			f.fireDue(ctx)
		}
		timer.Reset(f.wait())
	}
}

// wait returns how long to sleep until the next due slot.
func (f *firer) wait() time.Duration {
	if f.term == 0 || len(f.heap) == 0 {
		return maxWait
	}
	return min(max(f.heap[0].due.Sub(f.s.cfg.NowFunc()), 0), maxWait)
}

// apply records an entry change from the watch.
func (f *firer) apply(ctx context.Context, kve jetstream.KeyValueEntry) {
	name := kve.Key()
	old := f.items[name]
	if old != nil {
		f.heap.remove(old)
	}
	if kve.Operation() != jetstream.KeyValuePut {
		delete(f.items, name)
		return
	}
	e, err := decodeEntry(kve.Value())
	var comp compiled
	if err == nil {
		comp, err = e.compile()
	}
	if err != nil {
		delete(f.items, name)
		f.s.log.LogAttrs(ctx, slog.LevelError, "invalid entry in bucket; not firing it",
			slog.String(logkey.Schedule, name), slog.Any(logkey.Err, err))
		return
	}
	it := &item{c: comp, idx: -1, phase: phaseOf(name)}
	if old != nil {
		it.last, it.stateRev = old.last, old.stateRev
		it.state, it.stateSlot, it.stateFailed, it.unrecorded, it.failureShown = old.state, old.stateSlot, old.stateFailed, old.unrecorded, old.failureShown
	}
	f.items[name] = it
	if f.term != 0 {
		// An edit takes effect from the next slot after now.
		f.schedule(it, comp.next(laterOf(f.s.cfg.NowFunc(), it.last)))
	}
}

// schedule queues it for slot (if any and the entry is not paused).
func (f *firer) schedule(it *item, slot time.Time) {
	it.slot, it.failures = slot, 0
	if slot.IsZero() || it.c.Paused {
		return
	}
	it.due = slot.Add(it.c.jitter(slot))
	heap.Push(&f.heap, it)
}

// checkTerm follows leadership: on losing it, drop the heap; on a new
// term, load the state and apply each entry's catch-up policy.
func (f *firer) checkTerm(ctx context.Context) {
	lead, term := f.lease.leading()
	if !lead {
		f.term = 0
		f.heap.reset(f.items)
		return
	}
	if term == f.term {
		return
	}
	f.heap.reset(f.items)
	f.drain()
	clear(f.windows)
	if err := f.loadState(ctx); err != nil {
		if ctx.Err() != nil {
			return
		}
		// Without the cursors catch-up would guess; try again on the next
		// tick, firing nothing meanwhile.
		f.s.log.LogAttrs(ctx, slog.LevelWarn, "load schedule state", slog.Any(logkey.Err, err))
		f.term = 0
		return
	}
	f.term = term
	now := f.s.cfg.NowFunc()
	for _, it := range f.items {
		f.schedule(it, catchUpSlot(it.c, it.last, now))
	}
}

// flight is a fire awaiting its PubAck.
type flight struct {
	it   *item
	id   string // the fire's message ID
	fut  jetstream.PubAckFuture
	sent time.Time
}

// fireDue fires every due slot, keeping up to MaxConcurrentFires publishes
// in flight (it sends more as acks come back, with no pause between
// batches), and requeues each item for its next slot (or, when the fire
// failed, for a retry of the same slot). It stops sending as soon as the
// lease is no longer trusted. The cursor writes the fires call for are
// sent once the fires are out.
func (f *firer) fireDue(ctx context.Context) {
	var inflight []flight
	timer := time.NewTimer(f.s.cfg.FireTimeout)
	defer timer.Stop()
	lost := false
	for {
		now := f.s.cfg.NowFunc()
		for !lost && len(inflight) < f.s.cfg.MaxConcurrentFires && len(f.heap) > 0 && !f.heap[0].due.After(now) {
			if ctx.Err() != nil || !f.lease.trusted() {
				lost = true // re-checked right before each publish
				break
			}
			it := heap.Pop(&f.heap).(*item)
			id := fireID(it.c.Name, it.slot)
			fut, err := f.s.async.PublishMsgAsync(fireMsg(it.c.Entry, id, it.slot))
			if err != nil {
				f.finish(ctx, flight{it: it, id: id, sent: now}, nil, err)
				continue
			}
			inflight = append(inflight, flight{it: it, id: id, fut: fut, sent: now})
		}
		if len(inflight) == 0 {
			break
		}
		fl := inflight[0]
		inflight = inflight[1:]
		var (
			ack *jetstream.PubAck
			err error
		)
		select {
		case ack = <-fl.fut.Ok():
		case err = <-fl.fut.Err():
		default:
			timer.Reset(max(fl.sent.Add(f.s.cfg.FireTimeout).Sub(f.s.cfg.NowFunc()), 0))
			select {
			case ack = <-fl.fut.Ok():
			case err = <-fl.fut.Err():
			case <-timer.C:
				err = fmt.Errorf("no PubAck within %s", f.s.cfg.FireTimeout)
			}
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		if err != nil && (errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)) {
			err = fmt.Errorf("%w: %w", errNoStream, err)
		}
		f.finish(ctx, fl, ack, err)
	}
	f.flushRecords(ctx)
	if lost || (ctx.Err() == nil && !f.lease.trusted()) {
		// Lost (or can no longer prove) the lease: the next term rebuilds
		// the heap from the recorded state.
		f.term = 0
		f.heap.reset(f.items)
	}
}

// finish handles one fire's outcome: it reports it, records the slot or
// the failure, and requeues the item.
func (f *firer) finish(ctx context.Context, fl flight, ack *jetstream.PubAck, err error) {
	it := fl.it
	f.report(ctx, it, fl.id, ack, fl.sent, err)
	if ack != nil {
		f.record(ctx, it, it.slot, ack.Stream)
	} else {
		f.noteFailure(ctx, it, err)
	}
	if f.items[it.c.Name] != it || ctx.Err() != nil {
		return // deleted or replaced meanwhile, or stopping
	}
	if err == nil {
		f.schedule(it, it.c.next(it.slot))
		return
	}
	it.failures++
	it.due = f.s.cfg.NowFunc().Add(retryAfter(err, it.failures))
	heap.Push(&f.heap, it)
}

// retryAfter is how long a failed fire waits: a second, doubling up to a
// minute while no stream captures the subject (a fix takes a person, not
// a retry).
func retryAfter(err error, failures int) time.Duration {
	if !errors.Is(err, errNoStream) {
		return retryDelay
	}
	d := retryDelay
	for i := 1; i < failures && d < maxRetryDelay; i++ {
		d *= 2
	}
	return min(d, maxRetryDelay)
}

// errNoStream marks a fire whose subject no stream captures.
var errNoStream = errors.New("no stream captures the subject")

// report logs and hooks one fire attempt.
func (f *firer) report(ctx context.Context, it *item, id string, ack *jetstream.PubAck, sent time.Time, err error) {
	name, slot := it.c.Name, it.slot
	fr := Fire{Schedule: name, Slot: slot, ID: id, Lag: f.s.cfg.NowFunc().Sub(slot)}
	if err != nil {
		fr.Err = fmt.Errorf("fire %q slot %s: publish to %q: %w", name, slot.UTC().Format(time.RFC3339), it.c.Subject, err)
		f.s.log.LogAttrs(ctx, slog.LevelWarn, "fire", slog.String(logkey.Schedule, name),
			slog.Time(logkey.Slot, slot), slog.Int("failures", it.failures+1), slog.Any(logkey.Err, fr.Err))
	} else {
		fr.Duplicate = ack.Duplicate
		if f.s.log.Enabled(ctx, slog.LevelDebug) {
			f.s.log.LogAttrs(ctx, slog.LevelDebug, "fired", slog.String(logkey.Schedule, name),
				slog.Time(logkey.Slot, slot), slog.Duration(logkey.Delay, sent.Sub(slot)), slog.Uint64(logkey.Seq, ack.Sequence))
		}
	}
	f.s.cfg.Hooks.fired(fr)
}

// fireMsg builds the message of one fire of e. It sets the headers
// without canonicalizing their names (ours are canonical already): a
// scheduler builds thousands a second.
func fireMsg(e Entry, id string, slot time.Time) *nats.Msg {
	h := make(nats.Header, len(e.Header)+3)
	for k, vs := range e.Header {
		k = textproto.CanonicalMIMEHeaderKey(k) // as nats.Header.Add does
		h[k] = append(h[k], vs...)
	}
	h[jetworker.HeaderMsgID] = []string{id}
	h[jetworker.HeaderSchedule] = []string{e.Name}
	h[jetworker.HeaderFireTime] = []string{slot.UTC().Format(time.RFC3339)}
	return &nats.Msg{Subject: e.Subject, Data: e.Payload, Header: h}
}

func fireID(name string, slot time.Time) string {
	return name + "@" + slot.UTC().Format(time.RFC3339)
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
