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

// writerShards is how many goroutines write records; one task's writes
// always go through the same one, in order.
const writerShards = 32

// maxQueued bounds, per shard, the tasks with writes waiting. Writes for a
// task already waiting merge into its entry and are never refused; only a
// new task beyond the bound is (counted in Store.Lost): the bucket has been
// away for that long.
const maxQueued = 16 << 10

// writer applies record writes off the handlers' path. Writes for one task
// queue in one entry: when the bucket is slower than the tasks, a task's
// events (active, then succeeded) are applied together in one
// revision-checked write, so a fast task costs one read and one write
// instead of two of each, and no event is dropped because others queue.
type writer struct {
	s      *Store
	log    *slog.Logger
	shards [writerShards]shard
	wg     sync.WaitGroup
}

type shard struct {
	mu sync.Mutex
	// ready holds the IDs to write now, in the order they were queued;
	// held those whose only news is that they started, until settleDelay
	// has passed (a task that ends by then is written once, not twice).
	ready   []string
	held    []heldID
	retry   retryQueue // failed writes waiting for their next try
	queued  map[string]*pending
	known   map[string]known // records this shard wrote last, for tasks not yet ended
	wake    chan struct{}
	closed  bool
	working bool
	idle    []chan struct{} // closed when the shard has nothing queued
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
	retrying bool
	failures int
	failedAt time.Time // its first failure
	due      time.Time
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
		w.shards[i] = shard{queued: map[string]*pending{}, known: map[string]known{}, wake: make(chan struct{}, 1)}
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
		if len(sh.queued) == 0 && !sh.working {
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

func (w *writer) run(ctx context.Context, sh *shard) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		sh.mu.Lock()
		id, p := sh.next(time.Now())
		for p == nil {
			if len(sh.queued) == 0 {
				sh.working = false
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
			id, p = sh.next(now)
		}
		k, hasKnown := sh.known[id]
		sh.working = true
		sh.mu.Unlock()

		var err error
		if len(p.events) > 0 {
			var hint *known
			if hasKnown {
				hint = &k
			}
			var info Info
			var rev uint64
			info, rev, err = w.s.write(ctx, id, writeOpts{create: p.create, seed: p.seed, hint: hint}, p.events)
			sh.mu.Lock()
			// Keep what was written while the task runs here: its end is
			// then one write, without a read. Anything else may be written
			// elsewhere next (another attempt, a cancel).
			if err == nil && info.State == Active && len(sh.known) < maxQueued {
				sh.known[id] = known{info: info, rev: rev}
			} else {
				delete(sh.known, id)
			}
			sh.mu.Unlock()
			if err == nil {
				p.events, p.create = nil, false // written: only the unlock may be left
			}
		}
		if err == nil && p.unlock {
			err = w.s.Unlock(ctx, id)
		}
		if err != nil {
			w.failed(ctx, sh, id, p, err)
		}
	}
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

// failed queues a failed write again, after a backoff, with whatever was
// queued for the task meanwhile; or gives it up, counted in Store.Lost,
// when the error is not one a retry can fix, Config.RetryFor has passed
// since its first failure, or the writer is stopping.
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
	if sh.closed || !retryable(err) || now.Sub(p.failedAt) >= w.s.cfg.RetryFor {
		sh.mu.Unlock()
		w.s.lost.Add(1)
		w.log.LogAttrs(ctx, slog.LevelWarn, "write task record: given up, the record lags (Store.Lost counts it)", attrs...)
		return
	}
	if q := sh.queued[id]; q != nil {
		// Queued meanwhile: it comes after what failed.
		p.events = append(p.events, q.events...)
		if q.create && !p.create {
			p.create, p.seed = true, q.seed
		}
		p.unlock = p.unlock || q.unlock
	}
	p.held, p.retrying = false, true
	p.due = now.Add(min(retryFirst<<min(p.failures-1, 16), retryMax))
	sh.queued[id] = p
	heap.Push(&sh.retry, retryEntry{id: id, due: p.due})
	sh.mu.Unlock()
	if p.failures == 1 {
		w.log.LogAttrs(ctx, slog.LevelWarn, "write task record; retrying", attrs...)
	}
}

// next takes the next write due at now off the queues, or returns nil;
// sh.mu is held.
func (sh *shard) next(now time.Time) (string, *pending) {
	for len(sh.ready) > 0 {
		id := sh.ready[0]
		sh.ready = sh.ready[1:]
		if p := sh.queued[id]; p != nil && !p.held && !p.retrying {
			delete(sh.queued, id)
			return id, p
		}
	}
	for len(sh.retry) > 0 && !sh.retry[0].due.After(now) {
		e := heap.Pop(&sh.retry).(retryEntry)
		if p := sh.queued[e.id]; p != nil && p.retrying && p.due.Equal(e.due) {
			delete(sh.queued, e.id)
			p.retrying = false
			return e.id, p
		}
	}
	for len(sh.held) > 0 {
		h := sh.held[0]
		p := sh.queued[h.id]
		if p == nil || !p.held {
			sh.held = sh.held[1:] // moved to ready, and written
			continue
		}
		if h.due.After(now) {
			return "", nil
		}
		sh.held = sh.held[1:]
		delete(sh.queued, h.id)
		return h.id, p
	}
	return "", nil
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
