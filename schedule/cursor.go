package schedule

// The cursor: each entry's last fired slot in the state bucket, written
// revision-checked after its fires, and read back by a new leader.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/bits"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/internal/logkey"
)

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

// record moves the entry's cursor to slot. The write is revision-checked
// and asynchronous; the next record of the entry waits for it and, if it
// failed, redoes it synchronously.
//
// For an entry that fires often, the cursor is written at most every
// [firer.recordEvery] of its stream: a leader that takes over from the
// last written cursor fires again slots the stream's duplicate window then
// drops, so nothing fires twice. Each such entry writes after a time of
// its own between half that and all of it, so that entries that fire
// together do not all write together, and its write waits until the fire
// loop's fires are out ([firer.flushRecords]): cursor writes never delay
// fires. An entry whose stream's window is too short for this writes at
// once, after every fire.
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
	every := f.recordEvery(ctx, stream)
	if every == 0 {
		it.unrecorded = time.Time{}
		f.settleState(ctx, it)
		f.writeState(it, slot)
		return
	}
	it.unrecorded = slot
	if it.dirty || (it.state == nil && !it.stateFailed && !it.failureShown && !it.last.IsZero() &&
		slot.Sub(it.last) < recordAfter(every, it.phase)) {
		return
	}
	it.dirty = true
	f.dirty = append(f.dirty, it)
}

// flushRecords writes the cursors record queued.
func (f *firer) flushRecords(ctx context.Context) {
	for _, it := range f.dirty {
		it.dirty = false
		if slot := it.unrecorded; !slot.IsZero() {
			it.unrecorded = time.Time{}
			f.settleState(ctx, it)
			f.writeState(it, slot)
		}
	}
	clear(f.dirty)
	f.dirty = f.dirty[:0]
}

// recordAfter is how long an entry of the given phase leaves fired slots
// unrecorded when its stream allows every: from every/2 for phase 0 up to
// just under every, in proportion.
func recordAfter(every time.Duration, phase uint32) time.Duration {
	hi, lo := bits.Mul64(uint64(phase), uint64(every/2)) // 96 bits at most
	return every/2 + time.Duration(hi<<32|lo>>32)
}

// phaseOf is a number fixed per entry name, spread over uint32.
func phaseOf(name string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return h.Sum32()
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
	fut, err := f.s.cursors.PublishMsgAsync(msg, jetstream.WithStallWait(f.s.cfg.FireTimeout))
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
