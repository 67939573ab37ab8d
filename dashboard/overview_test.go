package dashboard_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dashboard"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/streams"
)

// TestOverviewRunningAndBuffered: with every handler blocked, the overview
// counts as running exactly the handlers the workers run, and as
// "delivered, waiting" the rest of what the server delivered to them (it
// counted prefetched messages as processing: 297 while 2 handlers ran),
// and its totals are those of the consumers it shows.
func TestOverviewRunningAndBuffered(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{})
	provision(t, b.js)
	release := make(chan struct{})
	started := make(chan struct{}, 32)
	startConsumer(t, b.js, func(ctx context.Context, _ *jetworker.Task) error {
		started <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}, consumer.Config{Durable: "slow", FilterSubjects: []string{"tasks.slow.>"}, Concurrency: 2, MaxAckPending: 8, PullMaxMessages: 8,
		Presence: consumer.Presence{TTL: 1500 * time.Millisecond}})
	// A worker of a stream this dashboard does not show runs too: it
	// counts in neither total.
	if err := streams.Provision(t.Context(), b.js, streams.Config{Tasks: streams.Tasks{Name: "OTHER", Subjects: []string{"other.>"}}, DeadLetters: streams.DeadLetters{Name: "OTHERDLQ", Prefix: "otherdlq"}}); err != nil {
		t.Fatal(err)
	}
	startConsumer(t, b.js, func(ctx context.Context, _ *jetworker.Task) error {
		started <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}, consumer.Config{Stream: "OTHER", Durable: "elsewhere", FilterSubjects: []string{"other.>"}, DeadLetterStream: "OTHERDLQ", DeadLetterPrefix: "otherdlq",
		Presence: consumer.Presence{TTL: 1500 * time.Millisecond}})
	t.Cleanup(func() { close(release) }) // runs before the consumers' own cleanups
	pub, _ := publisher.New(b.js, publisher.Config{})
	for i := range 12 {
		if _, err := pub.Publish(t.Context(), fmt.Sprintf("tasks.slow.%d", i), []byte(`{}`), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pub.Publish(t.Context(), "other.x", []byte(`{}`), nil); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("the handlers did not start")
		}
	}
	type load struct {
		Name       string `json:"name"`
		AckPending int64  `json:"ack_pending"`
		Pending    int64  `json:"pending"`
		Running    *int64 `json:"running"`
		Buffered   *int64 `json:"buffered"`
	}
	type overviewBody struct {
		Running   *int64 `json:"running"`
		Buffered  *int64 `json:"buffered"`
		Consumers []load `json:"consumers"`
	}
	// The worker asks for more than it can run (its prefetch adapts), so
	// some of what is delivered waits for a free handler.
	var ov overviewBody
	testutil.Eventually(t, 10*time.Second, func() error {
		elsewhere := int64(-1)
		for _, w := range decode[[]consumer.WorkerInfo](t, b.get(t, "/api/workers")) {
			if w.Consumer == "elsewhere" {
				elsewhere = w.InFlight
			}
		}
		if elsewhere != 1 {
			return fmt.Errorf("the other stream's worker runs %d (-1: no record yet), want 1", elsewhere)
		}
		ov = decode[overviewBody](t, b.get(t, "/api/overview"))
		if len(ov.Consumers) != 1 || ov.Consumers[0].Running == nil || ov.Consumers[0].Buffered == nil {
			return fmt.Errorf("consumers: got %+v, want slow with running and buffered known", ov.Consumers)
		}
		c := ov.Consumers[0]
		if *c.Running != 2 || c.AckPending <= 2 || c.AckPending+c.Pending != 12 {
			return fmt.Errorf("slow: running %d, ack_pending %d, pending %d; want 2 running (Concurrency), more delivered, 12 in all", *c.Running, c.AckPending, c.Pending)
		}
		return nil
	})
	c := ov.Consumers[0]
	if want := c.AckPending - 2; *c.Buffered != want {
		t.Errorf("slow's delivered and waiting: got %d, want %d (%d delivered, 2 running)", *c.Buffered, want, c.AckPending)
	}
	if ov.Running == nil || *ov.Running != 2 || ov.Buffered == nil || *ov.Buffered != *c.Buffered {
		t.Errorf("totals: got running %v buffered %v, want 2 and %d", ov.Running, ov.Buffered, *c.Buffered)
	}
	page := b.get(t, "/")
	for _, want := range []string{`data-testid="total-running">2<`, fmt.Sprintf(`data-testid="total-buffered">%d<`, *c.Buffered), `data-testid="running-TASKS-slow">2<`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("overview page: want %s", want)
		}
	}
}
