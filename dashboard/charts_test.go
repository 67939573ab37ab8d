package dashboard_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dashboard"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/publisher"
)

type chartsBody struct {
	Sampling bool        `json:"sampling"`
	Times    []time.Time `json:"times"`
	Series   []struct {
		Name   string     `json:"name"`
		Unit   string     `json:"unit"`
		Points []*float64 `json:"points"`
	} `json:"series"`
}

// peak returns the largest point of the named series, or -1.
func (c chartsBody) peak(name string) float64 {
	best := -1.0
	for _, s := range c.Series {
		if s.Name != name {
			continue
		}
		for _, p := range s.Points {
			if p != nil && *p > best {
				best = *p
			}
		}
	}
	return best
}

// TestChartsSampleWhileRunning: Run samples the streams and the workers, so
// after tasks ran the charts have published and processed rates, the p50
// and p99 enqueue-to-start latency the workers report, and the backlog of
// an idle consumer, and the overview draws them as SVG.
func TestChartsSampleWhileRunning(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{Addr: "127.0.0.1:0", SampleInterval: 100 * time.Millisecond})
	provision(t, b.js)
	if r := b.get(t, "/"); !strings.Contains(r.body, "served without Run") {
		t.Errorf("overview before Run: want a note that charts need Run, got none")
	}
	if _, err := consumer.Provision(t.Context(), b.js, consumer.Config{Durable: "idle", FilterSubjects: []string{"tasks.idle.>"}}); err != nil {
		t.Fatal(err)
	}
	startConsumer(t, b.js, func(context.Context, *jetworker.Task) error { return nil },
		consumer.Config{Durable: "work", FilterSubjects: []string{"tasks.work.>"}, Presence: consumer.Presence{TTL: 3 * time.Second}})
	b.run(t)
	pub, _ := publisher.New(b.js, publisher.Config{})
	publish := func(subj string, n int) {
		for i := range n {
			if _, err := pub.Publish(t.Context(), subj, []byte(fmt.Sprint(i)), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		publish("tasks.work.x", 5)
		publish("tasks.idle.x", 1)
		c := decode[chartsBody](t, b.get(t, "/api/charts"))
		if !c.Sampling {
			return fmt.Errorf("sampling: got false, want true while Run runs")
		}
		for _, name := range []string{"published", "processed", "pending/TASKS/idle", "wait_p50", "wait_p99"} {
			if c.peak(name) <= 0 {
				return fmt.Errorf("series %s: peak %v, want > 0", name, c.peak(name))
			}
		}
		return nil
	})
	r := b.get(t, "/")
	if r.code != http.StatusOK {
		t.Fatalf("overview: got %d", r.code)
	}
	for _, want := range []string{`data-testid="chart-throughput"`, `data-series="processed"`, `data-series="pending/TASKS/idle"`, "<polyline",
		`data-testid="chart-latency"`, `data-series="wait_p50"`, `data-series="wait_p99"`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("overview: want %s in the charts", want)
		}
	}
	if !strings.Contains(r.body, "A point exists only when tasks started between two samples") {
		t.Error("the latency chart does not say when it has a point")
	}
	if c := decode[chartsBody](t, b.get(t, "/api/charts")); c.peak("wait_p99") < c.peak("wait_p50") {
		t.Errorf("wait_p99 peak %v below wait_p50 peak %v", c.peak("wait_p99"), c.peak("wait_p50"))
	}
}
