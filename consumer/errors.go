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
	// ErrHandlersStuck is returned by [Consumer.Run] when handlers did
	// not return within HardStopTimeout after their contexts were
	// cancelled. Their messages were Nak'ed; their goroutines still run.
	ErrHandlersStuck = errors.New("consumer: handlers ignored cancellation")
)
