package task

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/internal/logkey"
)

// writerShards is how many goroutines prepare record writes; one task's
// writes always go through the same one, in order.
const writerShards = 8

// maxQueued bounds, per shard, the tasks with writes waiting. Writes for a
// task already waiting merge into its entry and are never refused; only a
// new task beyond the bound is (counted in Store.Lost): the bucket has been
// away for that long.
const maxQueued = 16 << 10

// readBatch is how many records a shard reads with one request.
const readBatch = 64

// maxConflicts is how often in a row a task's write may find its record
// changed before the write is treated as failed (and retried later).
const maxConflicts = 8

// writer applies record writes off the handlers' path. Writes for one task
// queue in one entry: when the bucket is slower than the tasks, a task's
// events (active, then succeeded) are applied together in one
// revision-checked write, so a fast task costs one read and one write
// instead of two of each, and no event is dropped because others queue.
//
// Writes are async publishes (see publishRecord): a shard reads the
// records of the tasks it has ready (in batches), folds their events and
// sends the writes without waiting for them, at most one in flight per
// task; the ack of a task's write lets its next one go. A task whose
// write is acked keeps its record here while it runs, so its end is
// written on top of it without a read.
type writer struct {
	s      *Store
	log    *slog.Logger
	shards [writerShards]shard
	wg     sync.WaitGroup
}

type shard struct {
	w  *writer
	mu sync.Mutex
	// ready holds the IDs to write now, in the order they were queued;
	// held those whose only news is that they started, until settleDelay
	// has passed (a task that ends by then is written once, not twice).
	ready   []string
	held    []heldID
	retry   retryQueue // failed writes waiting for their next try
	queued  map[string]*pending
	flying  map[string]*pending // the write in flight, by task
	known   map[string]known    // records this shard wrote last, for tasks not yet ended
	wake    chan struct{}
	closed  bool
	working bool
	idle    []chan struct{} // closed when the shard has nothing queued or in flight
}

// pending is what waits to be written for one task.
type pending struct {
	seed   Info // for a record that does not exist yet
	create bool
	events []event
	unlock bool // release the task's uniqueness lock, after the events
	held   bool // in shard.held, not shard.ready

	// A write that failed waits in shard.retry until due; events that
	// come meanwhile join it.
	retrying  bool
	failures  int
	failedAt  time.Time // its first failure
	due       time.Time
	conflicts int // writes in a row that found the record changed

	// in flight: the record it writes
	info Info
}

// merge appends q, queued after p, to p.
func (p *pending) merge(q *pending) {
	if q == nil {
		return
	}
	p.events = append(p.events, q.events...)
	if q.create && !p.create {
		p.create, p.seed = true, q.seed
	}
	p.unlock = p.unlock || q.unlock
}

// Retry backoff of a failed record write: the first retry after
// retryFirst, doubling up to retryMax, until Config.RetryFor has passed
// since the first failure.
const (
	retryFirst = 100 * time.Millisecond
	retryMax   = 5 * time.Second
)

// retryQueue is a min-heap of failed writes by due time.
type retryQueue []retryEntry

type retryEntry struct {
	id  string
	due time.Time
}

