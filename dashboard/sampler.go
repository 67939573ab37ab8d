package dashboard

import (
	"context"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/internal/outboxdata"
	"github.com/jetworker/jetworker/overview"
)

// The series the sampler keeps. Per-consumer series are named
// <prefix><stream>/<consumer>.
const (
	seriesPublished    = "published"
	seriesProcessed    = "processed"
	seriesFailed       = "failed"
	seriesDeadLettered = "dead_lettered"
	seriesOutboxRows   = "outbox_pending"
	seriesOutboxDead   = "outbox_dead"
	seriesOutboxLag    = "outbox_lag"
	seriesWaitP50      = "wait_p50"
	seriesWaitP99      = "wait_p99"
	prefixPending      = "pending/"
	prefixOldest       = "oldest/"
)

// Bounds on what the history keeps, whatever the streams hold.
const (
	// maxSeries bounds the series in the history; series beyond it are
	// not kept.
	maxSeries = 64
	// maxConsumerSeries bounds the consumers charted (in name order).
	maxConsumerSeries = 16
	// maxHistoryPoints bounds SampleWindow/SampleInterval.
	maxHistoryPoints = 100_000
)

// history is a ring buffer of samples: one time per sample and, per
// series, one value per sample (NaN when the series had none). Memory is
// bounded by size × (1 + number of series), and series are bounded by
// maxSeries; a series without a value for a whole window is dropped.
// It is safe for concurrent use.
type history struct {
	mu     sync.Mutex
	size   int
	times  []time.Time
	head   int // where the next sample goes
	n      int // samples stored, at most size
	series map[string]*seriesRing
}

type seriesRing struct {
	vals  []float64
	blank int // consecutive samples without a value
}

func newHistory(size int) *history {
	return &history{size: size, times: make([]time.Time, size), series: map[string]*seriesRing{}}
}

// push stores a sample taken at t. Series missing from vals get NaN for
// it; a NaN in vals is a missing value too.
func (h *history) push(t time.Time, vals map[string]float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for name, v := range vals {
		if _, ok := h.series[name]; ok || math.IsNaN(v) || len(h.series) >= maxSeries {
			continue
		}
		r := &seriesRing{vals: make([]float64, h.size)}
		for i := range r.vals {
			r.vals[i] = math.NaN()
		}
		h.series[name] = r
	}
	h.times[h.head] = t
	for name, r := range h.series {
		v, ok := vals[name]
		if !ok {
			v = math.NaN()
		}
		r.vals[h.head] = v
		if math.IsNaN(v) {
			r.blank++
		} else {
			r.blank = 0
		}
		if r.blank >= h.size {
			delete(h.series, name)
		}
	}
	h.head = (h.head + 1) % h.size
	h.n = min(h.n+1, h.size)
}

// historySnapshot is a copy of the history, oldest sample first.
type historySnapshot struct {
	Times  []time.Time
	Series map[string][]float64
}

// snapshot copies the samples taken at or after since (all with the zero
// time), oldest first.
func (h *history) snapshot(since time.Time) historySnapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	start := (h.head - h.n + h.size) % h.size
	skip := 0
	for skip < h.n && h.times[(start+skip)%h.size].Before(since) {
		skip++
	}
	n := h.n - skip
	snap := historySnapshot{Times: make([]time.Time, n), Series: make(map[string][]float64, len(h.series))}
	for i := range n {
		snap.Times[i] = h.times[(start+skip+i)%h.size]
	}
	for name, r := range h.series {
		vals := make([]float64, n)
		for i := range n {
			vals[i] = r.vals[(start+skip+i)%h.size]
		}
		snap.Series[name] = vals
	}
	return snap
}

// counterDelta is how much a cumulative counter grew from prev to cur. A
// counter lower than before restarted from zero (a worker restarted, a
// stream was recreated): it grew by its whole value.
func counterDelta(prev, cur uint64) uint64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

// counterSet turns cumulative counters, read at successive times, into a
// summed rate per second.
type counterSet struct {
	at   time.Time
	last map[string]uint64
}

// advance records the counters read at at and returns how fast their sum
// grew since the previous read, per second; ok is false on the first read.
// A counter not seen at the previous read counts with its whole value when
// fresh(key, previous read time) says it started since then, and not at
// all otherwise (its earlier growth cannot be placed in time).
func (c *counterSet) advance(at time.Time, cur map[string]uint64, fresh func(key string, since time.Time) bool) (perSecond float64, ok bool) {
	prevAt, prev := c.at, c.last
	c.at, c.last = at, cur
	if prev == nil || !at.After(prevAt) {
		return 0, false
	}
	var grew uint64
	for k, v := range cur {
		if p, seen := prev[k]; seen {
			grew += counterDelta(p, v)
		} else if fresh != nil && fresh(k, prevAt) {
			grew += v
		}
	}
	return float64(grew) / at.Sub(prevAt).Seconds(), true
}

