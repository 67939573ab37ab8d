package dashboard

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/overview"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

// same compares float series, NaN equal to NaN.
func same(a, b []float64) bool {
	return slices.EqualFunc(a, b, func(x, y float64) bool {
		return x == y || (math.IsNaN(x) && math.IsNaN(y))
	})
}

var nan = math.NaN()

func TestHistoryRing(t *testing.T) {
	t.Parallel()
	h := newHistory(3)
	h.push(at(0), map[string]float64{"a": 1})
	h.push(at(5), map[string]float64{"a": 2, "b": 20})
	snap := h.snapshot(time.Time{})
	if got := snap.Series["a"]; !same(got, []float64{1, 2}) {
		t.Errorf("a after 2 samples: got %v, want [1 2]", got)
	}
	if got := snap.Series["b"]; !same(got, []float64{nan, 20}) {
		t.Errorf("b, new at the second sample: got %v, want [NaN 20]", got)
	}
	// Wrapping around keeps the latest 3, oldest first.
	h.push(at(10), map[string]float64{"a": 3})
	h.push(at(15), map[string]float64{"a": 4})
	snap = h.snapshot(time.Time{})
	if want := []time.Time{at(5), at(10), at(15)}; !slices.Equal(snap.Times, want) {
		t.Errorf("times after wrapping: got %v, want %v", snap.Times, want)
	}
	if got := snap.Series["a"]; !same(got, []float64{2, 3, 4}) {
		t.Errorf("a after wrapping: got %v, want [2 3 4]", got)
	}
	if got := snap.Series["b"]; !same(got, []float64{20, nan, nan}) {
		t.Errorf("b after wrapping: got %v, want [20 NaN NaN]", got)
	}
	// A series without a value for a whole window is dropped.
	h.push(at(20), map[string]float64{"a": 5})
	if _, ok := h.snapshot(time.Time{}).Series["b"]; ok {
		t.Error("b has had no value for a whole window: got it kept, want it dropped")
	}
	// since cuts older samples.
	if got := h.snapshot(at(15)).Series["a"]; !same(got, []float64{4, 5}) {
		t.Errorf("a since 15s: got %v, want [4 5]", got)
	}
}

func TestHistoryBoundsSeries(t *testing.T) {
	t.Parallel()
	h := newHistory(720)
	vals := map[string]float64{}
	for i := range 2 * maxSeries {
		vals[strings.Repeat("x", i+1)] = float64(i)
	}
	h.push(at(0), vals)
	if got := len(h.snapshot(time.Time{}).Series); got != maxSeries {
		t.Errorf("series kept: got %d, want the bound %d", got, maxSeries)
	}
	// NaN never creates a series.
	h2 := newHistory(3)
	h2.push(at(0), map[string]float64{"a": nan})
	if len(h2.snapshot(time.Time{}).Series) != 0 {
		t.Error("a NaN created a series")
	}
}

func TestCounterDelta(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		prev, cur uint64
		want      uint64
	}{
		{"grew", 10, 15, 5},
		{"unchanged", 10, 10, 0},
		{"restarted from zero: its whole value", 500, 7, 7},
		{"restarted and still zero", 500, 0, 0},
	} {
		if got := counterDelta(tc.prev, tc.cur); got != tc.want {
			t.Errorf("%s: counterDelta(%d, %d) = %d, want %d", tc.name, tc.prev, tc.cur, got, tc.want)
		}
	}
}

func stream(name string, last uint64, dead bool) overview.Stream {
	return overview.Stream{Name: name, LastSeq: last, DeadLetters: dead}
}

func worker(id string, started time.Time, processed, failed uint64) consumer.WorkerInfo {
	return consumer.WorkerInfo{ID: id, StartedAt: started, Processed: processed, Failed: failed}
}

