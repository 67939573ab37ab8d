package schedule

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/textproto"
	"strconv"
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
	it := &item{c: comp, idx: -1}
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

// loadState reads every entry's last fired slot.
func (f *firer) loadState(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, f.s.cfg.FireTimeout)
	defer cancel()
	w, err := f.state.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("watch %q: %w", StateBucket, err)
	}
	defer func() { _ = w.Stop() }()
	for _, it := range f.items {
		it.last, it.stateRev, it.failureShown = time.Time{}, 0, false
	}
	for {
		select {
		case kve := <-w.Updates():
			if kve == nil {
				return nil
			}
			it := f.items[kve.Key()]
			if it == nil {
				continue
			}
			var st State
			if err := json.Unmarshal(kve.Value(), &st); err != nil {
				continue // an unreadable cursor counts as none
			}
			it.last, it.stateRev, it.failureShown = st.LastSlot, kve.Revision(), st.Error != ""
		case <-ctx.Done():
			return fmt.Errorf("read %q: %w", StateBucket, ctx.Err())
		}
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
// lease is no longer trusted.
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

// record moves the entry's cursor to slot. The write is revision-checked
// and asynchronous; the next record of the entry waits for it and, if it
// failed, redoes it synchronously. For an entry that fires often, the
// cursor is written at most every [firer.recordEvery] of its stream: a
// leader that takes over from the last written cursor fires again slots
// the stream's duplicate window then drops, so nothing fires twice.
func (f *firer) record(ctx context.Context, it *item, slot time.Time, stream string) {
	if it.state != nil { // take the last write's result if it is in
		select {
		case ack := <-it.state.Ok():
			it.last, it.stateRev, it.state = it.stateSlot, ack.Sequence, nil
		case <-it.state.Err():
			it.stateFailed, it.state = true, nil
		default:
		}
	}
	if every := f.recordEvery(ctx, stream); every > 0 && it.state == nil && !it.stateFailed &&
		!it.failureShown && !it.last.IsZero() && slot.Sub(it.last) < every {
		it.unrecorded = slot
		return
	}
	it.unrecorded = time.Time{}
	f.settleState(ctx, it)
	f.writeState(it, slot)
}

// writeState starts the revision-checked write of slot as the entry's
// cursor; no write may be in flight.
func (f *firer) writeState(it *item, slot time.Time) {
	data, err := json.Marshal(State{LastSlot: slot.UTC()})
	if err != nil {
		return
	}
	msg := nats.NewMsg("$KV." + StateBucket + "." + it.c.Name)
	msg.Data = data
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(it.stateRev, 10))
	// The write carries no error: once it (or its synchronous redo) lands,
	// the state no longer shows a failure.
	it.failureShown = false
	fut, err := f.s.async.PublishMsgAsync(msg)
	if err != nil {
		it.stateFailed, it.stateSlot = true, slot
		return
	}
	it.state, it.stateSlot = fut, slot
}

// maxRecordEvery caps how long a fired slot may go unrecorded.
const maxRecordEvery = 30 * time.Second

// recordEvery is how long fired slots of an entry on stream may go
// unrecorded: half of what the stream's duplicate window leaves after a
// failover (two lease TTLs), at most 30s; 0 (record every fire) when the
// window is too short or unknown. Stream windows are read once per term.
func (f *firer) recordEvery(ctx context.Context, stream string) time.Duration {
	if d, ok := f.windows[stream]; ok {
		return d
	}
	var every time.Duration
	rctx, cancel := context.WithTimeout(ctx, f.s.cfg.FireTimeout)
	st, err := f.s.js.Stream(rctx, stream)
	cancel()
	if err == nil {
		every = min((st.CachedInfo().Config.Duplicates-2*f.s.cfg.LeaseTTL)/2, maxRecordEvery)
		if every < time.Second {
			every = 0
		}
	}
	f.windows[stream] = every
	return every
}

// settleState waits for the entry's state write in flight and handles its
// result.
func (f *firer) settleState(ctx context.Context, it *item) {
	if it.state != nil {
		select {
		case ack := <-it.state.Ok():
			it.last, it.stateRev = it.stateSlot, ack.Sequence
		case <-it.state.Err():
			it.stateFailed = true
		case <-time.After(f.s.cfg.FireTimeout):
			it.stateFailed = true
		}
		it.state = nil
	}
	if it.stateFailed {
		it.stateFailed = false
		octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.s.cfg.FireTimeout)
		defer cancel()
		if err := f.recordSync(octx, it, State{LastSlot: it.stateSlot.UTC()}); err != nil {
			// Published but not recorded: a later leader may fire the slot
			// again, which the stream drops as a duplicate.
			f.s.log.LogAttrs(ctx, slog.LevelWarn, "record fired slot", slog.String(logkey.Schedule, it.c.Name),
				slog.Time(logkey.Slot, it.stateSlot), slog.Any(logkey.Err, err))
		}
	}
}

// drain writes the fired slots not recorded yet and settles every state
// write in flight.
func (f *firer) drain() {
	ctx := context.Background()
	for _, it := range f.items {
		if !it.unrecorded.IsZero() {
			slot := it.unrecorded
			it.unrecorded = time.Time{}
			f.settleState(ctx, it)
			f.writeState(it, slot)
		}
	}
	for _, it := range f.items {
		if it.state != nil || it.stateFailed {
			f.settleState(ctx, it)
		}
	}
}

// noteFailure records a failed fire on the entry's state, so tools show it
// ("no stream captures tasks.x") instead of the schedule silently retrying.
// It keeps the cursor where it is.
func (f *firer) noteFailure(ctx context.Context, it *item, err error) {
	if it.failures > 0 && it.failures%10 != 0 {
		return // recorded already; refresh it now and then
	}
	f.settleState(ctx, it)
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.s.cfg.FireTimeout)
	defer cancel()
	st := State{LastSlot: it.last.UTC(), Error: err.Error(), ErrorAt: f.s.cfg.NowFunc().UTC(), Failures: it.failures + 1}
	if werr := f.recordSync(octx, it, st); werr != nil {
		f.s.log.LogAttrs(ctx, slog.LevelWarn, "record failed fire", slog.String(logkey.Schedule, it.c.Name), slog.Any(logkey.Err, werr))
		return
	}
	it.failureShown = true
}

// recordSync writes st with a revision check, keeping a cursor already at
// or past st.LastSlot (written by another leader).
func (f *firer) recordSync(ctx context.Context, it *item, st State) error {
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	for range 3 {
		var rev uint64
		if it.stateRev == 0 {
			rev, err = f.state.Create(ctx, it.c.Name, data)
		} else {
			rev, err = f.state.Update(ctx, it.c.Name, data, it.stateRev)
		}
		if err == nil {
			it.last, it.stateRev = st.LastSlot, rev
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("write state of %q: %w", it.c.Name, err)
		}
		// Someone else wrote it: re-read and decide.
		kve, gerr := f.state.Get(ctx, it.c.Name)
		switch {
		case errors.Is(gerr, jetstream.ErrKeyNotFound), errors.Is(gerr, jetstream.ErrKeyDeleted):
			it.stateRev = 0
			continue
		case gerr != nil:
			return fmt.Errorf("read state of %q: %w", it.c.Name, gerr)
		}
		var cur State
		if json.Unmarshal(kve.Value(), &cur) == nil && cur.LastSlot.After(st.LastSlot) {
			it.last, it.stateRev = cur.LastSlot, kve.Revision()
			return nil
		}
		it.stateRev = kve.Revision()
	}
	return fmt.Errorf("write state of %q: %w", it.c.Name, err)
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
