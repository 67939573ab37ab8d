// Command outbox is a small order service built on the transactional
// outbox: POST /orders saves the order and enqueues its "order placed"
// task in one PostgreSQL transaction, and a relay in the same process
// publishes committed tasks into JetStream. An order that cannot be
// reserved rolls the whole transaction back, the task with it: it is
// never published.
//
//	JETWORKER_DATABASE_URL=postgres://localhost/shop go run ./examples/outbox
//	curl -d '{"sku":"tea","customer":"ada"}' localhost:8080/orders
//
// It runs an embedded nats-server unless JETWORKER_NATS_URL is set.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/outbox"
)

// schema is the service's own tables; the outbox's come from outbox.Migrate.
const schema = `
CREATE TABLE IF NOT EXISTS stock (sku text PRIMARY KEY, left_count int NOT NULL CHECK (left_count >= 0));
CREATE TABLE IF NOT EXISTS orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku text NOT NULL REFERENCES stock,
    customer text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO stock VALUES ('tea', 100), ('cake', 1) ON CONFLICT DO NOTHING;`

// OrderPlaced is the task's payload.
type OrderPlaced struct {
	Order    int64  `json:"order"`
	SKU      string `json:"sku"`
	Customer string `json:"customer"`
}

// service handles the HTTP API.
type service struct {
	pool *pgxpool.Pool
	ob   *outbox.Outbox
	log  *slog.Logger
}

// errSoldOut rolls an order back.
var errSoldOut = errors.New("sold out")

func (s *service) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", s.placeOrder)
	return mux
}

func (s *service) placeOrder(w http.ResponseWriter, r *http.Request) {
	var req struct {
		SKU      string `json:"sku"`
		Customer string `json:"customer"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil || req.SKU == "" || req.Customer == "" {
		http.Error(w, `want {"sku": "...", "customer": "..."}`, http.StatusBadRequest)
		return
	}
	var placed OrderPlaced
	var taskID string
	err := pgx.BeginFunc(r.Context(), s.pool, func(tx pgx.Tx) error {
		placed = OrderPlaced{SKU: req.SKU, Customer: req.Customer}
		if err := tx.QueryRow(r.Context(), "INSERT INTO orders (sku, customer) VALUES ($1, $2) RETURNING id",
			req.SKU, req.Customer).Scan(&placed.Order); err != nil {
			return err
		}
		// The task is part of the transaction: published if it commits,
		// never if it rolls back. Its ID names the fact, so a retried
		// request that commits twice is still one task in the stream; the
		// key keeps one order's tasks in commit order.
		var err error
		taskID, err = outbox.EnqueueJSON(r.Context(), s.ob, tx, "tasks.order.placed", placed, &outbox.EnqueueOpts{
			ID:  fmt.Sprintf("order-%d-placed", placed.Order),
			Key: fmt.Sprintf("order-%d", placed.Order),
		})
		if err != nil {
			return err
		}
		// The last step can still fail, after the enqueue.
		tag, err := tx.Exec(r.Context(), "UPDATE stock SET left_count = left_count - 1 WHERE sku = $1 AND left_count > 0", req.SKU)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errSoldOut
		}
		return nil
	})
	switch {
	case errors.Is(err, errSoldOut):
		http.Error(w, req.SKU+" is sold out", http.StatusConflict)
		return
	case err != nil:
		s.log.ErrorContext(r.Context(), "place order", slog.Any("err", err))
		http.Error(w, "could not place the order", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"order": placed.Order, "task_id": taskID})
}

// setup creates the service's tables and the outbox's.
func setup(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, schema); err != nil {
		return fmt.Errorf("create tables: %w", err)
	}
	return outbox.Migrate(ctx, pool, outbox.Config{})
}

func main() {
	if err := run(); err != nil {
		slog.Error("outbox example", slog.Any("err", err))
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	log := slog.Default()
	dbURL := os.Getenv("JETWORKER_DATABASE_URL")
	if dbURL == "" {
		return errors.New("set JETWORKER_DATABASE_URL to a PostgreSQL database")
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := setup(ctx, pool); err != nil {
		return err
	}

	natsURL := os.Getenv("JETWORKER_NATS_URL")
	if natsURL == "" {
		srv, err := embedded.Start(embedded.Config{Port: -1})
		if err != nil {
			return err
		}
		defer srv.Shutdown()
		natsURL = srv.URL()
	}
	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "TASKS", Subjects: []string{"tasks.>"}, Duplicates: 2 * time.Minute}); err != nil {
		return err
	}

	ob, err := outbox.New(outbox.Config{})
	if err != nil {
		return err
	}
	relay, err := outbox.NewRelay(pool, js, outbox.RelayConfig{Logger: log})
	if err != nil {
		return err
	}
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	httpSrv := &http.Server{Addr: addr, Handler: (&service{pool: pool, ob: ob, log: log}).routes(), ReadHeaderTimeout: 5 * time.Second}
	web := jetworker.RunnerFunc(func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- httpSrv.ListenAndServe() }()
		log.Info("listening", slog.String("addr", addr))
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			return httpSrv.Shutdown(sctx)
		}
	})
	return jetworker.RunAll(ctx, relay, web)
}