func TestSamplerRatesAndResets(t *testing.T) {
	t.Parallel()
	sm := newSampler(720)
	obs := func(sec int, tasks, dlq uint64, ws ...consumer.WorkerInfo) map[string]float64 {
		return sm.observe(observation{
			At:       at(sec),
			Overview: overview.Overview{Streams: []overview.Stream{stream("TASKS", tasks, false), stream("DLQ", dlq, true)}},
			Workers:  ws,
		})
	}
	longAgo := at(-3600)
	// First sample: no rates yet.
	v := obs(0, 100, 3, worker("w1", longAgo, 1000, 10))
	for _, k := range []string{seriesPublished, seriesDeadLettered, seriesProcessed, seriesFailed} {
		if _, ok := v[k]; ok {
			t.Errorf("first sample has %s = %v, want no rate yet", k, v[k])
		}
	}
	// 5s later: 50 published, 5 dead-lettered, w1 processed 25 and failed 5.
	v = obs(5, 150, 8, worker("w1", longAgo, 1025, 15))
	for k, want := range map[string]float64{seriesPublished: 10, seriesDeadLettered: 1, seriesProcessed: 5, seriesFailed: 1} {
		if v[k] != want {
			t.Errorf("second sample %s: got %v/s, want %v/s", k, v[k], want)
		}
	}
	// w1 restarted with the same ID (counters from zero), w2 started just
	// now, w3 was running before the dashboard saw it; the task stream was
	// recreated (its last sequence fell to 20).
	v = obs(10, 20, 8,
		worker("w1", longAgo, 10, 0),
		worker("w2", at(7), 15, 5),
		worker("w3", longAgo, 99999, 99))
	if v[seriesProcessed] != 5 { // (10 + 15) / 5s; w3's earlier work is not placed in this interval
		t.Errorf("processed after a restart and a new worker: got %v/s, want 5/s", v[seriesProcessed])
	}
	if v[seriesFailed] != 1 {
		t.Errorf("failed after a restart and a new worker: got %v/s, want 1/s", v[seriesFailed])
	}
	if v[seriesPublished] != 4 { // 20 messages in the recreated stream / 5s
		t.Errorf("published after the stream was recreated: got %v/s, want 4/s", v[seriesPublished])
	}
	// The workers cannot be read: a gap in their series only.
	v = sm.observe(observation{At: at(15), Overview: overview.Overview{Streams: []overview.Stream{stream("TASKS", 30, false), stream("DLQ", 8, true)}},
		WorkersErr: errors.New("bucket unavailable")})
	if _, ok := v[seriesProcessed]; ok {
		t.Errorf("processed while the workers cannot be read: got %v, want a gap", v[seriesProcessed])
	}
	if v[seriesPublished] != 2 {
		t.Errorf("published while the workers cannot be read: got %v/s, want 2/s", v[seriesPublished])
	}
	// Back: the rate spans the gap (10s since the last read).
	v = obs(20, 30, 8, worker("w1", longAgo, 30, 0), worker("w2", at(7), 15, 5), worker("w3", longAgo, 99999, 99))
	if v[seriesProcessed] != 2 {
		t.Errorf("processed after the gap: got %v/s, want 2/s (20 over 10s)", v[seriesProcessed])
	}
	snap := sm.hist.snapshot(time.Time{})
	if got := snap.Series[seriesProcessed]; !same(got, []float64{nan, 5, 5, nan, 2}) {
		t.Errorf("processed series: got %v", got)
	}
}

func TestSamplerGaugesAndStateUnknown(t *testing.T) {
	t.Parallel()
	sm := newSampler(10)
	ov := overview.Overview{
		Streams:   []overview.Stream{stream("TASKS", 5, false), {Name: "DLQ", DeadLetters: true, Missing: true}},
		Consumers: []overview.Consumer{{Stream: "TASKS", Name: "mailer", Pending: 4, OldestPending: 90 * time.Second}},
	}
	v := sm.observe(observation{At: at(0), Overview: ov})
	if v[prefixPending+"TASKS/mailer"] != 4 || v[prefixOldest+"TASKS/mailer"] != 90 {
		t.Errorf("gauges: got pending %v oldest %v, want 4 and 90", v[prefixPending+"TASKS/mailer"], v[prefixOldest+"TASKS/mailer"])
	}
	// NATS down: no value at all (a gap, not zeros that look idle).
	v = sm.observe(observation{At: at(5), OverviewErr: errors.New("NATS connection is reconnecting"), WorkersErr: errors.New("down")})
	if len(v) != 0 {
		t.Errorf("with the state unknown: got %v, want no values", v)
	}
	// The dead-letter stream created meanwhile counts in full.
	ov.Streams[1] = stream("DLQ", 10, true)
	v = sm.observe(observation{At: at(10), Overview: ov})
	if v[seriesDeadLettered] != 1 {
		t.Errorf("dead-lettered after DLQ appeared with 10 entries over 10s: got %v/s, want 1/s", v[seriesDeadLettered])
	}
}

