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
