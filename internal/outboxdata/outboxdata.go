// Package outboxdata holds the plain data types of the outbox package
// (outbox.Stats, outbox.DeadRow, outbox.DeadFilter are aliases of these),
// so that packages that show an outbox, such as the dashboard, do not link
// the PostgreSQL driver.
package outboxdata

import (
	"time"

	"github.com/nats-io/nats.go"
)

// DeadRow is a row the relay moved aside because the server refused it
// for good.
type DeadRow struct {
	// ID is the row's id; it keeps it when retried.
	ID int64
	// MsgID is the task ID, published as Nats-Msg-Id.
	MsgID   string
	Subject string
	Data    []byte
	Header  nats.Header
	// Key is the ordering key, empty without one.
	Key         string
	AvailableAt time.Time
	CreatedAt   time.Time
	// Reason says why the server refused it.
	Reason   string
	FailedAt time.Time
}

// Stats describes an outbox at one moment.
type Stats struct {
	// Pending is the number of rows not yet published, due or delayed.
	Pending int64
	// Due is the number of pending rows that are due now.
	Due int64
	// Lag is how long the oldest due row has been due (for an immediate
	// row: since its transaction started); 0 when none is due. It is the
	// relay's lag: alert when it grows.
	Lag time.Duration
	// Dead is the number of rows moved aside.
	Dead int64
}

// DeadFilter selects dead rows for outbox.Outbox.ListDead; the zero value
// selects all.
type DeadFilter struct {
	// Subject, when set, selects the rows of this subject.
	Subject string
	// AfterID lists rows with a larger ID only (pagination).
	AfterID int64
	// Limit is the most rows returned. Defaults to 100.
	Limit int
}
