package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dlq"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/streams"
)

type testBundle struct {
	srv *embedded.Server
	js  jetstream.JetStream
	pub *publisher.Publisher
}

func setup(t *testing.T) testBundle {
	t.Helper()
	srv := embeddedtest.Start(t, embedded.Config{})
	_, js := embeddedtest.Connect(t, srv)
	if err := streams.Provision(t.Context(), js, streams.Config{}); err != nil {
		t.Fatalf("provision: %v", err)
	}
	pub, err := publisher.New(js, publisher.Config{})
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}
	return testBundle{srv: srv, js: js, pub: pub}
}

// start runs c until the test ends (or stop is called) and waits for it
// to be ready. stop cancels Run and returns its error.
func start(t *testing.T, c *consumer.Consumer) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	select {
	case <-c.Ready():
	case err := <-errc:
		cancel()
		t.Fatalf("consumer did not start: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("consumer not ready within 10s")
	}
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(30 * time.Second):
				err = errors.New("Run did not return within 30s")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func newConsumer(t *testing.T, js jetstream.JetStream, h jetworker.Handler, cfg consumer.Config) *consumer.Consumer {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testutil.Logger(t, slog.LevelDebug)
	}
	c, err := consumer.New(js, h, cfg)
	if err != nil {
		t.Fatalf("consumer.New: %v", err)
	}
	return c
}

func publish(t *testing.T, pub *publisher.Publisher, subject, data string, id string) publisher.Result {
	t.Helper()
	res, err := pub.Publish(t.Context(), subject, []byte(data), &publisher.PublishOpts{ID: id})
	if err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	return res
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatalf("stream %s info: %v", name, err)
	}
	return info.State.Msgs
}

