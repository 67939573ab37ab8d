package bench_test

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jetworker/jetworker/cmd/jetworker/internal/bench"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/internal/pgtest"
	"github.com/jetworker/jetworker/outbox"
)

// A tiny outbox run fills every field of the report and drops what it
// created; the figures themselves depend on the machine.
func TestRunOutboxSmoke(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t, pgtest.Options{})
	pool, err := pgxpool.New(t.Context(), pg.NewDatabase(t)+"&pool_max_conns=24")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	js := embeddedtest.JetStream(t)
	rep, err := bench.RunOutbox(t.Context(), pool, js, bench.OutboxConfig{N: 500, Size: 32, TxRows: 100, Rate: 200, Seconds: 1, Rounds: 1})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if rep.N != 500 || rep.TxRows != 100 || rep.Rate != 200 || rep.Rounds != 1 || rep.Postgres == "" || rep.RelayBatchSize <= 0 || !rep.Notify {
		t.Errorf("report header %+v", rep)
	}
	if o := rep.Outbox; o.Name != "outbox" || o.EnqueuePerSec <= 0 || o.PublishPerSec <= 0 {
		t.Errorf("outbox throughput %+v", o)
	}
	if r := rep.Raw; r.Name != "raw" || r.PublishPerSec <= 0 || r.EnqueuePerSec != 0 {
		t.Errorf("raw throughput %+v", r)
	}
	for _, r := range []bench.OutboxResult{rep.Outbox, rep.Raw} {
		l := r.Latency
		if l.Count+r.Lost != 200 || l.Count < 1 || l.P50 <= 0 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.Max {
			t.Errorf("%s latency %+v, lost %d", r.Name, l, r.Lost)
		}
	}
	for _, fig := range []string{"relay publish/s", "enqueue/s", "latency p50", "latency p99"} {
		if r, ok := bench.FindRatio(rep.Ratios, fig, "outbox", "raw"); !ok || r.Median <= 0 {
			t.Errorf("ratio %s: %+v, %v", fig, r, ok)
		}
	}
	var left bool
	if err := pool.QueryRow(t.Context(), "SELECT to_regclass('public.jetworker_bench') IS NOT NULL OR to_regclass('public.jetworker_bench_dead') IS NOT NULL").Scan(&left); err != nil || left {
		t.Errorf("tables left behind: %v, %v", left, err)
	}
	if _, err := js.Stream(t.Context(), "BENCH_OUTBOX"); err == nil {
		t.Error("BENCH_OUTBOX stream left behind")
	}

	// A table that exists is refused and kept: it may hold a service's rows.
	if err := outbox.Migrate(t.Context(), pool, outbox.Config{Table: "orders_outbox"}); err != nil {
		t.Fatal(err)
	}
	_, err = bench.RunOutbox(t.Context(), pool, js, bench.OutboxConfig{N: 10, Outbox: outbox.Config{Table: "orders_outbox"}})
	if err == nil || !strings.Contains(err.Error(), "orders_outbox") || !strings.Contains(err.Error(), "exists") {
		t.Errorf("existing table: got %v, want a refusal naming it", err)
	}
	var kept bool
	if err := pool.QueryRow(t.Context(), "SELECT to_regclass('public.orders_outbox') IS NOT NULL").Scan(&kept); err != nil || !kept {
		t.Errorf("existing table dropped: %v, %v", kept, err)
	}
}
