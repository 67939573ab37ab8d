package schedule

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/textproto"
	"sync"
	"sync/atomic"
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

	flights  map[*nats.Msg]flight // fires sent, by message, until their outcome
	outcomes []outcome            // the batch of outcomes being finished
	spare    []*nats.Msg          // acknowledged fires' messages, for reuse
	done     []done               // retired fires, to be finished
	at       *slotText            // the last slot's text
	dirty    []*item              // items whose cursor is to be written after the fires
}

func newFirer(s *Scheduler, l *lease, state jetstream.KeyValue) *firer {
	return &firer{
		s: s, lease: l, state: state, items: map[string]*item{}, windows: map[string]time.Duration{},
		flights: make(map[*nats.Msg]flight, s.cfg.MaxConcurrentFires),
		spare:   make([]*nats.Msg, 0, s.cfg.MaxConcurrentFires),
	}
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
	return min(max(f.heap.next().due.Sub(f.s.cfg.NowFunc()), 0), maxWait)
}

// apply records an entry change from the watch.
func (f *firer) apply(ctx context.Context, kve jetstream.KeyValueEntry) {
	name := kve.Key()
	old := f.items[name]
	if old != nil {
		f.heap.remove(old)
		old.gone = true
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
	it := &item{c: comp, idx: -1, header: fireHeader(comp.Entry), phase: phaseOf(name)}
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
	id   string    // the fire's message ID
	sent time.Time // when the loop sent it
}

// outcome is the PubAck or the error of one fire, as the publish
// callbacks of the scheduler's fire context report it, and when.
type outcome struct {
	msg *nats.Msg
	ack *jetstream.PubAck
	err error
	at  time.Time // Config.NowFunc when the outcome came
}

// acks queues fire outcomes for the fire loop, which takes them in
// batches: the loop is woken once a batch has come in, or the last fire
// in flight is done, rather than once per fire. It is safe for concurrent
// use.
type acks struct {
	batch    int          // outcomes that wake the loop
	inflight atomic.Int64 // fires sent whose outcome has not come yet

	mu    sync.Mutex
	queue []outcome
	ready chan struct{} // holds a token when the loop should take the queue
}

func newAcks(batch int) *acks { return &acks{batch: batch, ready: make(chan struct{}, 1)} }

// sent counts a fire about to be published; unsent takes it back when the
// publish fails at once (no outcome will come).
func (a *acks) sent()   { a.inflight.Add(1) }
func (a *acks) unsent() { a.inflight.Add(-1) }

// add queues o; nats.go calls it from its reply handler and timers.
func (a *acks) add(o outcome) {
	a.mu.Lock()
	a.queue = append(a.queue, o)
	n := len(a.queue)
	a.mu.Unlock()
	if left := a.inflight.Add(-1); left <= 0 || n >= a.batch {
		select {
		case a.ready <- struct{}{}:
		default:
		}
	}
}

// take returns the queued outcomes and queues into spare (emptied) from
// now on, so that two buffers take turns.
func (a *acks) take(spare []outcome) []outcome {
	clear(spare)
	a.mu.Lock()
	defer a.mu.Unlock()
	q := a.queue
	a.queue = spare[:0]
	return q
}

// fireDue fires every due slot, keeping up to MaxConcurrentFires publishes
// in flight (it sends more as acks come back, with no pause between
// batches), and requeues each item for its next slot (or, when the fire
// failed, for a retry of the same slot). It stops sending as soon as the
// lease is no longer trusted. Sending comes first: when acks come in, it
// refills the window before it reports and requeues their fires, and the
// cursor writes the fires call for are sent once the fires are out.
func (f *firer) fireDue(ctx context.Context) {
	// Every fire's outcome comes within FireTimeout (nats.go times out the
	// PubAck); the guard catches one that never does.
	guard := time.NewTimer(f.s.cfg.FireTimeout + time.Second)
	defer guard.Stop()
	lost := false
	for {
		now := f.s.cfg.NowFunc()
		for !lost && len(f.flights) < f.s.cfg.MaxConcurrentFires && len(f.heap) > 0 && !f.heap.next().due.After(now) {
			if ctx.Err() != nil || !f.lease.trusted() {
				lost = true // re-checked right before each publish
				break
			}
			f.send(heap.Pop(&f.heap).(*item), now)
		}
		if len(f.done) > 0 {
			f.finishDone(ctx)
			continue // a requeued item may be due already
		}
		if len(f.flights) == 0 {
			break
		}
		guard.Reset(f.s.cfg.FireTimeout + time.Second)
		select {
		case <-f.s.acks.ready:
			f.retire()
		case <-guard.C:
			err := fmt.Errorf("no PubAck within %s", f.s.cfg.FireTimeout)
			now := f.s.cfg.NowFunc()
			for msg, fl := range f.flights {
				delete(f.flights, msg)
				f.done = append(f.done, done{flight: fl, err: err, at: now})
			}
		}
	}
	f.flushRecords(ctx)
	if lost || (ctx.Err() == nil && !f.lease.trusted()) {
		// Lost (or can no longer prove) the lease: the next term rebuilds
		// the heap from the recorded state.
		f.term = 0
		f.heap.reset(f.items)
	}
}

// send publishes the fire of it's slot.
func (f *firer) send(it *item, now time.Time) {
	at := f.slotText(it.slot)
	id := it.c.Name + "@" + at.text
	msg := f.fireMsg(it, id, at.values)
	f.s.acks.sent()
	if _, err := f.s.fires.PublishMsgAsync(msg); err != nil {
		f.s.acks.unsent()
		f.done = append(f.done, done{flight: flight{it: it, id: id, sent: now}, err: err, at: now})
		return
	}
	f.flights[msg] = flight{it: it, id: id, sent: now}
}

// done is a fire whose outcome is in, to be finished.
type done struct {
	flight
	ack *jetstream.PubAck
	err error
	at  time.Time
}

// retire moves the fires whose outcomes are queued out of the window, to
// be finished; it is all the fire loop does with them before it sends
// more.
func (f *firer) retire() {
	f.outcomes = f.s.acks.take(f.outcomes)
	for _, o := range f.outcomes {
		fl, ok := f.flights[o.msg]
		if !ok {
			continue // given up on by the guard
		}
		delete(f.flights, o.msg)
		err := o.err
		if err != nil && (errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)) {
			err = fmt.Errorf("%w: %w", errNoStream, err)
		}
		f.done = append(f.done, done{flight: fl, ack: o.ack, err: err, at: o.at})
		if o.ack != nil && len(f.spare) < cap(f.spare) {
			// Acknowledged: nats.go is done with the message, so the next
			// fire may reuse it and its header map.
			f.spare = append(f.spare, o.msg)
		}
	}
}

