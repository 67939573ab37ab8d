package overview_test

import (
	"context"
	"fmt"
	"log"

	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/overview"
	"github.com/jetworker/jetworker/streams"
)

// Example reads the state of the task and dead-letter streams: a durable
// with no worker running has its tasks pending.
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
	if _, err := consumer.Provision(ctx, js, consumer.Config{Durable: "mailer"}); err != nil {
		log.Fatal(err)
	}
	for range 3 {
		if _, err := js.Publish(ctx, "tasks.email.welcome", nil); err != nil {
			log.Fatal(err)
		}
	}
	ov, err := overview.Read(ctx, js, overview.Config{})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range ov.Consumers {
		fmt.Printf("%s/%s: %d pending, oldest pending known: %v\n", c.Stream, c.Name, c.Pending, c.OldestPending > 0)
	}
	fmt.Println("dead letters:", ov.DeadLetters)
	// Output:
	// TASKS/mailer: 3 pending, oldest pending known: true
	// dead letters: 0
}
