package tracing_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/streams"
	"github.com/jetworker/jetworker/tracing"
)

// runTraced starts a consumer with the tracing hooks on a fresh embedded
// server, publishes one task per subject inside a parent span, waits until
// every task is settled and returns the recorder and the parent spans'
// contexts by subject.
func runTraced(t *testing.T, h jetworker.HandlerFunc, settled int, subjects ...string) (*tracetest.SpanRecorder, map[string]trace.SpanContext) {
	t.Helper()
	js := embeddedtest.JetStream(t)
	ctx := t.Context()
	if err := streams.Provision(ctx, js, streams.Config{}); err != nil {
		t.Fatalf("provision: %v", err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg := tracing.Config{TracerProvider: tp}

	done := make(chan consumer.Outcome, 16)
	hooks := tracing.ConsumerHooks(cfg)
	traceDone := hooks.DoneFunc
	hooks.DoneFunc = func(ctx context.Context, t *jetworker.Task, o consumer.Outcome, d time.Duration, err error) {
		traceDone(ctx, t, o, d, err)
		done <- o
	}
	c, err := consumer.New(js, h, consumer.Config{
		Durable:     "traced",
		Concurrency: 2,
		MaxDeliver:  3,
		Backoff:     func(int, error) time.Duration { return 10 * time.Millisecond },
		Hooks:       hooks,
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("consumer.New: %v", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-runErr; err != nil {
			t.Errorf("consumer Run: %v", err)
		}
	})
	select {
	case <-c.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("consumer not ready within 10s")
	}

	pub, err := publisher.New(js, publisher.Config{HeaderFunc: tracing.HeaderFunc(cfg)})
	if err != nil {
		t.Fatalf("publisher.New: %v", err)
	}
	tracer := tp.Tracer("test")
	parents := map[string]trace.SpanContext{}
	for _, subj := range subjects {
		pctx, span := tracer.Start(ctx, "enqueue "+subj)
		if _, err := pub.Publish(pctx, subj, []byte(`{}`), nil); err != nil {
			t.Fatalf("publish %s: %v", subj, err)
		}
		span.End()
		parents[subj] = span.SpanContext()
	}
	for range settled {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("tasks not settled within 10s")
		}
	}
	return rec, parents
}

func consumerSpans(rec *tracetest.SpanRecorder) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindConsumer {
			out = append(out, s)
		}
	}
	return out
}

