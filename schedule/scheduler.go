package schedule

import (
	"cmp"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/internal/logkey"
)

// Defaults for [Config].
const (
	// LeaseBucket holds the leader leases; its TTL (MaxAge) is the lease TTL.
	LeaseBucket = "jetworker_leases"
	// DefaultLeaseKey is the lease key schedulers campaign for.
	DefaultLeaseKey = "scheduler"
	// DefaultLeaseTTL is how long a lease outlives its last renewal.
	DefaultLeaseTTL = 10 * time.Second
	// DefaultFireTimeout bounds one publish or state write.
	DefaultFireTimeout = 5 * time.Second
	// DefaultMaxConcurrentFires bounds the fires in flight at once.
	DefaultMaxConcurrentFires = 64
)

// retryDelay is how long a failed fire waits before it is tried again.
const retryDelay = time.Second

// maxWait caps the fire timer so a clock that jumps is noticed.
const maxWait = time.Second

// Config tunes a [Scheduler]. The zero value is ready to use.
type Config struct {
	// LeaseKey is the key in [LeaseBucket] the schedulers of one
	// deployment campaign for. Defaults to "scheduler".
	LeaseKey string
	// LeaseTTL is the lease lifetime: the leader renews every LeaseTTL/3,
	// and a crashed leader is replaced within about LeaseTTL. It is also
	// the lease bucket's MaxAge, so all schedulers sharing the bucket
	// should agree on it. At least 1s. Defaults to 10s.
	LeaseTTL time.Duration
	// LeaseMargin is subtracted from LeaseTTL to get the trust window: a
	// leader fires only until its last successful lease write's start +
	// LeaseTTL - LeaseMargin. It must be at least 0 and at most
	// LeaseTTL/2. Defaults to LeaseTTL/5.
	LeaseMargin time.Duration
	// Replicas is the number of copies of the buckets the scheduler
	// creates. Defaults to 1.
	Replicas int
	// FireTimeout bounds each publish and state write. Defaults to 5s.
	FireTimeout time.Duration
	// MaxConcurrentFires bounds the publishes in flight at once when many
	// slots are due together. Defaults to 64.
	MaxConcurrentFires int
	// InstanceID identifies this scheduler in the lease value and logs.
	// Defaults to "<hostname>-<pid>-<8 random hex digits>".
	InstanceID string
	// NowFunc is the clock for slots and the trust window. It should
	// return times with a monotonic reading, as time.Now does. Defaults to
	// time.Now.
	NowFunc func() time.Time
	// Logger receives the scheduler's log lines. Defaults to
	// slog.Default().
	Logger *slog.Logger

	// LeaderFunc, when set, is called with true when this instance gains
	// leadership and false when it loses it or stops. It must not block.
	LeaderFunc func(leading bool)
	// FiredFunc, when set, is called after every fire attempt (metrics:
	// fires, lag, failures). It runs on a fire worker and must not block.
	FiredFunc func(Fire)
	// RenewFailedFunc, when set, is called when a lease write fails for a
	// reason other than losing the lease (timeouts, connection trouble).
	// It must not block.
	RenewFailedFunc func(err error)
}

