package dashboard_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jetworker/jetworker/dashboard"
	"github.com/jetworker/jetworker/internal/pgtest"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/outbox"
)

// TestOutbox: given a running relay, the overview shows the outbox's
// pending and dead rows, the outbox page lists dead rows, and /readyz
// fails while PostgreSQL is down.
func TestOutbox(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t, pgtest.Options{})
	pool, err := pgxpool.New(t.Context(), pg.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := outbox.Migrate(t.Context(), pool, outbox.Config{}); err != nil {
		t.Fatal(err)
	}
	b := setup(t, dashboard.Config{})
	provision(t, b.js)
	relay, err := outbox.NewRelay(pool, b.js, outbox.RelayConfig{Logger: slog.New(slog.DiscardHandler), PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-relay.Ready()

	// One row delayed (pending), one no stream captures (dead).
	tx, err := pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	o := relay.Outbox()
	if _, err := o.Enqueue(t.Context(), tx, "tasks.later.x", []byte(`{}`), &outbox.EnqueueOpts{Delay: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Enqueue(t.Context(), tx, "nowhere.x", []byte(`{}`), &outbox.EnqueueOpts{ID: "lost-1"}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if st, err := relay.Stats(t.Context()); err != nil || st.Dead != 1 {
			return fmt.Errorf("stats %+v %v, want 1 dead row", st, err)
		}
		return nil
	})

	dash := b.another(t, dashboard.Config{SampleInterval: 200 * time.Millisecond, Outbox: relay, OutboxDeadFunc: func(ctx context.Context, f outbox.DeadFilter) ([]outbox.DeadRow, error) {
		return o.ListDead(ctx, pool, f)
	}})
	type outboxBody struct {
		Known    bool   `json:"known"`
		Pending  *int64 `json:"pending"`
		Dead     *int64 `json:"dead"`
		Listed   bool   `json:"dead_listed"`
		DeadRows []struct {
			MsgID   string `json:"msg_id"`
			Subject string `json:"subject"`
			Reason  string `json:"reason"`
		} `json:"dead_rows"`
	}
	raw := dash.get(t, "/api/outbox")
	checkJSON(t, "GET /api/outbox", []byte(raw.body), false)
	ob := decode[outboxBody](t, raw)
	if !ob.Known || ob.Pending == nil || *ob.Pending != 1 || ob.Dead == nil || *ob.Dead != 1 || !ob.Listed || len(ob.DeadRows) != 1 || ob.DeadRows[0].MsgID != "lost-1" {
		t.Errorf("GET /api/outbox: got %+v, want 1 pending, 1 dead row lost-1 listed", ob)
	}
	ov := decode[struct {
		Outbox *outboxBody `json:"outbox"`
	}](t, dash.get(t, "/api/overview"))
	if ov.Outbox == nil || !ov.Outbox.Known || *ov.Outbox.Pending != 1 {
		t.Errorf("overview's outbox: got %+v, want 1 pending", ov.Outbox)
	}
	r := dash.get(t, "/")
	if !strings.Contains(r.body, `data-testid="card-outbox"`) || !strings.Contains(r.body, `href="/outbox"`) {
		t.Error("overview: want an outbox card and a link to the outbox page")
	}
	if r := dash.get(t, "/outbox"); r.code != http.StatusOK || !strings.Contains(r.body, "lost-1") {
		t.Errorf("outbox page: got %d, want the dead row listed", r.code)
	}
	if r := dash.get(t, "/readyz"); r.code != http.StatusOK || !strings.Contains(r.body, `"name": "outbox"`) {
		t.Errorf("readyz with the outbox up: got %d %s, want 200 with an outbox check", r.code, r.body)
	}
	// Without OutboxDeadFunc only the count is shown; a dashboard without
	// an outbox has no outbox page.
	countOnly := b.another(t, dashboard.Config{Outbox: relay})
	if r := countOnly.get(t, "/outbox"); !strings.Contains(r.body, `data-testid="outbox-dead-count-only"`) {
		t.Error("outbox page without OutboxDeadFunc: want a note that only the count is shown")
	}
	if r := b.get(t, "/outbox"); r.code != http.StatusNotFound {
		t.Errorf("outbox page without an outbox: got %d, want 404", r.code)
	}

	// PostgreSQL down: not ready, and the overview says unknown, not 0.
	pg.Stop()
	testutil.Eventually(t, 15*time.Second, func() error {
		r := dash.get(t, "/readyz")
		if r.code != http.StatusServiceUnavailable || !strings.Contains(r.body, `"outbox"`) {
			return fmt.Errorf("readyz: got %d %s, want 503 failing outbox", r.code, r.body)
		}
		return nil
	})
	ov = decode[struct {
		Outbox *outboxBody `json:"outbox"`
	}](t, dash.get(t, "/api/overview"))
	if ov.Outbox == nil || ov.Outbox.Known || ov.Outbox.Pending != nil {
		t.Errorf("overview's outbox with PostgreSQL down: got %+v, want unknown with null counts", ov.Outbox)
	}
}
