package overview_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/overview"
)

func TestMissingStreamsAreReported(t *testing.T) {
	t.Parallel()
	js := embeddedtest.JetStream(t)
	ov, err := overview.Read(t.Context(), js, overview.Config{TaskStreams: []string{"NOPE"}, DeadLetterStream: "NODLQ"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ov.Streams) != 2 || !ov.Streams[0].Missing || !ov.Streams[1].Missing || !ov.Streams[1].DeadLetters {
		t.Fatalf("streams %+v: want both reported missing, the second as dead letters", ov.Streams)
	}
}

// TestDisconnectedFailsFast: with the server gone, Read answers at once
// with an error instead of waiting for request timeouts.
func TestDisconnectedFailsFast(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.Start(t, embedded.Config{})
	_, js := embeddedtest.Connect(t, srv, nats.MaxReconnects(-1), nats.ReconnectWait(time.Hour))
	srv.Shutdown()
	testutil.Eventually(t, 5*time.Second, func() error {
		if st := js.Conn().Status(); st == nats.CONNECTED {
			return fmt.Errorf("still %s", st)
		}
		return nil
	})
	began := time.Now()
	_, err := overview.Read(t.Context(), js, overview.Config{Timeout: 30 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "NATS connection is") {
		t.Fatalf("got %v, want an error naming the connection state", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("Read took %s with the server gone, want an immediate answer", took)
	}
}
