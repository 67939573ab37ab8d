package embeddedtest_test

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
)

// Example shows a test's setup: a server of its own with JetStream, a
// client, a stream. (Its body is a test function, so go test compiles it
// but cannot run it as an example; every package's tests run the same.)
func Example() {
	_ = func(t *testing.T) {
		t.Parallel()
		js := embeddedtest.JetStream(t) // shut down with the test
		if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "TASKS", Subjects: []string{"tasks.>"}}); err != nil {
			t.Fatal(err)
		}
		// ... the code under test, on js ...
	}
}

// ExampleStartCluster shows a test on a three-node cluster, with an R3
// stream.
func ExampleStartCluster() {
	_ = func(t *testing.T) {
		c := embeddedtest.StartCluster(t, 3)
		_, js := embeddedtest.ConnectCluster(t, c)
		if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "TASKS", Subjects: []string{"tasks.>"}, Replicas: 3}); err != nil {
			t.Fatal(err)
		}
	}
}

// ExampleStart shows a server with settings of the test's own: here a
// small max payload.
func ExampleStart() {
	_ = func(t *testing.T) {
		srv := embeddedtest.Start(t, embedded.Config{MaxPayload: 16 << 10})
		nc, _ := embeddedtest.Connect(t, srv)
		if nc.MaxPayload() != 16<<10 {
			t.Fatalf("max payload %d", nc.MaxPayload())
		}
	}
}
