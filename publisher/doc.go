// Package publisher emits jetworker tasks onto JetStream subjects and
// provisions the streams they are stored in.
//
// A [Publisher] wraps a jetstream.JetStream. [Publisher.Publish] waits for
// the server's PubAck; [Publisher.PublishAsync] does not, keeps at most
// Config.MaxInFlight publishes unacknowledged, and [Publisher.Wait] blocks
// until everything sent so far is acknowledged. [PublishJSON] encodes a
// typed value.
//
// Every task gets an ID (a time-ordered UUIDv7 unless the caller gives
// one) sent as the Nats-Msg-Id header, so the server drops a second
// publish of the same task inside the stream's duplicate window; the
// [Result] reports that as Duplicate, not as an error. Publishing again
// with the same ID after an [ErrOutcomeUnknown] is therefore safe.
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
// streams made by [TaskStream] do.
//
// # Provisioning
//

// the wanted configuration. Settings the server can change in place are
// updated; settings it cannot change, or that would take over somebody
// else's stream (subjects, retention, storage), are reported as
// [ErrStreamConflict] and left alone. [TaskStream] and [DeadLetterStream]
// give the defaults of jetworker's design; [Provision] ensures both.
package publisher
