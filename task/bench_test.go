package task_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/streams"
	"github.com/jetworker/jetworker/task"
)

const (
	// benchTasks is a round's work for an untracked side; the tracked
	// side, some 5 times slower, runs a quarter of it so a round stays
	// short. Throughput is compared, not time.
	benchTasks        = 20_000
	benchTrackedTasks = benchTasks / 4
	benchConcurrency  = 10
	benchPayload      = 256
)

// benchSide is one way of running the work.
type benchSide struct {
	name string
	// store is given to the publisher and the consumer; nil runs both
	// without one, as a program that never heard of tracking does.
	store *task.Store
	track bool
	tasks int
}

// BenchmarkTracking measures end-to-end throughput per side and round: a
// consumer with benchConcurrency no-op handlers is started, the side's
// tasks are published async (from one goroutine, and from 16, as an HTTP
// service's concurrent POSTs would), and the clock stops when the
// consumer, stopped after the last handler returned, has also written
// every record it queued (its Run returned). The sides run in turn,
// rotating who goes first each round, so a noisy machine's drift weighs on
// all alike:
//
//   - off: no task store anywhere, untracked tasks: the hot path as it
//     was before tracking existed;
//   - off-store: the store configured on the publisher and the consumer
//     (the cancel watch running), untracked tasks: what having tracking
//     available costs the tasks that do not use it;
//   - tracked: every task published with Track.
//
// Read ratio-off-store (off-store/off throughput, about 1 when the hot
// path is unchanged) and ratio-tracked (tracked/off); tracked-publish/s is
// the tracked side's publishing alone. lost-writes counts record writes
// given up (task.Store.Lost): a ratio bought with lost writes is not a
// real one.
func BenchmarkTracking(b *testing.B) {
	srv := embeddedtest.Start(b, embedded.Config{})
	_, js := embeddedtest.Connect(b, srv)
	if err := streams.Provision(b.Context(), js, streams.Config{}); err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	store, err := task.New(js, task.Config{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	if err := store.Provision(b.Context()); err != nil {
		b.Fatal(err)
	}
	sides := []benchSide{
		{name: "off", tasks: benchTasks},
		{name: "off-store", store: store, tasks: benchTasks},
		{name: "tracked", store: store, track: true, tasks: benchTrackedTasks},
	}
	payload := make([]byte, benchPayload)

	// op runs one round of side, publishing from publishers goroutines,
	// and returns how long it took in all and to publish.
	op := func(b *testing.B, side benchSide, publishers int) (took, publish time.Duration) {
		b.Helper()
		var done atomic.Int64
		all := make(chan struct{})
		h := jetworker.HandlerFunc(func(context.Context, *jetworker.Task) error {
			if done.Add(1) == int64(side.tasks) {
				close(all)
			}
			return nil
		})
		subject := "tasks.bench." + side.name
		c, err := consumer.New(js, h, consumer.Config{
			Durable: "bench-" + side.name, FilterSubjects: []string{subject}, Concurrency: benchConcurrency,
			Tasks: side.store, DisablePresence: true, Logger: quiet,
		})
		if err != nil {
			b.Fatal(err)
		}
		pub, err := publisher.New(js, publisher.Config{Tasks: side.store, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(b.Context())
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- c.Run(ctx) }()
		select {
		case <-c.Ready():
		case err := <-errc:
			b.Fatal(err)
		}
		var opts *publisher.PublishOpts
		if side.track {
			opts = &publisher.PublishOpts{Track: true}
		}
		began := time.Now()
		var wg sync.WaitGroup
		failed := make(chan error, publishers)
		for p := range publishers {
			n := side.tasks / publishers
			if p < side.tasks%publishers {
				n++
			}
			wg.Go(func() {
				for range n {
					if _, err := pub.PublishAsync(b.Context(), subject, payload, opts); err != nil {
						failed <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(failed)
		if err := <-failed; err != nil {
			b.Fatal(err)
		}
		if err := pub.Wait(b.Context()); err != nil {
			b.Fatal(err)
		}
		publish = time.Since(began)
		select {
		case <-all:
		case <-time.After(2 * time.Minute):
			b.Fatalf("%s: %d of %d tasks handled", side.name, done.Load(), side.tasks)
		}
		cancel()
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		return time.Since(began), publish
	}

	for _, publishers := range []int{1, 16} {
		b.Run(fmt.Sprintf("publishers=%d", publishers), func(b *testing.B) {
			totals := make([]time.Duration, len(sides))
			var trackedPublish time.Duration
			lostBefore := store.Lost()
			rounds := 0
			for b.Loop() {
				for i := range sides {
					k := (i + rounds) % len(sides)
					took, publish := op(b, sides[k], publishers)
					totals[k] += took
					if sides[k].track {
						trackedPublish += publish
					}
				}
				rounds++
			}
			rate := make([]float64, len(sides))
			for i, s := range sides {
				rate[i] = float64(rounds*s.tasks) / totals[i].Seconds()
				b.ReportMetric(rate[i], s.name+"-tasks/s")
			}
			b.ReportMetric(float64(rounds*benchTrackedTasks)/trackedPublish.Seconds(), "tracked-publish/s")
			b.ReportMetric(rate[1]/rate[0], "ratio-off-store")
			b.ReportMetric(rate[2]/rate[0], "ratio-tracked")
			b.ReportMetric(float64(store.Lost()-lostBefore), "lost-writes")
		})
	}
}

// BenchmarkCancelLatency measures how long a running tracked task takes to
// see a cancel: from the call to task.Store.Cancel until the handler's
// context is done (with cause task.ErrCancelled), one task at a time. It
// reports the median and the 99th percentile, and the median time
// Cancel itself takes to return.
func BenchmarkCancelLatency(b *testing.B) {
	srv := embeddedtest.Start(b, embedded.Config{})
	_, js := embeddedtest.Connect(b, srv)
	if err := streams.Provision(b.Context(), js, streams.Config{}); err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	store, err := task.New(js, task.Config{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	if err := store.Provision(b.Context()); err != nil {
		b.Fatal(err)
	}
	started := make(chan string)
	seen := make(chan time.Time)
	h := jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
		started <- t.ID
		<-ctx.Done()
		at := time.Now()
		if errors.Is(context.Cause(ctx), task.ErrCancelled) {
			seen <- at
		}
		return context.Cause(ctx)
	})
	c, err := consumer.New(js, h, consumer.Config{Durable: "bench-cancel", Tasks: store, DisablePresence: true, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			b.Error(err)
		}
	}()
	<-c.Ready()
	pub, err := publisher.New(js, publisher.Config{Tasks: store, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}

	var latencies, calls []time.Duration
	for b.Loop() {
		res, err := pub.Publish(b.Context(), "tasks.bench.cancel", nil, &publisher.PublishOpts{Track: true})
		if err != nil {
			b.Fatal(err)
		}
		if id := <-started; id != res.ID {
			b.Fatalf("started %s, want %s", id, res.ID)
		}
		waitActive(b, store, res.ID) // a cancel of a task the record says is running
		began := time.Now()
		if _, err := store.Cancel(b.Context(), res.ID); err != nil {
			b.Fatal(err)
		}
		calls = append(calls, time.Since(began))
		select {
		case at := <-seen:
			latencies = append(latencies, at.Sub(began))
		case <-time.After(10 * time.Second):
			b.Fatal("the handler's context was not cancelled within 10s")
		}
		info, err := store.Wait(b.Context(), res.ID)
		if err != nil || info.State != task.Cancelled {
			b.Fatalf("ended %s, %v; want cancelled", info.State, err)
		}
	}
	slices.Sort(latencies)
	slices.Sort(calls)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(percentile(latencies, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(latencies, 0.99)), "p99-ms")
	b.ReportMetric(ms(percentile(calls, 0.50)), "cancel-call-p50-ms")
}

// waitActive follows the record of id until it is active.
func waitActive(b *testing.B, store *task.Store, id string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Second)
	defer cancel()
	for info, err := range store.Follow(ctx, id) {
		if err != nil {
			b.Fatal(err)
		}
		if info.State == task.Active {
			return
		}
	}
	b.Fatalf("%s did not become active within 10s", id)
}

// percentile returns the p-th quantile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
