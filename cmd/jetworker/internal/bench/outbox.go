package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/outbox"
)

// Sides of the outbox benchmark.
const (
	// SideOutbox is outbox.Outbox.EnqueueMany in transactions, then
	// outbox.Relay publishing the committed rows.
	SideOutbox = "outbox"
	// SideRawPublish publishes the same messages (subject, payload and a
	// Nats-Msg-Id, as the relay sends them) with PublishAsync.
	SideRawPublish = "raw"
)

// Defaults of [OutboxConfig].
const (
	DefaultOutboxTable   = "jetworker_bench"
	DefaultOutboxTxRows  = 1000
	DefaultOutboxRate    = 1000
	DefaultOutboxSeconds = 10
)

// latencySenders is how many goroutines take the paced slots of the
// latency phase, so that a slow commit does not hold the next one back.
const latencySenders = 16

// OutboxConfig describes an outbox benchmark. The pool should allow
// latencySenders (16) connections besides the relay's (Concurrency + 1).
type OutboxConfig struct {
	// N is the number of rows of the throughput phase. Defaults to
	// 100,000.
	N int
	// Size is the payload size in bytes. Defaults to 256.
	Size int
	// TxRows is the number of rows per enqueuing transaction. Defaults to
	// 1,000.
	TxRows int
	// Publishers is the number of enqueuing goroutines, each with its own
	// transactions. Defaults to 1.
	Publishers int
	// Rate paces the latency phase in rows/s, one row per transaction.
	// Defaults to 1,000.
	Rate int
	// Seconds is the length of the latency phase. Defaults to 10.
	Seconds int
	// Rounds runs both sides this many times, alternating which goes
	// first. Defaults to 3.
	Rounds int
	// Replicas of the benchmark stream. Defaults to 1.
	Replicas int
	// Outbox locates the benchmark's outbox tables. The table must not
	// exist: the run creates it and drops it afterwards. Table defaults
	// to "jetworker_bench".
	Outbox outbox.Config
	// Relay tunes the relay (BatchSize, Concurrency, PollInterval);
	// its Config is Outbox's.
	Relay outbox.RelayConfig
	// Progress, when set, is called with a phase name and the work done.
	Progress func(phase string, done, total int)
}

func (c OutboxConfig) withDefaults() OutboxConfig {
	c.N = cmp.Or(c.N, DefaultN)
	c.Size = cmp.Or(c.Size, DefaultSize)
	c.TxRows = cmp.Or(c.TxRows, DefaultOutboxTxRows)
	c.Publishers = cmp.Or(c.Publishers, 1)
	c.Rate = cmp.Or(c.Rate, DefaultOutboxRate)
	c.Seconds = cmp.Or(c.Seconds, DefaultOutboxSeconds)
	c.Rounds = cmp.Or(c.Rounds, DefaultRounds)
	c.Replicas = cmp.Or(c.Replicas, 1)
	c.Outbox.Table = cmp.Or(c.Outbox.Table, DefaultOutboxTable)
	c.Outbox.Schema = cmp.Or(c.Outbox.Schema, outbox.DefaultSchema)
	c.Relay.Config = c.Outbox
	if c.Relay.Logger == nil {
		c.Relay.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Progress == nil {
		c.Progress = func(string, int, int) {}
	}
	return c
}

func (c OutboxConfig) validate() error {
	var errs []error
	if c.N < 1 || c.Size < 0 || c.TxRows < 1 || c.Publishers < 1 {
		errs = append(errs, fmt.Errorf("bench: N, TxRows and Publishers must be > 0 and Size >= 0, got %d, %d, %d and %d", c.N, c.TxRows, c.Publishers, c.Size))
	}
	if c.Rate < 1 || c.Seconds < 1 || c.Rounds < 1 {
		errs = append(errs, fmt.Errorf("bench: Rate, Seconds and Rounds must be > 0, got %d, %d and %d", c.Rate, c.Seconds, c.Rounds))
	}
	if err := c.Relay.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("bench: %w", err))
	}
	return errors.Join(errs...)
}

