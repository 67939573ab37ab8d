// Package streams provisions the JetStream streams jetworker stores tasks
// and dead letters in. A worker, a scheduler or a publisher provisions with
// it alone; none of them needs another's package to do so.
//
// [Provision] creates the task stream and the dead-letter stream, or brings
// existing ones in line with the wanted configuration; it is idempotent.
// [Tasks.StreamConfig] and [DeadLetters.StreamConfig] give the
// configurations of jetworker's design, and [Ensure] applies any stream
// configuration the same way.
//
// # What Ensure changes and what it refuses
//
// Settings the server can change in place (duplicate window, size limits,
// replicas, enabling schedules, TTLs and direct gets, the jetworker.kind
// metadata) are updated. Settings it cannot change, or that would take over
// somebody else's stream (subjects, retention, storage, turning features
// off), are reported as [ErrConflict], naming each field with its existing
// and wanted value, and the stream is left alone.
//
// # Kinds
//
// Streams made here carry the metadata key [MetadataKind]: [KindTasks] or
// [KindDeadLetters]. The schedule store and dead-letter replay read it to
// refuse a target subject that would land in the dead-letter stream.
package streams
