package outbox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/internal/backoff"
	"github.com/jetworker/jetworker/internal/logkey"
)

// Defaults for [RelayConfig].
const (
	// DefaultBatchSize is the most rows one batch claims.
	DefaultBatchSize = 1000
	// DefaultConcurrency is the number of batches one relay runs at once.
	DefaultConcurrency = 2
	// DefaultPollInterval is how often an idle relay looks for rows when
	// no notification woke it.
	DefaultPollInterval = time.Second
	// DefaultAckTimeout bounds the wait for one publish's PubAck.
	DefaultAckTimeout = 5 * time.Second
	// DefaultRetryMin and DefaultRetryMax bound the backoff after a
	// failed batch.
	DefaultRetryMin = 100 * time.Millisecond
	DefaultRetryMax = 5 * time.Second
)

// dbTimeout bounds the SQL of one batch after its publishes.
const dbTimeout = 30 * time.Second

// busyPoll is how soon a loop whose last batch found rows (but not a full
// batch) looks again without a notification.
const busyPoll = 20 * time.Millisecond

// RelayConfig tunes a [Relay]. The zero value is ready to use.
type RelayConfig struct {
	// Config locates the outbox (Schema, Table); IDFunc is not used.
	Config
	// BatchSize is the most rows one batch claims and publishes. Defaults
	// to 1000.
	BatchSize int
	// Concurrency is the number of batches in flight at once: while one
	// waits for its PubAcks another claims. Several relays share the rows
	// the same way. Defaults to 2.
	Concurrency int
	// PollInterval is how often an idle relay looks for due rows when no
	// notification woke it: the fallback for lost notifications (and the
	// only way with DisableNotify). A relay whose last batch found rows
	// looks again within 20ms, and one that knows when the next delayed
	// row is due looks then. Defaults to 1s.
	PollInterval time.Duration
	// AckTimeout bounds the wait for a publish's PubAck; a publish without
	// one by then is tried again. Defaults to 5s.
	AckTimeout time.Duration
	// RetryMin and RetryMax bound the exponential backoff after a batch
	// failed (NATS or PostgreSQL unreachable). Default to 100ms and 5s.
	RetryMin, RetryMax time.Duration
	// KeepPublished marks published rows (published_at, stream,
	// stream_seq) instead of deleting them, for audit; prune them with
	// [Outbox.PrunePublished]. Defaults to false: rows are deleted.
	KeepPublished bool
	// Hooks observe batches and dead rows (metrics).
	Hooks Hooks
	// Logger receives the relay's log lines. Defaults to slog.Default().
	Logger *slog.Logger
}

