package handlers_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dlq"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/handlers"
	"github.com/jetworker/jetworker/handlers/webhook"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/streams"
)

// TestEndToEndWebhook runs publisher -> consumer -> mux -> webhook handler
// on an embedded server: good tasks reach the receiver (signed), a 429
// with Retry-After is retried after its delay, a 400 is dead-lettered, and
// a task with no route is dead-lettered without any request.
func TestEndToEndWebhook(t *testing.T) {
	t.Parallel()
	js := embeddedtest.JetStream(t)
	if err := streams.Provision(t.Context(), js, streams.Config{}); err != nil {
		t.Fatalf("provision: %v", err)
	}
	const secret = "e2e-secret"
	var (
		mu        sync.Mutex
		delivered = map[string][]time.Time{} // task ID -> request times
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(secret, r.Header.Get(webhook.HeaderSignature), body, time.Minute); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		id := r.Header.Get(webhook.HeaderTaskID)
		mu.Lock()
		delivered[id] = append(delivered[id], time.Now())
		n := len(delivered[id])
		mu.Unlock()
		switch {
		case id == "rate-limited" && n == 1:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		case id == "rejected":
			http.Error(w, "unknown customer", http.StatusBadRequest)
		}
	}))
	t.Cleanup(recv.Close)

	hook, err := webhook.New(webhook.Config{URL: recv.URL, Secret: secret})
	if err != nil {
		t.Fatalf("webhook: %v", err)
	}
	mux := handlers.NewMux()
	mux.Use(handlers.Recover())
	mux.Route("tasks.hooks.>", hook)
	mux.NotFound(handlers.DeadLetterUnrouted())
	c, err := consumer.New(js, mux, consumer.Config{
		Durable: "e2e", Concurrency: 4, Logger: slog.New(slog.DiscardHandler),
		Backoff: func(int, error) time.Duration { return 50 * time.Millisecond },
	})
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-runErr; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	<-c.Ready()

	pub, _ := publisher.New(js, publisher.Config{})
	for _, p := range []struct{ id, subject string }{
		{"ok-1", "tasks.hooks.order"}, {"ok-2", "tasks.hooks.invoice"},
		{"rate-limited", "tasks.hooks.order"}, {"rejected", "tasks.hooks.order"},
		{"unrouted", "tasks.other.thing"},
	} {
		if _, err := pub.Publish(t.Context(), p.subject, []byte(`{"id":"`+p.id+`"}`), &publisher.PublishOpts{ID: p.id}); err != nil {
			t.Fatalf("publish %s: %v", p.id, err)
		}
	}

	store, _ := dlq.New(js, dlq.Config{})
	testutil.Eventually(t, 15*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(delivered["ok-1"]) != 1 || len(delivered["ok-2"]) != 1 || len(delivered["rate-limited"]) != 2 {
			return fmt.Errorf("deliveries so far: %v", delivered)
		}
		page, err := store.List(t.Context(), dlq.Filter{}, 0, 0)
		dead := page.Entries
		if err != nil {
			return err
		}
		if len(dead) != 2 {
			return fmt.Errorf("%d dead letters, want 2", len(dead))
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if gap := delivered["rate-limited"][1].Sub(delivered["rate-limited"][0]); gap < time.Second {
		t.Errorf("rate-limited task retried after %s, before its Retry-After of 1s", gap)
	}
	if len(delivered["unrouted"]) != 0 || len(delivered["rejected"]) != 1 {
		t.Errorf("unrouted requests %d (want 0), rejected requests %d (want 1)", len(delivered["unrouted"]), len(delivered["rejected"]))
	}
	page, _ := store.List(t.Context(), dlq.Filter{}, 0, 0)
	dead := page.Entries
	for _, d := range dead {
		if d.TaskID == "unrouted" && !mentions(d.Error, "no route", "tasks.other.thing") {
			t.Errorf("unrouted dead letter error %q", d.Error)
		}
		if d.TaskID == "rejected" && !mentions(d.Error, "400", "unknown customer") {
			t.Errorf("rejected dead letter error %q", d.Error)
		}
	}
}

// mentions reports whether s contains every part, ignoring case.
func mentions(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(strings.ToLower(s), strings.ToLower(p)) {
			return false
		}
	}
	return true
}

// TestRateLimitUnderConsumer: RateLimit(20, 1) on a route of 10 workers
// throttles 60 tasks without costing any of them a delivery: every task
// runs on its first delivery, nothing is dead-lettered, and no second
// ever sees more than the limit allows (an upper bound, which a slow
// machine cannot break). The rate it held is logged.
func TestRateLimitUnderConsumer(t *testing.T) {
	t.Parallel()
	js := embeddedtest.JetStream(t)
	if err := streams.Provision(t.Context(), js, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	const n, perSecond = 60, 20
	var (
		mu     sync.Mutex
		starts []time.Time
		extra  []uint64 // deliveries after the first
	)
	mux := handlers.NewMux()
	mux.Use(handlers.RateLimit(perSecond, 1))
	mux.RouteFunc("tasks.limited.>", func(ctx context.Context, task *jetworker.Task) error {
		mu.Lock()
		defer mu.Unlock()
		starts = append(starts, time.Now())
		if task.Delivered != 1 {
			extra = append(extra, task.Delivered)
		}
		return nil
	})
	c, err := consumer.New(js, mux, consumer.Config{Durable: "limited", Concurrency: 10, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-c.Ready()
	pub, _ := publisher.New(js, publisher.Config{})
	for i := range n {
		if _, err := pub.PublishAsync(t.Context(), fmt.Sprintf("tasks.limited.%d", i), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(starts) < n {
			return fmt.Errorf("%d of %d tasks ran", len(starts), n)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if len(extra) > 0 {
		t.Fatalf("throttled tasks were redelivered (deliveries %v): throttling cost attempts", extra)
	}
	store, _ := dlq.New(js, dlq.Config{})
	if page, err := store.List(t.Context(), dlq.Filter{}, 0, 0); err != nil || len(page.Entries) != 0 {
		t.Fatalf("%d dead letters (%v), want none", len(page.Entries), err)
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	for i := range starts {
		// A token bucket of burst 1 admits at most 1 + perSecond*w tasks in
		// any window of w seconds.
		for j := i + 1; j < len(starts); j++ {
			w := starts[j].Sub(starts[i]).Seconds()
			if allowed := 1 + perSecond*w + 1; float64(j-i+1) > allowed {
				t.Fatalf("%d tasks started within %.3fs, more than the limit allows (%.1f)", j-i+1, w, allowed)
			}
		}
	}
	held := float64(n-1) / starts[n-1].Sub(starts[0]).Seconds()
	t.Logf("RateLimit(%d, 1) on 10 workers held %.1f tasks/s over %d tasks", perSecond, held, n)
}