func (c Config) withDefaults() Config {
	c.LeaseKey = cmp.Or(c.LeaseKey, DefaultLeaseKey)
	c.LeaseTTL = cmp.Or(c.LeaseTTL, DefaultLeaseTTL)
	c.LeaseMargin = cmp.Or(c.LeaseMargin, c.LeaseTTL/5)
	c.Replicas = cmp.Or(c.Replicas, DefaultReplicas)
	c.FireTimeout = cmp.Or(c.FireTimeout, DefaultFireTimeout)
	c.MaxConcurrentFires = cmp.Or(c.MaxConcurrentFires, DefaultMaxConcurrentFires)
	if c.InstanceID == "" {
		host, _ := os.Hostname()
		c.InstanceID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), uuid.NewString()[:8])
	}
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if err := validateName(c.LeaseKey); err != nil {
		errs = append(errs, fmt.Errorf("schedule: LeaseKey: %w", err))
	}
	if c.LeaseTTL < time.Second {
		errs = append(errs, fmt.Errorf("schedule: LeaseTTL must be >= 1s, got %s", c.LeaseTTL))
	}
	if c.LeaseMargin < 0 || c.LeaseMargin > c.LeaseTTL/2 {
		errs = append(errs, fmt.Errorf("schedule: LeaseMargin must be between 0 and LeaseTTL/2 (%s), got %s", c.LeaseTTL/2, c.LeaseMargin))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("schedule: Replicas must be 1 to 5, got %d", c.Replicas))
	}
	if c.FireTimeout <= 0 {
		errs = append(errs, fmt.Errorf("schedule: FireTimeout must be > 0, got %s", c.FireTimeout))
	}
	if c.MaxConcurrentFires < 1 {
		errs = append(errs, fmt.Errorf("schedule: MaxConcurrentFires must be > 0, got %d", c.MaxConcurrentFires))
	}
	return errors.Join(errs...)
}

// Fire describes one fire attempt, passed to Config.FiredFunc.
type Fire struct {
	// Schedule is the entry's name.
	Schedule string
	// Slot is the slot fired.
	Slot time.Time
	// ID is the message ID sent: "<name>@<slot RFC 3339 UTC>".
	ID string
	// Lag is the time from the slot to the publish (jitter included).
	Lag time.Duration
	// Duplicate is true when the stream already had this ID (another
	// leader fired the slot first); the slot was still published once.
	Duplicate bool
	// Err is the failure, if any; the slot is retried after a second.
	Err error
}

// Scheduler fires the entries of the schedules bucket while it holds the
// leader lease. Run several for availability; one leads at a time. See the
// package documentation for the algorithm.
type Scheduler struct {
	js    jetstream.JetStream
	cfg   Config
	log   *slog.Logger
	store *Store
	ready chan struct{}
	ran   atomic.Bool
}

// New returns a Scheduler on js. It validates cfg and does no network
// I/O; the buckets are provisioned by [Scheduler.Run].
func New(js jetstream.JetStream, cfg Config) (*Scheduler, error) {
	if js == nil {
		return nil, errors.New("schedule: nil JetStream")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	store, err := NewStore(js, StoreConfig{Replicas: cfg.Replicas, NowFunc: cfg.NowFunc})
	if err != nil {
		return nil, err
	}
	return &Scheduler{
		js:    js,
		cfg:   cfg,
		store: store,
		log: cfg.Logger.With(slog.String(logkey.Component, "scheduler"),
			slog.String("instance", cfg.InstanceID)),
		ready: make(chan struct{}),
	}, nil
}

// Ready is closed once Run has provisioned the buckets, loaded the entries
// and made its first bid for the lease.
func (s *Scheduler) Ready() <-chan struct{} { return s.ready }

// Run provisions the buckets, campaigns for the lease and, while leading,
// fires the entries' slots. It blocks until ctx ends, then stops firing,
// releases the lease and returns nil; it returns an error if it cannot
// start or its connection is closed. A second call returns
// [ErrAlreadyRunning]. No goroutine it starts outlives it.
func (s *Scheduler) Run(ctx context.Context) error {
	if s.ran.Swap(true) {
		return ErrAlreadyRunning
	}
	if err := s.store.Provision(ctx); err != nil {
		return fmt.Errorf("schedule: %w", err)
	}
	entries, state, err := s.store.buckets(ctx, false)
	if err != nil {
		return fmt.Errorf("schedule: %w", err)
	}
	leaseKV, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         LeaseBucket,
		Description:    "jetworker leader leases",
		History:        1,
		TTL:            s.cfg.LeaseTTL,
		LimitMarkerTTL: max(s.cfg.LeaseTTL, time.Second),
		Replicas:       s.cfg.Replicas,
		Storage:        jetstream.FileStorage,
	})
	if err != nil {
		return fmt.Errorf("schedule: provision bucket %q: %w", LeaseBucket, err)
	}
	l := &lease{
		kv: leaseKV, key: s.cfg.LeaseKey, value: []byte(s.cfg.InstanceID),
		ttl: s.cfg.LeaseTTL, margin: s.cfg.LeaseMargin, now: s.cfg.NowFunc,
	}
	leaseWatch, err := leaseKV.Watch(ctx, s.cfg.LeaseKey, jetstream.UpdatesOnly())
	if err != nil {
		return fmt.Errorf("schedule: watch lease %q: %w", s.cfg.LeaseKey, err)
	}
	entryWatch, err := entries.WatchAll(ctx)
	if err != nil {
		_ = leaseWatch.Stop()
		return fmt.Errorf("schedule: watch %q: %w", SchedulesBucket, err)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "scheduler started",
		slog.String("lease_key", s.cfg.LeaseKey), slog.Duration("lease_ttl", s.cfg.LeaseTTL))

	changed := make(chan struct{}, 1)
	campaignReady := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer func() { _ = leaseWatch.Stop() }()
		s.campaign(ctx, l, leaseWatch, changed, campaignReady)
	})
	f := &firer{s: s, lease: l, state: state, items: map[string]*item{}}
	err = f.loop(ctx, entryWatch, changed, campaignReady)
	_ = entryWatch.Stop()
	wg.Wait()

	// Nothing fires any more: hand over.
	if lead, _ := l.leading(); lead && s.cfg.LeaderFunc != nil {
		s.cfg.LeaderFunc(false)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.FireTimeout)
	l.release(rctx, s.log)
	cancel()
	s.log.LogAttrs(ctx, slog.LevelInfo, "scheduler stopped")
	return err
}

