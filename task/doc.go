// Package task records the lifecycle of tracked tasks and lets callers see
// and steer them: state, attempts, errors, progress and result by task ID;
// cancel; uniqueness beyond the stream's duplicate window. It is what an
// HTTP endpoint answering 202 Accepted needs to report on the work it
// queued.
//
// # Tracking
//
// Tracking is opt-in: a task published with publisher.PublishOpts.Track
// carries Jetworker-Track, and once the server has stored it the publisher
// writes its record (Pending, or Scheduled when delayed), with where it is
// stored; a consumer records every transition of the tracked tasks it runs
// (consumer.Config.TrackAll tracks every task it runs). Untracked tasks pay
// nothing: no header, no record, no write.
//
// A task ID names one task for as long as its record is kept (Config.TTL
// after its last change): a second task published with the same ID in
// that time shares the first one's record, which a finished first task
// keeps (a redelivery of the second is taken for a late duplicate and
// acknowledged without running). Use a fresh ID per task; the publisher
// refuses a tracked or unique task that would be released, or hold its
// lock, beyond the TTL.
//
// Workers write records off the handlers' path, one queue per task: while
// the bucket is slower than the tasks, a task's transitions merge into one
// write, and a task's start is held back 50ms, so a task that ends sooner
// costs one read and one write for both (its history still lists every
// transition). Record writes are revision-checked async publishes
// (Nats-Expected-Last-Subject-Sequence), many tasks' in flight at once but
// one per task, and the records a worker has to read are read in batches
// of up to 64 with one direct get; a worker that writes a task's record
// before its publisher (a task run at once) saves the publisher's write,
// which finds the record there and is dropped. docs/performance.md has the
// measured cost.
//
// Records live in a JetStream KV bucket ([DefaultBucket], "jetworker_status")
// under t.<id>, kept for Config.TTL (24h) after their last update:
//
//	scheduled -> pending -> active -> succeeded
//	                  \        \----> retrying -> active ...
//	                   \        \---> failed     (dead-lettered)
//	                    `---------`-> cancelled
//
// Transitions are monotonic and crash-safe: every write is revision-checked
// and applied with rules that drop what is late (an earlier attempt, a
// state behind the current one) and never leave a terminal state, except
// for a replayed dead letter, which starts a new generation. A worker
// killed mid-task leaves the record Active; the redelivery's Active (a
// later attempt) supersedes it. A late duplicate delivery of a task whose
// record is terminal is acknowledged without running it. A record write
// that fails never fails, delays or repeats the task: a worker retries it
// with backoff for Config.RetryFor (2m), together with whatever the task
// reported meanwhile, so a bucket that comes back gets the terminal state
// and Wait and Follow end; a write still failing then is logged, counted
// in [Store.Lost], and the record lags (its Updated time shows by how
// much).
//
// A worker's writes are made off the handler's path, by the tracker's
// writers, one task's writes in order. Handlers report with
// jetworker.SetProgress (coalesced to a write per 250ms) and
// jetworker.SetResult (stored with the success, at most Config.MaxResult).
//
// # Cancel
//
// [Store.Cancel] records a cancel request, removes a scheduled or pending
// task's message from its stream (unless a consumer has handed it to a
// worker already: a handler may be running it), and writes the request
// under c.<id>, which every worker watches: a running task's context is
// cancelled (cause [ErrCancelled]) within moments on whichever worker runs
// it, and the worker ends it Cancelled, neither retried nor dead-lettered.
// A worker that receives a cancelled task later does not run it. A record
// says "cancelled before it ran" only for a task whose message was
// removed before any worker had it. [Store.CancelRef] does the same for a
// task known by its stream and sequence, tracked or not: it reads the
// message's headers first, so a tracked task's record and a unique task's
// lock are settled as by Cancel.
//
// # Uniqueness
//
// A task published with a uniqueness mode takes a lock under u.<id> before
// it is published; a second publish with the same ID while the lock is
// held is reported as a duplicate, however long after the first. The lock
// is released when the task starts (UniquePending), when it ends
// (UniqueActive), or when it ends or a duration has passed (UniqueFor), by
// whichever worker runs it; a crashed worker's task is redelivered and
// releases it then; and every lock expires with a TTL of its own, so none
// outlives the bucket's TTL.
//
// # Reading
//
// [Store.Get] returns a record, [Store.Wait] blocks until it is terminal,
// [Store.Follow] yields it as it changes (a KV watch, not polling), and
// [Store.List] pages through records, the most recently updated first, by
// state and subject.
package task
