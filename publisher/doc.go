// Package publisher emits jetworker tasks onto JetStream subjects and
// provisions the streams they are stored in.
//
// A [Publisher] wraps a jetstream.JetStream. [Publisher.Publish] waits for
// the server's PubAck; [Publisher.PublishAsync] does not, keeps at most
// Config.MaxInFlight publishes unacknowledged, and [Publisher.Wait] blocks
// until everything sent so far is acknowledged. [PublishJSON] encodes a
// typed value.
//
// A task carries a Nats-Msg-Id only when it has an idempotency key:
// PublishOpts.ID, or an ID from Config.IDFunc (set it to [NewID] to give
// every task a time-ordered UUIDv7). The server then drops a second
// publish of the same ID inside the stream's duplicate window, and the
// [Result] reports that as Duplicate, not as an error. A task without an
// ID carries no jetworker header at all (trace headers only when a span is
// recording), costs what a raw nats.go publish costs, and is known by its
// stream and sequence, [Result.Ref] ("TASKS/42"), the same form the
// consumer's logs, dead letters, the command line and the dashboard show.
//
// A caller that will publish again after [ErrOutcomeUnknown] (the message
// was sent, the ack was lost) must give an ID: without one the retry is a
// second task.
//
// Subjects in the server's reserved spaces ($JS., $KV., $SYS., every $
// subject, _INBOX.) and Nats- or Jetworker- headers are refused before
// anything is sent: a task published there would be a request to the
// server (purge a stream) or a directive (Nats-Rollup: all).
//
// # Delayed tasks
//
// PublishOpts.Delay and PublishOpts.At use the server's own message
// schedules (ADR-51, nats-server 2.12+). The publisher stores a schedule
// message on the stream's delay subject (jetworker.delay.<stream>.<uuid>)
// with Nats-Schedule: @at <time> and Nats-Schedule-Target: <subject>; at
// that time the server publishes the task on its subject and removes the
// schedule message. Because the server strips Nats-Msg-Id from the released
// message, delayed tasks carry their ID in Jetworker-Task-Id as well. The
// stream must allow message schedules and capture its delay subject, as
// streams made by streams.Provision do.
//
// # Provisioning
//
// The streams package creates the task and dead-letter streams
// (streams.Provision); a publisher needs nothing of its own.
package publisher