// waitSet turns the workers' cumulative enqueue-to-start buckets
// (consumer.WorkerInfo.Wait), read at successive times, into the
// percentiles of the tasks that started in between.
type waitSet struct {
	bounds []float64 // consumer.WaitBounds()
	at     time.Time
	last   map[string][]uint64
}

func newWaitSet() waitSet { return waitSet{bounds: consumer.WaitBounds()} }

// advance records the buckets read at at, per worker ID, and returns the
// p50 and p99, in seconds, of the tasks counted since the previous read;
// ok is false on the first read and when no task was counted. A worker
// not seen at the previous read counts in full when fresh(id, previous
// read time) says it started since then, and not at all otherwise (its
// earlier counts cannot be placed in time); one whose counts went down
// restarted, and counts in full. Buckets of another length than the
// bounds' (a worker of another version) are left out: they cannot be
// merged.
func (w *waitSet) advance(at time.Time, cur map[string][]uint64, fresh func(id string, since time.Time) bool) (p50, p99 float64, ok bool) {
	prevAt, prev := w.at, w.last
	w.at, w.last = at, cur
	if prev == nil || !at.After(prevAt) {
		return 0, 0, false
	}
	sum := make([]uint64, len(w.bounds)+1)
	var total uint64
	for id, counts := range cur {
		if len(counts) != len(sum) {
			continue
		}
		p, seen := prev[id]
		whole := seen && (len(p) != len(counts) || restarted(p, counts))
		if !seen && fresh != nil && fresh(id, prevAt) {
			whole = true
		}
		switch {
		case whole:
			for i, v := range counts {
				sum[i] += v
				total += v
			}
		case seen:
			for i, v := range counts {
				sum[i] += v - p[i]
				total += v - p[i]
			}
		}
	}
	if total == 0 {
		return 0, 0, false
	}
	return bucketQuantile(w.bounds, sum, total, 0.50), bucketQuantile(w.bounds, sum, total, 0.99), true
}

// restarted reports whether any count is lower than before: the worker
// started counting again from zero.
func restarted(prev, cur []uint64) bool {
	for i, v := range cur {
		if v < prev[i] {
			return true
		}
	}
	return false
}

// bucketQuantile estimates the q-quantile of total tasks counted in the
// buckets of bounds (counts has one more, above the last bound), as
// Prometheus's histogram_quantile does: it finds the bucket holding rank
// q×total and interpolates linearly within it, from the bound below (0
// for the first) to its own. In the bucket above the last bound it
// answers that bound: the true value is at least that.
func bucketQuantile(bounds []float64, counts []uint64, total uint64, q float64) float64 {
	rank := q * float64(total)
	var seen float64
	for i, n := range counts {
		if n == 0 {
			continue
		}
		if seen+float64(n) >= rank {
			if i == len(bounds) {
				return bounds[i-1]
			}
			lo := 0.0
			if i > 0 {
				lo = bounds[i-1]
			}
			return lo + (bounds[i]-lo)*(rank-seen)/float64(n)
		}
		seen += float64(n)
	}
	return bounds[len(bounds)-1]
}

// observation is what one sample read: each part with its error, so a
// part that failed leaves a gap only in its own series.
type observation struct {
	At          time.Time
	Overview    overview.Overview
	OverviewErr error
	Workers     []consumer.WorkerInfo
	WorkersErr  error
	// Outbox is nil when no outbox is configured.
	Outbox    *outboxdata.Stats
	OutboxErr error
}

// sampler turns observations into the history's series: rates from the
// counters (stream and dead-letter sequences, the workers' processed and
// failed counts) and gauges (backlog, the age of the oldest pending task,
// the outbox). It is used by one goroutine at a time.
type sampler struct {
	hist      *history
	published counterSet // last sequence of each task stream
	dead      counterSet // last sequence of the dead-letter stream
	processed counterSet // per worker ID
	failed    counterSet // per worker ID
	waits     waitSet    // enqueue-to-start buckets per worker ID
	acked     counterSet // each consumer's ack floor
	started   map[string]time.Time
}

func newSampler(size int) *sampler {
	return &sampler{hist: newHistory(size), waits: newWaitSet()}
}

