package outboxmetrics_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/internal/pgtest"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/metrics"
	"github.com/jetworker/jetworker/metrics/outboxmetrics"
	"github.com/jetworker/jetworker/outbox"
)

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// TestRelayMetrics relays rows from a real PostgreSQL into a real
// nats-server and reads the counters and the backlog off /metrics.
func TestRelayMetrics(t *testing.T) {
	pg := pgtest.Start(t, pgtest.Options{})
	pool, err := pgxpool.New(t.Context(), pg.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := outbox.Migrate(t.Context(), pool, outbox.Config{}); err != nil {
		t.Fatal(err)
	}
	_, js := embeddedtest.Connect(t, embeddedtest.Start(t, embedded.Config{}))
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "TASKS", Subjects: []string{"tasks.>"}}); err != nil {
		t.Fatal(err)
	}
	ob, _ := outbox.New(outbox.Config{})
	tx, err := pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := ob.Enqueue(t.Context(), tx, "tasks.metrics", []byte{byte('0' + i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ob.Enqueue(t.Context(), tx, "tasks.later", nil, &outbox.EnqueueOpts{Delay: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}

	m, err := metrics.New(metrics.Config{DisableRuntimeMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	om, err := outboxmetrics.New(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := outboxmetrics.New(m); err == nil {
		t.Fatal("registering the outbox metrics twice: got nil error")
	}
	relay, err := outbox.NewRelay(pool, js, outbox.RelayConfig{Hooks: om.Hooks(), Logger: testutil.Logger(t, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if err := om.ObserveBacklog(relay.Stats, 0, testutil.Logger(t, 0)); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	var text string
	for {
		text = scrape(t, m)
		if strings.Contains(text, `jetworker_outbox_rows_total{result="published"} 5`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 5 published rows in /metrics:\n%s", text)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	for _, want := range []string{
		`jetworker_outbox_batches_total{result="ok"}`,
		"jetworker_outbox_batch_duration_seconds_count",
		"jetworker_outbox_pending_rows 1", // the delayed row
		"jetworker_outbox_due_rows 0",
		"jetworker_outbox_dead_rows 0",
		"jetworker_outbox_scrape_success 1",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, text)
		}
	}

	// The database goes away: the backlog shows the last values read, and
	// says so.
	pool.Close()
	text = scrape(t, m)
	for _, want := range []string{"jetworker_outbox_scrape_success 0", "jetworker_outbox_pending_rows 1"} {
		if !strings.Contains(text, want) {
			t.Errorf("with the database closed, /metrics lacks %q:\n%s", want, text)
		}
	}
}
