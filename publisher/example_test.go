package publisher_test

import (
	"context"
	"fmt"
	"log"

	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/streams"
)

// Example provisions the task streams on an embedded server, publishes a
// typed task and publishes it again with the same ID, which the server
// drops as a duplicate.
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

	ctx := context.Background()
	if err := streams.Provision(ctx, js, streams.Config{}); err != nil {
		log.Fatal(err)
	}
	pub, err := publisher.New(js, publisher.Config{})
	if err != nil {
		log.Fatal(err)
	}

	type welcome struct {
		Email string `json:"email"`
	}
	opts := &publisher.PublishOpts{ID: "welcome-ada"}
	for range 2 {
		res, err := publisher.PublishJSON(ctx, pub, "tasks.email.welcome", welcome{Email: "ada@example.com"}, opts)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("task %s stored in %s at seq %d, duplicate=%v\n", res.ID, res.Stream, res.Sequence, res.Duplicate)
	}
	// Output:
	// task welcome-ada stored in TASKS at seq 1, duplicate=false
	// task welcome-ada stored in TASKS at seq 1, duplicate=true
}

// ExamplePublisher_PublishBatch loads many tasks at once through the
// fast-ingest batch path. On an error, res.Stored says how many of the
// tasks (from the front) are stored for sure.
func ExamplePublisher_PublishBatch() {
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

	ctx := context.Background()
	if err := streams.Provision(ctx, js, streams.Config{}); err != nil {
		log.Fatal(err)
	}
	pub, err := publisher.New(js, publisher.Config{})
	if err != nil {
		log.Fatal(err)
	}
	tasks := make([]publisher.BatchTask, 1000)
	for i := range tasks {
		tasks[i] = publisher.BatchTask{Subject: "tasks.reindex", Data: fmt.Appendf(nil, `{"doc":%d}`, i)}
	}
	res, err := pub.PublishBatch(ctx, tasks)
	if err != nil {
		log.Fatalf("%d of %d stored for sure: %v", res.Stored, len(tasks), err)
	}
	fmt.Printf("%d tasks stored in %s, the last at seq %d\n", res.Stored, res.Stream, res.LastSeq)
	// Output:
	// 1000 tasks stored in TASKS, the last at seq 1000
}
