package consumer_test

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/streams"
)

const (
	benchTasks       = 100_000
	benchConcurrency = 10
	benchPayload     = 256
)

// BenchmarkConsume processes benchTasks pre-published tasks with a no-op
// handler per op, through jetworker and through a raw nats.go Consume +
// Ack loop (nats.go's default options) feeding the same number of
// goroutines, on the same server in the same run. Compare the tasks/s metrics: jetworker/raw is the ratio.
func BenchmarkConsume(b *testing.B) {
	srv := embeddedtest.Start(b, embedded.Config{})
	_, js := embeddedtest.Connect(b, srv)
	if err := streams.Provision(b.Context(), js, streams.Config{}); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, benchPayload)
	fill := func(b *testing.B) {
		b.Helper()
		for range benchTasks {
			if _, err := js.PublishAsync("tasks.bench", payload); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			b.Fatal("publish did not complete")
		}
	}
	// op fills the stream, then times one process call on a fresh durable
	// and counts its allocations; the durable is removed afterwards so
	// the next op's is alone on the work-queue stream.
	i := 0
	op := func(b *testing.B, process func(b *testing.B, durable string)) (took time.Duration, mallocs uint64) {
		b.StopTimer()
		defer b.StartTimer()
		fill(b)
		durable := "bench" + strconv.Itoa(i)
		i++
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		began := time.Now()
		b.StartTimer()
		process(b, durable)
		b.StopTimer()
		took = time.Since(began)
		runtime.ReadMemStats(&after)
		_ = js.DeleteConsumer(b.Context(), "TASKS", durable)
		return took, after.Mallocs - before.Mallocs
	}
	run := func(b *testing.B, process func(b *testing.B, durable string)) {
		b.ReportAllocs()
		var total time.Duration
		var mallocs uint64
		ops := 0
		for b.Loop() {
			took, m := op(b, process)
			total += took
			mallocs += m
			ops++
		}
		n := float64(ops * benchTasks)
		b.ReportMetric(n/total.Seconds(), "tasks/s")
		b.ReportMetric(float64(mallocs)/n, "allocs/task")
	}

	rawProcess := func(b *testing.B, durable string) {
		cons, err := js.CreateOrUpdateConsumer(b.Context(), "TASKS", jetstream.ConsumerConfig{
			Durable: durable, AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "tasks.>",
		})
		if err != nil {
			b.Fatal(err)
		}
		var done atomic.Int64
		all := make(chan struct{})
		work := make(chan jetstream.Msg)
		var wg sync.WaitGroup
		for range benchConcurrency {
			wg.Go(func() {
				for m := range work {
					_ = m.Ack()
					if done.Add(1) == benchTasks {
						close(all)
					}
				}
			})
		}
		// Plain Consume: nats.go's defaults (500 messages ahead).
		cc, err := cons.Consume(func(m jetstream.Msg) { work <- m })
		if err != nil {
			b.Fatal(err)
		}
		<-all
		cc.Stop()
		<-cc.Closed() // no callback still sending on work
		close(work)
		wg.Wait()
	}
	jwProcess := func(b *testing.B, durable string) {
		var done atomic.Int64
		all := make(chan struct{})
		h := jetworker.HandlerFunc(func(context.Context, *jetworker.Task) error {
			if done.Add(1) == benchTasks {
				close(all)
			}
			return nil
		})
		c, err := consumer.New(js, h, consumer.Config{
			Durable: durable, Concurrency: benchConcurrency, DisablePresence: true,
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(b.Context())
		errc := make(chan error, 1)
		go func() { errc <- c.Run(ctx) }()
		<-all
		cancel()
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	b.Run("raw", func(b *testing.B) { run(b, rawProcess) })
	b.Run("jetworker", func(b *testing.B) { run(b, jwProcess) })
	// Both sides in turn, op by op, so that a machine's drift (disk,
	// neighbours) weighs on both alike: the ratio metric is the one to read.
	b.Run("interleaved", func(b *testing.B) {
		var rawTotal, jwTotal time.Duration
		rounds := 0
		for b.Loop() {
			took, _ := op(b, rawProcess)
			rawTotal += took
			took, _ = op(b, jwProcess)
			jwTotal += took
			rounds++
		}
		n := float64(rounds * benchTasks)
		b.ReportMetric(n/rawTotal.Seconds(), "raw-tasks/s")
		b.ReportMetric(n/jwTotal.Seconds(), "jetworker-tasks/s")
		b.ReportMetric(rawTotal.Seconds()/jwTotal.Seconds(), "ratio")
	})
}

// BenchmarkBacklogMemory consumes from a backlog of JETWORKER_BACKLOG
// tasks (default 100,000) and reports the peak Go heap in use while
// consuming; run it with two backlog sizes to see that memory does not grow
// with the backlog. The embedded server shares the process, so its memory
// is included.
func BenchmarkBacklogMemory(b *testing.B) {
	backlog := 100_000
	if v, err := strconv.Atoi(os.Getenv("JETWORKER_BACKLOG")); err == nil && v > 0 {
		backlog = v
	}
	srv := embeddedtest.Start(b, embedded.Config{})
	_, js := embeddedtest.Connect(b, srv)
	if err := streams.Provision(b.Context(), js, streams.Config{}); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, benchPayload)
	for b.Loop() {
		b.StopTimer()
		for range backlog {
			if _, err := js.PublishAsync("tasks.backlog", payload); err != nil {
				b.Fatal(err)
			}
		}
		<-js.PublishAsyncComplete()
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		b.StartTimer()

		var done atomic.Int64
		all := make(chan struct{})
		h := jetworker.HandlerFunc(func(context.Context, *jetworker.Task) error {
			if done.Add(1) == int64(backlog) {
				close(all)
			}
			return nil
		})
		c, err := consumer.New(js, h, consumer.Config{Durable: "backlog", Concurrency: benchConcurrency, DisablePresence: true, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(b.Context())
		errc := make(chan error, 1)
		go func() { errc <- c.Run(ctx) }()
		var peak uint64
		tick := time.NewTicker(50 * time.Millisecond)
	loop:
		for {
			select {
			case <-all:
				break loop
			case <-tick.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapInuse)
			}
		}
		tick.Stop()
		cancel()
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(base.HeapInuse)/(1<<20), "base-heap-MiB")
		b.ReportMetric(float64(backlog), "backlog")
		_ = js.DeleteConsumer(b.Context(), "TASKS", "backlog")
	}
}
