package jetworker

// Header names carried by task messages. The publisher, consumer and
// scheduler agree on these; tools read them from stored messages.
const (
	// HeaderMsgID is the task ID. The server drops a second message with
	// the same ID inside the stream's duplicate window.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderTaskID carries the task ID where Nats-Msg-Id cannot: on
	// delayed tasks, whose [HeaderMsgID] the server removes when it
	// releases them; on dead letters, whose Nats-Msg-Id de-duplicates the
	// copy; on replayed tasks, whose Nats-Msg-Id de-duplicates the replay.
	// [TaskID] prefers it to Nats-Msg-Id.
	HeaderTaskID = "Jetworker-Task-Id"
	// HeaderEnqueuedAt is the RFC 3339 time (nanoseconds) at which a
	// delayed task became due. Immediate tasks do not carry it: the time
	// the server stored them (Task.Published) is their enqueue time, and
	// leaving the header out makes every publish and delivery cheaper.
	// [Task.EnqueuedAt] reads either.
	HeaderEnqueuedAt = "Jetworker-Enqueued-At"
	// HeaderTraceParent is the W3C trace context parent header.
	HeaderTraceParent = "traceparent"
	// HeaderTraceState is the W3C trace context state header.
	HeaderTraceState = "tracestate"

	// HeaderTrack marks a task whose lifecycle is recorded in the task
	// state store (see the task package); its value is "1".
	HeaderTrack = "Jetworker-Track"
	// HeaderMaxAttempts caps, for one task, the deliveries the consumer
	// allows (never above the consumer's own MaxDeliver).
	HeaderMaxAttempts = "Jetworker-Max-Attempts"
	// HeaderTimeout caps, for one task, the handler's run time (a Go
	// duration, never above the consumer's HandlerTimeout).
	HeaderTimeout = "Jetworker-Timeout"
	// HeaderUnique says how long the task's uniqueness lock lasts:
	// "pending" (until it starts), "active" (until it ends), or a Go
	// duration (until it ends or that long has passed).
	HeaderUnique = "Jetworker-Unique"

	// HeaderSchedule names the schedule entry that fired the task.
	HeaderSchedule = "Jetworker-Schedule"
	// HeaderFireTime is the RFC 3339 slot time a schedule fired for.
	HeaderFireTime = "Jetworker-Fire-Time"

	// HeaderError is the error text of a dead-lettered task.
	HeaderError = "Jetworker-Error"
	// HeaderAttempts is the number of deliveries a dead-lettered task had,
	// as the server counts them: a delivery that was never handled (its
	// worker crashed first, or it was requeued on shutdown) counts too, so
	// it can exceed the number of handler runs.
	HeaderAttempts = "Jetworker-Attempts"
	// HeaderOriginalSubject is the subject a dead-lettered task had.
	HeaderOriginalSubject = "Jetworker-Original-Subject"
	// HeaderOriginalStream is the stream a dead-lettered task came from.
	HeaderOriginalStream = "Jetworker-Original-Stream"
	// HeaderOriginalSeq is the stream sequence of a dead-lettered task.
	HeaderOriginalSeq = "Jetworker-Original-Seq"
	// HeaderConsumer is the durable consumer that dead-lettered a task.
	HeaderConsumer = "Jetworker-Consumer"
	// HeaderFailedAt is the RFC 3339 time a task was dead-lettered.
	HeaderFailedAt = "Jetworker-Failed-At"
	// HeaderPayloadTruncated is set on a dead letter whose payload did not
	// fit in the server's max payload next to the dead-letter headers: its
	// value is the original payload's size in bytes, and the stored payload
	// is the leading part of it. Such a dead letter cannot be replayed.
	HeaderPayloadTruncated = "Jetworker-Payload-Truncated"
	// HeaderHeadersDropped is set on a dead letter whose task's own
	// headers did not fit in the server's max payload next to the
	// dead-letter headers: its value is how many were left out, largest
	// first. Such a dead letter cannot be replayed.
	HeaderHeadersDropped = "Jetworker-Headers-Dropped"
	// HeaderReplayedFrom is set on a task replayed from the dead letters;
	// it names the dead letter it was replayed from as a [Ref]
	// ("DLQ/7").
	HeaderReplayedFrom = "Jetworker-Replayed-From"
)
