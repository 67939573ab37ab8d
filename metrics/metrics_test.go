package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/metrics"
	"github.com/jetworker/jetworker/overview"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/schedule"
	"github.com/jetworker/jetworker/streams"
	"github.com/jetworker/jetworker/task"
)

type testBundle struct {
	srv  *embedded.Server
	js   jetstream.JetStream
	m    *metrics.Metrics
	http *httptest.Server
}

// setup starts an embedded server, provisions the streams and serves m
// (a new one when nil), observing the streams, on an httptest server.
func setup(t *testing.T, m *metrics.Metrics) *testBundle {
	t.Helper()
	srv := embeddedtest.Start(t, embedded.Config{})
	_, js := embeddedtest.Connect(t, srv, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err := streams.Provision(t.Context(), js, streams.Config{}); err != nil {
		t.Fatalf("provision: %v", err)
	}
	if m == nil {
		var err error
		if m, err = metrics.New(metrics.Config{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.ObserveStreams(js, overview.Config{}, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(m.Handler())
	t.Cleanup(hs.Close)
	return &testBundle{srv: srv, js: js, m: m, http: hs}
}

// startConsumer runs a consumer until the test ends and waits until it is
// ready.
func startConsumer(t *testing.T, js jetstream.JetStream, h jetworker.HandlerFunc, cfg consumer.Config) {
	t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.Backoff = func(int, error) time.Duration { return 10 * time.Millisecond }
	c, err := consumer.New(js, h, cfg)
	if err != nil {
		t.Fatalf("consumer.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("consumer Run: %v", err)
		}
	})
	select {
	case <-c.Ready():
	case err := <-done:
		t.Fatalf("consumer Run returned early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("consumer not ready within 10s")
	}
}

// scrape fetches the metrics over HTTP and parses the exposition text.
func scrape(t *testing.T, b *testBundle) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := b.http.Client().Get(b.http.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: got %d", res.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// find returns the metric of family name whose labels include want.
func find(fams map[string]*dto.MetricFamily, name string, want ...string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(want); i += 2 {
			ok := false
			for _, l := range m.GetLabel() {
				if l.GetName() == want[i] && l.GetValue() == want[i+1] {
					ok = true
				}
			}
			if !ok {
				continue next
			}
		}
		return m
	}
	return nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return -1
}

func TestConsumerMetrics(t *testing.T) {
	t.Parallel()
	m, err := metrics.New(metrics.Config{DisableRuntimeMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, m)

	// 5 succeed, 2 fail once then succeed, 1 fails permanently.
	var settled atomic.Int64
	h := func(ctx context.Context, tk *jetworker.Task) error {
		switch {
		case strings.HasPrefix(tk.Subject, "tasks.flaky.") && tk.Delivered == 1:
			return errors.New("try again")
		case strings.HasPrefix(tk.Subject, "tasks.broken."):
			return jetworker.Permanent(errors.New("bad payload"))
		}
		return nil
	}
	hooks := m.ConsumerHooks()
	done := hooks.DoneFunc
	hooks.DoneFunc = func(ctx context.Context, tk *jetworker.Task, o consumer.Outcome, d time.Duration, err error) {
		done(ctx, tk, o, d, err)
		settled.Add(1)
	}
	startConsumer(t, b.js, h, consumer.Config{Durable: "metrics", Concurrency: 4, Hooks: hooks})

	pub, _ := publisher.New(b.js, publisher.Config{})
	publish := func(subj string) {
		if _, err := pub.Publish(t.Context(), subj, []byte(`{}`), nil); err != nil {
			t.Fatalf("publish %s: %v", subj, err)
		}
	}
	for i := range 5 {
		publish(fmt.Sprintf("tasks.ok.send.%d", i)) // 4 tokens: labelled tasks.ok.send.>
	}
	publish("tasks.flaky.a")
	publish("tasks.flaky.b")
	publish("tasks.broken.a")

	// 5 acks + 2 retries + 2 acks + 1 dead letter = 10 settlements.
	testutil.Eventually(t, 15*time.Second, func() error {
		if n := settled.Load(); n != 10 {
			return fmt.Errorf("settled %d tasks, want 10", n)
		}
		return nil
	})

	fams := scrape(t, b)
	for _, tc := range []struct {
		subject, outcome string
		want             float64
	}{
		{"tasks.ok.send.>", "acked", 5},
		{"tasks.flaky.a", "retried", 1},
		{"tasks.flaky.a", "acked", 1},
		{"tasks.flaky.b", "retried", 1},
		{"tasks.flaky.b", "acked", 1},
		{"tasks.broken.a", "dead_lettered", 1},
	} {
		got := value(find(fams, "jetworker_tasks_processed_total", "subject", tc.subject, "outcome", tc.outcome))
		if got != tc.want {
			t.Errorf("tasks_processed_total{subject=%q,outcome=%q}: got %v, want %v", tc.subject, tc.outcome, got, tc.want)
		}
	}
	var total float64
	for _, mm := range fams["jetworker_tasks_processed_total"].GetMetric() {
		total += mm.GetCounter().GetValue()
	}
	if total != 10 {
		t.Errorf("tasks_processed_total summed: got %v, want 10", total)
	}
	histCount := func(name string) (n uint64) {
		for _, mm := range fams[name].GetMetric() {
			n += mm.GetHistogram().GetSampleCount()
		}
		return n
	}
	if got := histCount("jetworker_task_duration_seconds"); got != 10 {
		t.Errorf("task_duration_seconds count: got %d, want 10 (one per attempt)", got)
	}
	if got := histCount("jetworker_task_wait_seconds"); got != 8 {
		t.Errorf("task_wait_seconds count: got %d, want 8 (first deliveries)", got)
	}
	if got := find(fams, "jetworker_task_wait_seconds", "subject", "tasks.ok.send.>").GetHistogram().GetSampleCount(); got != 5 {
		t.Errorf("task_wait_seconds{subject=tasks.ok.send.>} count: got %d, want 5", got)
	}
	if got := value(find(fams, "jetworker_dead_letters_published_total", "subject", "tasks.broken.a")); got != 1 {
		t.Errorf("dead_letters_published_total: got %v, want 1", got)
	}
	if got := value(find(fams, "jetworker_tasks_in_flight")); got != 0 {
		t.Errorf("tasks_in_flight: got %v, want 0", got)
	}

	// State read from the server at scrape time.
	for _, tc := range []struct {
		name string
		want float64
	}{
		{"jetworker_consumer_pending_messages", 0},
		{"jetworker_consumer_ack_pending_messages", 0},
		{"jetworker_consumer_redelivered_messages", 0},
	} {
		if got := value(find(fams, tc.name, "stream", "TASKS", "consumer", "metrics")); got != tc.want {
			t.Errorf("%s{TASKS,metrics}: got %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := value(find(fams, "jetworker_consumer_waiting_requests", "stream", "TASKS", "consumer", "metrics")); got < 1 {
		t.Errorf("consumer_waiting_requests: got %v, want >= 1 (an idle worker pulls)", got)
	}
	if got := value(find(fams, "jetworker_stream_messages", "stream", "DLQ")); got != 1 {
		t.Errorf("stream_messages{DLQ}: got %v, want 1", got)
	}
	if got := value(find(fams, "jetworker_nats_connected")); got != 1 {
		t.Errorf("nats_connected: got %v, want 1", got)
	}
	if got := value(find(fams, "jetworker_state_scrape_success")); got != 1 {
		t.Errorf("state_scrape_success: got %v, want 1", got)
	}
	if fams["go_goroutines"] != nil {
		t.Error("go_goroutines present with DisableRuntimeMetrics")
	}
}

func TestConsumerPendingMetric(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	// A durable with no running worker: its messages stay pending.
	if _, err := consumer.Provision(t.Context(), b.js, consumer.Config{Durable: "idle"}); err != nil {
		t.Fatal(err)
	}
	pub, _ := publisher.New(b.js, publisher.Config{})
	for range 3 {
		if _, err := pub.Publish(t.Context(), "tasks.later", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	fams := scrape(t, b)
	if got := value(find(fams, "jetworker_consumer_pending_messages", "stream", "TASKS", "consumer", "idle")); got != 3 {
		t.Errorf("consumer_pending_messages{idle}: got %v, want 3", got)
	}
	if got := value(find(fams, "jetworker_stream_messages", "stream", "TASKS")); got != 3 {
		t.Errorf("stream_messages{TASKS}: got %v, want 3", got)
	}
	if fams["go_goroutines"] == nil {
		t.Error("go_goroutines missing: runtime metrics are on by default")
	}
}

func TestSchedulerMetrics(t *testing.T) {
	t.Parallel()
	m, err := metrics.New(metrics.Config{DisableRuntimeMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, m)
	store, _ := schedule.NewStore(b.js, schedule.StoreConfig{})
	if _, err := store.Put(t.Context(), schedule.Entry{Name: "tick", Spec: "@every 1s", Subject: "tasks.tick", CatchUp: schedule.CatchUpSkip}); err != nil {
		t.Fatal(err)
	}
	fired := make(chan schedule.Fire, 16)
	cfg := schedule.Config{
		LeaseTTL: 3 * time.Second,
		Logger:   slog.New(slog.DiscardHandler),
		Hooks:    schedule.JoinHooks(schedule.Hooks{FiredFunc: func(f schedule.Fire) { fired <- f }}, m.SchedulerHooks()),
	}
	sch, err := schedule.New(b.js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- sch.Run(ctx) }()

	for range 2 {
		select {
		case f := <-fired:
			if f.Err != nil {
				t.Fatalf("fire: %v", f.Err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no fire within 10s")
		}
	}
	// The hooks run after ours: wait until the scrape shows both fires.
	testutil.Eventually(t, 5*time.Second, func() error {
		fams := scrape(t, b)
		if got := value(find(fams, "jetworker_schedule_fires_total", "schedule", "tick", "result", "ok")); got < 2 {
			return fmt.Errorf("schedule_fires_total{tick,ok}: got %v, want >= 2", got)
		}
		return nil
	})
	fams := scrape(t, b)
	fires := value(find(fams, "jetworker_schedule_fires_total", "schedule", "tick", "result", "ok"))
	if got := fams["jetworker_schedule_fire_lag_seconds"].GetMetric()[0].GetHistogram().GetSampleCount(); float64(got) != fires {
		t.Errorf("schedule_fire_lag_seconds count: got %d, want %v (one per successful fire)", got, fires)
	}
	if got := value(find(fams, "jetworker_scheduler_leader")); got != 1 {
		t.Errorf("scheduler_leader while leading: got %v, want 1", got)
	}
	if got := value(find(fams, "jetworker_scheduler_lease_renew_failures_total")); got != 0 {
		t.Errorf("scheduler_lease_renew_failures_total: got %v, want 0", got)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("scheduler Run: %v", err)
	}
	if got := value(find(scrape(t, b), "jetworker_scheduler_leader")); got != 0 {
		t.Errorf("scheduler_leader after stop: got %v, want 0", got)
	}
}

func TestSubjectTokens(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n        int
		in, want string
	}{
		{3, "tasks.email.send", "tasks.email.send"},
		{3, "tasks.email", "tasks.email"},
		{3, "tasks.user.42.delete", "tasks.user.42.>"},
		{2, "tasks.user.42.delete", "tasks.user.>"},
		{1, "tasks", "tasks"},
		{1, "tasks.a", "tasks.>"},
	} {
		if got := metrics.SubjectTokens(tc.n)(tc.in); got != tc.want {
			t.Errorf("SubjectTokens(%d)(%q): got %q, want %q", tc.n, tc.in, got, tc.want)
		}
	}
}

func TestBuildInfoAndPublisherCounters(t *testing.T) {
	t.Parallel()
	m, err := metrics.New(metrics.Config{Version: "v1.2.3", DisableRuntimeMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, m)
	pub, err := publisher.New(b.js, publisher.Config{Hooks: m.PublisherHooks()})
	if err != nil {
		t.Fatal(err)
	}
	opts := &publisher.PublishOpts{ID: "same"}
	_, _ = pub.Publish(t.Context(), "tasks.a", nil, opts)
	_, _ = pub.Publish(t.Context(), "tasks.a", nil, opts)
	_, _ = pub.Publish(t.Context(), "nowhere.x", nil, nil)
	fams := scrape(t, b)
	if got := value(find(fams, "jetworker_build_info", "version", "v1.2.3")); got != 1 {
		t.Errorf("build_info{version=v1.2.3}: got %v, want 1", got)
	}
	for _, c := range []struct {
		subject, result string
		want            float64
	}{{"tasks.a", "stored", 1}, {"tasks.a", "duplicate", 1}, {"nowhere.x", "failed", 1}} {
		if got := value(find(fams, "jetworker_tasks_published_total", "subject", c.subject, "result", c.result)); got != c.want {
			t.Errorf("tasks_published_total{%s,%s}: got %v, want %v", c.subject, c.result, got, c.want)
		}
	}
}

func TestOldestPendingAndScrapeFailure(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	if _, err := consumer.Provision(t.Context(), b.js, consumer.Config{Durable: "idle"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.js.Publish(t.Context(), "tasks.old", nil); err != nil {
		t.Fatal(err)
	}
	var age float64
	testutil.Eventually(t, 5*time.Second, func() error {
		age = value(find(scrape(t, b), "jetworker_consumer_oldest_pending_seconds", "consumer", "idle"))
		if age < 0.2 {
			return fmt.Errorf("oldest pending age %v, want it to grow past 0.2s", age)
		}
		return nil
	})

	// The server goes away: the gauges stay, flagged as not read now.
	b.srv.Shutdown()
	testutil.Eventually(t, 5*time.Second, func() error {
		fams := scrape(t, b)
		if got := value(find(fams, "jetworker_state_scrape_success")); got != 0 {
			return fmt.Errorf("state_scrape_success: got %v, want 0", got)
		}
		if got := value(find(fams, "jetworker_consumer_pending_messages", "consumer", "idle")); got != 1 {
			return fmt.Errorf("consumer_pending_messages{idle} after the scrape failed: got %v, want the last value 1", got)
		}
		if got := value(find(fams, "jetworker_nats_connected")); got != 0 {
			return fmt.Errorf("nats_connected: got %v, want 0", got)
		}
		return nil
	})
}

// Record writes a task store gave up on show as
// jetworker_task_record_writes_lost_total: here tracked publishes whose
// records no longer fit the bucket (the tasks are stored regardless).
func TestTaskRecordWritesLost(t *testing.T) {
	t.Parallel()
	m, err := metrics.New(metrics.Config{DisableRuntimeMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, m)
	if got := value(find(scrape(t, b), "jetworker_task_record_writes_lost_total")); got != 0 {
		t.Fatalf("before any store: got %v, want 0", got)
	}
	small, err := task.New(b.js, task.Config{Bucket: "tiny", MaxBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	m.ObserveTaskStore(small)
	pub, err := publisher.New(b.js, publisher.Config{Tasks: small})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := pub.Publish(t.Context(), "tasks.full", make([]byte, 10), &publisher.PublishOpts{ID: fmt.Sprint("f", i), Track: true}); err != nil {
			t.Fatalf("tracked publish %d: %v", i, err)
		}
	}
	lost := small.Lost()
	if lost == 0 {
		t.Fatal("no record write was lost; the test needs some")
	}
	if got := value(find(scrape(t, b), "jetworker_task_record_writes_lost_total")); got != float64(lost) {
		t.Errorf("task_record_writes_lost_total: got %v, want the store's %d", got, lost)
	}
}
