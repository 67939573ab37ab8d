package outbox_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/outbox"
)

// Example saves an order and enqueues its task in one transaction, and
// runs the relay that publishes it. It needs a PostgreSQL server
// (DATABASE_URL) and a nats-server with a stream on tasks.>, so it has no
// Output line and go test only compiles it; TestOutbox runs the same
// calls against a real PostgreSQL and an embedded nats-server, and
// examples/outbox is a complete HTTP service built on them.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	if err := outbox.Migrate(ctx, pool, outbox.Config{}); err != nil {
		log.Fatal(err)
	}
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}

	ob, err := outbox.New(outbox.Config{})
	if err != nil {
		log.Fatal(err)
	}
	type placed struct {
		Order int `json:"order"`
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO orders (id, total) VALUES ($1, $2)", 42, 1999); err != nil {
			return err
		}
		// Published only if this transaction commits; the ID makes a
		// retried transaction harmless, and the key keeps the tasks of
		// one order in commit order.
		id, err := outbox.EnqueueJSON(ctx, ob, tx, "tasks.order.placed", placed{Order: 42},
			&outbox.EnqueueOpts{ID: "order-42-placed", Key: "order-42"})
		fmt.Println("enqueued", id)
		return err
	})
	if err != nil {
		log.Fatal(err)
	}

	relay, err := outbox.NewRelay(pool, js, outbox.RelayConfig{})
	if err != nil {
		log.Fatal(err)
	}
	if err := relay.Run(ctx); err != nil { // until Ctrl-C
		log.Fatal(err)
	}
}
