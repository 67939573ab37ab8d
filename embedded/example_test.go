package embedded_test

import (
	"context"
	"fmt"
	"log"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/embedded"
)

// Example starts an in-process server with JetStream on a free port,
// stores a message and reads it back.
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
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "DEMO", Subjects: []string{"demo.>"}})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := js.Publish(ctx, "demo.hello", []byte("hello, jetstream")); err != nil {
		log.Fatal(err)
	}
	m, err := s.GetMsg(ctx, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %s\n", m.Subject, m.Data)
	// Output: demo.hello: hello, jetstream
}
