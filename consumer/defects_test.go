package consumer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/handlers"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/streams"
)

// TestTaskNearMaxPayloadIsDeadLettered: a task whose payload alone nearly
// fills the server's max payload cannot be copied with the dead-letter
// headers; it is still dead-lettered (payload cut, flagged) and leaves the
// task stream, instead of being retried and then stuck there.
func TestTaskNearMaxPayloadIsDeadLettered(t *testing.T) {
	t.Parallel()
	b := setup(t)
	max := int(b.js.Conn().MaxPayload())
	for _, size := range []int{max - 64, max - 600} {
		data := bytes.Repeat([]byte("p"), size)
		subject := fmt.Sprintf("tasks.huge.%d", size)
		start(t, newConsumer(t, b.js, jetworker.HandlerFunc(func(ctx context.Context, task *jetworker.Task) error {
			return jetworker.Permanent(errors.New(strings.Repeat("a long reason ", 200)))
		}), consumer.Config{Durable: fmt.Sprintf("huge-%d", size), FilterSubjects: []string{subject}}))
		if _, err := b.js.Publish(t.Context(), subject, data); err != nil {
			t.Fatalf("publish %d bytes: %v", size, err)
		}
	}
	dead := waitDeadLetters(t, b.js, 2)
	for _, e := range dead {
		if e.Truncated == 0 && len(e.Data) < max-600 {
			t.Errorf("%s: payload %d bytes and not flagged truncated", e.OriginalSubject, len(e.Data))
		}
		if e.Truncated > 0 && !strings.Contains(e.Problem, "cut to") {
			t.Errorf("%s: truncated entry's Problem %q, want it to say it was cut", e.OriginalSubject, e.Problem)
		}
		if !strings.Contains(e.Error, "a long reason") {
			t.Errorf("%s: error %q, want the (shortened) handler error", e.OriginalSubject, e.Error)
		}
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := streamMsgs(t, b.js, "TASKS"); n != 0 {
			return fmt.Errorf("TASKS still holds %d messages", n)
		}
		return nil
	})
}

// TestFanOutOnAnInterestStream is the package doc's fan-out recipe: on a
// stream with interest retention, two services' durables with overlapping
// filters both run every event, and the server drops an event once both
// have acknowledged it.
func TestFanOutOnAnInterestStream(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.Start(t, embedded.Config{})
	_, js := embeddedtest.Connect(t, srv)
	if err := streams.Provision(t.Context(), js, streams.Config{
		Tasks: streams.Tasks{Name: "EVENTS", Subjects: []string{"events.>"}, Retention: streams.Interest},
	}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	ran := map[string][]string{}
	service := func(name string, filter string) *consumer.Consumer {
		return newConsumer(t, js, jetworker.HandlerFunc(func(ctx context.Context, task *jetworker.Task) error {
			mu.Lock()
			defer mu.Unlock()
			ran[name] = append(ran[name], task.Subject)
			return nil
		}), consumer.Config{Stream: "EVENTS", Durable: name, FilterSubjects: []string{filter}})
	}
	start(t, service("billing", "events.>"))
	start(t, service("email", "events.order.*"))
	for _, s := range []string{"events.order.placed", "events.order.paid"} {
		if _, err := js.Publish(t.Context(), s, nil); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(ran["billing"]) != 2 || len(ran["email"]) != 2 {
			return fmt.Errorf("ran %v, want each event once in each service", ran)
		}
		if n := streamMsgs(t, js, "EVENTS"); n != 0 {
			return fmt.Errorf("EVENTS still holds %d messages after both services acknowledged them", n)
		}
		return nil
	})
}

