package task

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/internal/logkey"
	"github.com/jetworker/jetworker/internal/natsconn"
)

// progressEvery is the least time between two progress writes of a task;
// reports in between are coalesced.
const progressEvery = 250 * time.Millisecond

// maxProgressMessage bounds a progress message.
const maxProgressMessage = 200

// Skip says why a delivered task must not run.
type Skip int

// Reasons not to run a task.
const (
	// Run: run the task.
	Run Skip = iota
	// SkipCancelled: it was cancelled; end it Cancelled.
	SkipCancelled
	// SkipFinished: its record says it already ended (a late duplicate
	// delivery); acknowledge it without running it.
	SkipFinished
)

// Tracker follows the tasks one consumer runs: it records their
// transitions off the handler's path, gives handlers a jetworker.Reporter
// for progress and results, releases uniqueness locks, and cancels running
// tasks when [Store.Cancel] asks. Create it with [Store.NewTracker]; the
// consumer calls [Tracker.Run] for as long as it runs.
type Tracker struct {
	s      *Store
	worker string
	all    bool
	log    *slog.Logger

	w     *writer
	ready chan struct{}

	mu        sync.Mutex
	cancelled map[string]time.Time // cancel requests seen, by task ID or ref
	running   map[string]map[*Execution]struct{}

	refusedLogged atomic.Int64 // unix nanos of the last "refused" warning
}

// NewTracker returns a tracker for the tasks of worker (its presence ID).
// With all, every task is tracked, not only those published with
// tracking. It does no I/O.
func (s *Store) NewTracker(worker string, all bool) *Tracker {
	log := s.log.With(slog.String("worker", worker))
	return &Tracker{
		s: s, worker: worker, all: all, log: log, w: newWriter(s, log),
		ready: make(chan struct{}), cancelled: map[string]time.Time{}, running: map[string]map[*Execution]struct{}{},
	}
}

// Ready is closed once Run has read the cancel requests already made.
func (tr *Tracker) Ready() <-chan struct{} { return tr.ready }

// Run watches cancel requests and writes records until ctx ends, then
// finishes the writes already queued (bounded by the store's request
// timeout each) and returns nil. Writes queue per task and merge while the
// bucket is slower than the tasks, so a task's record may skip from
// pending to succeeded, with every transition in its history. A watch that
// cannot start is retried every second; a record write that fails is
// retried with backoff (see [Store.Lost]). It returns an error wrapping
// nats.ErrConnectionClosed when its connection is closed for good.
func (tr *Tracker) Run(ctx context.Context) error {
	tr.w.start(context.WithoutCancel(ctx))
	err := tr.watch(ctx)
	tr.w.stop()
	return err
}

// Flush waits until the record writes queued so far are done, or ctx
// ends.
func (tr *Tracker) Flush(ctx context.Context) error { return tr.w.flush(ctx) }

// watch keeps a watch on the cancel requests until ctx ends or the
// connection is closed.
func (tr *Tracker) watch(ctx context.Context) error {
	readyOnce := sync.OnceFunc(func() { close(tr.ready) })
	defer readyOnce()
	closed, stopClosed := natsconn.Watch(tr.s.js.Conn())
	defer stopClosed()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		err := tr.watchOnce(ctx, readyOnce, closed)
		select {
		case <-closed:
			return natsconn.Error("task tracker")
		default:
		}
		if ctx.Err() != nil {
			return nil
		}
		tr.log.LogAttrs(ctx, slog.LevelWarn, "watch cancel requests; retrying", slog.Any(logkey.Err, err))
		readyOnce() // do not hold workers back while the bucket is away
		retry.Reset(time.Second)
		select {
		case <-ctx.Done():
			return nil
		case <-closed:
			return natsconn.Error("task tracker")
		case <-retry.C:
		}
	}
}

func (tr *Tracker) watchOnce(ctx context.Context, ready func(), closed <-chan struct{}) error {
	kv, err := tr.s.bucket(ctx, false)
	if err != nil {
		return err
	}
	w, err := kv.Watch(ctx, cancelPrefix+">")
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	prune := time.NewTicker(time.Minute)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-closed:
			return nil
		case <-prune.C:
			tr.prune()
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("watch ended")
			}
			if e == nil {
				ready()
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				continue
			}
			id, ok := unkey(e.Key()[len(cancelPrefix):])
			if !ok {
				continue // not a key Cancel writes
			}
			tr.cancel(id, e.Created())
		}
	}
}

// cancel records a cancel request and cancels the running executions of
// that task ID or ref.
func (tr *Tracker) cancel(k string, at time.Time) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.cancelled[k] = at
	for ex := range tr.running[k] {
		ex.stop(ErrCancelled)
	}
}

// prune forgets cancel requests older than the bucket's TTL: the bucket
// has forgotten them too.
func (tr *Tracker) prune() {
	cutoff := time.Now().Add(-tr.s.cfg.TTL)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for k, at := range tr.cancelled {
		if at.Before(cutoff) {
			delete(tr.cancelled, k)
		}
	}
}

