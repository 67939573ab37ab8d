// Command quickstart runs jetworker's main job on an embedded nats-server:
// it provisions the task streams, publishes a few tasks (one delayed) and
// prints them as they are received. It needs no external server.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/publisher"
)

func main() {
	if err := run(); err != nil {
		slog.Error("quickstart", slog.Any("err", err))
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	srv, err := embedded.Start(embedded.Config{Port: -1})
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	nc, js, err := srv.ConnectJetStream()
	if err != nil {
		return err
	}
	defer nc.Close()
	fmt.Println("embedded nats-server at", srv.URL(), "storing in", srv.StoreDir())

	if err := publisher.Provision(ctx, js, publisher.StreamConfig{}, publisher.StreamConfig{}); err != nil {
		return err
	}
	pub, err := publisher.New(js, publisher.Config{})
	if err != nil {
		return err
	}

	// A durable pull consumer that prints what it receives.
	cons, err := js.CreateOrUpdateConsumer(ctx, publisher.DefaultTaskStream, jetstream.ConsumerConfig{
		Durable: "quickstart", FilterSubject: "tasks.>", AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		return fmt.Errorf("create consumer: %w", err)
	}
	const total = 4
	received := make(chan struct{}, total)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		fmt.Printf("received %s: %s\n", m.Subject(), m.Data())
		_ = m.Ack()
		received <- struct{}{}
	})
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	defer cc.Stop()

	for i := 1; i < total; i++ {
		res, err := publisher.PublishJSON(ctx, pub, "tasks.email.welcome", map[string]any{"user": i}, nil)
		if err != nil {
			return err
		}
		fmt.Printf("published task %s at seq %d\n", res.ID, res.Sequence)
	}
	if _, err := pub.Publish(ctx, "tasks.report.daily", []byte(`{"delayed":"1s"}`), &publisher.PublishOpts{Delay: time.Second}); err != nil {
		return err
	}
	fmt.Println("published a task delayed by 1s")

	for range total {
		select {
		case <-received:
		case <-ctx.Done():
			return nil
		case <-time.After(10 * time.Second):
			return fmt.Errorf("not every task arrived within 10s")
		}
	}
	fmt.Println("all tasks received")
	return nil
}
