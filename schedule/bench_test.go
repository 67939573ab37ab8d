package schedule_test

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/schedule"
	"github.com/jetworker/jetworker/streams"
)

// BenchmarkScheduler10kEvery1s runs one scheduler with 10,000 entries at
// "@every 1s" on the embedded server. One iteration is one second's round
// of 10,000 fires, followed in the same second by a raw baseline on the
// same server: 10,000 PublishAsync calls with a Nats-Msg-Id and the fire's
// headers at the half second, what firing costs with no bookkeeping at
// all. It reports the fire lag percentiles of both (slot to PubAck, in
// ms, taken when nats.go hands over the PubAck), and the heap in use
// while running.
func BenchmarkScheduler10kEvery1s(b *testing.B) {
	const n = 10000
	srv := embeddedtest.Start(b, embedded.Config{})
	_, js := embeddedtest.Connect(b, srv)
	ctx := b.Context()
	if err := streams.Provision(ctx, js, streams.Config{Tasks: streams.Tasks{Retention: streams.Limits, Memory: true}}); err != nil {
		b.Fatal(err)
	}
	store, err := schedule.NewStore(js, schedule.StoreConfig{})
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		e := schedule.Entry{Name: fmt.Sprintf("e%05d", i), Spec: "@every 1s", Subject: "tasks.bench", CatchUp: schedule.CatchUpSkip}
		if _, err := store.Put(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	raw := newRawBurst(b, js, n)
	var (
		mu    sync.Mutex
		lags  []time.Duration
		fired = make(chan struct{}, 1)
	)
	_, sjs := embeddedtest.Connect(b, srv)
	s, err := schedule.New(sjs, schedule.Config{
		Logger: slog.New(slog.DiscardHandler),
		Hooks: schedule.Hooks{FiredFunc: func(f schedule.Fire) {
			if f.Err != nil {
				return
			}
			mu.Lock()
			lags = append(lags, f.Lag)
			mu.Unlock()
			select {
			case fired <- struct{}{}:
			default:
			}
		}},
	})
	if err != nil {
		b.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(lags)
	}
	// Warm up: one full round of each.
	for count() < n {
		<-fired
	}
	raw.round(b)
	mu.Lock()
	lags = lags[:0]
	mu.Unlock()
	raw.lags = raw.lags[:0]

	b.ResetTimer()
	for b.Loop() {
		target := count() + n
		for count() < target {
			<-fired
		}
		raw.round(b)
	}
	b.StopTimer()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	stop()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	b.ReportMetric(percentile(lags, 0.50), "lag-p50-ms")
	b.ReportMetric(percentile(lags, 0.99), "lag-p99-ms")
	b.ReportMetric(percentile(raw.lags, 0.50), "raw-lag-p50-ms")
	b.ReportMetric(percentile(raw.lags, 0.99), "raw-lag-p99-ms")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
}

// rawBurst is the benchmark's baseline: n PublishAsync calls at a half
// second, lag from it to each PubAck as nats.go hands it over.
type rawBurst struct {
	js   jetstream.JetStream
	n    int
	lags []time.Duration

	mu   sync.Mutex
	slot time.Time
	got  int
	all  chan struct{}
}

func newRawBurst(b *testing.B, js jetstream.JetStream, n int) *rawBurst {
	b.Helper()
	r := &rawBurst{n: n}
	var err error
	r.js, err = jetstream.New(js.Conn(),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, _ *nats.Msg, _ *jetstream.PubAck) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.lags = append(r.lags, time.Since(r.slot))
			if r.got++; r.got == r.n {
				close(r.all)
			}
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			b.Error(err)
		}))
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// round publishes the burst at the next half second and waits for its
// PubAcks.
func (r *rawBurst) round(b *testing.B) {
	b.Helper()
	slot := time.Now().Truncate(time.Second).Add(500 * time.Millisecond)
	if time.Until(slot) < 0 {
		slot = slot.Add(time.Second)
	}
	all := make(chan struct{})
	r.mu.Lock()
	r.slot, r.got, r.all = slot, 0, all
	r.mu.Unlock()
	time.Sleep(time.Until(slot))
	at := slot.UTC().Format(time.RFC3339Nano)
	for i := range r.n {
		m := nats.NewMsg("tasks.raw")
		name := fmt.Sprintf("raw%05d", i)
		m.Header.Set(jetworker.HeaderMsgID, name+"@"+at)
		m.Header.Set(jetworker.HeaderSchedule, name)
		m.Header.Set(jetworker.HeaderFireTime, at)
		if _, err := r.js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		b.Fatal("raw burst: PubAcks missing after 30s")
	}
}

// percentile returns the p-quantile of lags in ms; it sorts lags.
func percentile(lags []time.Duration, p float64) float64 {
	if len(lags) == 0 {
		return 0
	}
	slices.Sort(lags)
	return float64(lags[int(p*float64(len(lags)-1))]) / float64(time.Millisecond)
}
