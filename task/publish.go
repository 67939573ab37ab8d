package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
)

// Stored describes a task the publisher just stored, for [Store.Track].
type Stored struct {
	ID      string
	Subject string
	// Stream and Sequence locate the stored message: the task, or for a delayed
	// task its schedule message.
	Stream   string
	Sequence uint64
	// RunAt is set for a delayed task: when it is due.
	RunAt time.Time
	// MaxAttempts is the task's own maximum, 0 when it has none.
	MaxAttempts int
	// Unique is its uniqueness mode, "" when none.
	Unique string
}

func (st Stored) seed() (Info, event) {
	state := Pending
	if !st.RunAt.IsZero() {
		state = Scheduled
	}
	info := Info{
		Subject: st.Subject, MaxAttempts: st.MaxAttempts, RunAt: st.RunAt.UTC(), Unique: st.Unique, History: []Transition{},
	}
	ev := event{state: state}
	if st.Stream != "" && st.Sequence > 0 {
		ev.stream, ev.seq, ev.ref = st.Stream, st.Sequence, jetworker.Ref(st.Stream, st.Sequence)
	}
	return info, ev
}

// Track records a stored task as Pending (or Scheduled when delayed),
// with where it is stored. A worker that started the task first has
// written the record already; Track never moves it back. It blocks until
// the record is written, normally one write.
func (s *Store) Track(ctx context.Context, st Stored) error {
	info, ev := st.seed()
	ev.at = s.cfg.NowFunc().UTC()
	if _, _, err := s.write(ctx, st.ID, writeOpts{create: true, createFirst: true, seed: info}, []event{ev}); err != nil {
		s.lost.Add(1)
		return fmt.Errorf("task: track %q: %w", st.ID, err)
	}
	return nil
}

// Lost returns how many record writes were given up since the store was
// made: a worker's write still failing after Config.RetryFor (or when it
// stopped), a write refused because the tracker was stopped or its queue
// full, and a publisher's failed record write (the worker writes that
// record when it starts the task). The records of those tasks lag behind
// them; the tasks themselves ran. It only grows, is safe for concurrent
// use and cheap (an atomic load): read it for a metric or an alert.
func (s *Store) Lost() uint64 { return s.lost.Load() }

// lock is the value of a uniqueness lock.
type lock struct {
	At time.Time `json:"at"`
}

// Lock takes the uniqueness lock of task id, for a task about to be
// published, and returns the lock's revision. ttl bounds how long the lock
// lasts even if no worker releases it (0: the bucket's TTL). It returns an
// error wrapping [ErrLocked] when another task with this ID holds it,
// unless the lock is younger than retryWindow: then it is taken to be this
// very task published again after an unknown outcome, and Lock returns 0
// without taking anything. retryWindow must not be longer than the
// duplicate window of the stream the task goes to, which de-duplicates
// such a retry: past it, the retry would be stored a second time.
//
// A publisher that took the lock (a revision > 0) and learns that the task
// was not stored after all (the server reports a duplicate, or refuses it)
// gives it back with [Store.Release].
func (s *Store) Lock(ctx context.Context, id string, ttl, retryWindow time.Duration) (uint64, error) {
	kv, err := s.bucket(ctx, false)
	if err != nil {
		return 0, err
	}
	now := s.cfg.NowFunc().UTC()
	data, _ := json.Marshal(lock{At: now})
	var opts []jetstream.KVCreateOpt
	if ttl > 0 {
		opts = append(opts, jetstream.KeyTTL(max(ttl, time.Second)))
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	rev, err := kv.Create(rctx, lockPrefix+key(id), data, opts...)
	if err == nil {
		return rev, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("task: lock %q: %w", id, err)
	}
	e, gerr := kv.Get(rctx, lockPrefix+key(id))
	if gerr == nil {
		var l lock
		if json.Unmarshal(e.Value(), &l) == nil && now.Sub(l.At) < retryWindow {
			return 0, nil
		}
	}
	return 0, fmt.Errorf("%w: %q is pending or running", ErrLocked, id)
}

// Unlock releases the uniqueness lock of task id, whoever took it. A lock
// that is gone is not an error. Workers call it when the task starts or
// ends, as its mode says.
func (s *Store) Unlock(ctx context.Context, id string) error {
	return s.release(ctx, id, 0)
}

// Release gives back the uniqueness lock of task id that [Store.Lock]
// took at revision rev, if it is still that lock: one taken since by
// another publish is left alone. A lock that is gone is not an error.
func (s *Store) Release(ctx context.Context, id string, rev uint64) error {
	if rev == 0 {
		return nil
	}
	return s.release(ctx, id, rev)
}

func (s *Store) release(ctx context.Context, id string, rev uint64) error {
	kv, err := s.bucket(ctx, false)
	if err != nil {
		return err
	}
	var opts []jetstream.KVDeleteOpt
	if rev > 0 {
		opts = append(opts, jetstream.LastRevision(rev))
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	err = kv.Purge(rctx, lockPrefix+key(id), opts...)
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return fmt.Errorf("task: unlock %q: %w", id, err)
	}
	return nil
}

// Values of the Jetworker-Unique header, which publisher.PublishOpts.Unique
// sets; [UniqueFor] makes the third kind, a lock held for a duration.
const (
	// UniquePending holds the lock while the task waits to start.
	UniquePending = "pending"
	// UniqueActive holds the lock until the task ends.
	UniqueActive = "active"
)

// UniqueFor is the Jetworker-Unique value of a lock held until the task
// ends or d has passed.
func UniqueFor(d time.Duration) string { return d.String() }

// parseUnique reads a Jetworker-Unique value: whether the lock is released
// when the task starts, and its duration (0 when until the task ends).
func parseUnique(v string) (atStart bool, ok bool) {
	switch v {
	case "":
		return false, false
	case UniquePending:
		return true, true
	case UniqueActive:
		return false, true
	}
	if _, err := time.ParseDuration(v); err == nil {
		return false, true
	}
	return false, false
}
