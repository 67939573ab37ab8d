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

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/schedule"
	"github.com/jetworker/jetworker/streams"
)

// BenchmarkScheduler10kEvery1s runs one scheduler with 10,000 entries at
// "@every 1s" on the embedded server. One iteration is one second's round
// of 10,000 fires. It reports fire lag percentiles (slot to PubAck, in ms)
// and the heap in use while running, and the same percentiles of a raw
// baseline measured first on the same server: 10,000 PublishAsync calls
// with a Nats-Msg-Id at each second boundary, lag from the boundary to
// each PubAck (what firing costs with no bookkeeping at all).
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
	rawP50, rawP99 := rawBurstLag(b, js, n, 5)
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
	// Warm up: one full round.
	for count() < n {
		<-fired
	}
	mu.Lock()
	lags = lags[:0]
	mu.Unlock()

	b.ResetTimer()
	for b.Loop() {
		target := count() + n
		for count() < target {
			<-fired
		}
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
	slices.Sort(lags)
	pct := func(p float64) float64 {
		return float64(lags[int(p*float64(len(lags)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "lag-p50-ms")
	b.ReportMetric(pct(0.99), "lag-p99-ms")
	b.ReportMetric(rawP50, "raw-lag-p50-ms")
	b.ReportMetric(rawP99, "raw-lag-p99-ms")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
}

// rawBurstLag publishes n messages with PublishAsync at each of rounds
// second boundaries and returns the p50 and p99 of boundary-to-PubAck, in
// ms.
func rawBurstLag(b *testing.B, js jetstream.JetStream, n, rounds int) (p50, p99 float64) {
	b.Helper()
	var lags []time.Duration
	for r := range rounds {
		slot := time.Now().Truncate(time.Second).Add(time.Second)
		time.Sleep(time.Until(slot))
		futs := make([]jetstream.PubAckFuture, n)
		for i := range futs {
			f, err := js.PublishAsync("tasks.raw", nil, jetstream.WithMsgID(fmt.Sprintf("raw%05d@%d", i, r)))
			if err != nil {
				b.Fatal(err)
			}
			futs[i] = f
		}
		for _, f := range futs {
			select {
			case <-f.Ok():
				lags = append(lags, time.Since(slot))
			case err := <-f.Err():
				b.Fatal(err)
			}
		}
	}
	slices.Sort(lags)
	at := func(p float64) float64 { return float64(lags[int(p*float64(len(lags)-1))]) / float64(time.Millisecond) }
	return at(0.50), at(0.99)
}
