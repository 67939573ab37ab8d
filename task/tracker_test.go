package task_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/task"
)

// TestTrackerRunFailsWhenTheConnectionCloses, as every Run of jetworker
// does: it does not retry against a connection that never comes back.
func TestTrackerRunFailsWhenTheConnectionCloses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	nc, js := embeddedtest.Connect(t, b.srv)
	store, err := task.New(js, task.Config{Logger: testutil.Logger(t, slog.LevelWarn)})
	if err != nil {
		t.Fatal(err)
	}
	tr := store.NewTracker("w1", false)
	done := make(chan error, 1)
	go func() { done <- tr.Run(context.Background()) }()
	<-tr.Ready()
	nc.Close()
	select {
	case err := <-done:
		if !errors.Is(err, nats.ErrConnectionClosed) {
			t.Fatalf("Run: got %v, want an error wrapping nats.ErrConnectionClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its connection closed")
	}
}
