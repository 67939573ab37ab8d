package dlq_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dlq"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/streams"
)

// Example lets a worker dead-letter a task, lists the dead letters newest
// first, and replays the task after "fixing" the handler.
func Example() {
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

	fixed := make(chan struct{})
	done := make(chan string, 1)
	worker, err := consumer.New(js, jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
		select {
		case <-fixed:
			done <- string(t.Data)
			return nil
		default:
			return jetworker.Permanent(errors.New("report template missing"))
		}
	}), consumer.Config{Durable: "reports", DisablePresence: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- worker.Run(ctx) }()
	defer func() { cancel(); <-stopped }() // stop the worker and wait for it
	<-worker.Ready()

	pub, _ := publisher.New(js, publisher.Config{})
	if _, err := pub.Publish(ctx, "tasks.report.monthly", []byte("november"), &publisher.PublishOpts{ID: "report-11"}); err != nil {
		log.Fatal(err)
	}

	store, _ := dlq.New(js, dlq.Config{})
	var page dlq.Page
	for len(page.Entries) == 0 {
		time.Sleep(10 * time.Millisecond)
		if page, err = store.List(ctx, dlq.Filter{Subject: "tasks.report.>"}, 0, 10); err != nil {
			log.Fatal(err)
		}
	}
	e := page.Entries[0]
	fmt.Printf("dead: task %s on %s: %s\n", e.TaskID, e.OriginalSubject, e.Error)

	close(fixed)
	if _, err := store.Replay(ctx, e.Sequence); err != nil {
		log.Fatal(err)
	}
	fmt.Println("replayed and ran:", <-done)
	// Output:
	// dead: task report-11 on tasks.report.monthly: permanent: report template missing
	// replayed and ran: november
}
