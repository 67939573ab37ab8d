package schedule

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/internal/logkey"
	"github.com/jetworker/jetworker/internal/natsconn"
)

// Scheduler fires the entries of the schedules bucket while it holds the
// leader lease. Run several for availability; one leads at a time. See the
// package documentation for the algorithm.
type Scheduler struct {
	js      jetstream.JetStream
	fires   jetstream.JetStream // the same connection; fires publish through it
	acks    *acks               // the outcomes of fires, from fires' callbacks
	cursors jetstream.JetStream // the same connection; cursor writes go through it
	cfg     Config
	log     *slog.Logger
	store   *Store
	ready   chan struct{}
	ran     atomic.Bool
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
	// Fires publish asynchronously through a context of our own, so their
	// acks and the window do not mix with the caller's async publishes;
	// its callbacks queue every outcome, with the time it came, for the
	// fire loop (no future, channel or wake-up per fire), which is woken
	// once an eighth of the window has come back.
	a := newAcks(max(cfg.MaxConcurrentFires/8, 1))
	now := cfg.NowFunc
	fires, err := jetstream.New(js.Conn(),
		jetstream.WithPublishAsyncMaxPending(2*cfg.MaxConcurrentFires),
		jetstream.WithPublishAsyncTimeout(cfg.FireTimeout),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, ack *jetstream.PubAck) {
			a.add(outcome{msg: m, ack: ack, at: now()})
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			a.add(outcome{msg: m, err: err, at: now()})
		}))
	if err != nil {
		return nil, fmt.Errorf("schedule: async jetstream context: %w", err)
	}
	// Cursor writes have a context of their own: many may be in flight
	// at once after a burst of fires, and they must not take the fires'
	// window.
	cursors, err := jetstream.New(js.Conn(),
		jetstream.WithPublishAsyncMaxPending(2*cfg.MaxConcurrentFires),
		jetstream.WithPublishAsyncTimeout(cfg.FireTimeout))
	if err != nil {
		return nil, fmt.Errorf("schedule: async jetstream context: %w", err)
	}
	return &Scheduler{
		js:      js,
		fires:   fires,
		acks:    a,
		cursors: cursors,
		cfg:     cfg,
		store:   store,
		log: cfg.Logger.With(slog.String(logkey.Component, "scheduler"),
			slog.String("instance", cfg.InstanceID)),
		ready: make(chan struct{}),
	}, nil
}

// Ready is closed once Run has bound the buckets, loaded the entries
// and made its first bid for the lease.
func (s *Scheduler) Ready() <-chan struct{} { return s.ready }

// Run binds to the schedule, state and lease buckets (creating those
// missing, and updating the lease bucket when its TTL differs from
// Config.LeaseTTL; [Store.Provision] updates the others), campaigns for
// the lease and, while leading, fires the entries' slots. A scheduler
// whose identity only reads schedules, writes state and leases and
// publishes tasks runs on provisioned buckets (see deploy/README.md). It blocks until ctx ends, then stops firing,
// releases the lease and returns nil. It returns an error if it cannot
// start, and one wrapping nats.ErrConnectionClosed as soon as its
// connection is closed for good. A second call returns
// [ErrAlreadyRunning]. No goroutine it starts outlives it.
func (s *Scheduler) Run(ctx context.Context) error {
	if s.ran.Swap(true) {
		return ErrAlreadyRunning
	}
	// Bind to the buckets, creating those missing: a scheduler whose
	// identity may not manage buckets runs on provisioned ones.
	var (
		entries, state, leaseKV jetstream.KeyValue
	)
	err := s.retryTimeouts(ctx, "bind the schedule buckets", func() (err error) {
		entries, state, err = s.store.buckets(ctx, false)
		if err == nil {
			leaseKV, err = s.leaseBucket(ctx)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("schedule: %w", err)
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
	closed, stopWatch := natsconn.Watch(s.js.Conn())
	defer stopWatch()
	s.log.LogAttrs(ctx, slog.LevelInfo, "scheduler started",
		slog.String("lease_key", s.cfg.LeaseKey), slog.Duration("lease_ttl", s.cfg.LeaseTTL))

	// The campaign and the fire loop share runCtx: whichever stops first
	// (the connection closed, a watch ended) stops the other.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	changed := make(chan struct{}, 1)
	campaignReady := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer func() { _ = leaseWatch.Stop() }()
		s.campaign(runCtx, l, leaseWatch, changed, campaignReady)
	})
	f := newFirer(s, l, state)
	err = f.loop(runCtx, entryWatch, changed, campaignReady, closed)
	stop()
	_ = entryWatch.Stop()
	wg.Wait()
	f.drain()

	// Nothing fires any more: hand over.
	if lead, _ := l.leading(); lead {
		s.cfg.Hooks.leader(false)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.FireTimeout)
	l.release(rctx, s.log)
	cancel()
	s.log.LogAttrs(ctx, slog.LevelInfo, "scheduler stopped")
	return err
}

// LeaseConfig describes the lease bucket for [ProvisionLeases]. The zero
// value is the bucket of schedulers running with the default [Config].
type LeaseConfig struct {
	// TTL is the lease TTL of the schedulers sharing the bucket (their
	// Config.LeaseTTL); it is the bucket's MaxAge. At least 1s. Defaults
	// to [DefaultLeaseTTL], 10s.
	TTL time.Duration
	// Replicas is the number of copies of the bucket, 1 to 5; use 3 in a
	// cluster. Defaults to 1.
	Replicas int
}

func (c LeaseConfig) withDefaults() LeaseConfig {
	c.TTL = cmp.Or(c.TTL, DefaultLeaseTTL)
	c.Replicas = cmp.Or(c.Replicas, DefaultReplicas)
	return c
}

func (c LeaseConfig) validate() error {
	var errs []error
	if c.TTL < time.Second {
		errs = append(errs, fmt.Errorf("schedule: LeaseConfig.TTL must be >= 1s, got %s", c.TTL))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("schedule: LeaseConfig.Replicas must be 1 to 5, got %d", c.Replicas))
	}
	return errors.Join(errs...)
}