// campaign keeps bidding for (or renewing) the lease every LeaseTTL/3, and
// at once when the watch shows the key deleted or expired.
func (s *Scheduler) campaign(ctx context.Context, l *lease, w jetstream.KeyWatcher, changed chan<- struct{}, ready chan<- struct{}) {
	tick := time.NewTicker(s.cfg.LeaseTTL / 3)
	defer tick.Stop()
	was := false
	step := func() {
		lead, err := l.attempt(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "lease write", slog.String(logkey.Err, err.Error()))
			if s.cfg.RenewFailedFunc != nil {
				s.cfg.RenewFailedFunc(err)
			}
		}
		s.transition(ctx, &was, lead, changed)
	}
	step()
	close(ready)
	updates := w.Updates()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			step()
		case kve, ok := <-updates:
			if !ok {
				updates = nil // connection closed; the ticker still retries
				continue
			}
			if kve != nil && kve.Operation() != jetstream.KeyValuePut {
				step() // released or expired: bid now
			}
		}
		if l.expire() {
			s.transition(ctx, &was, false, changed)
		}
	}
}

// transition reports a leadership change to the log, LeaderFunc and the
// fire loop.
func (s *Scheduler) transition(ctx context.Context, was *bool, lead bool, changed chan<- struct{}) {
	if lead == *was {
		if lead {
			// A new term may have started without us noticing a gap.
			select {
			case changed <- struct{}{}:
			default:
			}
		}
		return
	}
	*was = lead
	if lead {
		s.log.LogAttrs(ctx, slog.LevelInfo, "leader gained", slog.Bool(logkey.Leader, true))
	} else {
		s.log.LogAttrs(ctx, slog.LevelInfo, "leader lost", slog.Bool(logkey.Leader, false))
	}
	if s.cfg.LeaderFunc != nil {
		s.cfg.LeaderFunc(lead)
	}
	select {
	case changed <- struct{}{}:
	default:
	}
}

// item is one entry in the fire loop.
type item struct {
	c        compiled
	slot     time.Time // next slot to fire; zero when none
	due      time.Time // slot + jitter, or a retry time
	idx      int       // heap index; -1 when not queued
	last     time.Time // last slot recorded in the state bucket
	stateRev uint64    // revision of the state key as last seen
}

