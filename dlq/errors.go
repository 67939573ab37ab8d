package dlq

import "errors"

var (
	// ErrNotFound is returned by [Store.Get], [Store.Replay] and
	// [Store.Delete] when no dead letter has the given sequence (or it was
	// replayed or deleted meanwhile, possibly by another caller).
	ErrNotFound = errors.New("dlq: dead letter not found")
	// ErrUntrusted is returned by [Store.Replay] for an entry that could
	// not have come from the dead-letter path, or whose payload was
	// truncated; the error gives the reason, as [Entry.Problem] does.
	ErrUntrusted = errors.New("dlq: dead letter not replayable")
)