// OutboxResult is one side's figures in one round (or the median round).
type OutboxResult struct {
	Name string `json:"name"`
	// EnqueuePerSec is the rows committed per second (outbox), and
	// PublishPerSec the messages stored per second: by the relay, from
	// its start to the last row's PubAck and delete, or by raw
	// PublishAsync to the last PubAck.
	EnqueuePerSec float64 `json:"enqueue_per_sec,omitempty"`
	PublishPerSec float64 `json:"publish_per_sec"`
	// Latency is, at the paced rate, from the commit (outbox; Commit is
	// called) or the publish call (raw) to the moment a consumer of the
	// stream receives the message. Lost counts messages not received
	// within 10s of the last send.
	Latency Latency `json:"latency"`
	Lost    int     `json:"lost"`
}

// OutboxReport is an outbox benchmark's outcome.
type OutboxReport struct {
	Mode       string `json:"mode"`
	N          int    `json:"n"`
	Size       int    `json:"size"`
	TxRows     int    `json:"tx_rows"`
	Publishers int    `json:"publishers"`
	Rate       int    `json:"rate"`
	Seconds    int    `json:"seconds"`
	Rounds     int    `json:"rounds"`
	// RelayBatchSize and RelayConcurrency are the relay's settings, and
	// Notify whether the notification trigger woke it.
	RelayBatchSize   int  `json:"relay_batch_size"`
	RelayConcurrency int  `json:"relay_concurrency"`
	Notify           bool `json:"notify"`
	// Postgres is the server's version.
	Postgres string `json:"postgres"`
	// Outbox and Raw are each side's median round.
	Outbox OutboxResult `json:"outbox"`
	Raw    OutboxResult `json:"raw"`
	// Ratios compares the outbox with raw publishing: the relay's rate
	// and the enqueue rate over raw's publish rate, and the latency's
	// p50 and p99 (lower is better).
	Ratios     []Ratio `json:"ratios"`
	Server     string  `json:"server"`
	GoMaxProcs int     `json:"gomaxprocs"`
	GOGC       string  `json:"gogc"`
}

// outboxStream is the benchmark's stream; the sides publish under
// bench.outbox.<side>.
const outboxStream = "BENCH_OUTBOX"

