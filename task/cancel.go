package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/internal/subject"
)

// cancelledBeforeRun is the error a task cancelled before it ran records.
const cancelledBeforeRun = "cancelled before it ran"

// Cancel cancels the tracked task with ID id and returns its record as
// Cancel left it:
//
//   - scheduled (delayed): its schedule message is removed, so it is never
//     released; the record is Cancelled;
//   - pending: its message is removed from the stream (when its location
//     is recorded) unless a consumer has handed it to a worker already;
//     the record is Cancelled;
//   - active, or handed to a worker (a record still saying pending or
//     retrying while the worker's start is not written yet, or a retrying
//     task waiting for its next delivery): the cancel is requested and
//     the worker ends the task Cancelled, neither retried nor
//     dead-lettered; a running handler's context is cancelled within a
//     second on whichever worker runs it (workers watch cancel requests),
//     a task waiting for a retry ends at its next delivery without
//     running.
//
// Cancel never writes "cancelled before it ran" for a task a handler may
// be running. In every case a cancel request is recorded, so a worker that
// receives the task later (a message already delivered, a released delayed
// task) does not run it. A task that finishes before the request reaches
// it ends as it finished. Cancel returns an error wrapping [ErrFinished]
// for a task that already ended, and [ErrNotFound] for an unknown ID (a
// running untracked task with that ID is still told to stop).
func (s *Store) Cancel(ctx context.Context, id string) (Info, error) {
	cur, err := s.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		_ = s.requestCancel(ctx, id)
		return Info{}, err
	}
	if err != nil {
		return Info{}, err
	}
	if cur.State.Terminal() {
		return cur, fmt.Errorf("%w: %q is %s", ErrFinished, id, cur.State)
	}
	now := s.cfg.NowFunc().UTC()
	if cur, err = s.record(ctx, id, false, Info{}, event{cancel: true, at: now}); err != nil {
		return cur, err
	}
	if err := s.requestCancel(ctx, id); err != nil {
		return cur, err
	}
	if cur.State == Active || cur.Stream == "" {
		return cur, nil // the worker (or a later one) ends it
	}
	w, err := s.withdraw(ctx, cur.Stream, cur.Sequence)
	if err != nil || !w.removed || w.delivered {
		return cur, err // a worker has it, or had it: it ends it
	}
	cur, err = s.record(ctx, id, false, Info{}, event{state: Cancelled, attempt: cur.Attempt, generation: cur.Generation, at: now, err: cancelledBeforeRun})
	if err != nil {
		return cur, err
	}
	if cur.Unique != "" {
		_ = s.Unlock(ctx, id)
	}
	return cur, nil
}

// CancelRef cancels the task stored at stream and seq, tracked or not: a
// running task with that identity is told to stop, and a task no worker
// has received yet is removed from its stream (it never runs), its record
// (if it is tracked) written Cancelled and its uniqueness lock (if it has
// one) released. A task a worker has received already (running, or
// waiting for a retry) is left to that worker, which ends it Cancelled.
// It reports whether the message was removed.
func (s *Store) CancelRef(ctx context.Context, stream string, seq uint64) (removed bool, err error) {
	ref := jetworker.Ref(stream, seq)
	if err := s.requestCancel(ctx, ref); err != nil {
		return false, err
	}
	w, err := s.withdraw(ctx, stream, seq)
	if err != nil || w.header == nil {
		return w.removed, err
	}
	id := jetworker.TaskID(w.header)
	now := s.cfg.NowFunc().UTC()
	var cur Info
	tracked := w.header.Get(jetworker.HeaderTrack) != ""
	if tracked {
		if id == "" {
			id = ref
		}
		cur, err = s.record(ctx, id, false, Info{}, event{cancel: true, at: now})
		if err != nil && !errors.Is(err, ErrNotFound) {
			return w.removed, err
		}
	}
	if !w.removed || w.delivered {
		return w.removed, nil // a worker has it, or had it: it ends it
	}
	if tracked && err == nil && !cur.State.Terminal() {
		ev := event{state: Cancelled, attempt: cur.Attempt, generation: cur.Generation, at: now, err: cancelledBeforeRun}
		if _, err := s.record(ctx, id, false, Info{}, ev); err != nil {
			return true, err
		}
	}
	if _, ok := parseUnique(w.header.Get(jetworker.HeaderUnique)); ok && jetworker.TaskID(w.header) != "" {
		if err := s.Unlock(ctx, jetworker.TaskID(w.header)); err != nil {
			return true, err
		}
	}
	return true, nil
}

