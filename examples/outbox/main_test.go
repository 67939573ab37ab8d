package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/internal/pgtest"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/outbox"
)

// TestPlaceOrder drives the service over HTTP against a real PostgreSQL
// and an embedded nats-server: a placed order's task is published once;
// a sold-out order rolls back, its task with it; a bad request writes
// nothing.
func TestPlaceOrder(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pg := pgtest.Start(t, pgtest.Options{})
	pool, err := pgxpool.New(ctx, pg.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := setup(ctx, pool); err != nil {
		t.Fatal(err)
	}
	_, js := embeddedtest.Connect(t, embeddedtest.Start(t, embedded.Config{}))
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "TASKS", Subjects: []string{"tasks.>"}})
	if err != nil {
		t.Fatal(err)
	}
	ob, err := outbox.New(outbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	relay, err := outbox.NewRelay(pool, js, outbox.RelayConfig{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- jetworker.RunAll(rctx, relay) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("relay: %v", err)
		}
	})
	web := httptest.NewServer((&service{pool: pool, ob: ob, log: log}).routes())
	t.Cleanup(web.Close)

	post := func(body string) (int, string) {
		t.Helper()
		res, err := http.Post(web.URL+"/orders", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	code, body := post(`{"sku":"cake","customer":"ada"}`)
	if code != http.StatusCreated {
		t.Fatalf("first cake: got %d %s, want 201", code, body)
	}
	var placed struct {
		Order  int64  `json:"order"`
		TaskID string `json:"task_id"`
	}
	if err := json.Unmarshal([]byte(body), &placed); err != nil {
		t.Fatal(err)
	}
	if code, body := post(`{"sku":"cake","customer":"grace"}`); code != http.StatusConflict {
		t.Fatalf("second cake (sold out): got %d %s, want 409", code, body)
	}
	if code, body := post(`{"sku":`); code != http.StatusBadRequest {
		t.Fatalf("malformed request: got %d %s, want 400", code, body)
	}

	// The relay has seen everything once the outbox is empty.
	testutil.Eventually(t, 20*time.Second, func() error {
		s, err := relay.Stats(ctx)
		if err != nil {
			return err
		}
		if s.Pending != 0 {
			return fmt.Errorf("%d rows pending", s.Pending)
		}
		return nil
	})
	var orders int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&orders); err != nil || orders != 1 {
		t.Fatalf("orders saved: got %d (%v), want 1", orders, err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		info, err := stream.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs != 1 {
			return fmt.Errorf("stream holds %d tasks, want 1", info.State.Msgs)
		}
		return nil
	})
	m, err := stream.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var task OrderPlaced
	if err := json.Unmarshal(m.Data, &task); err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(jetworker.HeaderMsgID) != placed.TaskID || task != (OrderPlaced{Order: placed.Order, SKU: "cake", Customer: "ada"}) {
		t.Fatalf("published %s %+v, want task %s for ada's order %d", m.Header.Get(jetworker.HeaderMsgID), task, placed.TaskID, placed.Order)
	}
}