// observe computes a sample's values from o and stores them.
func (sm *sampler) observe(o observation) map[string]float64 {
	vals := map[string]float64{}
	acking := false // some consumer's ack floor moved: tasks are being done
	if o.OverviewErr == nil {
		streams, dead := map[string]uint64{}, map[string]uint64{}
		for _, st := range o.Overview.Streams {
			// A missing stream counts as 0, so one created later counts
			// in full.
			if st.DeadLetters {
				dead[st.Name] = st.LastSeq
			} else {
				streams[st.Name] = st.LastSeq
			}
		}
		all := func(string, time.Time) bool { return true }
		if v, ok := sm.published.advance(o.At, streams, all); ok {
			vals[seriesPublished] = v
		}
		if v, ok := sm.dead.advance(o.At, dead, all); ok {
			vals[seriesDeadLettered] = v
		}
		floors := map[string]uint64{}
		for _, c := range o.Overview.Consumers {
			floors[c.Stream+"/"+c.Name] = c.AckFloor
		}
		if v, ok := sm.acked.advance(o.At, floors, nil); ok && v > 0 {
			acking = true
		}
		consumers := o.Overview.Consumers
		if len(consumers) > maxConsumerSeries {
			consumers = consumers[:maxConsumerSeries] // Read sorts them by stream and name
		}
		for _, c := range consumers {
			name := c.Stream + "/" + c.Name
			vals[prefixPending+name] = float64(c.Pending)
			vals[prefixOldest+name] = c.OldestPending.Seconds()
		}
	}
	if o.WorkersErr == nil {
		processed, failed := map[string]uint64{}, map[string]uint64{}
		started := map[string]time.Time{}
		waits := map[string][]uint64{}
		for _, w := range o.Workers {
			processed[w.ID], failed[w.ID] = w.Processed, w.Failed
			started[w.ID] = w.StartedAt
			waits[w.ID] = w.Wait
		}
		sm.started = started
		// A worker first seen now counts in full if it started since the
		// previous sample; otherwise it ran before the dashboard saw it.
		fresh := func(id string, since time.Time) bool { return !sm.started[id].Before(since) }
		pv, pok := sm.processed.advance(o.At, processed, fresh)
		fv, fok := sm.failed.advance(o.At, failed, fresh)
		// No presence record while consumers acknowledge tasks: the
		// workers run without presence, so their counts are unknown,
		// not 0.
		if len(o.Workers) == 0 && acking {
			pok, fok = false, false
		}
		if pok {
			vals[seriesProcessed] = pv
		}
		if fok {
			vals[seriesFailed] = fv
		}
		if p50, p99, ok := sm.waits.advance(o.At, waits, fresh); ok {
			vals[seriesWaitP50], vals[seriesWaitP99] = p50, p99
		}
	}
	if o.Outbox != nil && o.OutboxErr == nil {
		vals[seriesOutboxRows] = float64(o.Outbox.Pending)
		vals[seriesOutboxDead] = float64(o.Outbox.Dead)
		vals[seriesOutboxLag] = o.Outbox.Lag.Seconds()
	}
	sm.hist.push(o.At, vals)
	return vals
}

// sampleLoop calls sample at once and then every interval until ctx ends.
func sampleLoop(ctx context.Context, every time.Duration, sample func(context.Context)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sampleOnce reads the state, the workers and the outbox concurrently,
// each within CheckTimeout, and feeds the sampler.
func (s *Server) sampleOnce(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CheckTimeout)
	defer cancel()
	o := observation{At: s.cfg.NowFunc()}
	var wg sync.WaitGroup
	wg.Go(func() { o.Overview, o.OverviewErr = overview.Read(ctx, s.js, s.overviewConfig()) })
	wg.Go(func() {
		if s.cfg.DisableWorkers {
			o.WorkersErr = errWorkersDisabled
			return
		}
		o.Workers, o.WorkersErr = s.workers(ctx)
	})
	if s.cfg.Outbox != nil {
		wg.Go(func() {
			st, err := s.outboxStats(ctx, true)
			o.Outbox, o.OutboxErr = &st, err
		})
	}
	wg.Wait()
	s.sampler.observe(o)
}

// seriesNames returns the names in snap with prefix, without it, sorted.
func seriesNames(snap historySnapshot, prefix string) []string {
	var out []string
	for name := range snap.Series {
		if rest, ok := strings.CutPrefix(name, prefix); ok {
			out = append(out, rest)
		}
	}
	sort.Strings(out)
	return out
}
