package tracing_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/streams"
	"github.com/jetworker/jetworker/tracing"
)

// Example continues a trace from the code that enqueues a task to the worker
// that processes it.
func Example() {
	srv, err := embedded.Start(embedded.Config{Port: -1})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown()
	nc, js, err := srv.ConnectJetStream()
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := streams.Provision(ctx, js, streams.Config{}); err != nil {
		log.Fatal(err)
	}

	// In a real program: an exporter (OTLP, stdout) instead of a recorder.
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	cfg := tracing.Config{TracerProvider: tp}

	pub, _ := publisher.New(js, publisher.Config{HeaderFunc: tracing.HeaderFunc(cfg)})
	done, handled := make(chan struct{}), make(chan struct{})
	c, err := consumer.New(js, jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
		close(handled)
		return nil
	}), consumer.Config{
		Durable: "example",
		Hooks:   tracing.ConsumerHooks(cfg),
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = c.Run(ctx); close(done) }()
	<-c.Ready()

	reqCtx, span := tp.Tracer("web").Start(ctx, "POST /signup")
	if _, err := pub.Publish(reqCtx, "tasks.email.welcome", []byte(`{}`), nil); err != nil {
		log.Fatal(err)
	}
	span.End()

	<-handled
	cancel()
	<-done // Run has returned: every task's span has ended
	var request, task sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "POST /signup" {
			request = s
		} else {
			task = s
		}
	}
	fmt.Println(task.Name())
	fmt.Println("same trace:", task.SpanContext().TraceID() == request.SpanContext().TraceID())
	fmt.Println("child of", request.Name()+":", task.Parent().SpanID() == request.SpanContext().SpanID())
	// Output:
	// process tasks.email.welcome
	// same trace: true
	// child of POST /signup: true
}
