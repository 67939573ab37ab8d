package jetworker

import (
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Task is one unit of background work as a handler sees it: the message's
// subject (the task type), its payload and headers, and the JetStream
// metadata a handler needs to reason about retries.
//
// A Task is owned by the handler call it is passed to; handlers must not
// keep it after they return.
type Task struct {
	// ID is the task's idempotency key (see [TaskID]). Empty for a task
	// published without one: such a task is known by its [Task.Ref].
	ID string
	// Subject is the message subject; it names the task type.
	Subject string
	// Data is the raw payload.
	Data []byte
	// Header holds the message headers. It may be nil.
	Header nats.Header

	// Stream is the stream the message is stored in.
	Stream string
	// Consumer is the durable consumer that delivered the message.
	Consumer string
	// Sequence is the message's stream sequence.
	Sequence uint64
	// Delivered counts deliveries of this message, starting at 1.
	Delivered uint64
	// Published is when the server stored the message.
	Published time.Time
	// MaxAttempts is the number of deliveries this task may have, the
	// consumer's MaxDeliver or, when the task was published with a lower
	// maximum, that one. Delivered == MaxAttempts on its last try.
	MaxAttempts int
}

// LastAttempt reports whether a failure of this delivery dead-letters the
// task rather than retrying it.
func (t *Task) LastAttempt() bool { return t.MaxAttempts > 0 && t.Delivered >= uint64(t.MaxAttempts) }

// Ref returns the task's identity in its stream, "<stream>/<sequence>"
// (for example "TASKS/42"). Every task has one, with or without an ID;
// logs, the command line, dead letters and the dashboard show it in this
// form.
func (t *Task) Ref() string { return Ref(t.Stream, t.Sequence) }

// Ref formats the identity of the message with sequence seq in stream:
// "<stream>/<seq>". [ParseRef] reads it back.
func Ref(stream string, seq uint64) string {
	return stream + "/" + strconv.FormatUint(seq, 10)
}

// ParseRef splits a reference made by [Ref] into its stream and sequence.
// It reports false when ref is not of that form.
func ParseRef(ref string) (stream string, seq uint64, ok bool) {
	i := strings.LastIndexByte(ref, '/')
	if i <= 0 {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(ref[i+1:], 10, 64)
	if err != nil || seq == 0 {
		return "", 0, false
	}
	return ref[:i], seq, true
}

// TaskID returns the task ID carried in h: the Jetworker-Task-Id header
// (delayed, dead-lettered and replayed tasks carry their ID there), or else
// the Nats-Msg-Id header. It returns "" for a task published without an ID.
func TaskID(h nats.Header) string {
	if h == nil {
		return ""
	}
	// Indexed, not Get: the names are canonical already, and Get would
	// canonicalize them again on every task.
	if v := h[HeaderTaskID]; len(v) > 0 && v[0] != "" {
		return v[0]
	}
	if v := h[HeaderMsgID]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// EnqueuedAt returns the time the task became due: the
// Jetworker-Enqueued-At header of a delayed task, otherwise the time the
// server stored it (Published). It reports false if neither is known or
// the header is malformed.
func (t *Task) EnqueuedAt() (time.Time, bool) {
	v := ""
	if t.Header != nil {
		v = t.Header.Get(HeaderEnqueuedAt)
	}
	if v == "" {
		return t.Published, !t.Published.IsZero()
	}
	at, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, false
	}
	return at, true
}

// QueueWait returns how long the task waited from enqueue ([Task.EnqueuedAt])
// to started, its handler's start: never negative. It reports false for
// anything but the first delivery of an original task, since a later
// attempt or a dead-letter replay would measure retry or dead-letter time
// instead, and when the enqueue time is unknown. The consumer's presence
// records and the metrics package's jetworker_task_wait_seconds both count
// what it reports.
func (t *Task) QueueWait(started time.Time) (time.Duration, bool) {
	if t.Delivered != 1 || t.Header.Get(HeaderReplayedFrom) != "" {
		return 0, false
	}
	at, ok := t.EnqueuedAt()
	if !ok {
		return 0, false
	}
	return max(started.Sub(at), 0), true
}
