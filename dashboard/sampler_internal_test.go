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

// waits builds a worker's enqueue-to-start buckets from index:count pairs.
func waits(pairs ...int) []uint64 {
	w := make([]uint64, consumer.WaitBuckets)
	for i := 0; i+1 < len(pairs); i += 2 {
		w[pairs[i]] = uint64(pairs[i+1])
	}
	return w
}

func TestBucketQuantile(t *testing.T) {
	t.Parallel()
	bounds := consumer.WaitBounds() // 0.001, 0.0025, 0.005, 0.01, … 60, 300
	for _, tc := range []struct {
		name   string
		counts []uint64
		q      float64
		want   float64
	}{
		{"all in the first bucket interpolates from 0", waits(0, 10), 0.5, 0.0005},
		{"the whole first bucket reads its bound", waits(0, 10), 1, 0.001},
		{"within the second bucket, from the first bound", waits(1, 4), 0.5, 0.001 + 0.0015*0.5},
		{"p50 on the edge of two buckets is the bound between them", waits(0, 5, 1, 5), 0.5, 0.001},
		{"p99 in the slower bucket", waits(0, 98, 9, 2), 0.99, 0.5 + 0.5*0.5},
		{"empty buckets in between are skipped", waits(0, 1, 12, 1), 0.99, 5 + 5*0.98},
		{"above the last bound reads the last bound", waits(0, 1, 16, 99), 0.99, 300},
		{"only above the last bound", waits(16, 3), 0.5, 300},
	} {
		var total uint64
		for _, n := range tc.counts {
			total += n
		}
		if got := bucketQuantile(bounds, tc.counts, total, tc.q); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: q%v of %v: got %v, want %v", tc.name, tc.q, tc.counts, got, tc.want)
		}
	}
}

func TestWaitSetAdvance(t *testing.T) {
	t.Parallel()
	longAgo := at(-3600)
	started := map[string]time.Time{"old": longAgo, "new": at(7), "early": longAgo}
	fresh := func(id string, since time.Time) bool { return !started[id].Before(since) }
	type read struct {
		sec      int
		cur      map[string][]uint64
		ok       bool
		p50, p99 float64
	}
	for _, tc := range []struct {
		name  string
		reads []read
	}{
		{"the first read has no previous one", []read{
			{sec: 0, cur: map[string][]uint64{"old": waits(0, 100)}},
		}},
		{"growth between two reads", []read{
			{sec: 0, cur: map[string][]uint64{"old": waits(0, 100)}},
			// 100 more: 98 within 1ms, 2 between 0.5s and 1s.
			{sec: 5, cur: map[string][]uint64{"old": waits(0, 198, 9, 2)}, ok: true, p50: 0.001 * 50 / 98, p99: 0.75},
		}},
		{"nothing started: no point", []read{
			{sec: 0, cur: map[string][]uint64{"old": waits(0, 100)}},
			{sec: 5, cur: map[string][]uint64{"old": waits(0, 100)}},
		}},
		{"a worker that started since counts in full, one that ran before not at all", []read{
			{sec: 0, cur: map[string][]uint64{"old": waits(0, 100)}},
			{sec: 10, cur: map[string][]uint64{"old": waits(0, 100), "new": waits(9, 10), "early": waits(0, 5000)}, ok: true, p50: 0.75, p99: 0.5 + 0.5*0.99},
		}},
		{"a worker restarted with the same ID counts in full", []read{
			{sec: 0, cur: map[string][]uint64{"old": waits(0, 100, 9, 50)}},
			{sec: 5, cur: map[string][]uint64{"old": waits(9, 4)}, ok: true, p50: 0.75, p99: 0.5 + 0.5*0.99},
		}},
		{"buckets of another length are left out", []read{
			{sec: 0, cur: map[string][]uint64{"old": waits(0, 100), "new": {1, 2, 3}}},
			{sec: 5, cur: map[string][]uint64{"old": waits(0, 100, 9, 4), "new": {9, 9, 9}}, ok: true, p50: 0.75, p99: 0.5 + 0.5*0.99},
		}},
		{"a previous read of another length counts in full", []read{
			{sec: 0, cur: map[string][]uint64{"old": {1, 2, 3}}},
			{sec: 5, cur: map[string][]uint64{"old": waits(9, 4)}, ok: true, p50: 0.75, p99: 0.5 + 0.5*0.99},
		}},
		{"a read at the same time is no interval", []read{
			{sec: 0, cur: map[string][]uint64{"old": waits(0, 100)}},
			{sec: 0, cur: map[string][]uint64{"old": waits(0, 200)}},
		}},
	} {
		w := newWaitSet()
		for i, r := range tc.reads {
			p50, p99, ok := w.advance(at(r.sec), r.cur, fresh)
			if ok != r.ok || math.Abs(p50-r.p50) > 1e-9 || math.Abs(p99-r.p99) > 1e-9 {
				t.Errorf("%s, read %d: got p50 %v p99 %v ok %v, want %v %v %v", tc.name, i, p50, p99, ok, r.p50, r.p99, r.ok)
			}
		}
	}
}

