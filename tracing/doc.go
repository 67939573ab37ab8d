// Package tracing continues OpenTelemetry traces across jetworker tasks.
//
// A task carries the W3C trace context of the code that published it in its
// traceparent and tracestate headers. [HeaderFunc] writes them: plug it into
// publisher.Config.HeaderFunc and every publish carries the trace context of
// its ctx. [ConsumerHooks] reads them: plug the hooks into
// consumer.Config.Hooks and every task runs inside a consumer span named
// "process <subject>" whose parent is the publisher's span, so a trace shows
// the request that enqueued the task and every attempt that processed it.
//
// The package forces no exporter: spans go to the TracerProvider in
// [Config] (the global one by default), which the program sets up with the
// exporter it wants.
//
// # Span contents
//
// Each consumer span is of kind Consumer and has the attributes
//
//	messaging.system                   nats
//	messaging.operation.type           process
//	messaging.destination.name         the task's subject
//	messaging.consumer.group.name      the durable consumer
//	messaging.message.id               the task ID
//	jetworker.stream                   the stream
//	jetworker.stream.sequence          the message's stream sequence
//	jetworker.delivery_count           the delivery number, from 1
//
// and, when the task is settled, jetworker.outcome (acked, retried,
// dead_lettered, requeued). A failed attempt records the handler's error as an
// exception event and sets the span's status to Error; a retry adds the event
// "jetworker.retry" and dead-lettering the event "jetworker.dead_letter".
// A task interrupted by shutdown gets the event "jetworker.requeue" and keeps
// an unset status.
package tracing