// TestSamplerWorkersWithoutPresence: with no presence record while a
// consumer's ack floor moves, processed is unknown, not 0.
func TestSamplerWorkersWithoutPresence(t *testing.T) {
	t.Parallel()
	sm := newSampler(10)
	obs := func(sec int, ackFloor uint64) map[string]float64 {
		return sm.observe(observation{At: at(sec), Overview: overview.Overview{
			Streams:   []overview.Stream{stream("TASKS", 100, false), stream("DLQ", 0, true)},
			Consumers: []overview.Consumer{{Stream: "TASKS", Name: "c", AckFloor: ackFloor}},
		}})
	}
	obs(0, 10)
	if v := obs(5, 10); v[seriesProcessed] != 0 {
		t.Errorf("no workers and nothing acknowledged: got processed %v, want 0", v[seriesProcessed])
	}
	if v, ok := obs(10, 40)[seriesProcessed]; ok {
		t.Errorf("no presence record while tasks are acknowledged: got processed %v, want unknown", v)
	}
}

func TestSampleLoop(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		var times []time.Time
		done := make(chan struct{})
		go func() {
			defer close(done)
			sampleLoop(ctx, 5*time.Second, func(context.Context) { times = append(times, time.Now()) })
		}()
		start := time.Now()
		time.Sleep(12 * time.Second)
		synctest.Wait()
		if want := []time.Duration{0, 5 * time.Second, 10 * time.Second}; len(times) != len(want) {
			t.Fatalf("samples in 12s: got %d, want %d", len(times), len(want))
		} else {
			for i, w := range want {
				if got := times[i].Sub(start); got != w {
					t.Errorf("sample %d: at %s, want %s", i, got, w)
				}
			}
		}
		cancel()
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("sampleLoop still running after its context ended")
		}
	})
}

func TestRenderChart(t *testing.T) {
	t.Parallel()
	times := []time.Time{at(0), at(5), at(10), at(15), at(20)}
	cv := renderChart("x", "X", unitRate, times, []chartLine{
		{Key: "a", Name: "a", Vals: []float64{1, 2, nan, 3, 4}},
		{Key: "b", Name: "b", Vals: []float64{nan, nan, nan, nan, nan}},
	}, at(0), at(20))
	if len(cv.Lines) != 2 {
		t.Fatalf("lines: got %d, want 2", len(cv.Lines))
	}
	a := cv.Lines[0]
	if len(a.Segments) != 2 {
		t.Errorf("a missing sample breaks the line: got %d segments %q, want 2", len(a.Segments), a.Segments)
	}
	if a.Last != "4" || !a.HasDot {
		t.Errorf("a's last value: got %q (dot %v), want \"4\" with a dot", a.Last, a.HasDot)
	}
	// x at the plot's left edge; the scale tops at niceCeil(4) = 5, so
	// y(1) = 178 - 1/5 × 168.
	if first := strings.Fields(a.Segments[0])[0]; first != "48.0,144.4" {
		t.Errorf("first point: got %s, want 48.0,144.4", first)
	}
	b := cv.Lines[1]
	if len(b.Segments) != 0 || b.Last != "—" || b.HasDot {
		t.Errorf("an empty series: got %d segments, last %q, dot %v; want none, —, no dot", len(b.Segments), b.Last, b.HasDot)
	}
	if cv.YTicks[2].Label != "5" {
		t.Errorf("top tick: got %q, want 5", cv.YTicks[2].Label)
	}
	if cv.XTicks[0].Label != "−20s" || cv.XTicks[4].Label != "now" {
		t.Errorf("x ticks: got %q … %q, want −20s … now", cv.XTicks[0].Label, cv.XTicks[4].Label)
	}
}

func TestNiceCeilAndBucket(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v    float64
		unit chartUnit
		want float64
	}{
		{0, unitRate, 1}, {0.13, unitRate, 0.2}, {3, unitRate, 5}, {7, unitRate, 10}, {23, unitCount, 25},
		{0.4, unitCount, 1}, {40, unitSeconds, 50}, {61, unitSeconds, 120}, {3000, unitSeconds, 3600},
	} {
		if got := niceCeil(tc.v, tc.unit); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("niceCeil(%v, %d) = %v, want %v", tc.v, tc.unit, got, tc.want)
		}
	}
	times := make([]time.Time, 10)
	vals := []float64{1, 3, nan, nan, 5, 1, 2, 2, 9, nan}
	for i := range times {
		times[i] = at(i)
	}
	bt, bv := bucket(times, vals, 5, false)
	if !same(bv, []float64{2, nan, 3, 2, 9}) || bt[0] != at(1) {
		t.Errorf("mean buckets: got %v at %v, want [2 NaN 3 2 9] from %v", bv, bt[0], at(1))
	}
	_, bv = bucket(times, vals, 5, true)
	if !same(bv, []float64{3, nan, 5, 2, 9}) {
		t.Errorf("max buckets: got %v, want [3 NaN 5 2 9]", bv)
	}
}