// unlock queues the release of task id's uniqueness lock, after its
// record writes queued so far.
func (tr *Tracker) unlock(id string) { tr.w.add(id, false, Info{}, nil, true) }

// Execution is one run of one tracked task, from [Tracker.Begin] to
// [Execution.End]. It is the handler's jetworker.Reporter.
type Execution struct {
	tr          *Tracker
	id          string   // the record's ID, "" when the task is not tracked
	keys        []string // what a cancel names it by: its ID and its ref
	attempt     int
	maxAttempts int // the consumer's cap applied: what the task really gets
	generation  int
	unique      string // the Jetworker-Unique mode
	lockID      string // the uniqueness lock's task ID, "" without one
	released    bool   // the lock's release is queued already (at start)
	stop        context.CancelCauseFunc

	mu           sync.Mutex
	result       []byte
	progress     *Progress
	lastProgress time.Time
	flush        *time.Timer
	ended        bool
}

// Begin prepares a delivered task: it returns the context for its handler
// (carrying a jetworker.Reporter, cancelled with cause [ErrCancelled] when
// the task is cancelled), the execution to end, and whether to run it at
// all. An untracked task without uniqueness lock gets ctx back and a nil
// execution. A record that cannot be read does not stop the task.
//
// A cancel request is checked and the execution registered for later ones
// in one step, so a request that lands while Begin runs either skips the
// task or cancels its context. A task skipped as finished (a late
// duplicate delivery) has its uniqueness lock released, as a task skipped
// as cancelled has when it is ended.
func (tr *Tracker) Begin(ctx context.Context, t *jetworker.Task) (context.Context, *Execution, Skip) {
	tracked := tr.all || t.Header.Get(jetworker.HeaderTrack) != ""
	unique := t.Header.Get(jetworker.HeaderUnique)
	atStart, hasLock := parseUnique(unique)
	if !tracked && !hasLock {
		return ctx, nil, Run
	}
	id := t.ID
	if id == "" {
		id = t.Ref()
	}
	ex := &Execution{tr: tr, id: id, keys: []string{id, t.Ref()}, attempt: int(t.Delivered), maxAttempts: t.MaxAttempts, unique: unique}
	if hasLock {
		ex.lockID = t.ID
	}
	if !tracked {
		ex.id = "" // a lock to release, no record
	}
	replayed := t.Header.Get(jetworker.HeaderReplayedFrom) != ""
	if tracked && (t.Delivered > 1 || replayed) {
		// A redelivery may follow a success whose ack was lost, a replay
		// starts a new life: look before running.
		cur, err := tr.s.Get(ctx, id)
		switch {
		case err == nil && cur.CancelRequested:
			return ctx, ex, SkipCancelled
		case err == nil && replayed && cur.State == Failed:
			ex.generation = cur.Generation + 1
		case err == nil && cur.State.Terminal():
			ex.generation = cur.Generation
			if ex.lockID != "" {
				// Its end released the lock, unless that write was lost
				// with the ack.
				ex.released = true
				tr.unlock(ex.lockID)
			}
			return ctx, ex, SkipFinished
		case err == nil:
			ex.generation = cur.Generation
		}
	}
	hctx, stop := context.WithCancelCause(ctx)
	tr.mu.Lock()
	if tr.isCancelledLocked(ex.keys) {
		tr.mu.Unlock()
		stop(nil)
		return ctx, ex, SkipCancelled
	}
	ex.stop = stop
	for _, k := range ex.keys {
		if tr.running[k] == nil {
			tr.running[k] = map[*Execution]struct{}{}
		}
		tr.running[k][ex] = struct{}{}
	}
	tr.mu.Unlock()
	if ex.lockID != "" && atStart {
		ex.released = true
		tr.unlock(ex.lockID)
	}
	if tracked {
		ev := event{state: Active, attempt: ex.attempt, maxAttempts: ex.maxAttempts, generation: ex.generation, worker: tr.worker,
			stream: t.Stream, seq: t.Sequence, ref: t.Ref()}
		seed := Info{Subject: t.Subject, MaxAttempts: t.MaxAttempts, Unique: unique, History: []Transition{}}
		tr.write(id, seed, ev)
		hctx = jetworker.WithReporter(hctx, ex)
	}
	return hctx, ex, Run
}

// isCancelledLocked reports whether a cancel request names one of keys;
// tr.mu is held.
func (tr *Tracker) isCancelledLocked(keys []string) bool {
	for _, k := range keys {
		if _, ok := tr.cancelled[k]; ok {
			return true
		}
	}
	return false
}

