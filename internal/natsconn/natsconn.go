// Package natsconn tells long-running parts when their NATS connection is
// closed for good, so that every Run fails the same way instead of
// retrying against a connection that will never come back.
package natsconn

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// Watch returns a channel that is closed once nc is closed for good (a
// nats.go connection closes after its reconnect attempts run out, or when
// its owner closes it), and a stop function that releases the watch. Call
// stop when done; the channel is not closed by stop.
func Watch(nc *nats.Conn) (closed <-chan struct{}, stop func()) {
	ch := nc.StatusChanged(nats.CLOSED)
	out := make(chan struct{})
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() { // owned by stop, which waits for it
		defer close(done)
		if nc.IsClosed() {
			close(out)
			return
		}
		select {
		case <-ch:
			close(out)
		case <-quit:
		}
	}()
	return out, func() {
		close(quit)
		<-done
		nc.RemoveStatusListener(ch)
	}
}

// Error is the error a Run returns when its connection closed: it names
// the component and wraps nats.ErrConnectionClosed.
func Error(component string) error {
	return fmt.Errorf("%s: NATS connection closed: %w", component, nats.ErrConnectionClosed)
}

// ClosedWithin reports whether nc is closed, or closes within d: for a part
// whose subscription just ended, to tell a connection closing (which ends
// subscriptions first) from another failure.
func ClosedWithin(nc *nats.Conn, d time.Duration) bool {
	closed, stop := Watch(nc)
	defer stop()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-closed:
		return true
	case <-t.C:
		return false
	}
}
