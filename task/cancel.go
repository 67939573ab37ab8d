package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
)

// Cancel cancels the tracked task with ID id and returns its record as
// Cancel left it:
//
//   - scheduled (delayed): its schedule message is removed, so it is never
//     released; the record is Cancelled;
//   - pending or retrying: its message is removed from the stream (when its
//     location is recorded); the record is Cancelled;
//   - active: the handler's context is cancelled, within a second, on
//     whichever worker runs it (workers watch cancel requests); the worker
//     ends the task Cancelled, neither retried nor dead-lettered.
//
// In every case a cancel request is recorded, so a worker that receives
// the task later (a message already delivered, a released delayed task)
// does not run it. A task that finishes before the request reaches it
// ends as it finished. Cancel returns an error wrapping [ErrFinished] for
// a task that already ended, and [ErrNotFound] for an unknown ID (a
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
	removed, err := s.removeMessage(ctx, cur.Stream, cur.Seq)
	if err != nil || !removed {
		return cur, err // delivered meanwhile: the worker ends it
	}
	cur, err = s.record(ctx, id, false, Info{}, event{state: Cancelled, attempt: cur.Attempt, generation: cur.Generation, at: now, err: "cancelled before it ran"})
	if err != nil {
		return cur, err
	}
	if cur.Unique != "" {
		_ = s.Unlock(ctx, id)
	}
	return cur, nil
}

// CancelRef cancels the task stored at stream and seq, tracked or not: a
// pending task's message is removed (it never runs) and a running task
// with that identity is told to stop. It reports whether the message was
// still stored and removed.
func (s *Store) CancelRef(ctx context.Context, stream string, seq uint64) (removed bool, err error) {
	if err := s.requestCancel(ctx, jetworker.Ref(stream, seq)); err != nil {
		return false, err
	}
	return s.removeMessage(ctx, stream, seq)
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
