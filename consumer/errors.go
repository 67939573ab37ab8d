package consumer

import "errors"

var (
	// ErrAlreadyRunning is returned by [Consumer.Run] when it is called
	// a second time.
	ErrAlreadyRunning = errors.New("consumer: Run called twice")
	// ErrConsumerConflict is returned by [Consumer.Run] and [Provision]
	// when an existing durable consumer's configuration cannot be updated
	// to the wanted one (for example a push consumer, or another ack
	// policy). The existing consumer is left unchanged.
	ErrConsumerConflict = errors.New("consumer: existing durable consumer conflicts")
	// ErrFilterOverlap is returned by [Consumer.Run] and [Provision] when
	// the stream is a work-queue stream and another durable consumer's
	// filter overlaps this one's: the server delivers each task of such a
	// stream to one consumer only. The error names the other consumer and
	// the fixes.
	ErrFilterOverlap = errors.New("consumer: filters overlap another consumer's on a work-queue stream")
	// ErrHandlersStuck is returned by [Consumer.Run] when handlers did
	// not return within HardStopTimeout after their contexts were
	// cancelled. Their messages were Nak'ed; their goroutines still run.
	ErrHandlersStuck = errors.New("consumer: handlers ignored cancellation")
)
