package outbox_test

// Benchmarks on one durable PostgreSQL (fsync on) and one embedded
// nats-server, each side against a raw baseline in the same run:
//
//	go test -run '^$' -bench . -benchtime 1x ./outbox/
//
// JETWORKER_OUTBOX_BENCH_ROWS changes the relay benchmark's 100,000 rows.

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/internal/pgtest"
	"github.com/jetworker/jetworker/outbox"
)

const benchPayload = 256

// quiet is an outbox without the notification trigger.
var quiet = outbox.Config{Table: "quiet", DisableNotify: true}

type benchBundle struct {
	pool *pgxpool.Pool
	nc   *nats.Conn
	js   jetstream.JetStream
	o    *outbox.Outbox
}

// benchSetup starts a durable PostgreSQL with the outbox and a plain
// table of the same shape (the raw insert baseline), and a nats-server
// with a TASKS stream whose duplicate window is short, so the
// de-duplication index stays small alike for both sides.
func benchSetup(b *testing.B) *benchBundle {
	b.Helper()
	pg := pgtest.Start(b, pgtest.Options{Durable: true})
	ctx := b.Context()
	pool, err := pgxpool.New(ctx, pg.URL("postgres")+"&pool_max_conns=32")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if err := outbox.Migrate(ctx, pool, outbox.Config{}); err != nil {
		b.Fatal(err)
	}
	if err := outbox.Migrate(ctx, pool, quiet); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "CREATE TABLE plain (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, msg_id text NOT NULL, subject text NOT NULL, payload bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"); err != nil {
		b.Fatal(err)
	}
	srv := embeddedtest.Start(b, embedded.Config{})
	nc, js := embeddedtest.Connect(b, srv)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "TASKS", Subjects: []string{"tasks.>"}, Duplicates: 10 * time.Second}); err != nil {
		b.Fatal(err)
	}
	o, err := outbox.New(outbox.Config{})
	if err != nil {
		b.Fatal(err)
	}
	return &benchBundle{pool: pool, nc: nc, js: js, o: o}
}

// BenchmarkEnqueue measures transactional enqueue: one row per
// transaction (one goroutine, and 10 at once), 100 rows per transaction
// (Enqueue each, and one EnqueueMany), against a plain INSERT of the same
// row into a table without trigger or indexes beyond its key.
func BenchmarkEnqueue(b *testing.B) {
	bb := benchSetup(b)
	data := make([]byte, benchPayload)
	plain := "INSERT INTO plain (msg_id, subject, payload) VALUES ($1, $2, $3)"
	perTx := func(b *testing.B, rows int, fn func(ctx context.Context, tx pgx.Tx) error) {
		b.ReportAllocs()
		for b.Loop() {
			if err := pgx.BeginFunc(b.Context(), bb.pool, func(tx pgx.Tx) error { return fn(b.Context(), tx) }); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	}
	parallel := func(b *testing.B, fn func(ctx context.Context, tx pgx.Tx) error) {
		b.SetParallelism(5) // 10 goroutines on 2 cores
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := pgx.BeginFunc(context.Background(), bb.pool, func(tx pgx.Tx) error { return fn(context.Background(), tx) }); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rows/s")
	}
	one := func(ctx context.Context, tx pgx.Tx) error {
		_, err := bb.o.Enqueue(ctx, tx, "tasks.bench", data, nil)
		return err
	}
	onePlain := func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, plain, newBenchID(), "tasks.bench", data)
		return err
	}
	b.Run("tx1/raw-insert", func(b *testing.B) { perTx(b, 1, onePlain) })
	b.Run("tx1/outbox", func(b *testing.B) { perTx(b, 1, one) })
	b.Run("tx1x10/raw-insert", func(b *testing.B) { parallel(b, onePlain) })
	b.Run("tx1x10/outbox", func(b *testing.B) { parallel(b, one) })
	q, err := outbox.New(quiet)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("tx1x10/outbox-no-notify", func(b *testing.B) {
		parallel(b, func(ctx context.Context, tx pgx.Tx) error {
			_, err := q.Enqueue(ctx, tx, "tasks.bench", data, nil)
			return err
		})
	})
	b.Run("tx100/raw-insert", func(b *testing.B) {
		perTx(b, 100, func(ctx context.Context, tx pgx.Tx) error {
			batch := &pgx.Batch{}
			for range 100 {
				batch.Queue(plain, newBenchID(), "tasks.bench", data)
			}
			return tx.SendBatch(ctx, batch).Close()
		})
	})
	b.Run("tx100/outbox-enqueue", func(b *testing.B) {
		perTx(b, 100, func(ctx context.Context, tx pgx.Tx) error {
			for range 100 {
				if err := one(ctx, tx); err != nil {
					return err
				}
			}
			return nil
		})
	})
	msgs := make([]outbox.Message, 100)
	for i := range msgs {
		msgs[i] = outbox.Message{Subject: "tasks.bench", Data: data}
	}
	b.Run("tx100/outbox-many", func(b *testing.B) {
		perTx(b, 100, func(ctx context.Context, tx pgx.Tx) error {
			_, err := bb.o.EnqueueMany(ctx, tx, msgs)
			return err
		})
	})
	// Leave the tables empty for whoever runs next.
	if _, err := bb.pool.Exec(b.Context(), "TRUNCATE jetworker_outbox, quiet, plain"); err != nil {
		b.Fatal(err)
	}
}