// TestHeaderHeavyTaskIsDeadLettered: on a server with a small max payload,
// a task whose own headers leave no room for the dead-letter headers is
// still dead-lettered, its largest header left out and counted, its
// payload whole, and the entry says why it cannot be replayed; nothing is
// left in TASKS.
func TestHeaderHeavyTaskIsDeadLettered(t *testing.T) {
	t.Parallel()
	const maxPayload = 16 << 10
	srv := embeddedtest.Start(t, embedded.Config{MaxPayload: maxPayload})
	_, js := embeddedtest.Connect(t, srv)
	if err := streams.Provision(t.Context(), js, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	start(t, newConsumer(t, js, jetworker.HandlerFunc(func(ctx context.Context, task *jetworker.Task) error {
		return jetworker.Permanent(errors.New(strings.Repeat("a long reason ", 200)))
	}), consumer.Config{Durable: "heavy"}))
	msg := nats.NewMsg("tasks.heavy")
	msg.Data = []byte(`{"id":1}`)
	msg.Header.Set("X-Tenant", "acme")
	msg.Header.Set("X-Blob", strings.Repeat("h", maxPayload-300))
	if _, err := js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatalf("publish: %v", err)
	}
	dead := waitDeadLetters(t, js, 1)
	e := dead[0]
	if e.HeadersDropped != 1 || e.Header.Get("X-Blob") != "" || e.Header.Get("X-Tenant") != "acme" {
		t.Errorf("headers dropped %d, X-Blob kept %v, X-Tenant %q; want the one huge header left out and the rest kept",
			e.HeadersDropped, e.Header.Get("X-Blob") != "", e.Header.Get("X-Tenant"))
	}
	if string(e.Data) != `{"id":1}` || e.Truncated != 0 {
		t.Errorf("payload %q (truncated %d), want it whole", e.Data, e.Truncated)
	}
	if !strings.Contains(e.Problem, "headers were left out") {
		t.Errorf("Problem %q, want it to say the headers were left out", e.Problem)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := streamMsgs(t, js, "TASKS"); n != 0 {
			return fmt.Errorf("TASKS still holds %d messages", n)
		}
		return nil
	})
}

// TestOverlappingServicesOnAWorkQueue: a second service whose filter
// overlaps the first's on a work-queue stream gets an error naming the
// other consumer and the fixes, not the server's raw message.
func TestOverlappingServicesOnAWorkQueue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h := jetworker.HandlerFunc(func(context.Context, *jetworker.Task) error { return nil })
	start(t, newConsumer(t, b.js, h, consumer.Config{Durable: "billing"}))
	tests := []struct {
		name    string
		filters []string
		overlap bool
	}{
		{name: "same default filter", filters: nil, overlap: true},
		{name: "narrower filter", filters: []string{"tasks.email.>"}, overlap: true},
		{name: "single-token wildcard", filters: []string{"tasks.*"}, overlap: true},
	}
	for _, tt := range tests {
		c := newConsumer(t, b.js, h, consumer.Config{Durable: "email", FilterSubjects: tt.filters})
		err := c.Run(t.Context())
		if !errors.Is(err, consumer.ErrFilterOverlap) {
			t.Fatalf("%s: Run: got %v, want ErrFilterOverlap", tt.name, err)
		}
		for _, want := range []string{`"billing"`, "interest retention", "its own subjects"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not mention %s", tt.name, err, want)
			}
		}
	}
	// Disjoint filters are fine: one service per subject tree.
	other := setup(t)
	start(t, newConsumer(t, other.js, h, consumer.Config{Durable: "billing", FilterSubjects: []string{"tasks.billing.>"}}))
	start(t, newConsumer(t, other.js, h, consumer.Config{Durable: "email", FilterSubjects: []string{"tasks.email.>"}}))
}

// TestRunFailsWhenTheConnectionCloses, as every Run of jetworker does.
func TestRunFailsWhenTheConnectionCloses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	nc, js := embeddedtest.Connect(t, b.srv)
	c := newConsumer(t, js, jetworker.HandlerFunc(func(context.Context, *jetworker.Task) error { return nil }), consumer.Config{})
	done := make(chan error, 1)
	go func() { done <- c.Run(t.Context()) }()
	<-c.Ready()
	nc.Close()
	select {
	case err := <-done:
		if !errors.Is(err, nats.ErrConnectionClosed) {
			t.Fatalf("Run: got %v, want an error wrapping nats.ErrConnectionClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its connection closed")
	}
}