// requestCancel writes the cancel request workers watch for.
func (s *Store) requestCancel(ctx context.Context, id string) error {
	kv, err := s.bucket(ctx, false)
	if err != nil {
		return err
	}
	data, _ := json.Marshal(lock{At: s.cfg.NowFunc().UTC()})
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	if _, err := kv.Put(rctx, cancelPrefix+key(id), data); err != nil {
		return fmt.Errorf("task: request cancel of %q: %w", id, err)
	}
	return nil
}

// withdrawal is what [Store.withdraw] found and did.
type withdrawal struct {
	// header is the message's, nil when it was gone already.
	header nats.Header
	// removed: the message was stored and is removed.
	removed bool
	// delivered: a consumer has handed the message to a worker (it may be
	// running, waiting for a retry, or about to be settled), before or
	// while it was removed.
	delivered bool
}

// withdraw removes a task's message from its stream unless a consumer
// has handed it to a worker: a worker may be running it, and only the
// worker can tell how it ends. It reads the message first, so the caller
// knows what it was (tracked, unique). It looks at the consumers again
// after a removal, for a delivery that came in between.
func (s *Store) withdraw(ctx context.Context, stream string, seq uint64) (withdrawal, error) {
	var w withdrawal
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	st, err := s.js.Stream(rctx, stream)
	if err != nil {
		return w, fmt.Errorf("task: stream %q: %w", stream, err)
	}
	m, err := st.GetMsg(rctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return w, nil
	}
	if err != nil {
		return w, fmt.Errorf("task: get %s: %w", jetworker.Ref(stream, seq), err)
	}
	w.header = m.Header
	if w.delivered, err = delivered(rctx, st, m.Subject, seq); err != nil || w.delivered {
		return w, err
	}
	if err := st.DeleteMsg(rctx, seq); err != nil {
		if _, gerr := st.GetMsg(rctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
			return w, nil
		}
		return w, fmt.Errorf("task: remove %s: %w", jetworker.Ref(stream, seq), err)
	}
	w.removed = true
	w.delivered, err = delivered(rctx, st, m.Subject, seq)
	return w, err
}

// delivered reports whether a consumer of st that selects subj has
// delivered the message at seq: a consumer delivers in stream order, so
// one whose last delivered stream sequence is at or past seq has (or
// skipped it, which it cannot tell apart and counts as delivered).
func delivered(ctx context.Context, st jetstream.Stream, subj string, seq uint64) (bool, error) {
	l := st.ListConsumers(ctx)
	found := false
	for ci := range l.Info() { // drained: the lister blocks until it is
		if found || ci.Delivered.Stream < seq {
			continue
		}
		filters := ci.Config.FilterSubjects
		if ci.Config.FilterSubject != "" {
			filters = append(filters, ci.Config.FilterSubject)
		}
		if len(filters) == 0 {
			found = true
		}
		for _, f := range filters {
			if subject.Match(f, subj) {
				found = true
			}
		}
	}
	if err := l.Err(); err != nil {
		return false, fmt.Errorf("task: consumers of %q: %w", st.CachedInfo().Config.Name, err)
	}
	return found, nil
}

// removeMessage deletes a message from a stream, reporting false when it
// is gone already.
func (s *Store) removeMessage(ctx context.Context, stream string, seq uint64) (bool, error) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	st, err := s.js.Stream(rctx, stream)
	if err != nil {
		return false, fmt.Errorf("task: stream %q: %w", stream, err)
	}
	if err := st.DeleteMsg(rctx, seq); err != nil {
		if _, gerr := st.GetMsg(rctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("task: remove %s: %w", jetworker.Ref(stream, seq), err)
	}
	return true, nil
}
