package publisher

import "errors"

var (
	// ErrNoStream is returned when no stream captures the subject (or the
	// stream that does has no leader). The message was not stored.
	ErrNoStream = errors.New("publisher: no stream captures the subject")
	// ErrPayloadTooLarge is returned, before any I/O, when the message is
	// larger than the server's max payload.
	ErrPayloadTooLarge = errors.New("publisher: message exceeds the server's max payload")
	// ErrDelayNotSupported is returned when a delayed publish targets a
	// stream without message schedules or without its delay subject.
	ErrDelayNotSupported = errors.New("publisher: stream does not support delayed tasks")
	// ErrBatchNotSupported is returned by [Publisher.PublishBatch] when
	// the batch's stream does not allow batch publishing.
	ErrBatchNotSupported = errors.New("publisher: stream does not allow batch publishing")
	// ErrInvalidOptions is returned, before any I/O, for contradictory
	// [PublishOpts] (both Delay and At, a negative Delay or TTL).
	ErrInvalidOptions = errors.New("publisher: invalid publish options")
	// ErrOutcomeUnknown is returned when the message was sent but no PubAck
	// arrived (the context ended, the ack timed out, the connection
	// dropped): it may or may not be stored. Publishing it again is safe
	// only with the same task ID (PublishOpts.ID), inside the stream's
	// duplicate window: a caller that will retry must give an ID, since a
	// task without one is stored again. Errors that do not wrap
	// ErrOutcomeUnknown mean the message was not stored.
	ErrOutcomeUnknown = errors.New("publisher: publish outcome unknown, the message may be stored")
)
