package bench_test

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/cmd/jetworker/internal/bench"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/schedule"
)

// A tiny schedule run fills every field of the report; what the figures
// are depends on the machine, so only their consistency is checked.
func TestRunScheduleSmoke(t *testing.T) {
	t.Parallel()
	js := embeddedtest.JetStream(t)
	rep, err := bench.RunSchedule(t.Context(), js, bench.ScheduleConfig{Entries: 20, Size: 16, Seconds: 1, Warmup: 1, Rounds: 1})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if rep.Entries != 20 || rep.Spec != "@every 1s" || rep.Seconds != 1 || rep.Rounds != 1 || rep.PutPerSec <= 0 || rep.Server == "" {
		t.Errorf("report header %+v", rep)
	}
	for _, r := range []bench.ScheduleResult{rep.Jetworker, rep.Raw} {
		if r.Expected != 20 || r.Fires < 1 || r.Fires > r.Expected || r.FiresPerSec <= 0 || r.Lag.Count != r.Fires ||
			r.Lag.P50 <= 0 || r.Lag.P50 > r.Lag.P99 || r.Lag.P99 > r.Lag.Max || r.CPUPerFire < 0 || r.AllocsPerFire <= 0 {
			t.Errorf("%s: implausible result %+v", r.Name, r)
		}
	}
	if rep.Jetworker.Name != "jetworker" || rep.Raw.Name != "raw" {
		t.Errorf("sides %q and %q", rep.Jetworker.Name, rep.Raw.Name)
	}
	for _, fig := range []string{"fire lag p50", "fire lag p99", "fire lag max", "fires/s"} {
		if r, ok := bench.FindRatio(rep.Ratios, fig, "jetworker", "raw"); !ok || r.Median <= 0 || len(r.Rounds) != 1 {
			t.Errorf("ratio %s: %+v, %v", fig, r, ok)
		}
	}
	// What the run created is gone.
	for _, b := range []string{schedule.SchedulesBucket, schedule.StateBucket, schedule.LeaseBucket} {
		if _, err := js.KeyValue(t.Context(), b); err != jetstream.ErrBucketNotFound {
			t.Errorf("bucket %s: got %v, want it deleted", b, err)
		}
	}
	if _, err := js.Stream(t.Context(), "BENCH_SCHEDULE"); err == nil {
		t.Error("BENCH_SCHEDULE stream left behind")
	}
}

// A server with schedule entries of its own is refused before anything
// is written: the benchmark's scheduler would fire them.
func TestRunScheduleRefusesAServerWithEntries(t *testing.T) {
	t.Parallel()
	js := embeddedtest.JetStream(t)
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "TASKS", Subjects: []string{"tasks.>"}}); err != nil {
		t.Fatal(err)
	}
	store, err := schedule.NewStore(js, schedule.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Put(t.Context(), schedule.Entry{Name: "nightly", Spec: "@daily", Subject: "tasks.report"}); err != nil {
		t.Fatal(err)
	}
	_, err = bench.RunSchedule(t.Context(), js, bench.ScheduleConfig{Entries: 5, Seconds: 1, Rounds: 1})
	if err == nil || !strings.Contains(err.Error(), `"nightly"`) {
		t.Fatalf("got %v, want a refusal naming the entry", err)
	}
	if es, err := store.List(t.Context()); err != nil || len(es) != 1 {
		t.Errorf("entries after the refusal: %v, %v; want the one entry", es, err)
	}
	if _, err := bench.RunSchedule(t.Context(), js, bench.ScheduleConfig{Entries: -1}); err == nil || !strings.Contains(err.Error(), "Entries") {
		t.Errorf("Entries -1: got %v", err)
	}
}
