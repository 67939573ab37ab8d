package task_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/streams"
	"github.com/jetworker/jetworker/task"
)

// Example publishes a tracked task, lets a worker report progress and a
// result, and waits for the outcome, as an HTTP endpoint answering 202
// Accepted would when the client polls.
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
	store, err := task.New(js, task.Config{})
	if err != nil {
		log.Fatal(err)
	}

	worker, err := consumer.New(js, jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
		if err := jetworker.SetProgress(ctx, 50, "rendering"); err != nil {
			return err
		}
		return jetworker.SetResult(ctx, []byte("https://files.example.com/report-11.pdf"))
	}), consumer.Config{Durable: "reports", Tasks: store, DisablePresence: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- worker.Run(ctx) }()
	defer func() { cancel(); <-stopped }() // stop the worker and wait for it
	<-worker.Ready()

	pub, _ := publisher.New(js, publisher.Config{Tasks: store})
	res, err := pub.Publish(ctx, "tasks.report.monthly", []byte(`{"month":11}`), &publisher.PublishOpts{ID: "report-11", Track: true})
	if err != nil {
		log.Fatal(err)
	}
	info, err := store.Wait(ctx, res.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.ID, info.State, info.Progress.Message, string(info.Result))
	for _, tr := range info.History {
		fmt.Println(" ", tr.State)
	}
	// Output:
	// report-11 succeeded rendering https://files.example.com/report-11.pdf
	//   pending
	//   active
	//   succeeded
}
