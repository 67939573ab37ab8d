// Package dlq administers dead letters: the tasks a consumer gave up on,
// stored in the dead-letter stream (DLQ by default). [Store] lists them
// newest first with cursor paging and filters, shows one, replays them onto
// their original subjects and deletes them. The dashboard and the command
// line use it; the consumer writes dead letters with [Message].
//
// # Layout
//
// A task of stream S that consumer C gave up on, stored on subject X, is
// stored on
//
//	<prefix>.S.C.X            (prefix "dlq" by default)
//
// with its original data and headers (server directives removed: the
// copy must not expire, roll up or be de-duplicated against the original),
// its ID in Jetworker-Task-Id, and Jetworker-Error, -Attempts,
// -Original-Subject, -Original-Stream, -Original-Seq, -Consumer and
// -Failed-At. Its Nats-Msg-Id is S.C.<seq>, so the two paths that dead-letter
// a task (a handler's result and the server's max-deliveries advisory)
// store it once. Because the original subject is part of the subject,
// filters by stream, consumer and original subject (with wildcards) run in
// the server. Dead letters written before this layout (on <prefix>.S.C) are
// still read, but filters by subject do not see them.
//
// A dead letter always fits: when the copy would exceed the server's max
// payload, the error text is shortened, then the task's own headers are
// left out if they alone leave no room (largest first, with
// Jetworker-Headers-Dropped counting them), and then the payload is cut,
// with Jetworker-Payload-Truncated giving the original size. Such an entry
// is kept for inspection and cannot be replayed.
//
// # Trust
//
// Anyone allowed to publish on the dead-letter subjects can write an entry,
// so [Store.Replay] trusts only what the dead-letter path writes: the
// subject and the Jetworker headers must agree, the original subject must
// be a valid, non-reserved task subject that the original stream captures
// and the named consumer's filters select, the stream must not be a
// dead-letter stream, and the payload must be complete. An entry that
// fails a check carries the reason in [Entry.Problem] (shown by
// "jetworker dlq show" and the dashboard) and Replay refuses it with
// [ErrUntrusted]. Give each worker identity publish rights only on its own
// <prefix>.S.C.> (deploy/README.md), so a worker can plant nothing but
// entries of its own consumer.
//
// # Replay
//
// Replay publishes the dead letter on its original subject, with its data
// and headers, the task's ID in Jetworker-Task-Id, Nats-Msg-Id
// replay-<dlq stream>-<seq> and Jetworker-Replayed-From, waits for the
// PubAck and then deletes the dead letter. When several callers replay one
// entry at once, the task is stored once (the same Nats-Msg-Id), exactly
// one caller gets the result and the others get [ErrNotFound].
//
// Reads use the server's batched direct gets (the dead-letter stream must
// allow direct gets, as streams.DeadLetters makes it); no consumer is
// created.
package dlq
