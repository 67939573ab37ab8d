// Package consumer runs jetworker handlers on a durable JetStream pull
// consumer: what a worker service runs.
//
// [New] takes a jetstream.JetStream, a [jetworker.Handler] and a [Config];
// [Consumer.Run] provisions the durable consumer (explicit ack) and
// processes messages with Config.Concurrency handlers at once until its
// context ends. Workers in several processes that use the same Durable
// share the work.
//
// # Several services on one stream
//
// Workers of one service share a Durable; two services are two durables.
// On a work-queue stream (the default, [streams.WorkQueue]) the server
// gives each task to exactly one consumer, so two durables whose filters
// overlap are refused ([ErrFilterOverlap], naming the other consumer).
// Pick the recipe by what a task is:
//
//   - A task for one service: give each service its own subjects and its
//     own filter (Config.FilterSubjects: billing takes tasks.billing.>,
//     email takes tasks.email.>), on the shared work-queue stream.
//   - An event several services react to: publish it to a stream with
//     interest retention (streams.Config{Tasks: streams.Tasks{Name:
//     "EVENTS", Subjects: []string{"events.>"}, Retention:
//     streams.Interest}}) and give each service its own
//     durable with any filter; the server keeps each message until every
//     durable that is interested has acknowledged it, and each service
//     retries and dead-letters its own copy. Such a stream is not a
//     work-queue stream, so filters may overlap.
//
// # Pulling
//
// The consumer pulls with nats.go's Consume and hands a message on only
// when a handler is free (until then nats.go waits to pull more). How many messages it requests ahead
// (the prefetch) adapts to the handlers: only running handlers' messages
// get heartbeats, so a buffered message must start well within AckWait.
// The prefetch starts at Concurrency, deepens up to PullMaxMessages (500)
// (first looking after 5ms, then every 100ms) while finished handlers show that a buffer that deep still drains within
// AckWait/4, and shrinks at once when finished or still-running handlers
// show it would not. When it shrinks, the consumer takes the messages
// already buffered into its own hands and marks them in progress until a
// handler is free, so no message waits unattended until its AckWait
// expires. MaxAckPending (server side, >= Concurrency) bounds the
// unacknowledged messages of all workers on the durable.
//
// # Settlement
//
// What the handler returns decides the message's fate:
//
//	handler result                      consumer does
//	nil                                 Ack (AckSync with DoubleAck)
//	error                               Nak with Backoff(attempt) delay
//	jetworker.RetryAfter(err, d)        Nak with delay d
//	jetworker.Permanent(err)            dead-letter (wait for PubAck), then Term
//	panic                               recovered, logged with its stack, an error
//	HandlerTimeout passed               an error (the handler's ctx is cancelled)
//	error on delivery MaxDeliver        dead-letter, then Term
//
// If the dead-letter copy cannot be stored, the message is Nak'ed with the
// backoff delay instead: a task is never dropped.
//
// # Dead letters
//
// A dead task of stream S and durable C, stored on subject X, is copied to
// <prefix>.S.C.X (default dlq.S.C.X) in the dead-letter stream, with its
// original data and headers and Jetworker-Error, -Attempts,
// -Original-Subject, -Original-Stream, -Original-Seq, -Consumer and
// -Failed-At (the dlq package documents the layout). The original task ID
// moves to Jetworker-Task-Id; the copy's Nats-Msg-Id is S.C.<seq>, so one
// task is dead-lettered once even when both paths below reach it. The copy
// always fits in the server's max payload: a task close to it is stored
// with a shortened error and, if need be, a cut payload
// (Jetworker-Payload-Truncated), never left undead in the task stream.
//
// Messages whose deliveries run out without any handler result (a worker
// that keeps crashing, an expired AckWait on the last delivery) are
// reported by the server's MAX_DELIVERIES advisory. Every running consumer
// listens for the advisories of its durable (in a queue group, so one
// worker acts on each), fetches the message by stream sequence,
// dead-letters it and, on a work-queue stream, deletes the original.
//
// The dlq package lists, inspects, replays and purges dead letters.
//
// # Heartbeats
//
// While a handler runs, its message is marked in progress every
// HeartbeatInterval (default AckWait/3), so a task that runs many times
// AckWait is not redelivered while its worker lives. Heartbeats stop at the
// handler's deadline, so a hung handler does not keep its message forever.
// A crashed worker's messages are redelivered after AckWait.
//
// # Shutdown
//
// When Run's context ends, the consumer:
//
//  1. stops pulling and Naks (no delay) the messages it received but did
//     not start, so other workers take them at once;
//  2. lets running handlers finish within ShutdownGrace, settling their
//     results as usual;
//  3. cancels the handlers' contexts; a handler that then returns an error
//     has its message Nak'ed without delay (it is not counted as failed);
//  4. waits HardStopTimeout for handlers that ignore cancellation, Naks
//     their messages and returns [ErrHandlersStuck].
//
// Handler contexts carry the values of Run's context but not its
// cancellation. When Run returns, every goroutine it started has ended
// (except handlers reported by ErrHandlersStuck).
//
// # Presence
//
// Each running consumer keeps a [WorkerInfo] record in the
// jetworker_workers KV bucket ([Presence]), refreshed every TTL/3 (at most
// every 2s) and expiring
// with the bucket's TTL; [Presence.List] reads them.
package consumer