func newBenchID() string {
	return strconv.FormatInt(time.Now().UnixNano(), 36) + strconv.Itoa(int(idSeq.Add(1)))
}

var idSeq counter

type counter struct {
	mu sync.Mutex
	n  int64
}

func (c *counter) Add(d int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += d
	return c.n
}

func idx(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func benchRows() int {
	if n, err := strconv.Atoi(os.Getenv("JETWORKER_OUTBOX_BENCH_ROWS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// BenchmarkRelay drains 100,000 committed 256-byte rows into the stream
// (the clock runs from the relay's start until every row is acknowledged
// and deleted), against raw PublishAsync of the same messages (same
// subject, payload and Nats-Msg-Id) with a window of 4096.
func BenchmarkRelay(b *testing.B) {
	bb := benchSetup(b)
	n := benchRows()
	data := make([]byte, benchPayload)
	b.Run("raw-publish-async", func(b *testing.B) {
		raw, err := jetstream.New(bb.nc, jetstream.WithPublishAsyncMaxPending(4096))
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			for i := range n {
				msg := &nats.Msg{Subject: "tasks.raw", Data: data, Header: nats.Header{"Nats-Msg-Id": {fmt.Sprintf("raw-%d-%d", b.N, i)}}}
				if _, err := raw.PublishMsgAsync(msg); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-raw.PublishAsyncComplete():
			case <-time.After(time.Minute):
				b.Fatal("acks missing after a minute")
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	for _, cfg := range []outbox.RelayConfig{{}, {Concurrency: 4}, {BatchSize: 2000, Concurrency: 4}} {
		name := fmt.Sprintf("outbox/batch=%d/concurrency=%d", max(cfg.BatchSize, outbox.DefaultBatchSize), max(cfg.Concurrency, outbox.DefaultConcurrency))
		b.Run(name, func(b *testing.B) {
			var elapsed time.Duration
			for range b.N {
				fill(b, bb, n, data)
				r, err := outbox.NewRelay(bb.pool, bb.js, cfg)
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(b.Context())
				done := make(chan error, 1)
				start := time.Now()
				go func() { done <- r.Run(ctx) }()
				waitDrained(b, bb, r)
				elapsed += time.Since(start)
				cancel()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "rows/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// fill commits n rows in transactions of 1000 (EnqueueMany).
func fill(b *testing.B, bb *benchBundle, n int, data []byte) {
	b.Helper()
	msgs := make([]outbox.Message, 1000)
	for i := range msgs {
		msgs[i] = outbox.Message{Subject: "tasks.relay", Data: data}
	}
	for i := 0; i < n; i += len(msgs) {
		m := msgs[:min(len(msgs), n-i)]
		if err := pgx.BeginFunc(b.Context(), bb.pool, func(tx pgx.Tx) error {
			_, err := bb.o.EnqueueMany(b.Context(), tx, m)
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
}

func waitDrained(b *testing.B, bb *benchBundle, r *outbox.Relay) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		var left bool
		if err := bb.pool.QueryRow(b.Context(), "SELECT EXISTS (SELECT 1 FROM jetworker_outbox)").Scan(&left); err != nil {
			b.Fatal(err)
		}
		if !left {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	s, _ := r.Stats(b.Context())
	b.Fatalf("not drained within 5 minutes: %+v", s)
}

// BenchmarkLatency enqueues one row per transaction at a paced 1,000/s
// and measures from the moment Commit is called until a core
// subscription on the subject receives the message the relay published;
// the baseline publishes the same messages at the same pace straight
// with PublishAsync, measured from the publish call the same way.
func BenchmarkLatency(b *testing.B) {
	bb := benchSetup(b)
	const rate, n = 1000, 5000
	data := make([]byte, benchPayload)
	measure := func(b *testing.B, subject string, send func(i int) (called, returned time.Time)) {
		got := make([]time.Time, n)
		sent := make([]time.Time, n)
		returned := make([]time.Time, n)
		var mu sync.Mutex
		recv := 0
		all := make(chan struct{})
		sub, err := bb.nc.Subscribe(subject, func(m *nats.Msg) {
			now := time.Now()
			i, err := strconv.Atoi(m.Header.Get("Seq"))
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if got[i].IsZero() {
				got[i] = now
				if recv++; recv == n {
					close(all)
				}
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Unsubscribe()
		// Senders take the paced slots, so a slow commit does not hold
		// the next one back.
		slots := make(chan int)
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for i := range slots {
					t, r := send(i)
					mu.Lock()
					sent[i], returned[i] = t, r
					mu.Unlock()
				}
			})
		}
		start := time.Now()
		for i := range n {
			time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / rate)))
			slots <- i
		}
		close(slots)
		wg.Wait()
		select {
		case <-all:
		case <-time.After(time.Minute):
			b.Fatalf("received %d of %d", recv, n)
		}
		lat := make([]time.Duration, n)
		after := make([]time.Duration, n) // from Commit's return
		mu.Lock()
		defer mu.Unlock()
		for i := range n {
			lat[i], after[i] = got[i].Sub(sent[i]), got[i].Sub(returned[i])
		}
		slices.Sort(lat)
		slices.Sort(after)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(lat[n/2]), "p50-ms")
		b.ReportMetric(ms(lat[n*99/100]), "p99-ms")
		b.ReportMetric(ms(lat[n-1]), "max-ms")
		b.ReportMetric(ms(after[n/2]), "returned-p50-ms")
		b.ReportMetric(ms(after[n*99/100]), "returned-p99-ms")
		b.ReportMetric(float64(n)/got[slices.MaxFunc(idx(n), func(a, b int) int { return got[a].Compare(got[b]) })].Sub(start).Seconds(), "rows/s")
		b.ReportMetric(0, "ns/op")
	}
	b.Run("raw-publish-async", func(b *testing.B) {
		for range b.N {
			measure(b, "tasks.lat.raw", func(i int) (time.Time, time.Time) {
				t := time.Now()
				msg := &nats.Msg{Subject: "tasks.lat.raw", Data: data, Header: nats.Header{"Seq": {strconv.Itoa(i)}, "Nats-Msg-Id": {newBenchID()}}}
				if _, err := bb.js.PublishMsgAsync(msg); err != nil {
					b.Fatal(err)
				}
				return t, t
			})
		}
	})
	for _, cfg := range []outbox.RelayConfig{{}, {Config: quiet, PollInterval: 20 * time.Millisecond}} {
		name := "outbox"
		if cfg.DisableNotify {
			name = "outbox-no-notify-poll-20ms"
		}
		b.Run(name, func(b *testing.B) { latencyOutbox(b, bb, cfg, measure) })
	}
}

func latencyOutbox(b *testing.B, bb *benchBundle, cfg outbox.RelayConfig, measure func(b *testing.B, subject string, send func(i int) (called, returned time.Time))) {
	data := make([]byte, benchPayload)
	o, err := outbox.New(cfg.Config)
	if err != nil {
		b.Fatal(err)
	}
	{
		r, err := outbox.NewRelay(bb.pool, bb.js, cfg)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(b.Context())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		<-r.Ready()
		for range b.N {
			measure(b, "tasks.lat.outbox", func(i int) (time.Time, time.Time) {
				tx, err := bb.pool.Begin(b.Context())
				if err != nil {
					b.Fatal(err)
				}
				if _, err := o.Enqueue(b.Context(), tx, "tasks.lat.outbox", data, &outbox.EnqueueOpts{Header: nats.Header{"Seq": {strconv.Itoa(i)}}}); err != nil {
					b.Fatal(err)
				}
				t := time.Now()
				if err := tx.Commit(b.Context()); err != nil {
					b.Fatal(err)
				}
				return t, time.Now()
			})
		}
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}