// slotHeap orders items by due time.
type slotHeap []*item

func (h slotHeap) Len() int           { return len(h) }
func (h slotHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h slotHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *slotHeap) Push(x any) {
	it := x.(*item)
	it.idx = len(*h)
	*h = append(*h, it)
}
func (h *slotHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	it.idx = -1
	return it
}

// firer owns the entries, the slot heap and one timer.
type firer struct {
	s     *Scheduler
	lease *lease
	state jetstream.KeyValue
	items map[string]*item
	heap  slotHeap
	term  uint64 // the leadership term the heap was built for; 0 = not leading
}

func (f *firer) loop(ctx context.Context, w jetstream.KeyWatcher, changed <-chan struct{}, campaignReady <-chan struct{}) error {
	timer := time.NewTimer(maxWait)
	defer timer.Stop()
	loaded := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case kve, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil // the watch ends with ctx
				}
				return fmt.Errorf("schedule: watch of %q ended (connection closed?)", SchedulesBucket)
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
			if f.s.js.Conn().IsClosed() {
				return fmt.Errorf("schedule: %w", nats.ErrConnectionClosed)
			}
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
	if old != nil && old.idx >= 0 {
		heap.Remove(&f.heap, old.idx)
	}
	c, ok := toChange(kve)
	if !ok || c.Deleted {
		delete(f.items, name)
		return
	}
	comp, err := c.Entry.compile()
	if err != nil {
		delete(f.items, name)
		f.s.log.LogAttrs(ctx, slog.LevelError, "invalid entry in bucket; not firing it",
			slog.String(logkey.Schedule, name), slog.String(logkey.Err, err.Error()))
		return
	}
	it := &item{c: comp, idx: -1}
	if old != nil {
		it.last, it.stateRev = old.last, old.stateRev
	}
	f.items[name] = it
	if f.term != 0 {
		// An edit takes effect from the next slot after now.
		f.schedule(it, comp.next(laterOf(f.s.cfg.NowFunc(), it.last)))
	}
}

// schedule queues it for slot (if any and the entry is not paused).
func (f *firer) schedule(it *item, slot time.Time) {
	it.slot = slot
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
		f.heap = f.heap[:0]
		for _, it := range f.items {
			it.idx = -1
		}
		return
	}
	if term == f.term {
		return
	}
	f.heap = f.heap[:0]
	for _, it := range f.items {
		it.idx = -1
	}
	if err := f.loadState(ctx); err != nil {
		if ctx.Err() != nil {
			return
		}
		// Without the cursors catch-up would guess; try again on the next
		// tick, firing nothing meanwhile.
		f.s.log.LogAttrs(ctx, slog.LevelWarn, "load schedule state", slog.String(logkey.Err, err.Error()))
		f.term = 0
		return
	}
	f.term = term
	now := f.s.cfg.NowFunc()
	for _, it := range f.items {
		f.schedule(it, catchUpSlot(it.c, it.last, now))
	}
}

// catchUpSlot returns the first slot to fire for an entry whose last
// fired slot is last, at time now, under its catch-up policy.
func catchUpSlot(c compiled, last, now time.Time) time.Time {
	if last.IsZero() {
		return c.next(now) // never fired: start with the next slot
	}
	first := c.next(last)
	if first.IsZero() || first.After(now) {
		return first // nothing missed
	}
	switch c.CatchUp {
	case CatchUpAll:
		return first
	case CatchUpOnce:
		latest := first
		for s := c.next(first); !s.IsZero() && !s.After(now); s = c.next(s) {
			latest = s
		}
		return latest
	default: // skip
		return c.next(now)
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
		it.last, it.stateRev = time.Time{}, 0
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
			it.last, it.stateRev = st.LastSlot, kve.Revision()
		case <-ctx.Done():
			return fmt.Errorf("read %q: %w", StateBucket, ctx.Err())
		}
	}
}

