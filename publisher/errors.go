package publisher

import "errors"

var (
	// ErrInvalidSubject is returned, before any I/O, for a subject that is
	// empty, contains white space or wildcards, or has an empty token.
	ErrInvalidSubject = errors.New("publisher: invalid subject")
	// ErrNoStream is returned when no stream captures the subject (or the
	// stream that does has no leader). The message was not stored.
	ErrNoStream = errors.New("publisher: no stream captures the subject")
	// ErrPayloadTooLarge is returned, before any I/O, when the message is
	// larger than the server's max payload.
	ErrPayloadTooLarge = errors.New("publisher: message exceeds the server's max payload")
	// ErrDelayNotSupported is returned when a delayed publish targets a
	// stream without message schedules or without its delay subject.
	ErrDelayNotSupported = errors.New("publisher: stream does not support delayed tasks")
	// ErrInvalidOptions is returned, before any I/O, for contradictory
	// [PublishOpts] (both Delay and At, a negative Delay or TTL).
	ErrInvalidOptions = errors.New("publisher: invalid publish options")
	// ErrOutcomeUnknown is returned when the message was sent but no PubAck
	// arrived (the context ended, the ack timed out, the connection
	// dropped): it may or may not be stored. Publishing it again with the
	// same task ID inside the duplicate window is safe. Errors that do not
	// wrap ErrOutcomeUnknown mean the message was not stored.
	ErrOutcomeUnknown = errors.New("publisher: publish outcome unknown, the message may be stored")
	// ErrStreamConflict is returned by [EnsureStream] when an existing
	// stream's configuration conflicts with the wanted one in a way that
	// cannot, or must not, be changed in place.
	ErrStreamConflict = errors.New("publisher: existing stream conflicts")
)