func TestRetriedTasksAllEndAcked(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 10_000
	const delay = 150 * time.Millisecond

	var (
		mu        sync.Mutex
		failedAt  = map[string]time.Time{}
		succeeded = map[string]int{}
		early     []string
		successes atomic.Int64
		all       = make(chan struct{})
	)
	h := jetworker.HandlerFunc(func(ctx context.Context, task *jetworker.Task) error {
		mu.Lock()
		defer mu.Unlock()
		if task.Delivered == 1 && rand.Float64() < 0.3 {
			failedAt[task.ID] = time.Now()
			return errors.New("flaky dependency")
		}
		if at, ok := failedAt[task.ID]; ok && task.Delivered > 1 && time.Since(at) < delay {
			early = append(early, fmt.Sprintf("%s after %s", task.ID, time.Since(at)))
		}
		succeeded[task.ID]++
		if successes.Add(1) == n {
			close(all)
		}
		return nil
	})
	c := newConsumer(t, b.js, h, consumer.Config{
		Concurrency: 32,
		Backoff:     func(int, error) time.Duration { return delay },
	})
	stop := start(t, c)
	for i := range n {
		if _, err := b.pub.PublishAsync(t.Context(), "tasks.flaky", []byte("x"), &publisher.PublishOpts{ID: fmt.Sprintf("t-%05d", i)}); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	if err := b.pub.Wait(t.Context()); err != nil {
		t.Fatalf("publish wait: %v", err)
	}
	select {
	case <-all:
	case <-time.After(2 * time.Minute):
		t.Fatalf("only %d of %d tasks succeeded", successes.Load(), n)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(succeeded) != n {
		t.Fatalf("%d distinct tasks succeeded, want %d", len(succeeded), n)
	}
	for id, k := range succeeded {
		if k != 1 {
			t.Fatalf("task %s succeeded %d times, want 1", id, k)
		}
	}
	if len(failedAt) < n/5 {
		t.Fatalf("only %d first attempts failed, want about 30%% of %d", len(failedAt), n)
	}
	if len(early) > 0 {
		t.Fatalf("%d retries came before their backoff delay of %s, e.g. %s", len(early), delay, early[0])
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if m := streamMsgs(t, b.js, "TASKS"); m != 0 {
			return fmt.Errorf("TASKS still holds %d messages", m)
		}
		return nil
	})
	if m := streamMsgs(t, b.js, "DLQ"); m != 0 {
		t.Fatalf("DLQ holds %d messages, want 0", m)
	}
}

func TestDefaultBackoffDelaysRetry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	times := make(chan time.Time, 2)
	h := jetworker.HandlerFunc(func(ctx context.Context, task *jetworker.Task) error {
		times <- time.Now()
		if task.Delivered == 1 {
			return errors.New("first attempt fails")
		}
		return nil
	})
	start(t, newConsumer(t, b.js, h, consumer.Config{}))
	publish(t, b.pub, "tasks.backoff", "x", "")
	first := <-times
	select {
	case second := <-times:
		// Default: 1s base with 20% jitter.
		if gap := second.Sub(first); gap < 800*time.Millisecond {
			t.Fatalf("retry after %s, want >= 800ms (1s base, 20%% jitter)", gap)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no retry within 5s")
	}
}

func TestRetryAfterDelay(t *testing.T) {
	t.Parallel()
	b := setup(t)
	times := make(chan time.Time, 2)
	h := jetworker.HandlerFunc(func(ctx context.Context, task *jetworker.Task) error {
		times <- time.Now()
		if task.Delivered == 1 {
			return fmt.Errorf("upstream busy: %w", jetworker.RetryAfter(errors.New("429"), 700*time.Millisecond))
		}
		return nil
	})
	start(t, newConsumer(t, b.js, h, consumer.Config{Backoff: func(int, error) time.Duration { return 0 }}))
	publish(t, b.pub, "tasks.retryafter", "x", "")
	first := <-times
	select {
	case second := <-times:
		if gap := second.Sub(first); gap < 700*time.Millisecond {
			t.Fatalf("retry after %s, want >= the RetryAfter delay of 700ms", gap)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no retry within 5s")
	}
}

// TestGoroutinesEndWithRun is not parallel: it runs before the parallel
// tests resume, so every goroutine of the consumer package it finds after
// Run returns was left behind by this consumer.
func TestGoroutinesEndWithRun(t *testing.T) {
	b := setup(t)
	var calls atomic.Int64
	c := newConsumer(t, b.js, jetworker.HandlerFunc(func(ctx context.Context, task *jetworker.Task) error {
		calls.Add(1)
		return nil
	}), consumer.Config{Durable: "leakcheck", Concurrency: 8, Presence: consumer.Presence{TTL: time.Second}})
	stop := start(t, c)
	for i := range 20 {
		publish(t, b.pub, "tasks.leak", "x", fmt.Sprint(i))
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if calls.Load() < 20 {
			return fmt.Errorf("%d calls", calls.Load())
		}
		return nil
	})
	if n, _ := consumerGoroutines(); n == 0 {
		t.Fatal("found no consumer goroutines while running: the check cannot see them")
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n, stacks := consumerGoroutines(); n != 0 {
		t.Fatalf("%d goroutines of the consumer package still run after Run returned:\n%s", n, stacks)
	}
	if err := c.Run(t.Context()); !errors.Is(err, consumer.ErrAlreadyRunning) {
		t.Fatalf("second Run: got %v, want ErrAlreadyRunning", err)
	}
}

// consumerGoroutines counts goroutines with a frame in package consumer
// (not consumer_test) and returns their stacks.
func consumerGoroutines() (int, string) {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	var stacks []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		// Test goroutines (paused parallel tests of package consumer)
		// are not the consumer's.
		if strings.Contains(g, "jetworker/consumer.") && !strings.Contains(g, "testing.tRunner") {
			n++
			stacks = append(stacks, g)
		}
	}
	return n, strings.Join(stacks, "\n\n")
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	js := embeddedtest.JetStream(t)
	h := jetworker.HandlerFunc(func(context.Context, *jetworker.Task) error { return nil })
	tests := []struct {
		name string
		cfg  consumer.Config
		want []string
	}{
		{name: "negative concurrency", cfg: consumer.Config{Concurrency: -1}, want: []string{"Concurrency must be > 0"}},
		{name: "max ack pending below concurrency", cfg: consumer.Config{Concurrency: 10, MaxAckPending: 5}, want: []string{"MaxAckPending (5) must be >= Concurrency (10)"}},
		{name: "heartbeat not below ack wait", cfg: consumer.Config{AckWait: time.Second, HeartbeatInterval: time.Second}, want: []string{"HeartbeatInterval"}},
		{name: "infinite max deliver", cfg: consumer.Config{MaxDeliver: -1}, want: []string{"MaxDeliver must be > 0"}},
		{name: "bad durable", cfg: consumer.Config{Durable: "a.b"}, want: []string{"Durable"}},
		{name: "several problems at once", cfg: consumer.Config{Concurrency: -1, MaxDeliver: -1, HandlerTimeout: -5}, want: []string{"Concurrency", "MaxDeliver", "HandlerTimeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := consumer.New(js, h, tt.cfg)
			if err == nil {
				t.Fatalf("got nil error, want %v", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if _, err := consumer.New(js, nil, consumer.Config{}); err == nil {
		t.Error("nil handler: got nil error")
	}
}

func TestProvisionConflictWithPushConsumer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := b.js.CreateOrUpdateConsumer(t.Context(), "TASKS", jetstream.ConsumerConfig{
		Durable: "pushy", DeliverSubject: "deliver.here", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "tasks.>",
	}); err != nil {
		// Push consumers are created through the same API.
		t.Fatalf("create push consumer: %v", err)
	}
	c := newConsumer(t, b.js, jetworker.HandlerFunc(func(context.Context, *jetworker.Task) error { return nil }), consumer.Config{Durable: "pushy"})
	err := c.Run(t.Context())
	if !errors.Is(err, consumer.ErrConsumerConflict) || !strings.Contains(err.Error(), "push consumer") {
		t.Fatalf("got %v, want ErrConsumerConflict naming the push consumer", err)
	}
}

func TestProvisionIsIdempotentAndUpdates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := consumer.Config{Durable: "idem", AckWait: 10 * time.Second}
	c1, err := consumer.Provision(t.Context(), b.js, cfg)
	if err != nil {
		t.Fatalf("first: %v", err)
	}
	c2, err := consumer.Provision(t.Context(), b.js, cfg)
	if err != nil {
		t.Fatalf("second: %v", err)
	}
	if c1.CachedInfo().Created != c2.CachedInfo().Created {
		t.Fatal("second provision recreated the consumer")
	}
	cfg.MaxDeliver = 9
	c3, err := consumer.Provision(t.Context(), b.js, cfg)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if got := c3.CachedInfo().Config.MaxDeliver; got != 9 {
		t.Fatalf("MaxDeliver after update: got %d, want 9", got)
	}
}

func TestHandlerTimeoutIsAnError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h := jetworker.HandlerFunc(func(ctx context.Context, task *jetworker.Task) error {
		<-ctx.Done() // a hang that at least honours its context
		return ctx.Err()
	})
	start(t, newConsumer(t, b.js, h, consumer.Config{HandlerTimeout: 200 * time.Millisecond, MaxDeliver: 1}))
	publish(t, b.pub, "tasks.hang", "x", "hang-1")
	dl := waitDeadLetters(t, b.js, 1)[0]
	if !strings.Contains(dl.Error, "deadline exceeded") {
		t.Fatalf("dead letter error %q, want it to name the deadline", dl.Error)
	}
}

func TestPresenceListsLiveWorkers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := newConsumer(t, b.js, jetworker.HandlerFunc(func(context.Context, *jetworker.Task) error { return nil }),
		consumer.Config{Durable: "present", Concurrency: 3, Presence: consumer.Presence{TTL: 2 * time.Second}})
	stop := start(t, c)
	testutil.Eventually(t, 5*time.Second, func() error {
		ws, err := consumer.Presence{}.List(t.Context(), b.js)
		if err != nil {
			return err
		}
		if len(ws) != 1 || ws[0].Consumer != "present" || ws[0].Concurrency != 3 || ws[0].PID == 0 {
			return fmt.Errorf("workers: %+v", ws)
		}
		return nil
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	ws, err := consumer.Presence{}.List(t.Context(), b.js)
	if err != nil || len(ws) != 0 {
		t.Fatalf("after stop: got %+v, %v; want no workers", ws, err)
	}
}

func TestEventFanOutToTwoDurables(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.Start(t, embedded.Config{})
	_, js := embeddedtest.Connect(t, srv)
	if _, err := streams.Ensure(t.Context(), js, streams.Tasks{
		Name: "EVENTS", Subjects: []string{"events.>"}, Retention: streams.Interest,
	}.StreamConfig()); err != nil {
		t.Fatalf("stream: %v", err)
	}
	pub, _ := publisher.New(js, publisher.Config{})
	const n = 200
	seen := map[string]*sync.Map{"billing": {}, "email": {}}
	var counts sync.Map
	for _, svc := range []string{"billing", "email"} {
		// Each service has its own connection, as separate processes would.
		_, sjs := embeddedtest.Connect(t, srv)
		h := jetworker.HandlerFunc(func(ctx context.Context, task *jetworker.Task) error {
			if _, dup := seen[svc].LoadOrStore(task.ID, true); dup {
				t.Errorf("%s processed %s twice", svc, task.ID)
			}
			v, _ := counts.LoadOrStore(svc, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
			return nil
		})
		// Durables must exist before publishing: interest retention keeps
		// only messages someone is interested in.
		start(t, newConsumer(t, sjs, h, consumer.Config{Stream: "EVENTS", Durable: svc, FilterSubjects: []string{"events.>"}}))
	}
	for i := range n {
		publish(t, pub, "events.user.created", "{}", fmt.Sprintf("ev-%d", i))
	}
	testutil.Eventually(t, 20*time.Second, func() error {
		for _, svc := range []string{"billing", "email"} {
			v, ok := counts.Load(svc)
			if !ok || v.(*atomic.Int64).Load() != n {
				return fmt.Errorf("%s has not processed %d events", svc, n)
			}
		}
		return nil
	})
	testutil.Eventually(t, 5*time.Second, func() error {
		if m := streamMsgs(t, js, "EVENTS"); m != 0 {
			return fmt.Errorf("EVENTS still holds %d messages after both acked", m)
		}
		return nil
	})
}

// waitDeadLetters waits until the DLQ holds exactly n entries and returns
// them; it fails if more appear.
func waitDeadLetters(t *testing.T, js jetstream.JetStream, n int) []dlq.Entry {
	t.Helper()
	dead, err := dlq.New(js, dlq.Config{})
	if err != nil {
		t.Fatalf("dead letters: %v", err)
	}
	var got []dlq.Entry
	testutil.Eventually(t, 15*time.Second, func() error {
		var page dlq.Page
		page, err = dead.List(t.Context(), dlq.Filter{}, 0, dlq.MaxPageSize)
		got = page.Entries
		if err != nil {
			return err
		}
		if len(got) < n {
			return fmt.Errorf("%d dead letters, want %d", len(got), n)
		}
		return nil
	})
	if len(got) != n {
		t.Fatalf("%d dead letters, want %d", len(got), n)
	}
	return got
}