func (q retryQueue) Len() int           { return len(q) }
func (q retryQueue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q retryQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *retryQueue) Push(x any)        { *q = append(*q, x.(retryEntry)) }
func (q *retryQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// heldID is an ID held back until due.
type heldID struct {
	id  string
	due time.Time
}

// settleDelay is how long a task's start is held back before it is
// written: most tasks end sooner, and their record then takes one write
// for both. A record shows "active" at most this much late.
const settleDelay = 50 * time.Millisecond

// known is a record as this process last wrote it.
type known struct {
	info Info
	rev  uint64
}

func newWriter(s *Store, log *slog.Logger) *writer {
	w := &writer{s: s, log: log}
	for i := range w.shards {
		w.shards[i] = shard{w: w, queued: map[string]*pending{}, flying: map[string]*pending{}, known: map[string]known{},
			wake: make(chan struct{}, 1)}
	}
	return w
}

// start runs the shards' goroutines until stop; their writes use ctx.
func (w *writer) start(ctx context.Context) {
	for i := range w.shards {
		w.wg.Go(func() { w.run(ctx, &w.shards[i]) })
	}
}

// stop lets the shards write what is queued, then ends them.
func (w *writer) stop() {
	for i := range w.shards {
		sh := &w.shards[i]
		sh.mu.Lock()
		sh.closed = true
		sh.mu.Unlock()
		sh.signal()
	}
	w.wg.Wait()
}

func (sh *shard) signal() {
	select {
	case sh.wake <- struct{}{}:
	default:
	}
}

func (w *writer) shard(id string) *shard {
	h := fnv.New32a()
	h.Write([]byte(id))
	return &w.shards[h.Sum32()%writerShards]
}

// add queues a write for task id: events to apply (seed and create for a
// record that may not exist yet) and whether to release its lock. It
// reports false when the write is refused (stopped, or the queue full).
func (w *writer) add(id string, create bool, seed Info, ev *event, unlock bool) bool {
	sh := w.shard(id)
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		w.s.lost.Add(1)
		return false
	}
	p := sh.queued[id]
	if p == nil {
		if len(sh.queued) >= maxQueued {
			sh.mu.Unlock()
			w.s.lost.Add(1)
			return false
		}
		p = &pending{}
		sh.queued[id] = p
		if ev != nil && ev.state == Active && ev.progress == nil && !unlock {
			p.held = true
			sh.held = append(sh.held, heldID{id: id, due: time.Now().Add(settleDelay)})
		} else {
			sh.ready = append(sh.ready, id)
		}
	} else if !p.retrying && p.held && (ev == nil || ev.state != Active || ev.progress != nil || unlock) {
		// News beyond the start: write it now (its held entry is skipped).
		p.held = false
		sh.ready = append(sh.ready, id)
	}
	if create && !p.create {
		p.create, p.seed = true, seed
	}
	if ev != nil {
		p.events = append(p.events, *ev)
	}
	p.unlock = p.unlock || unlock
	sh.mu.Unlock()
	sh.signal()
	return true
}

