// Package jetworker is the shared vocabulary of the jetworker toolkit for
// event-driven background work on NATS JetStream: the [Task] a handler
// receives, the [Handler] interface, the header names every package agrees
// on, the outcome errors [Permanent] and [RetryAfter] that decide what
// happens to a message, and [PanicError] for a recovered panic.
//
// The package does no I/O and keeps no state. The work is done by its
// sub-packages:
//
//   - publisher: emit tasks onto JetStream subjects and provision streams;
//   - consumer: run handlers on a durable pull consumer with a worker pool;
//   - schedule: cron and interval schedules with a single elected publisher;
//   - handlers: a subject mux, middleware and typed adapters;
//   - embedded: an in-process nats-server for tests, examples and dev mode.
//
// # Handler results
//
// What a handler returns decides the fate of its message:
//
//	nil                      ack
//	any error                retry after the consumer's backoff delay
//	RetryAfter(err, d)       retry after d
//	Permanent(err)           dead-letter, then terminate; never retried
//
// Both outcome errors survive wrapping with fmt.Errorf and %w, and are
// detected with errors.As.
//
// # Running parts together
//
// Every long-running part (consumer, scheduler, dashboard) has a
// Run(ctx) error method. [RunAll] runs several of them and stops them all
// when one fails, so a main function stays a few lines long.
package jetworker