func (c RelayConfig) withDefaults() RelayConfig {
	c.Config = c.Config.withDefaults()
	c.BatchSize = cmp.Or(c.BatchSize, DefaultBatchSize)
	c.Concurrency = cmp.Or(c.Concurrency, DefaultConcurrency)
	c.PollInterval = cmp.Or(c.PollInterval, DefaultPollInterval)
	c.AckTimeout = cmp.Or(c.AckTimeout, DefaultAckTimeout)
	c.RetryMin = cmp.Or(c.RetryMin, DefaultRetryMin)
	c.RetryMax = cmp.Or(c.RetryMax, DefaultRetryMax)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports what is wrong with c (after defaults), as NewRelay
// would, without I/O. Errors wrap [ErrInvalidConfig].
func (c RelayConfig) Validate() error { return c.withDefaults().validate() }

func (c RelayConfig) validate() error {
	errs := []error{c.Config.validate()}
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.BatchSize < 1 || c.BatchSize > 100_000 {
		bad("BatchSize must be 1 to 100000, got %d", c.BatchSize)
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		bad("Concurrency must be 1 to 64, got %d", c.Concurrency)
	}
	if c.PollInterval < 10*time.Millisecond {
		bad("PollInterval must be >= 10ms, got %s", c.PollInterval)
	}
	if c.AckTimeout < 10*time.Millisecond {
		bad("AckTimeout must be >= 10ms, got %s", c.AckTimeout)
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		bad("RetryMin must be > 0 and RetryMax >= RetryMin, got %s and %s", c.RetryMin, c.RetryMax)
	}
	return errors.Join(errs...)
}

// Relay moves committed outbox rows into JetStream: it claims due rows,
// publishes them asynchronously with their task ID as Nats-Msg-Id, and
// deletes (or marks) each only after its PubAck. Run as many relays as
// needed; they share the rows. See the package documentation for the
// guarantees.
type Relay struct {
	pool  *pgxpool.Pool
	nc    *nats.Conn
	js    jetstream.JetStream // our async context on the caller's connection
	api   jetstream.JetStream // the caller's, for stream look-ups (keeps its domain)
	cfg   RelayConfig
	o     *Outbox
	log   *slog.Logger
	retry backoff.Exponential
	q     queries

	ready chan struct{}
	ran   atomic.Bool
	turn  atomic.Uint64 // batches started, to alternate the claims
}

// NewRelay returns a relay that reads the outbox through pool and
// publishes on js's connection. It validates cfg and does no I/O.
//
// Errors: [ErrInvalidConfig]; an error for a nil pool or js.
func NewRelay(pool *pgxpool.Pool, js jetstream.JetStream, cfg RelayConfig) (*Relay, error) {
	if pool == nil || js == nil {
		return nil, errors.New("outbox: NewRelay needs a pool and a JetStream")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	o, err := New(cfg.Config)
	if err != nil {
		return nil, err
	}
	r := &Relay{
		pool:  pool,
		nc:    js.Conn(),
		api:   js,
		cfg:   cfg,
		o:     o,
		retry: backoff.Exponential{Base: cfg.RetryMin, Max: cfg.RetryMax, Jitter: 0.2},
		q:     newQueries(o.n),
		ready: make(chan struct{}),
		log: cfg.Logger.With(slog.String(logkey.Component, "outbox-relay"),
			slog.String("outbox", o.n.channel)),
	}
	// Our own context on the caller's connection, for the async window
	// and ack timeout; publishing uses no API prefix or domain, so
	// nothing of the caller's context is lost.
	r.js, err = jetstream.New(r.nc,
		jetstream.WithPublishAsyncMaxPending(2*cfg.BatchSize*cfg.Concurrency),
		jetstream.WithPublishAsyncTimeout(cfg.AckTimeout),
	)
	if err != nil {
		return nil, fmt.Errorf("outbox: jetstream context: %w", err)
	}
	return r, nil
}

// Ready is closed once Run has checked the outbox table, started
// listening for notifications and made its first claim.
func (r *Relay) Ready() <-chan struct{} { return r.ready }

// Outbox returns the relay's outbox (for the dead-row tools).
func (r *Relay) Outbox() *Outbox { return r.o }

// Stats reports the relay's outbox: pending and dead rows and the lag.
// See [Outbox.Stats].
func (r *Relay) Stats(ctx context.Context) (Stats, error) { return r.o.Stats(ctx, r.pool) }

// Check is a readiness check: it returns nil when PostgreSQL answers a
// ping and the NATS connection is up and answers a round trip, and an
// error naming the one that does not otherwise. Without a deadline in ctx
// it waits at most 5s.
func (r *Relay) Check(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	var errs []error
	if err := r.pool.Ping(ctx); err != nil {
		errs = append(errs, fmt.Errorf("outbox: postgres unreachable: %w", err))
	}
	if st := r.nc.Status(); st != nats.CONNECTED {
		errs = append(errs, fmt.Errorf("outbox: nats connection %s", st))
	} else if err := r.nc.FlushWithContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("outbox: nats unreachable: %w", err))
	}
	return errors.Join(errs...)
}

// Run relays rows until ctx ends, then lets the batches in flight finish
// (their PubAcks, their deletes) and returns nil. It returns an error
// when it cannot start (PostgreSQL unreachable, [ErrNotMigrated]) or
// when the NATS connection is closed for good. While running, failures
// of PostgreSQL or NATS are logged and retried with backoff. A second
// call returns [ErrAlreadyRunning]. No goroutine it starts outlives it.
func (r *Relay) Run(ctx context.Context) error {
	if r.ran.Swap(true) {
		return ErrAlreadyRunning
	}
	if err := r.checkTable(ctx); err != nil {
		return err
	}
	closed := r.nc.StatusChanged(nats.CLOSED)
	defer r.nc.RemoveStatusListener(closed)
	if r.nc.IsClosed() {
		return fmt.Errorf("outbox: relay: %w", nats.ErrConnectionClosed)
	}
	r.log.LogAttrs(ctx, slog.LevelInfo, "outbox relay started",
		slog.Int("batch_size", r.cfg.BatchSize), slog.Int("concurrency", r.cfg.Concurrency),
		slog.Bool("keep_published", r.cfg.KeepPublished))

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// wake holds at most one pending wake-up; whichever loop is idle
	// takes it, and a loop that claims a full batch passes one on, so
	// more loops join only while there is a backlog.
	wake := make(chan struct{}, 1)
	listening := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { r.listen(runCtx, wake, listening) })
	select {
	case <-listening:
	case <-runCtx.Done():
	}
	first := make(chan struct{})
	for i := range r.cfg.Concurrency {
		wg.Go(func() { r.loop(runCtx, wake, i, first) })
	}
	select {
	case <-first:
		close(r.ready)
	case <-runCtx.Done():
	}

	var err error
	select {
	case <-ctx.Done():
	case <-closed:
		err = fmt.Errorf("outbox: relay: NATS connection closed: %w", cmp.Or(r.nc.LastError(), nats.ErrConnectionClosed))
	}
	cancel()
	wg.Wait()
	r.log.LogAttrs(context.WithoutCancel(ctx), slog.LevelInfo, "outbox relay stopped")
	return err
}