// TestSamplerWaitSeries: the sampler turns the workers' buckets into the
// wait_p50 and wait_p99 series, with a gap where no task started.
func TestSamplerWaitSeries(t *testing.T) {
	t.Parallel()
	sm := newSampler(10)
	obs := func(sec int, w []uint64) map[string]float64 {
		return sm.observe(observation{At: at(sec), Workers: []consumer.WorkerInfo{{ID: "w", StartedAt: at(-60), Wait: w}}})
	}
	obs(0, waits(0, 10))
	v := obs(5, waits(0, 10, 4, 10))
	if math.Abs(v[seriesWaitP50]-0.0175) > 1e-9 || math.Abs(v[seriesWaitP99]-0.02485) > 1e-9 {
		t.Errorf("10 tasks that waited 10-25ms: got p50 %v p99 %v", v[seriesWaitP50], v[seriesWaitP99])
	}
	if _, ok := obs(10, waits(0, 10, 4, 10))[seriesWaitP50]; ok {
		t.Error("no task started between two samples: got a p50, want a gap")
	}
	if got := sm.hist.snapshot(time.Time{}).Series[seriesWaitP99]; len(got) != 3 || !math.IsNaN(got[0]) || math.Abs(got[1]-0.02485) > 1e-9 || !math.IsNaN(got[2]) {
		t.Errorf("wait_p99 series: got %v", got)
	}
	if u := seriesUnit(seriesWaitP50); u != "seconds" {
		t.Errorf("unit of %s: got %s, want seconds", seriesWaitP50, u)
	}
}

func TestFormatLatency(t *testing.T) {
	t.Parallel()
	for v, want := range map[float64]string{
		0: "0s", 0.0004: "0.4ms", 0.0025: "2.5ms", 0.0125: "12.5ms", 0.25: "250ms", 1: "1s", 2.5: "2.5s", 42: "42s", 300: "5m",
	} {
		if got := formatValue(v, unitLatency); got != want {
			t.Errorf("formatValue(%v, latency) = %q, want %q", v, got, want)
		}
	}
	if got := niceCeil(0.013, unitLatency); math.Abs(got-0.02) > 1e-12 {
		t.Errorf("niceCeil(13ms) = %v, want 0.02: latencies scale below a second", got)
	}
}

// TestRenderChartIsolatedPoints: a value between two gaps is drawn as a
// point, since there is no neighbour to draw a line to.
func TestRenderChartIsolatedPoints(t *testing.T) {
	t.Parallel()
	times := []time.Time{at(0), at(5), at(10), at(15), at(20)}
	cv := renderChart("x", "X", unitLatency, times, []chartLine{{Key: "a", Vals: []float64{nan, 0.1, nan, 0.2, 0.3}}}, at(0), at(20))
	a := cv.Lines[0]
	if len(a.Points) != 1 || len(a.Segments) != 1 {
		t.Fatalf("got %d points and %d segments, want the lone sample as 1 point and 1 segment", len(a.Points), len(a.Segments))
	}
	if a.Points[0].X != "193.0" {
		t.Errorf("the point's x: got %s, want 193.0 (5s of 20s across the plot from x=48 to 628)", a.Points[0].X)
	}
}
