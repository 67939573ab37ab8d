package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dlq"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/streams"
)

// ExampleConsumer_Run runs a worker on an embedded server: one task
// succeeds, one fails permanently and is dead-lettered.
func ExampleConsumer_Run() {
	srv, err := embedded.Start(embedded.Config{Port: -1})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown()
	nc, js, err := srv.ConnectJetStream()
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := streams.Provision(ctx, js, streams.Config{}); err != nil {
		log.Fatal(err)
	}

	done := make(chan struct{}, 2)
	h := jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
		defer func() { done <- struct{}{} }()
		fmt.Printf("handling %s (attempt %d): %s\n", t.Subject, t.Delivered, t.Data)
		if t.Subject == "tasks.report.broken" {
			return jetworker.Permanent(errors.New("report template missing"))
		}
		return nil
	})
	c, err := consumer.New(js, h, consumer.Config{
		Durable:     "example",
		Concurrency: 1,
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(ctx) }()
	<-c.Ready()

	pub, _ := publisher.New(js, publisher.Config{})
	if _, err := pub.Publish(ctx, "tasks.email.welcome", []byte(`{"to":"ada@example.com"}`), nil); err != nil {
		log.Fatal(err)
	}
	if _, err := pub.Publish(ctx, "tasks.report.broken", []byte(`{"day":"monday"}`), nil); err != nil {
		log.Fatal(err)
	}
	<-done
	<-done

	cancel()
	if err := <-runErr; err != nil {
		log.Fatal(err)
	}
	store, _ := dlq.New(js, dlq.Config{})
	page, err := store.List(context.Background(), dlq.Filter{}, 0, 0)
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range page.Entries {
		fmt.Printf("dead letter on %s: %s failed with %q\n", d.Subject, d.OriginalSubject, d.Error)
	}
	// Output:
	// handling tasks.email.welcome (attempt 1): {"to":"ada@example.com"}
	// handling tasks.report.broken (attempt 1): {"day":"monday"}
	// dead letter on dlq.TASKS.example.tasks.report.broken: tasks.report.broken failed with "permanent: report template missing"
}