// RunOutbox measures the transactional outbox on the PostgreSQL of pool
// and the server js is connected to: enqueue throughput (cfg.N rows in
// transactions of cfg.TxRows), relay throughput (outbox.Relay until every
// row is published), and commit-to-receive latency at cfg.Rate rows/s;
// against raw PublishAsync of the same messages on the same server. It
// creates the outbox tables (refusing a table that exists) and a stream,
// and drops both afterwards.
func RunOutbox(ctx context.Context, pool *pgxpool.Pool, js jetstream.JetStream, cfg OutboxConfig) (OutboxReport, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return OutboxReport{}, err
	}
	rc := cfg.Relay
	rep := OutboxReport{
		Mode: Outbox, N: cfg.N, Size: cfg.Size, TxRows: cfg.TxRows, Publishers: cfg.Publishers, Rate: cfg.Rate,
		Seconds: cfg.Seconds, Rounds: cfg.Rounds,
		RelayBatchSize: cmp.Or(rc.BatchSize, outbox.DefaultBatchSize), RelayConcurrency: cmp.Or(rc.Concurrency, outbox.DefaultConcurrency),
		Notify: !cfg.Outbox.DisableNotify,
		Server: js.Conn().ConnectedServerVersion(), GoMaxProcs: runtime.GOMAXPROCS(0), GOGC: cmp.Or(os.Getenv("GOGC"), "100"),
	}
	if err := pool.QueryRow(ctx, "SHOW server_version").Scan(&rep.Postgres); err != nil {
		return rep, fmt.Errorf("postgres: %w", err)
	}
	dropTables, err := createOutbox(ctx, pool, cfg.Outbox)
	if err != nil {
		return rep, err
	}
	defer dropTables()
	ob, err := outbox.New(cfg.Outbox)
	if err != nil {
		return rep, err
	}
	dropStream, err := createStream(ctx, js, outboxStream, []string{"bench.outbox.>"}, jetstream.LimitsPolicy, cfg.Replicas, benchDuplicates)
	if err != nil {
		return rep, err
	}
	defer dropStream()
	purge := func() {
		if st, err := js.Stream(ctx, outboxStream); err == nil {
			_ = st.Purge(ctx)
		}
	}
	payload := make([]byte, cfg.Size)

	var outs, raws []OutboxResult
	var rs ratios
	for round := range cfg.Rounds {
		o, r := OutboxResult{Name: SideOutbox}, OutboxResult{Name: SideRawPublish}
		steps := []func() error{
			func() (err error) {
				purge()
				o.EnqueuePerSec, o.PublishPerSec, err = outboxThroughput(ctx, pool, js, ob, cfg, payload)
				return err
			},
			func() (err error) {
				purge()
				r.PublishPerSec, err = rawThroughput(ctx, js, cfg, payload)
				return err
			},
		}
		lat := []func() error{
			func() (err error) {
				purge()
				o.Latency, o.Lost, err = outboxLatency(ctx, pool, js, ob, cfg, payload)
				return err
			},
			func() (err error) {
				purge()
				r.Latency, r.Lost, err = rawLatency(ctx, js, cfg, payload)
				return err
			},
		}
		if round%2 == 1 {
			steps[0], steps[1] = steps[1], steps[0]
			lat[0], lat[1] = lat[1], lat[0]
		}
		for _, step := range append(steps, lat...) {
			if err := step(); err != nil {
				return rep, fmt.Errorf("round %d: %w", round+1, err)
			}
		}
		outs, raws = append(outs, o), append(raws, r)
		rs.add("relay publish/s", SideOutbox, SideRawPublish, false, o.PublishPerSec, r.PublishPerSec)
		rs.add("enqueue/s", SideOutbox, SideRawPublish, false, o.EnqueuePerSec, r.PublishPerSec)
		rs.add("latency p50", SideOutbox, SideRawPublish, true, float64(o.Latency.P50), float64(r.Latency.P50))
		rs.add("latency p99", SideOutbox, SideRawPublish, true, float64(o.Latency.P99), float64(r.Latency.P99))
	}
	rep.Outbox, rep.Raw = medianOutbox(outs), medianOutbox(raws)
	rep.Ratios = rs.summary()
	return rep, nil
}

// createOutbox migrates the benchmark's outbox after checking its table
// does not exist, and returns the function that drops what it created.
func createOutbox(ctx context.Context, pool *pgxpool.Pool, cfg outbox.Config) (func(), error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	table := pgx.Identifier{cfg.Schema, cfg.Table}.Sanitize()
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil {
		return nil, fmt.Errorf("check table %s: %w", table, err)
	}
	if exists {
		return nil, fmt.Errorf("bench: table %s exists: the benchmark creates its own outbox and drops it afterwards, so it will not use one that may hold rows; name a table that does not exist", table)
	}
	drop := func() {
		ctx := context.WithoutCancel(ctx)
		_, _ = pool.Exec(ctx, "DROP TABLE IF EXISTS "+table+", "+pgx.Identifier{cfg.Schema, cfg.Table + "_dead"}.Sanitize())
		_, _ = pool.Exec(ctx, "DROP FUNCTION IF EXISTS "+pgx.Identifier{cfg.Schema, cfg.Table + "_notify"}.Sanitize()+"()")
	}
	if err := outbox.Migrate(ctx, pool, cfg); err != nil {
		drop()
		return nil, err
	}
	return drop, nil
}

