// Package outbox publishes tasks from PostgreSQL transactions: the
// transactional outbox on JetStream.
//
// A service that saves an order and then publishes "order placed" makes
// two writes with no transaction across them; a crash between them loses
// the task or publishes one for an order that was rolled back. With the
// outbox the task is a row written in the caller's own transaction
// ([Outbox.Enqueue] with a pgx.Tx, [Outbox.EnqueueSQL] with a
// database/sql *sql.Tx, [Outbox.EnqueueMany] with COPY, [EnqueueJSON]),
// and a [Relay] moves committed rows into JetStream.
//
// # Guarantees
//
//   - A rolled-back transaction publishes nothing: its rows never existed.
//   - A committed row is published at least once, as a task message:
//     subject = the task type, data = the payload, the given headers, and
//     Nats-Msg-Id = the row's task ID (EnqueueOpts.ID, or a UUIDv7 made at
//     enqueue; never a table sequence, so outboxes of several services can
//     feed one stream), plus Jetworker-Enqueued-At = when the row became
//     due.
//   - A row is deleted (or, with RelayConfig.KeepPublished, marked with
//     its stream and sequence) only after the server's PubAck, in the
//     transaction that claimed it. A relay that dies before that commit
//     leaves the rows to the next claim, which publishes them again with
//     the same Nats-Msg-Id: the server drops the copy and acknowledges it
//     as a duplicate.
//   - That de-duplication lasts the stream's duplicate window (2 minutes
//     for jetworker's task streams). A row published but not deleted
//     because its relay (or PostgreSQL) stalled for longer than the window
//     is stored a second time when it is published again. Keep the window
//     longer than AckTimeout plus the longest failover you expect, and
//     make handlers idempotent on the task ID for the rest.
//
// # Relays
//
// Run one relay or several ([Relay.Run]; jetworker outbox relay). Each
// claims due rows in batches with SELECT … FOR UPDATE SKIP LOCKED, so
// relays (and the Concurrency batches inside one) share the rows without
// waiting for each other, publishes a batch asynchronously, waits for the
// PubAcks and settles the batch in one round trip before it commits. A
// statement trigger on the table sends a NOTIFY at the commit of every
// transaction that inserted rows, whoever inserted them (Enqueue, COPY,
// or another service's plain INSERT), which wakes a relay at once;
// RelayConfig.PollInterval is the fallback. Config.DisableNotify leaves
// the trigger out, for many small concurrent transactions: a notifying
// transaction takes a database-wide lock while it commits.
//
// Delays are kept in PostgreSQL: EnqueueOpts.Delay and At set the row's
// available_at, the claim takes only due rows, and an idle relay wakes
// when the next delayed row is due.
//
// # Ordering
//
// Without a key, rows are published roughly oldest first and no order is
// promised. Rows with the same EnqueueOpts.Key are published in the order
// their transactions committed:
//
//   - Enqueue takes a per-key transaction lock (pg_advisory_xact_lock on
//     the key's hash) before the row's id is drawn, so two transactions
//     enqueuing one key run one after the other from that point until
//     commit, and ids of a key follow commit order. Transactions that lock
//     several keys in different orders can deadlock; PostgreSQL then
//     aborts one of them. EnqueueMany locks its keys in sorted order.
//   - A relay claims a keyed row only when no earlier row of its key is
//     left in the table (claimed by another relay, waiting for its PubAck,
//     or still delayed), and publishes the rows of one key one after the
//     other, each after the previous one's PubAck, so a failed publish
//     cannot be overtaken by the next one.
//   - A row moved aside (below) no longer holds its key back.
//
// A keyed claim looks at the oldest 4 × BatchSize due keyed rows and takes
// the first rows of their keys among them, then fills the batch with the
// rows that follow, an equal share per key. This keeps a claim cheap when
// keys have long backlogs; the price is that when more than 4 × BatchSize
// due rows wait behind keys whose first row is delayed or unacknowledged,
// the other keys wait until those rows move.
//
// # Rows the server refuses
//
// A row the server refuses for good is moved to the dead table with the
// reason and time, and the rest flows on: no stream captures its subject
// (no responders, and the stream lookup agrees), it is larger than the
// server's max payload, its subject is invalid or reserved or a header
// starts with Nats- (possible only for rows inserted by hand), or the
// server rejects it with an API error other than 503. Failures that may
// pass — disconnects, timeouts, a full stream that discards new messages,
// a stream without a leader (the 503s) — never move a row: the batch is
// retried with backoff. [Outbox.ListDead], [Outbox.RetryDead] (back into
// the outbox with the same ID) and [Outbox.DeleteDead] manage dead rows;
// jetworker outbox dead ls|retry|rm does it from the command line.
//
// # Schema
//
// [Migrate] (jetworker outbox migrate) runs the embedded, idempotent
// script that [MigrationSQL] returns, under an advisory lock. Config.Schema
// and Config.Table (default public.jetworker_outbox) name, and validate:
//
//	<table>          id (identity), msg_id, subject, payload, headers (jsonb),
//	                 order_key, available_at, created_at,
//	                 published_at, stream, stream_seq (KeepPublished)
//	<table>_dead     the same row, with reason and failed_at
//	<table>_due_idx      (available_at, id) of unpublished rows without a key
//	<table>_key_due_idx  (available_at, id) of unpublished rows with a key
//	<table>_key_idx      (order_key, id) of unpublished keyed rows: ordering
//	<table>_notify       the statement trigger and its function
//
// Both claims read their due index from its start, so their cost does not
// grow with the rows waiting (dead index entries of deleted rows aside,
// which autovacuum, tuned tighter on the table, removes). Other services may insert rows with plain
// SQL: subject and payload are enough (msg_id defaults to a random UUID).
//
// # Metrics and health
//
// Hooks.BatchFunc reports every batch (rows claimed, published,
// duplicates, dead, failed, its duration and error) and Hooks.DeadFunc
// every row moved aside. [Relay.Stats] (or [Outbox.Stats]) reports the
// pending, due and dead rows and the lag: how long the oldest due row has
// waited. [Relay.Check] is a readiness check that fails while PostgreSQL
// or NATS is unreachable.
package outbox