// finishDone finishes the retired fires.
func (f *firer) finishDone(ctx context.Context) {
	for i := range f.done {
		d := &f.done[i]
		f.finish(ctx, d.flight, d.ack, d.err, d.at)
		f.done[i] = done{}
	}
	f.done = f.done[:0]
}

// fireMsg builds the message of one fire of it, reusing an acknowledged
// fire's message when there is one.
func (f *firer) fireMsg(it *item, id string, at []string) *nats.Msg {
	if n := len(f.spare); n > 0 {
		m := f.spare[n-1]
		f.spare[n-1] = nil
		f.spare = f.spare[:n-1]
		h := m.Header
		ids := h[jetworker.HeaderMsgID][:1] // the acknowledged fire's
		clear(h)
		ids[0] = id
		fillFireHeader(h, it.header, ids, at)
		*m = nats.Msg{Subject: it.c.Subject, Data: it.c.Payload, Header: h}
		return m
	}
	return fireMsg(it.c.Entry, it.header, id, at)
}

// finish handles one fire's outcome, known at now: it reports it, records
// the slot or the failure, and requeues the item.
func (f *firer) finish(ctx context.Context, fl flight, ack *jetstream.PubAck, err error, now time.Time) {
	it := fl.it
	f.report(ctx, it, fl.id, ack, fl.sent, err, now)
	if ack != nil {
		f.record(ctx, it, it.slot, ack.Stream)
	} else {
		f.noteFailure(ctx, it, err)
	}
	if it.gone || ctx.Err() != nil {
		return // deleted or replaced meanwhile, or stopping
	}
	if err == nil {
		f.schedule(it, it.c.next(it.slot))
		return
	}
	it.failures++
	it.due = now.Add(retryAfter(err, it.failures))
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

// report logs and hooks one fire attempt, whose outcome came at now.
func (f *firer) report(ctx context.Context, it *item, id string, ack *jetstream.PubAck, sent time.Time, err error, now time.Time) {
	name, slot := it.c.Name, it.slot
	fr := Fire{Schedule: name, Slot: slot, ID: id, Lag: now.Sub(slot)}
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

// slotText is a slot as fires carry it (RFC 3339, UTC): in the message ID
// and as the Jetworker-Fire-Time header. The fires of one slot share it.
type slotText struct {
	slot   time.Time
	text   string
	values []string // []string{text}, the header's value; never changed
}

// slotText returns the text of slot, formatting it only when it differs
// from the last slot's: the entries due together share their slot.
func (f *firer) slotText(slot time.Time) *slotText {
	if f.at == nil || !f.at.slot.Equal(slot) {
		text := slot.UTC().Format(time.RFC3339)
		f.at = &slotText{slot: slot, text: text, values: []string{text}}
	}
	return f.at
}

// headerField is one header of an entry's fires: a canonical name and
// its values, shared by the messages of the fires and never changed.
type headerField struct {
	name   string
	values []string
}

// fireHeader returns the headers the fires of e share: its own, under
// canonical names (as nats.Header.Add writes them), and
// Jetworker-Schedule.
func fireHeader(e Entry) []headerField {
	h := make(nats.Header, len(e.Header)+1)
	for k, vs := range e.Header {
		k = textproto.CanonicalMIMEHeaderKey(k)
		h[k] = append(h[k], vs...)
	}
	h[jetworker.HeaderSchedule] = []string{e.Name}
	fields := make([]headerField, 0, len(h))
	for k, vs := range h {
		fields = append(fields, headerField{name: k, values: vs})
	}
	return fields
}

// fireMsg builds the message of one fire of e: base is [fireHeader] of
// e, id the message ID, at the fire time's header value. It neither
// canonicalizes names again nor copies values: a scheduler builds
// thousands a second.
func fireMsg(e Entry, base []headerField, id string, at []string) *nats.Msg {
	h := make(nats.Header, len(base)+2)
	fillFireHeader(h, base, []string{id}, at)
	return &nats.Msg{Subject: e.Subject, Data: e.Payload, Header: h}
}

// fillFireHeader sets a fire's headers in h: ids is the message ID's
// value.
func fillFireHeader(h nats.Header, base []headerField, ids, at []string) {
	for _, f := range base {
		h[f.name] = f.values
	}
	h[jetworker.HeaderMsgID] = ids
	h[jetworker.HeaderFireTime] = at
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
