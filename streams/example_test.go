package streams_test

import (
	"context"
	"fmt"
	"log"

	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/streams"
)

// Example provisions the task and dead-letter streams of jetworker's design
// on an embedded server, twice: the second call changes nothing.
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
	for range 2 {
		if err := streams.Provision(ctx, js, streams.Config{}); err != nil {
			log.Fatal(err)
		}
	}
	for _, name := range []string{streams.DefaultTaskStream, streams.DefaultDeadLetterStream} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			log.Fatal(err)
		}
		cfg := s.CachedInfo().Config
		fmt.Println(name, cfg.Subjects, cfg.Retention, streams.Kind(cfg))
	}
	// Output:
	// TASKS [tasks.> jetworker.delay.TASKS.>] WorkQueue tasks
	// DLQ [dlq.>] Limits dead-letters
}
