package natsconn_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/internal/natsconn"
)

func TestWatch(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.Start(t, embedded.Config{})
	nc, _ := embeddedtest.Connect(t, srv)
	closed, stop := natsconn.Watch(nc)
	defer stop()
	select {
	case <-closed:
		t.Fatal("closed reported for an open connection")
	default:
	}
	if natsconn.ClosedWithin(nc, 50*time.Millisecond) {
		t.Fatal("ClosedWithin: got true for an open connection")
	}
	nc.Close()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("closed not reported within 5s of Close")
	}
	if !natsconn.ClosedWithin(nc, time.Second) {
		t.Fatal("ClosedWithin: got false for a closed connection")
	}
	if err := natsconn.Error("x"); !errors.Is(err, nats.ErrConnectionClosed) {
		t.Fatalf("Error: got %v", err)
	}
}