// write queues a record write; the event's time is now.
func (tr *Tracker) write(id string, seed Info, ev event) {
	ev.at = tr.s.cfg.NowFunc().UTC()
	if !tr.w.add(id, true, seed, &ev, false) {
		now := time.Now().UnixNano()
		if last := tr.refusedLogged.Load(); now-last < int64(time.Second) || !tr.refusedLogged.CompareAndSwap(last, now) {
			return // one warning a second at most; Store.Lost counts them all
		}
		tr.log.LogAttrs(context.Background(), slog.LevelWarn, "task record write refused: the tracker is stopped or its queue is full",
			slog.String(logkey.TaskID, id), slog.String("state", string(ev.state)))
	}
}

// Progress records how far the task is; writes are coalesced to one per
// 250ms. It implements jetworker.Reporter.
func (ex *Execution) Progress(percent float64, message string) error {
	if percent < 0 || percent > 100 || percent != percent {
		return fmt.Errorf("%w: percent %v outside [0, 100]", ErrInvalidProgress, percent)
	}
	if len(message) > maxProgressMessage {
		return fmt.Errorf("%w: message of %d bytes, more than %d", ErrInvalidProgress, len(message), maxProgressMessage)
	}
	now := ex.tr.s.cfg.NowFunc().UTC()
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.ended {
		return nil
	}
	ex.progress = &Progress{Percent: percent, Message: message, At: now}
	if now.Sub(ex.lastProgress) >= progressEvery {
		ex.writeProgress(now)
	} else if ex.flush == nil {
		ex.flush = time.AfterFunc(progressEvery-now.Sub(ex.lastProgress), func() {
			ex.mu.Lock()
			defer ex.mu.Unlock()
			ex.flush = nil
			if !ex.ended {
				ex.writeProgress(ex.tr.s.cfg.NowFunc().UTC())
			}
		})
	}
	return nil
}

// writeProgress queues a write of the latest progress; ex.mu is held.
func (ex *Execution) writeProgress(now time.Time) {
	ex.lastProgress = now
	p := *ex.progress
	ex.tr.write(ex.id, Info{}, event{state: Active, attempt: ex.attempt, generation: ex.generation, progress: &p})
}

// Result records the task's result, stored when it succeeds. It
// implements jetworker.Reporter.
func (ex *Execution) Result(data []byte) error {
	if len(data) > ex.tr.s.cfg.MaxResult {
		return fmt.Errorf("%w: %d bytes, more than the %d allowed (task.Config.MaxResult)", ErrResultTooLarge, len(data), ex.tr.s.cfg.MaxResult)
	}
	ex.mu.Lock()
	defer ex.mu.Unlock()
	ex.result = append([]byte(nil), data...)
	return nil
}

// End records how the execution ended: state is Succeeded, Retrying,
// Failed or Cancelled (the zero State records nothing: the task was handed
// back on shutdown and its next delivery moves it on); err is the
// handler's error. It releases a uniqueness lock held until the task ends.
// End on a nil Execution does nothing.
func (ex *Execution) End(state State, err error) {
	if ex == nil {
		return
	}
	ex.mu.Lock()
	ex.ended = true
	if ex.flush != nil {
		ex.flush.Stop()
		ex.flush = nil
	}
	result, progress := ex.result, ex.progress
	ex.mu.Unlock()
	tr := ex.tr
	if ex.stop != nil {
		ex.stop(nil)
		tr.mu.Lock()
		for _, k := range ex.keys {
			delete(tr.running[k], ex)
			if len(tr.running[k]) == 0 {
				delete(tr.running, k)
			}
		}
		tr.mu.Unlock()
	}
	if state == "" {
		return
	}
	if ex.id != "" {
		ev := event{state: state, attempt: ex.attempt, maxAttempts: ex.maxAttempts, generation: ex.generation, worker: tr.worker, progress: progress}
		if err != nil {
			ev.err = err.Error()
		}
		if state == Succeeded {
			ev.result = result
		}
		tr.write(ex.id, Info{}, ev)
	}
	if ex.lockID != "" && !ex.released && state.Terminal() {
		// Held until the end, or held at start by a task that never
		// started (cancelled before it ran).
		ex.released = true
		tr.unlock(ex.lockID)
	}
}

// Release releases the uniqueness lock of a task that ended without a
// handler run (dead-lettered after its deliveries ran out, cancelled
// before it ran): h are its headers, id its ID.
func (tr *Tracker) Release(id string, h nats.Header) {
	if _, ok := parseUnique(h.Get(jetworker.HeaderUnique)); ok && id != "" {
		tr.unlock(id)
	}
}

// Dead records that a task ended Failed without a handler run (the
// server's max-deliveries advisory), when it is tracked.
func (tr *Tracker) Dead(t *jetworker.Task, reason string) {
	if !tr.all && t.Header.Get(jetworker.HeaderTrack) == "" {
		return
	}
	id := t.ID
	if id == "" {
		id = t.Ref()
	}
	tr.write(id, Info{Subject: t.Subject, History: []Transition{}}, event{state: Failed, attempt: int(t.Delivered), generation: -1, err: reason})
}
