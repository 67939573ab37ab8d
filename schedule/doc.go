// Package schedule stores periodic schedules in JetStream KV and fires them
// from a single elected scheduler.
//
// An [Entry] (cron spec, time zone, subject, payload, headers, paused flag,
// jitter, catch-up policy, optional start and end) is stored as JSON in the
// KV bucket [SchedulesBucket] under its name. [Store] edits entries; a
// running [Scheduler] watches the bucket, so edits take effect within a
// second, without a restart. Run several schedulers: they campaign for a
// lease in [LeaseBucket] and only the holder fires.
//
// # Specs and time zones
//
// A spec is a cron expression with five fields (minute hour day-of-month
// month day-of-week) or six (seconds first), a descriptor (@yearly,
// @monthly, @weekly, @daily, @hourly), or "@every <duration>". Cron fields
// are evaluated in the entry's IANA TimeZone (UTC by default); when both
// day-of-month and day-of-week are restricted, a day matching either
// fires, as in classic cron. Parsing uses github.com/netresearch/go-cron.
//
// "@every d" needs a whole number of seconds, at least 1s. Its slots are
// Start + k*d (or Unix epoch + k*d without Start) in absolute time, so
// every scheduler derives the same slots and daylight saving time does not
// affect them.
//
// Daylight saving time, for cron specs and descriptors, follows Cronos
// (the cron library of Hangfire). A spec matches wall-clock readings in
// the entry's zone:
//
//   - Spring forward: a reading that does not exist that day (02:30 when
//     New York's clocks jump from 02:00 EST to 03:00 EDT) fires at the
//     transition instant, the first valid time after the gap (03:00 EDT).
//     All readings of one gap that match, and a match at the transition
//     instant itself, are one fire: "*/15 * * * *" fires at 01:45 EST,
//     03:00 EDT, 03:15 EDT. A slot computed after the transition instant
//     does not fire the gap again: "30 2 * * *" asked at 03:10 EDT next
//     fires at 02:30 the following day.
//   - Fall back: readings that occur twice (01:00 to 01:59:59 when New
//     York's clocks go back from 02:00 EDT to 01:00 EST) fire in both
//     passes for an interval spec and only in the first pass (before the
//     shift) for any other. A spec is an interval spec when one of its
//     time fields (seconds, minutes, hours) is "*" or "?" or contains a
//     range "-" or a step "/": "*/20 1 * * *" and "0 * * * *" are,
//     "30 1 * * *" and "0,30 1 * * *" are not. Of the descriptors only
//     @hourly is. Asked for its next slot during the second pass, a
//     non-interval spec does not fire again in that pass.
//
// The rules hold for any size of shift (Lord Howe Island moves its clocks
// by 30 minutes); a zone without DST changes nothing.
//
// # Firing
//
// The leader keeps one heap of next slots and one timer, however many
// entries there are. It publishes every due slot asynchronously, the
// entry's payload to its subject with headers
//
//	Nats-Msg-Id:          <name>@<slot, RFC 3339 UTC>
//	Jetworker-Schedule:   <name>
//	Jetworker-Fire-Time:  <slot, RFC 3339 UTC>
//
// (plus the entry's own headers), up to Config.MaxConcurrentFires awaiting
// their PubAck at once: as PubAcks come in it sends more before it does
// anything else with them. Once a fire's PubAck is in, it records the slot
// in [StateBucket] with a revision-checked write (asynchronous too; the
// entry's next record waits for it and redoes it if it failed). The
// message ID makes a second publish of a slot inside the stream's duplicate
// window a no-op, so two schedulers that both believe they lead cannot
// fire a slot twice. The same window lets the leader record entries that
// fire often less often: a fired slot may go unrecorded for half of what
// the window leaves after a failover (two lease TTLs), at most 30s (30s
// with the default 2-minute window and 10s TTL), since a new leader that
// catches up from the cursor fires again only slots the stream then drops
// as duplicates. Each such entry records after a time of its own between
// half that and all of it, so that entries firing together do not record
// together, and its write waits until the slots due are fired: a cursor
// write never delays a fire. A clean stop records every fired slot; a
// window shorter than two lease TTLs plus 2s turns this off, and then
// every fire is recorded at once. At 10,000 entries firing every second
// the cursor writes then add about 5% to what the server writes, instead
// of doubling it. [Store.State] shows the recorded cursor, so for such
// entries it may trail the last fire by that much. A failed publish is
// retried with the same ID: every second, or, while no stream captures
// the subject, after a delay doubling up to a minute. The failure is recorded on the entry's [State] (its Error,
// ErrorAt and Failures), and cleared by the next fire that succeeds; tools
// show it beside the entry. [Store.States] reads the states of all entries
// in one pass (one watch of the state bucket), [Store.State] one entry's.
//
// # What an entry may publish
//
// Entries are checked when saved ([Store.Put]) and again when fired or
// triggered, so an entry written to the bucket by other means is logged
// and never published. They follow the publisher's rules: a valid task
// subject outside the server's reserved $ and _INBOX spaces and
// jetworker's delay subjects; no Nats- header (a server directive) and no
// Jetworker- header (jetworker's own), no malformed header name and no
// header value with a line break. [Store.Put] and [Store.Trigger] also
// need a task stream that captures the subject.
//
// [Store.Trigger] fires an entry once, now, by publishing directly (no
// scheduler involved) with ID "<name>@trigger-<uuid>"; it does not move
// the entry's slots.
//
// # Catch-up
//
// When a scheduler gains leadership it reads each entry's last fired slot
// and applies the entry's [CatchUp] policy to the slots after it that
// have already passed: [CatchUpSkip] fires none and continues with the
// next future slot, [CatchUpOnce] (the default) fires the latest one, and
// [CatchUpAll] fires every one, oldest first. An entry with no record
// starts with its next future slot. Slots that pass while an entry is
// paused are never fired. Note that under CatchUpSkip a slot that falls
// inside a failover is skipped too.
//
// # Lease algorithm
//
// Leadership is a key (Config.LeaseKey) in [LeaseBucket], whose TTL
// (MaxAge) is Config.LeaseTTL and which keeps limit markers, so watchers
// see a key expire. nats.go's per-key TTL applies only to Create, so only
// the bucket TTL reliably expires a dead leader's key.
//
//	             Create ok
//	+----------+ ----------> +---------+  Update ok every TTL/3
//	| follower |             | leader  | <----------------------+
//	+----------+ <---------- +---------+ -----------------------+
//	  ^   |  ErrKeyRevisionMismatch,  |
//	  |   |  or trust window ran out  | ctx done: stop firing,
//	  |   |                           | Delete(LastRevision(rev))
//	  +---+ Create every TTL/3,       v
//	 ErrKeyExists; at once when   (stopped)
//	 the watch shows the key
//	 deleted or expired
//
// Acquire: kv.Create(key). Success makes this instance leader; a conflict
// is recognised only by jetstream.ErrKeyExists.
//
// Renew: every LeaseTTL/3, kv.Update(key, rev) on the revision of our
// last write. jetstream.ErrKeyRevisionMismatch means someone else holds
// the lease: stop at once. Any other error (timeout, disconnection) is
// reported to Hooks.RenewFailedFunc and retried on the next tick.
//
// Trust window: the leader never decides from a KV read. It trusts
// itself until start + LeaseTTL - LeaseMargin, where start is the
// monotonic clock reading taken just before its last successful Create or
// Update was sent; the server cannot expire the key before start +
// LeaseTTL. The window is checked before every single fire, so a process
// that was paused (GC, SIGSTOP) past its window wakes up and does not
// fire; its next Update fails with ErrKeyRevisionMismatch if a follower
// took over, or restores trust if nobody did.
//
// Release: on shutdown the leader first stops firing and waits for fires
// in flight, then deletes the key with a revision check; followers see
// the delete on their watch and Create at once, so a clean handover takes
// milliseconds.
//
// Failures: a crashed leader's key expires LeaseTTL after its last
// renewal; followers see the expiry marker (or retry Create every
// LeaseTTL/3) and one takes over, catching up from the recorded slots. A
// partitioned leader cannot renew, so it stops firing when its window ends,
// LeaseMargin before the key can expire. Slots a stale leader fires late
// are dropped by the stream's duplicate window, and its state write fails
// the revision check.
//
// Scheduler.Run returns nil after a graceful stop, and an error wrapping
// nats.ErrConnectionClosed as soon as its connection is closed for good.
// [Hooks] (Config.Hooks) report leadership, fires and lease renewal
// failures to metrics and health checks; [JoinHooks] combines several.
package schedule