// fireDue fires every due slot, up to MaxConcurrentFires at a time, and
// requeues each item for its next slot.
func (f *firer) fireDue(ctx context.Context) {
	for {
		now := f.s.cfg.NowFunc()
		var batch []*item
		for len(f.heap) > 0 && !f.heap[0].due.After(now) {
			batch = append(batch, heap.Pop(&f.heap).(*item))
		}
		if len(batch) == 0 {
			return
		}
		ok := make([]bool, len(batch))
		sem := make(chan struct{}, f.s.cfg.MaxConcurrentFires)
		var wg sync.WaitGroup
		for i, it := range batch {
			if ctx.Err() != nil || !f.lease.trusted() {
				break
			}
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				ok[i] = f.fire(ctx, it)
			})
		}
		wg.Wait()
		if ctx.Err() != nil {
			return
		}
		if !f.lease.trusted() {
			// Lost (or can no longer prove) the lease: stop at once. The
			// next term rebuilds the heap from the recorded state.
			f.term = 0
			f.heap = f.heap[:0]
			for _, it := range f.items {
				it.idx = -1
			}
			return
		}
		for i, it := range batch {
			if f.items[it.c.Name] != it {
				continue // deleted or replaced meanwhile
			}
			if ok[i] {
				f.schedule(it, it.c.next(it.slot))
			} else {
				it.due = f.s.cfg.NowFunc().Add(retryDelay)
				heap.Push(&f.heap, it)
			}
		}
	}
}

// fire publishes one slot and records it. It returns false if the slot
// must be tried again.
func (f *firer) fire(ctx context.Context, it *item) bool {
	name, slot := it.c.Name, it.slot
	id := name + "@" + slot.UTC().Format(time.RFC3339)
	if !f.lease.trusted() {
		return false // re-checked right before the publish
	}
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.s.cfg.FireTimeout)
	defer cancel()
	ack, err := f.s.js.PublishMsg(octx, fireMsg(it.c.Entry, id, slot))
	lag := f.s.cfg.NowFunc().Sub(slot)
	if err != nil {
		err = fmt.Errorf("fire %q slot %s: publish to %q: %w", name, slot.UTC().Format(time.RFC3339), it.c.Subject, err)
		f.s.log.LogAttrs(ctx, slog.LevelWarn, "fire", slog.String(logkey.Schedule, name),
			slog.Time(logkey.Slot, slot), slog.String(logkey.Err, err.Error()))
		f.report(Fire{Schedule: name, Slot: slot, ID: id, Lag: lag, Err: err})
		return false
	}
	f.s.log.LogAttrs(ctx, slog.LevelDebug, "fired", slog.String(logkey.Schedule, name),
		slog.Time(logkey.Slot, slot), slog.Duration(logkey.Delay, lag), slog.Uint64(logkey.Seq, ack.Sequence))
	if err := f.record(octx, it, slot); err != nil {
		// Published but not recorded: a later leader may fire the slot
		// again, which the stream drops as a duplicate.
		f.s.log.LogAttrs(ctx, slog.LevelWarn, "record fired slot", slog.String(logkey.Schedule, name),
			slog.Time(logkey.Slot, slot), slog.String(logkey.Err, err.Error()))
	}
	f.report(Fire{Schedule: name, Slot: slot, ID: id, Lag: lag, Duplicate: ack.Duplicate})
	return true
}

func (f *firer) report(fr Fire) {
	if f.s.cfg.FiredFunc != nil {
		f.s.cfg.FiredFunc(fr)
	}
}

// record moves the entry's cursor to slot with a revision-checked write.
// A cursor already at or past slot (written by another leader) is kept.
func (f *firer) record(ctx context.Context, it *item, slot time.Time) error {
	data, err := json.Marshal(State{LastSlot: slot.UTC()})
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
			it.last, it.stateRev = slot, rev
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
		var st State
		if json.Unmarshal(kve.Value(), &st) == nil && !st.LastSlot.Before(slot) {
			it.last, it.stateRev = st.LastSlot, kve.Revision()
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
