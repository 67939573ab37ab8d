package tracing

import (
	"context"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
)

// ScopeName is the instrumentation scope of the tracer the hooks use.
const ScopeName = "github.com/jetworker/jetworker/tracing"

// Attribute keys set on consumer spans besides the OpenTelemetry messaging
// conventions.
const (
	// AttrStream is the stream the task is stored in.
	AttrStream = attribute.Key("jetworker.stream")
	// AttrStreamSequence is the task message's stream sequence.
	AttrStreamSequence = attribute.Key("jetworker.stream.sequence")
	// AttrDeliveryCount is the delivery number of the attempt, from 1.
	AttrDeliveryCount = attribute.Key("jetworker.delivery_count")
	// AttrOutcome is what the consumer did with the message: acked,
	// retried, dead_lettered, requeued or cancelled.
	AttrOutcome = attribute.Key("jetworker.outcome")
)

// Event names added to consumer spans.
const (
	// EventRetry is added when a failed attempt is retried later.
	EventRetry = "jetworker.retry"
	// EventDeadLetter is added when the task is dead-lettered.
	EventDeadLetter = "jetworker.dead_letter"
	// EventRequeue is added when shutdown interrupted the handler and the
	// message was handed back for another worker.
	EventRequeue = "jetworker.requeue"
)

// Config chooses where spans go and how trace context is carried. The zero
// value is ready to use.
type Config struct {
	// TracerProvider creates the consumer spans. Defaults to the global
	// provider, otel.GetTracerProvider(), looked up when the hooks are
	// made.
	TracerProvider trace.TracerProvider
	// Propagator writes and reads the trace context headers. Defaults to
	// W3C Trace Context (propagation.TraceContext), which uses the
	// traceparent and tracestate headers; pass otel.GetTextMapPropagator()
	// to use the program's global one.
	Propagator propagation.TextMapPropagator
}

func (c Config) withDefaults() Config {
	if c.TracerProvider == nil {
		c.TracerProvider = otel.GetTracerProvider()
	}
	if c.Propagator == nil {
		c.Propagator = propagation.TraceContext{}
	}
	return c
}

// HeaderFunc returns a function for publisher.Config.HeaderFunc that writes
// the trace context of the publish's ctx into the message headers
// (traceparent and tracestate with the default propagator). It adds
// nothing unless the span in ctx is recording, so untraced publishes stay
// header-free. It starts no span of its own: the consumer span's parent is
// the span that was current when the task was published. The returned
// function is safe for concurrent use.
func HeaderFunc(cfg Config) func(ctx context.Context, h nats.Header) {
	prop := cfg.withDefaults().Propagator
	return func(ctx context.Context, h nats.Header) {
		if h == nil || !trace.SpanFromContext(ctx).IsRecording() {
			return
		}
		prop.Inject(ctx, headerCarrier(h))
	}
}

// ConsumerHooks returns consumer hooks that run every task inside a consumer
// span, continuing the trace found in the task's headers; see the package
// documentation for the span's name, attributes and events. Combine them
// with other hooks (metrics) with consumer.JoinHooks. The hooks are
// safe for concurrent use.
func ConsumerHooks(cfg Config) consumer.Hooks {
	cfg = cfg.withDefaults()
	tracer := cfg.TracerProvider.Tracer(ScopeName)
	prop := cfg.Propagator
	return consumer.Hooks{
		StartFunc: func(ctx context.Context, t *jetworker.Task) context.Context {
			if t.Header != nil {
				ctx = prop.Extract(ctx, headerCarrier(t.Header))
			}
			attrs := []attribute.KeyValue{
				attribute.String("messaging.system", "nats"),
				attribute.String("messaging.operation.type", "process"),
				attribute.String("messaging.destination.name", t.Subject),
				attribute.String("messaging.consumer.group.name", t.Consumer),
				AttrStream.String(t.Stream),
				AttrStreamSequence.Int64(int64(t.Sequence)),
				AttrDeliveryCount.Int64(int64(t.Delivered)),
			}
			id := t.ID
			if id == "" {
				id = t.Ref() // a task without an ID is known by its stream and sequence
			}
			attrs = append(attrs, attribute.String("messaging.message.id", id))
			ctx, _ = tracer.Start(ctx, "process "+t.Subject,
				trace.WithSpanKind(trace.SpanKindConsumer),
				trace.WithAttributes(attrs...))
			return ctx
		},
		DoneFunc: func(ctx context.Context, t *jetworker.Task, o consumer.Outcome, d time.Duration, err error) {
			span := trace.SpanFromContext(ctx)
			if !span.IsRecording() {
				span.End()
				return
			}
			span.SetAttributes(AttrOutcome.String(o.String()))
			if err != nil && o != consumer.Requeued {
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			}
			switch o {
			case consumer.Retried:
				span.AddEvent(EventRetry, trace.WithAttributes(AttrDeliveryCount.Int64(int64(t.Delivered))))
			case consumer.DeadLettered:
				span.AddEvent(EventDeadLetter, trace.WithAttributes(AttrDeliveryCount.Int64(int64(t.Delivered))))
			case consumer.Requeued:
				span.AddEvent(EventRequeue)
			}
			span.End()
		},
	}
}

// headerCarrier adapts nats.Header to propagation.TextMapCarrier. NATS
// header names are case-sensitive; Get falls back to a case-insensitive
// match so "Traceparent" written by other tools is found too.
type headerCarrier nats.Header

var _ propagation.TextMapCarrier = headerCarrier(nil)

// Get returns the first value of key.
func (h headerCarrier) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

// Set replaces the values of key.
func (h headerCarrier) Set(key, value string) {
	h[key] = []string{value}
}

// Keys lists the header names.
func (h headerCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}