// logLines collects JSON log lines.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logLines) all(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// TestPanicsAndFailuresAreLoggedOnce: the consumer is the one layer that
// logs outcomes. A panic is logged once with its stack, whether the
// consumer recovered it or handlers.Recover did; a failure is logged
// once; dead-letter lines carry the handler context's values.
func TestPanicsAndFailuresAreLoggedOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	type traceKey struct{}
	var lines logLines
	log := slog.New(traceHandler{slog.NewJSONHandler(&lines, &slog.HandlerOptions{Level: slog.LevelDebug}), traceKey{}})
	mux := handlers.NewMux()
	mux.Use(handlers.Recover())
	mux.RouteFunc("tasks.log.recovered", func(ctx context.Context, t *jetworker.Task) error { panic("boom in the mux") })
	plain := jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
		switch t.Subject {
		case "tasks.log.raw":
			panic("boom raw")
		case "tasks.log.fail":
			return jetworker.Permanent(errors.New("bad input"))
		}
		return mux.Handle(ctx, t)
	})
	var hookMu sync.Mutex
	hookSaw := map[string]any{}
	hooks := consumer.Hooks{
		StartFunc: func(ctx context.Context, t *jetworker.Task) context.Context {
			return context.WithValue(ctx, traceKey{}, "trace-"+t.Subject)
		},
		DeadLetterFunc: func(ctx context.Context, t *jetworker.Task, _ string) {
			hookMu.Lock()
			defer hookMu.Unlock()
			hookSaw[t.Subject] = ctx.Value(traceKey{})
		},
	}
	start(t, newConsumer(t, b.js, plain, consumer.Config{MaxDeliver: 1, Hooks: hooks, Logger: log}))
	for _, s := range []string{"tasks.log.recovered", "tasks.log.raw", "tasks.log.fail"} {
		if _, err := b.js.Publish(t.Context(), s, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitDeadLetters(t, b.js, 3)
	hookMu.Lock()
	for subj, v := range hookSaw {
		if v != "trace-"+subj {
			t.Errorf("%s: DeadLetterFunc's context has trace %v, want the handler context's value", subj, v)
		}
	}
	if len(hookSaw) != 3 {
		t.Errorf("DeadLetterFunc saw %d tasks, want 3", len(hookSaw))
	}
	hookMu.Unlock()
	count := map[string]int{}
	for _, l := range lines.all(t) {
		subj, _ := l["subject"].(string)
		msg, _ := l["msg"].(string)
		if subj == "" {
			continue
		}
		count[subj+" "+msg]++
		panicked := subj != "tasks.log.fail"
		if msg == "task dead-lettered" && panicked && !strings.Contains(fmt.Sprint(l["stack"]), "goroutine") {
			t.Errorf("%s: the panic's outcome line has no stack", subj)
		}
		if msg == "task dead-lettered" && l["trace"] != "trace-"+subj {
			t.Errorf("%s: dead-letter line has trace %v, want the handler context's value", subj, l["trace"])
		}
	}
	// One line per task: its outcome, with the stack when it panicked.
	want := map[string]int{"tasks.log.recovered task dead-lettered": 1, "tasks.log.raw task dead-lettered": 1, "tasks.log.fail task dead-lettered": 1}
	if !maps.Equal(count, want) {
		t.Errorf("logged %v, want %v", count, want)
	}
}

// traceHandler adds the context value under key as a "trace" attribute,
// as a tracing log handler would.
type traceHandler struct {
	slog.Handler
	key any
}

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if v, ok := ctx.Value(h.key).(string); ok {
		r.AddAttrs(slog.String("trace", v))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(as), h.key}
}
