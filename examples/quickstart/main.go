// Command quickstart is the smallest complete jetworker program: on an
// embedded nats-server it provisions the task streams, runs a worker,
// publishes a few tasks (one delayed) and prints them as they are handled.
// It needs no external server.
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

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/streams"
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

	if err := streams.Provision(ctx, js, streams.Config{}); err != nil {
		return err
	}
	pub, err := publisher.New(js, publisher.Config{})
	if err != nil {
		return err
	}

	// A worker: a durable pull consumer running a handler.
	const total = 4
	received := make(chan struct{}, total)
	h := jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
		fmt.Printf("received %s (attempt %d): %s\n", t.Subject, t.Delivered, t.Data)
		received <- struct{}{}
		return nil
	})
	worker, err := consumer.New(js, h, consumer.Config{Durable: "quickstart", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- worker.Run(runCtx) }()
	<-worker.Ready()

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
	cancel()
	return <-done
}