// outboxThroughput commits cfg.N rows, then relays them; it returns the
// rows committed per second and the rows published per second.
func outboxThroughput(ctx context.Context, pool *pgxpool.Pool, js jetstream.JetStream, ob *outbox.Outbox, cfg OutboxConfig, payload []byte) (enqueue, publish float64, err error) {
	subject := "bench.outbox." + SideOutbox
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, cfg.Publishers)
	start := time.Now()
	for range cfg.Publishers {
		wg.Go(func() {
			msgs := make([]outbox.Message, cfg.TxRows)
			for i := range msgs {
				msgs[i] = outbox.Message{Subject: subject, Data: payload}
			}
			for {
				from := int(next.Add(int64(cfg.TxRows))) - cfg.TxRows
				if from >= cfg.N {
					return
				}
				m := msgs[:min(cfg.TxRows, cfg.N-from)]
				if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					_, err := ob.EnqueueMany(ctx, tx, m)
					return err
				}); err != nil {
					errs <- fmt.Errorf("enqueue: %w", err)
					return
				}
				cfg.Progress(SideOutbox+" enqueue", min(from+len(m), cfg.N), cfg.N)
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, 0, err
	}
	enqueue = float64(cfg.N) / time.Since(start).Seconds()

	var published atomic.Int64
	all := make(chan struct{})
	var once sync.Once
	rc := cfg.Relay
	rc.Hooks = outbox.Hooks{BatchFunc: func(b outbox.Batch) {
		n := published.Add(int64(b.Published))
		cfg.Progress(SideOutbox+" relay", int(min(n, int64(cfg.N))), cfg.N)
		if n >= int64(cfg.N) {
			once.Do(func() { close(all) })
		}
	}}
	relay, err := outbox.NewRelay(pool, js, rc)
	if err != nil {
		return enqueue, 0, err
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	start = time.Now()
	go func() { done <- relay.Run(rctx) }()
	select {
	case <-all:
		publish = float64(cfg.N) / time.Since(start).Seconds()
	case err = <-done:
		stop()
		return enqueue, 0, fmt.Errorf("relay stopped: %w", err)
	case <-ctx.Done():
		err = ctx.Err()
	}
	stop()
	if rerr := <-done; err == nil && rerr != nil {
		err = fmt.Errorf("relay: %w", rerr)
	}
	return enqueue, publish, err
}

// rawThroughput publishes cfg.N messages with PublishAsync, each with a
// Nats-Msg-Id as the relay's, and returns the messages stored per second.
func rawThroughput(ctx context.Context, js jetstream.JetStream, cfg OutboxConfig, payload []byte) (float64, error) {
	subject := "bench.outbox." + SideRawPublish
	start := time.Now()
	for i := range cfg.N {
		msg := &nats.Msg{Subject: subject, Data: payload, Header: nats.Header{jetworker.HeaderMsgID: {newRawID()}}}
		if _, err := js.PublishMsgAsync(msg); err != nil {
			return 0, fmt.Errorf("publish: %w", err)
		}
		if (i+1)%1000 == 0 {
			cfg.Progress(SideRawPublish+" publish", i+1, cfg.N)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		return 0, errors.New("acks did not arrive within a minute")
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return float64(cfg.N) / time.Since(start).Seconds(), nil
}

// newRawID returns a UUIDv7, the form of the outbox's default IDs.
func newRawID() string { return uuid.Must(uuid.NewV7()).String() }

// seqHeader carries a latency message's index.
const seqHeader = "Bench-Seq"

// outboxLatency enqueues one row per transaction at cfg.Rate for
// cfg.Seconds with the relay running, and measures from the call of
// Commit to a consumer's receipt.
func outboxLatency(ctx context.Context, pool *pgxpool.Pool, js jetstream.JetStream, ob *outbox.Outbox, cfg OutboxConfig, payload []byte) (Latency, int, error) {
	relay, err := outbox.NewRelay(pool, js, cfg.Relay)
	if err != nil {
		return Latency{}, 0, err
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- relay.Run(rctx) }()
	defer func() {
		stop()
		<-done
	}()
	select {
	case <-relay.Ready():
	case err := <-done:
		done <- err
		return Latency{}, 0, fmt.Errorf("relay stopped: %w", err)
	case <-ctx.Done():
		return Latency{}, 0, ctx.Err()
	}
	subject := "bench.outbox.lat." + SideOutbox
	return measureLatency(ctx, js, cfg, subject, SideOutbox, func(i int) (time.Time, error) {
		tx, err := pool.Begin(ctx)
		if err != nil {
			return time.Time{}, err
		}
		defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
		if _, err := ob.Enqueue(ctx, tx, subject, payload, &outbox.EnqueueOpts{Header: nats.Header{seqHeader: {strconv.Itoa(i)}}}); err != nil {
			return time.Time{}, err
		}
		at := time.Now()
		return at, tx.Commit(ctx)
	})
}

// rawLatency publishes the same messages at the same pace with
// PublishAsync, measured from the publish call.
func rawLatency(ctx context.Context, js jetstream.JetStream, cfg OutboxConfig, payload []byte) (Latency, int, error) {
	subject := "bench.outbox.lat." + SideRawPublish
	l, lost, err := measureLatency(ctx, js, cfg, subject, SideRawPublish, func(i int) (time.Time, error) {
		at := time.Now()
		msg := &nats.Msg{Subject: subject, Data: payload, Header: nats.Header{seqHeader: {strconv.Itoa(i)}, jetworker.HeaderMsgID: {newRawID()}}}
		_, err := js.PublishMsgAsync(msg)
		return at, err
	})
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(10 * time.Second):
	}
	return l, lost, err
}

// measureLatency sends cfg.Rate x cfg.Seconds messages through send at
// cfg.Rate, from latencySenders goroutines, and measures from the time
// send gives for each (taken just before its commit or publish call) to
// the receipt by an ordered consumer of subject.
func measureLatency(ctx context.Context, js jetstream.JetStream, cfg OutboxConfig, subject, name string, send func(i int) (time.Time, error)) (Latency, int, error) {
	n := cfg.Rate * cfg.Seconds
	sent := make([]time.Time, n)
	got := make([]time.Time, n)
	var mu sync.Mutex
	received := 0
	all := make(chan struct{})
	cons, err := js.OrderedConsumer(ctx, outboxStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return Latency{}, 0, fmt.Errorf("consumer: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		now := time.Now()
		i, err := strconv.Atoi(m.Headers().Get(seqHeader))
		if err != nil || i < 0 || i >= n {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if got[i].IsZero() {
			got[i] = now
			if received++; received == n {
				close(all)
			}
		}
	})
	if err != nil {
		return Latency{}, 0, fmt.Errorf("consume: %w", err)
	}
	defer func() {
		cc.Stop()
		<-cc.Closed()
	}()

	slots := make(chan int)
	errs := make(chan error, latencySenders)
	var wg sync.WaitGroup
	for range latencySenders {
		wg.Go(func() {
			for i := range slots {
				at, err := send(i)
				if err != nil {
					errs <- fmt.Errorf("%s: send %d: %w", name, i, err)
					return
				}
				mu.Lock()
				sent[i] = at
				mu.Unlock()
			}
		})
	}
	p := pacer{start: time.Now(), rate: cfg.Rate}
	timer := time.NewTimer(time.Hour)
	var sendErr error
pace:
	for i := range n {
		if d := p.wait(int64(i), time.Now()); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				sendErr = ctx.Err()
				break pace
			}
		}
		select {
		case slots <- i:
		case sendErr = <-errs:
			break pace
		case <-ctx.Done():
			sendErr = ctx.Err()
			break pace
		}
		if (i+1)%100 == 0 {
			cfg.Progress(name+" latency", i+1, n)
		}
	}
	timer.Stop()
	close(slots)
	wg.Wait()
	if sendErr == nil {
		select {
		case sendErr = <-errs:
		default:
		}
	}
	if sendErr != nil {
		return Latency{}, 0, sendErr
	}
	select {
	case <-all:
	case <-time.After(10 * time.Second):
	case <-ctx.Done():
		return Latency{}, 0, ctx.Err()
	}
	mu.Lock()
	defer mu.Unlock()
	lat := make([]time.Duration, 0, n)
	for i := range n {
		if !got[i].IsZero() {
			lat = append(lat, got[i].Sub(sent[i]))
		}
	}
	return summarize(lat), n - len(lat), nil
}

// medianOutbox takes each figure's median over rounds (the highest max
// latency and loss).
func medianOutbox(rs []OutboxResult) OutboxResult {
	out := rs[0]
	var enq, pub []float64
	var lats []Latency
	for _, r := range rs {
		enq, pub, lats = append(enq, r.EnqueuePerSec), append(pub, r.PublishPerSec), append(lats, r.Latency)
		out.Lost = max(out.Lost, r.Lost)
	}
	out.EnqueuePerSec, out.PublishPerSec, out.Latency = median(enq), median(pub), medianLatency(lats)
	return out
}