// kvConfig is the lease bucket's configuration.
func (c LeaseConfig) kvConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:         LeaseBucket,
		Description:    "jetworker leader leases",
		History:        1,
		TTL:            c.TTL,
		LimitMarkerTTL: max(c.TTL, time.Second),
		Replicas:       c.Replicas,
		Storage:        jetstream.FileStorage,
	}
}

// ProvisionLeases creates the lease bucket [LeaseBucket] as cfg describes,
// or updates it. It is idempotent. [Scheduler.Run] creates the bucket
// too when it is missing; provision it ahead with an admin identity when
// schedulers may not manage streams. It checks cfg first and returns
// every problem without any I/O.
func ProvisionLeases(ctx context.Context, js jetstream.JetStream, cfg LeaseConfig) error {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	if _, err := js.CreateOrUpdateKeyValue(ctx, cfg.kvConfig()); err != nil {
		return fmt.Errorf("schedule: provision bucket %q: %w", LeaseBucket, err)
	}
	return nil
}

// leaseBucket binds to the lease bucket, creating it when missing and
// updating it only when its TTLs differ from the configured lease TTL
// (which needs an identity that may manage streams).
func (s *Scheduler) leaseBucket(ctx context.Context) (jetstream.KeyValue, error) {
	cfg := LeaseConfig{TTL: s.cfg.LeaseTTL, Replicas: s.cfg.Replicas}.kvConfig()
	kv, err := s.js.KeyValue(ctx, LeaseBucket)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
	case err != nil:
		return nil, fmt.Errorf("bind bucket %q: %w", LeaseBucket, err)
	default:
		st, err := kv.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("bucket %q: %w", LeaseBucket, err)
		}
		if st.TTL() == cfg.TTL && st.LimitMarkerTTL() == cfg.LimitMarkerTTL {
			return kv, nil
		}
	}
	kv, err = s.js.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("provision bucket %q (lease TTL %s): %w", LeaseBucket, s.cfg.LeaseTTL, err)
	}
	return kv, nil
}

// retryTimeouts runs f until it returns something other than a timeout,
// ctx ends or a minute has passed, waiting 250ms doubling to 4s between
// tries. Creating an R3 bucket on a fresh cluster can time out while
// another scheduler creates the same one; the next try binds to it.
func (s *Scheduler) retryTimeouts(ctx context.Context, what string, f func() error) error {
	giveUp := time.Now().Add(time.Minute)
	wait := 250 * time.Millisecond
	for {
		err := f()
		timedOut := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoStreamResponse)
		if !timedOut || ctx.Err() != nil || time.Now().After(giveUp) {
			return err
		}
		s.log.LogAttrs(ctx, slog.LevelWarn, what+": timed out; trying again", slog.Duration("in", wait), slog.Any(logkey.Err, err))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 4*time.Second)
	}
}