// flush waits until every shard has written what was queued before it
// was called, or ctx ends.
func (w *writer) flush(ctx context.Context) error {
	for i := range w.shards {
		sh := &w.shards[i]
		sh.mu.Lock()
		if sh.isIdle() {
			sh.mu.Unlock()
			continue
		}
		done := make(chan struct{})
		sh.idle = append(sh.idle, done)
		sh.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// isIdle reports whether the shard has nothing to write; sh.mu is held.
func (sh *shard) isIdle() bool {
	return len(sh.queued) == 0 && len(sh.flying) == 0 && !sh.working
}

func (w *writer) run(ctx context.Context, sh *shard) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var batch []string
	for {
		sh.mu.Lock()
		sh.working = false
		batch = sh.take(time.Now(), batch[:0])
		for len(batch) == 0 {
			if sh.isIdle() {
				for _, c := range sh.idle {
					close(c)
				}
				sh.idle = nil
				if sh.closed {
					sh.mu.Unlock()
					return
				}
			}
			wait := sh.wait()
			if sh.closed && (len(sh.held) > 0 || len(sh.retry) > 0) {
				wait = 0 // write everything on the way out
			}
			sh.mu.Unlock()
			timer.Reset(max(wait, 0))
			select {
			case <-sh.wake:
			case <-timer.C:
			}
			sh.mu.Lock()
			now := time.Now()
			if sh.closed {
				now = now.Add(max(settleDelay, retryMax)) // everything is due
			}
			batch = sh.take(now, batch[:0])
		}
		sh.working = true
		sh.mu.Unlock()
		w.send(ctx, sh, batch)
	}
}

// take moves up to readBatch writes due at now into flight and appends
// their IDs to batch; sh.mu is held. A task with a write in flight stays
// queued: the ack of that write readies it again.
func (sh *shard) take(now time.Time, batch []string) []string {
	fly := func(id string, p *pending) {
		delete(sh.queued, id)
		p.held, p.retrying = false, false
		sh.flying[id] = p
		batch = append(batch, id)
	}
	for len(sh.ready) > 0 && len(batch) < readBatch {
		id := sh.ready[0]
		sh.ready = sh.ready[1:]
		if p := sh.queued[id]; p != nil && !p.held && !p.retrying && sh.flying[id] == nil {
			fly(id, p)
		}
	}
	for len(sh.retry) > 0 && !sh.retry[0].due.After(now) && len(batch) < readBatch {
		e := heap.Pop(&sh.retry).(retryEntry)
		if p := sh.queued[e.id]; p != nil && p.retrying && p.due.Equal(e.due) {
			if sh.flying[e.id] != nil {
				p.retrying = false // readied by the flight's ack
				continue
			}
			fly(e.id, p)
		}
	}
	for len(sh.held) > 0 && len(batch) < readBatch {
		h := sh.held[0]
		p := sh.queued[h.id]
		if p == nil || !p.held {
			sh.held = sh.held[1:] // moved to ready, and written
			continue
		}
		if h.due.After(now) {
			break
		}
		sh.held = sh.held[1:]
		if sh.flying[h.id] != nil {
			p.held = false // readied by the flight's ack
			continue
		}
		fly(h.id, p)
	}
	return batch
}

// wait is how long the shard may sleep before a held or failed write is
// due; sh.mu is held.
func (sh *shard) wait() time.Duration {
	wait := time.Hour
	if len(sh.held) > 0 {
		wait = time.Until(sh.held[0].due)
	}
	if len(sh.retry) > 0 {
		wait = min(wait, time.Until(sh.retry[0].due))
	}
	return wait
}

// send writes the batch's tasks, which are in flight: it reads the
// records this shard does not know, folds each task's events into its
// record and sends the revision-checked write; landed takes it from
// there.
func (w *writer) send(ctx context.Context, sh *shard, batch []string) {
	type job struct {
		id   string
		p    *pending
		cur  Info
		rev  uint64
		have bool
	}
	jobs := make([]job, 0, len(batch))
	var unknown []string
	sh.mu.Lock()
	for _, id := range batch {
		j := job{id: id, p: sh.flying[id]}
		if k, ok := sh.known[id]; ok {
			j.cur, j.rev, j.have = k.info, k.rev, true
		} else if len(j.p.events) > 0 {
			unknown = append(unknown, id)
		}
		jobs = append(jobs, j)
	}
	sh.mu.Unlock()
	var read map[string]readResult
	if len(unknown) > 0 {
		read = w.s.readMany(ctx, unknown)
	}
	for _, j := range jobs {
		p := j.p
		if len(p.events) == 0 {
			w.finish(ctx, sh, j.id, p) // only the lock to release
			continue
		}
		if !j.have {
			r := read[j.id]
			switch {
			case errors.Is(r.err, ErrNotFound) && p.create:
				seed := p.seed
				seed.ID = j.id
				if seed.Created.IsZero() {
					seed.Created = p.events[0].at
				}
				j.cur, j.rev = seed, 0
			case r.err != nil:
				w.failed(ctx, sh, j.id, p, r.err)
				continue
			default:
				j.cur, j.rev = r.info, r.rev
			}
		}
		next, changed := fold(j.cur, p.events, w.s.cfg.HistoryLimit)
		if !changed && j.rev > 0 {
			p.events, p.create = nil, false
			sh.mu.Lock()
			if next.State.Terminal() {
				delete(sh.known, j.id)
			}
			sh.mu.Unlock()
			w.finish(ctx, sh, j.id, p)
			continue
		}
		data, err := json.Marshal(next)
		if err != nil {
			w.failed(ctx, sh, j.id, p, err)
			continue
		}
		p.info = next
		id := j.id
		if err := w.s.publishRecord(id, data, j.rev, func(rev uint64, err error) { w.landed(ctx, sh, id, rev, err) }); err != nil {
			w.failed(ctx, sh, id, p, err)
		}
	}
}

// landed takes the outcome of a task's record write, on nats.go's ack
// goroutine: it must not block.
func (w *writer) landed(ctx context.Context, sh *shard, id string, rev uint64, err error) {
	sh.mu.Lock()
	p := sh.flying[id]
	if p == nil {
		sh.mu.Unlock()
		return
	}
	switch {
	case err == nil:
		// Keep what was written while the task runs here: its end is then
		// one write, without a read. Anything else may be written
		// elsewhere next (another attempt, a cancel).
		if !p.info.State.Terminal() && len(sh.known) < maxQueued {
			sh.known[id] = known{info: p.info, rev: rev}
		} else {
			delete(sh.known, id)
		}
		p.events, p.create, p.conflicts = nil, false, 0
		if p.unlock {
			sh.mu.Unlock()
			go w.finish(ctx, sh, id, p) // owned: the shard waits for its flight
			return
		}
		delete(sh.flying, id)
		sh.readied(id)
	case errors.Is(err, errConflict) && p.conflicts < maxConflicts:
		// The record changed since it was read (a publisher's record, a
		// cancel request, another worker): read it again and fold anew.
		delete(sh.known, id)
		delete(sh.flying, id)
		p.conflicts++
		p.merge(sh.queued[id])
		sh.queued[id] = p
		sh.ready = append(sh.ready, id)
	default:
		delete(sh.known, id)
		sh.mu.Unlock()
		w.failed(ctx, sh, id, p, err)
		return
	}
	sh.mu.Unlock()
	sh.signal()
}

// readied readies what was queued for id while its write was in flight;
// sh.mu is held.
func (sh *shard) readied(id string) {
	if q := sh.queued[id]; q != nil && !q.retrying {
		q.held = false
		sh.ready = append(sh.ready, id)
	}
}

// finish releases a task's uniqueness lock once its events are written
// (a request, so off the ack goroutine), then lets its next write go.
func (w *writer) finish(ctx context.Context, sh *shard, id string, p *pending) {
	if p.unlock {
		if err := w.s.Unlock(ctx, id); err != nil {
			w.failed(ctx, sh, id, p, err)
			return
		}
	}
	sh.mu.Lock()
	delete(sh.flying, id)
	sh.readied(id)
	sh.mu.Unlock()
	sh.signal()
}

// retryable reports whether a failed write may succeed later: not one
// whose record cannot be decoded or encoded, or that has no record to
// write on.
func retryable(err error) bool {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var unsupported *json.UnsupportedValueError
	return !errors.Is(err, ErrNotFound) && !errors.Is(err, jetstream.ErrInvalidKey) &&
		!errors.As(err, &syntax) && !errors.As(err, &typ) && !errors.As(err, &unsupported)
}

// failed queues a task's failed write (in flight) again, after a backoff,
// with whatever was queued for the task meanwhile; or gives it up,
// counted in Store.Lost, when the error is not one a retry can fix,
// Config.RetryFor has passed since its first failure, or the writer is
// stopping.
func (w *writer) failed(ctx context.Context, sh *shard, id string, p *pending, err error) {
	now := time.Now()
	if p.failures == 0 {
		p.failedAt = now
	}
	p.failures++
	what := "unlock"
	if len(p.events) > 0 {
		what = string(p.events[len(p.events)-1].state)
	}
	attrs := []slog.Attr{slog.String(logkey.TaskID, id), slog.String("state", what),
		slog.Int("events", len(p.events)), slog.Int("failures", p.failures), slog.Any(logkey.Err, err)}
	sh.mu.Lock()
	delete(sh.flying, id)
	if sh.closed || !retryable(err) || now.Sub(p.failedAt) >= w.s.cfg.RetryFor {
		sh.readied(id)
		sh.mu.Unlock()
		sh.signal()
		w.s.lost.Add(1)
		w.log.LogAttrs(ctx, slog.LevelWarn, "write task record: given up, the record lags (Store.Lost counts it)", attrs...)
		return
	}
	p.merge(sh.queued[id]) // queued meanwhile: it comes after what failed
	p.held, p.retrying, p.conflicts = false, true, 0
	p.due = now.Add(min(retryFirst<<min(p.failures-1, 16), retryMax))
	sh.queued[id] = p
	heap.Push(&sh.retry, retryEntry{id: id, due: p.due})
	sh.mu.Unlock()
	sh.signal()
	if p.failures == 1 {
		w.log.LogAttrs(ctx, slog.LevelWarn, "write task record; retrying", attrs...)
	}
}