func attr(s sdktrace.ReadOnlySpan, k attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if kv.Key == k {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func hasEvent(s sdktrace.ReadOnlySpan, name string) bool {
	for _, e := range s.Events() {
		if e.Name == name {
			return true
		}
	}
	return false
}

func TestConsumerSpanContinuesPublisherTrace(t *testing.T) {
	t.Parallel()
	h := func(ctx context.Context, tk *jetworker.Task) error {
		if !trace.SpanContextFromContext(ctx).IsValid() {
			return jetworker.Permanent(errors.New("handler ctx has no span"))
		}
		return nil
	}
	rec, parents := runTraced(t, h, 1, "tasks.email.send")
	spans := consumerSpans(rec)
	if len(spans) != 1 {
		t.Fatalf("got %d consumer spans, want 1", len(spans))
	}
	s := spans[0]
	parent := parents["tasks.email.send"]
	if got, want := s.Name(), "process tasks.email.send"; got != want {
		t.Errorf("span name: got %q, want %q", got, want)
	}
	if got := s.Parent().SpanID(); got != parent.SpanID() {
		t.Errorf("parent span: got %s, want the publisher's span %s", got, parent.SpanID())
	}
	if got := s.SpanContext().TraceID(); got != parent.TraceID() {
		t.Errorf("trace ID: got %s, want %s", got, parent.TraceID())
	}
	if !s.Parent().IsRemote() {
		t.Error("parent: got a local span context, want a remote one (from headers)")
	}
	for k, want := range map[attribute.Key]string{
		"messaging.system":           "nats",
		"messaging.destination.name": "tasks.email.send",
		tracing.AttrOutcome:          "acked",
		tracing.AttrStream:           "TASKS",
	} {
		if v, ok := attr(s, k); !ok || v.AsString() != want {
			t.Errorf("attribute %s: got %q, want %q", k, v.String(), want)
		}
	}
	if v, ok := attr(s, tracing.AttrStreamSequence); !ok || v.AsInt64() != 1 {
		t.Errorf("attribute %s: got %v, want 1", tracing.AttrStreamSequence, v.String())
	}
	if v, ok := attr(s, tracing.AttrDeliveryCount); !ok || v.AsInt64() != 1 {
		t.Errorf("attribute %s: got %v, want 1", tracing.AttrDeliveryCount, v.String())
	}
	if v, ok := attr(s, "messaging.message.id"); !ok || v.AsString() == "" {
		t.Errorf("attribute messaging.message.id: got %q, want the task ID", v.String())
	}
	if s.Status().Code == codes.Error {
		t.Errorf("status: got Error (%s), want unset", s.Status().Description)
	}
}

func TestRetriedAndDeadLetteredSpansHaveEvents(t *testing.T) {
	t.Parallel()
	h := func(ctx context.Context, tk *jetworker.Task) error {
		if tk.Subject == "tasks.broken" {
			return jetworker.Permanent(errors.New("template missing"))
		}
		if tk.Delivered == 1 {
			return errors.New("smtp busy")
		}
		return nil
	}
	// tasks.flaky: retried once then acked (2 spans); tasks.broken: dead (1).
	rec, parents := runTraced(t, h, 3, "tasks.flaky", "tasks.broken")
	spans := consumerSpans(rec)
	if len(spans) != 3 {
		t.Fatalf("got %d consumer spans, want 3", len(spans))
	}
	var retried, acked, dead int
	for _, s := range spans {
		subj, _ := attr(s, "messaging.destination.name")
		if got, want := s.Parent().SpanID(), parents[subj.AsString()].SpanID(); got != want {
			t.Errorf("%s: parent got %s, want %s", s.Name(), got, want)
		}
		o, _ := attr(s, tracing.AttrOutcome)
		switch o.AsString() {
		case "retried":
			retried++
			if !hasEvent(s, tracing.EventRetry) {
				t.Errorf("retried span: no %s event", tracing.EventRetry)
			}
			if s.Status().Code != codes.Error || s.Status().Description != "smtp busy" {
				t.Errorf("retried span status: got %v %q, want Error %q", s.Status().Code, s.Status().Description, "smtp busy")
			}
		case "acked":
			acked++
			if d, _ := attr(s, tracing.AttrDeliveryCount); d.AsInt64() != 2 {
				t.Errorf("acked span delivery count: got %d, want 2", d.AsInt64())
			}
		case "dead_lettered":
			dead++
			if !hasEvent(s, tracing.EventDeadLetter) {
				t.Errorf("dead-lettered span: no %s event", tracing.EventDeadLetter)
			}
			if !hasEvent(s, "exception") {
				t.Error("dead-lettered span: no exception event")
			}
			if s.Status().Code != codes.Error {
				t.Errorf("dead-lettered span status: got %v, want Error", s.Status().Code)
			}
		}
	}
	if retried != 1 || acked != 1 || dead != 1 {
		t.Errorf("outcomes: got retried=%d acked=%d dead=%d, want 1 each", retried, acked, dead)
	}
}

func TestHeaderFunc(t *testing.T) {
	t.Parallel()
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("test").Start(context.Background(), "parent")
	defer span.End()
	f := tracing.HeaderFunc(tracing.Config{})

	h := nats.Header{}
	f(ctx, h)
	tp0 := h.Get(jetworker.HeaderTraceParent)
	want := "00-" + span.SpanContext().TraceID().String() + "-" + span.SpanContext().SpanID().String() + "-01"
	if tp0 != want {
		t.Errorf("traceparent: got %q, want %q", tp0, want)
	}

	empty := nats.Header{}
	f(context.Background(), empty)
	if len(empty) != 0 {
		t.Errorf("headers without a span: got %v, want none", empty)
	}
	f(ctx, nil) // must not panic

	// A valid span context that is not recording (sampled out, or only
	// propagated) adds nothing either.
	unsampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	uctx, uspan := unsampled.Tracer("test").Start(context.Background(), "parent")
	defer uspan.End()
	none := nats.Header{}
	f(uctx, none)
	if len(none) != 0 {
		t.Errorf("headers of a non-recording span: got %v, want none", none)
	}
}
