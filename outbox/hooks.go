package outbox

import "time"

// Batch describes one relay batch, passed to Hooks.BatchFunc.
type Batch struct {
	// Claimed is the number of rows the batch claimed.
	Claimed int
	// Published is the number of rows acknowledged by the server and
	// deleted (or marked); Duplicates of them were acknowledged as
	// duplicates (published before, by a relay that stopped before it
	// could delete them).
	Published, Duplicates int
	// Dead is the number of rows moved to the dead table.
	Dead int
	// Failed is the number of rows whose publish failed for a reason that
	// may pass (disconnected, timed out); they stay and are tried again
	// after a backoff.
	Failed int
	// Duration is the time from the claim to the commit.
	Duration time.Duration
	// Err is the first transient publish error, or the PostgreSQL error
	// that undid the batch (then nothing of it was deleted, and rows the
	// server acknowledged are published again, as duplicates).
	Err error

	start time.Time
}

// Hooks let metrics observe the relay without the relay depending on
// them. Every field is optional. They run on the relay's goroutines, so
// they must be fast and safe for concurrent use.
type Hooks struct {
	// BatchFunc is called after every batch that claimed rows, and after
	// every batch that failed.
	BatchFunc func(b Batch)
	// DeadFunc is called for every row moved to the dead table, after the
	// move is committed.
	DeadFunc func(d DeadRow)
}
