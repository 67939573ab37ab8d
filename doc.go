// Package jetworker is the shared vocabulary of the jetworker toolkit for
// event-driven background work on NATS JetStream: the [Task] a handler
// receives, the [Handler] interface, the header names every package agrees
// on, the outcome errors [Permanent] and [RetryAfter] that decide what
// happens to a message, and [PanicError] for a recovered panic.
//
// The package does no I/O and keeps no state. The work is done by its
// sub-packages:
//
//   - streams: provision the task and dead-letter streams;
//   - publisher: emit tasks onto JetStream subjects, one at a time or in bulk;
//   - consumer: run handlers on a durable pull consumer with a worker pool;
//   - handlers: a subject mux, middleware, typed adapters and stock
//     handlers (webhook, email);
//   - schedule: cron and interval schedules with a single elected publisher;
//   - dlq: list, inspect, replay and purge dead letters;
//   - task: tracked tasks' state, progress, result and cancel; uniqueness;
//     task/taskhttp serves the 202 Accepted pattern over HTTP;
//   - outbox: enqueue tasks in a PostgreSQL transaction, relayed to JetStream;
//   - overview, metrics, dashboard, tracing: see and measure it all;
//   - embedded: an in-process nats-server for tests, examples and dev mode
//     (embedded/embeddedtest for tests).
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
// Every long-running part (consumer, scheduler, outbox relay, dashboard) has a
// Run(ctx) error method. [RunAll] runs several of them and stops them all
// when one fails, so a main function stays a few lines long.
package jetworker