// checkTable fails when the outbox table is missing or unreachable.
func (r *Relay) checkTable(ctx context.Context) error {
	var exists bool
	if err := r.pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", r.o.n.table).Scan(&exists); err != nil {
		return fmt.Errorf("outbox: relay: check table %s: %w", r.o.n.table, err)
	}
	if !exists {
		return fmt.Errorf("%w: %s", ErrNotMigrated, r.o.n.table)
	}
	return nil
}

// signal sends a wake-up unless one is pending.
func signal(wake chan<- struct{}) {
	select {
	case wake <- struct{}{}:
	default:
	}
}

// listen holds a connection of its own (not the pool's: a LISTENing
// session must not serve other queries) that waits for the trigger's
// notifications, and wakes a loop for each. It reconnects with backoff;
// meanwhile the loops poll. It closes listening after its first attempt.
func (r *Relay) listen(ctx context.Context, wake chan<- struct{}, listening chan<- struct{}) {
	if r.cfg.DisableNotify {
		close(listening)
		return
	}
	var once sync.Once
	attempt := 0
	for ctx.Err() == nil {
		err := r.listenOnce(ctx, wake, func() { once.Do(func() { close(listening) }); attempt = 0 })
		once.Do(func() { close(listening) })
		if ctx.Err() != nil {
			return
		}
		attempt++
		d := r.retry.Delay(attempt)
		r.log.LogAttrs(ctx, slog.LevelWarn, "outbox relay: notifications lost, polling until listening again",
			slog.Any(logkey.Err, err), slog.Duration(logkey.Delay, d))
		sleep(ctx, d)
	}
}

func (r *Relay) listenOnce(ctx context.Context, wake chan<- struct{}, listening func()) error {
	conn, err := pgx.ConnectConfig(ctx, r.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+r.o.n.listen); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	listening()
	signal(wake) // rows committed while nobody listened
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		signal(wake)
	}
}

// loop runs batches: at once while they come back full, else when woken,
// when the next delayed row is due or after PollInterval. Loop 0 closes
// first after its first claim.
func (r *Relay) loop(ctx context.Context, wake chan struct{}, i int, first chan<- struct{}) {
	timer := time.NewTimer(0) // claim at start
	defer timer.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-timer.C:
		}
		for ctx.Err() == nil {
			res := r.batch(ctx, wake)
			if i == 0 && first != nil {
				close(first)
				first = nil
			}
			if res.err != nil {
				failures++
				d := r.retry.Delay(failures)
				r.log.LogAttrs(ctx, slog.LevelWarn, "outbox relay: batch failed, retrying",
					slog.Any(logkey.Err, res.err), slog.Int("rows", res.claimed), slog.Duration(logkey.Delay, d))
				resetTimer(timer, d)
				break
			}
			failures = 0
			if res.claimed == 0 {
				resetTimer(timer, r.idleWait(ctx))
				break
			}
			if res.claimed < r.cfg.BatchSize {
				// Rows are flowing: look again soon even if no
				// notification comes (DisableNotify, or one was lost).
				resetTimer(timer, min(busyPoll, r.idleWait(ctx)))
				break
			}
		}
	}
}

// idleWait returns how long an idle loop waits for a notification: until
// the next delayed row is due, at most PollInterval.
func (r *Relay) idleWait(ctx context.Context) time.Duration {
	var next *float64
	if err := r.pool.QueryRow(ctx, r.q.nextDue).Scan(&next); err != nil || next == nil {
		return r.cfg.PollInterval
	}
	return min(max(time.Duration(*next*float64(time.Second)), time.Millisecond), r.cfg.PollInterval)
}

func resetTimer(t *time.Timer, d time.Duration) {
	t.Stop()
	t.Reset(d)
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
