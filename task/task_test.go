package task_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
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
	"github.com/jetworker/jetworker/task"
)

type testBundle struct {
	srv   *embedded.Server
	js    jetstream.JetStream
	store *task.Store
	pub   *publisher.Publisher
}

func setup(t *testing.T) testBundle {
	t.Helper()
	srv := embeddedtest.Start(t, embedded.Config{})
	_, js := embeddedtest.Connect(t, srv)
	if err := streams.Provision(t.Context(), js, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	store, err := task.New(js, task.Config{Logger: testutil.Logger(t, slog.LevelWarn)})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Provision(t.Context()); err != nil {
		t.Fatal(err)
	}
	pub, err := publisher.New(js, publisher.Config{Tasks: store})
	if err != nil {
		t.Fatal(err)
	}
	return testBundle{srv: srv, js: js, store: store, pub: pub}
}

// worker runs a consumer with h until the test ends.
func (b testBundle) worker(t *testing.T, h jetworker.HandlerFunc, cfg consumer.Config) {
	t.Helper()
	cfg.Tasks = b.store
	if cfg.Logger == nil {
		cfg.Logger = testutil.Logger(t, slog.LevelWarn)
	}
	if cfg.Backoff == nil {
		cfg.Backoff = func(int, error) time.Duration { return 20 * time.Millisecond }
	}
	c, err := consumer.New(b.js, h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("consumer: %v", err)
		}
	})
	select {
	case <-c.Ready():
	case err := <-done:
		t.Fatalf("consumer: %v", err)
	}
}

func (b testBundle) wait(t *testing.T, id string) task.Info {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	info, err := b.store.Wait(ctx, id)
	if err != nil {
		t.Fatalf("wait for %s: %v (last %+v)", id, err, info)
	}
	return info
}

func states(info task.Info) []string {
	var out []string
	for _, tr := range info.History {
		out = append(out, fmt.Sprintf("%s/%d", tr.State, tr.Attempt))
	}
	return out
}

func TestTrackedTaskLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.worker(t, func(ctx context.Context, tk *jetworker.Task) error {
		if tk.Delivered == 1 {
			return errors.New("the printer is out of paper")
		}
		if err := jetworker.SetProgress(ctx, 40, "rendering"); err != nil {
			return err
		}
		if err := jetworker.SetProgress(ctx, 101, "too far"); !errors.Is(err, task.ErrInvalidProgress) {
			return fmt.Errorf("progress 101: got %v, want ErrInvalidProgress", err)
		}
		if err := jetworker.SetResult(ctx, make([]byte, task.DefaultMaxResult+1)); !errors.Is(err, task.ErrResultTooLarge) {
			return fmt.Errorf("oversized result: got %v, want ErrResultTooLarge", err)
		}
		return jetworker.SetResult(ctx, []byte(`{"pages":9}`))
	}, consumer.Config{Durable: "reports"})

	res, err := b.pub.Publish(t.Context(), "tasks.report.monthly", []byte(`{}`), &publisher.PublishOpts{Track: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.ID == "" {
		t.Fatal("a tracked task without an ID got none")
	}
	info := b.wait(t, res.ID)
	if info.State != task.Succeeded || string(info.Result) != `{"pages":9}` || info.Attempt != 2 {
		t.Fatalf("got %s attempt %d result %q, want succeeded on attempt 2 with the result", info.State, info.Attempt, info.Result)
	}
	if want := []string{"pending/0", "active/1", "retrying/1", "active/2", "succeeded/2"}; !slices.Equal(states(info), want) {
		t.Fatalf("history %v, want %v", states(info), want)
	}
	if info.LastError != "the printer is out of paper" || info.Worker == "" || info.Ref != res.Ref() && info.Stream == "" {
		t.Fatalf("record %+v: want the first attempt's error, the worker and the location", info)
	}
	if info.Progress == nil || info.Progress.Percent != 40 || info.Progress.Message != "rendering" {
		t.Fatalf("progress %+v, want 40%% rendering", info.Progress)
	}
}

func TestUntrackedTasksWriteNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var progressErr atomic.Value
	done := make(chan struct{})
	b.worker(t, func(ctx context.Context, tk *jetworker.Task) error {
		progressErr.Store(fmt.Sprint(jetworker.SetProgress(ctx, 10, "x")))
		close(done)
		return nil
	}, consumer.Config{Durable: "plain"})
	if _, err := b.pub.Publish(t.Context(), "tasks.plain", nil, &publisher.PublishOpts{ID: "plain-1"}); err != nil {
		t.Fatal(err)
	}
	<-done
	if got := progressErr.Load(); got != jetworker.ErrNotTracked.Error() {
		t.Fatalf("SetProgress on an untracked task: got %v, want ErrNotTracked", got)
	}
	if _, err := b.store.Get(t.Context(), "plain-1"); !errors.Is(err, task.ErrNotFound) {
		t.Fatalf("record of an untracked task: got %v, want ErrNotFound", err)
	}
}

func TestFailedTaskAndReplay(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var fixed atomic.Bool
	b.worker(t, func(ctx context.Context, tk *jetworker.Task) error {
		if !fixed.Load() {
			return jetworker.Permanent(errors.New("template missing"))
		}
		return nil
	}, consumer.Config{Durable: "replays"})
	res, err := b.pub.Publish(t.Context(), "tasks.report.x", nil, &publisher.PublishOpts{ID: "report-x", Track: true})
	if err != nil {
		t.Fatal(err)
	}
	info := b.wait(t, res.ID)
	if info.State != task.Failed || !strings.Contains(info.LastError, "template missing") {
		t.Fatalf("got %s (%s), want failed with the error", info.State, info.LastError)
	}
	fixed.Store(true)
	store, _ := dlq.New(b.js, dlq.Config{})
	page, err := store.List(t.Context(), dlq.Filter{TaskID: "report-x"}, 0, 0)
	if err != nil || len(page.Entries) != 1 {
		t.Fatalf("dead letters: %v %v", page.Entries, err)
	}
	if _, err := store.Replay(t.Context(), page.Entries[0].Sequence); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		info, err := b.store.Get(t.Context(), "report-x")
		if err != nil || info.State != task.Succeeded || info.Generation != 1 {
			return fmt.Errorf("after the replay: %s gen %d (%v)", info.State, info.Generation, err)
		}
		return nil
	})
}

func TestPerTaskLimits(t *testing.T) {
	t.Parallel()
	b := setup(t)
	seen := make(chan string, 10)
	b.worker(t, func(ctx context.Context, tk *jetworker.Task) error {
		dl, _ := ctx.Deadline()
		seen <- fmt.Sprintf("%s %d/%d last=%v deadline<2s=%v", tk.Subject, tk.Delivered, tk.MaxAttempts, tk.LastAttempt(), time.Until(dl) < 2*time.Second)
		if tk.Subject == "tasks.slow" {
			<-ctx.Done()
			return ctx.Err()
		}
		return errors.New("always fails")
	}, consumer.Config{Durable: "limits", MaxDeliver: 5})
	if _, err := b.pub.Publish(t.Context(), "tasks.twice", nil, &publisher.PublishOpts{ID: "twice", Track: true, MaxAttempts: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pub.Publish(t.Context(), "tasks.capped", nil, &publisher.PublishOpts{ID: "capped", Track: true, MaxAttempts: 50}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pub.Publish(t.Context(), "tasks.slow", nil, &publisher.PublishOpts{ID: "slow", Timeout: time.Second, MaxAttempts: 1}); err != nil {
		t.Fatal(err)
	}
	info := b.wait(t, "twice")
	if info.State != task.Failed || info.Attempt != 2 || info.MaxAttempts != 2 {
		t.Fatalf("MaxAttempts 2: ended %s after %d of %d attempts, want failed after 2 of 2", info.State, info.Attempt, info.MaxAttempts)
	}
	if capped := b.wait(t, "capped"); capped.State != task.Failed || capped.Attempt != 5 || capped.MaxAttempts != 5 {
		t.Fatalf("MaxAttempts 50 on a consumer of 5: ended %s after %d of %d attempts, want failed after 5 of 5 (the consumer's cap)",
			capped.State, capped.Attempt, capped.MaxAttempts)
	}
	var got []string
	testutil.Eventually(t, 15*time.Second, func() error {
		for {
			select {
			case s := <-seen:
				got = append(got, s)
				continue
			default:
			}
			break
		}
		if len(got) < 2+5+1 {
			return fmt.Errorf("deliveries so far: %v", got)
		}
		return nil
	})
	for _, want := range []string{
		"tasks.twice 1/2 last=false", "tasks.twice 2/2 last=true",
		"tasks.capped 5/5 last=true", // capped at the consumer's MaxDeliver
		"tasks.slow 1/1 last=true deadline<2s=true",
	} {
		if !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("no delivery like %q in %v", want, got)
		}
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	started := make(chan string, 4)
	causes := make(chan error, 4)
	b.worker(t, func(ctx context.Context, tk *jetworker.Task) error {
		started <- tk.ID
		select {
		case <-ctx.Done():
			causes <- context.Cause(ctx)
			return context.Cause(ctx)
		case <-time.After(30 * time.Second):
			return nil
		}
	}, consumer.Config{Durable: "cancels", FilterSubjects: []string{"tasks.run.>"}})

	t.Run("running", func(t *testing.T) {
		// The order and the outcome are asserted; how soon the handler's
		// context ends is BenchmarkCancelLatency's to measure.
		if _, err := b.pub.Publish(t.Context(), "tasks.run.long", nil, &publisher.PublishOpts{ID: "long", Track: true}); err != nil {
			t.Fatal(err)
		}
		<-started
		if _, err := b.store.Cancel(t.Context(), "long"); err != nil {
			t.Fatal(err)
		}
		if cause := <-causes; !errors.Is(cause, task.ErrCancelled) {
			t.Fatalf("the handler's context ended with %v, want ErrCancelled", cause)
		}
		info := b.wait(t, "long")
		if info.State != task.Cancelled || info.Attempt != 1 {
			t.Fatalf("got %s on attempt %d, want cancelled on attempt 1", info.State, info.Attempt)
		}
		if n := msgs(t, b.js, "DLQ"); n != 0 {
			t.Errorf("a cancelled task was dead-lettered (%d)", n)
		}
	})
	t.Run("pending", func(t *testing.T) {
		// Nobody consumes tasks.idle: it stays pending.
		res, err := b.pub.Publish(t.Context(), "tasks.idle.x", nil, &publisher.PublishOpts{ID: "idle", Track: true})
		if err != nil {
			t.Fatal(err)
		}
		info, err := b.store.Cancel(t.Context(), "idle")
		if err != nil || info.State != task.Cancelled {
			t.Fatalf("got %s, %v; want cancelled", info.State, err)
		}
		st, _ := b.js.Stream(t.Context(), "TASKS")
		if _, err := st.GetMsg(t.Context(), res.Sequence); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Fatalf("the cancelled pending task is still stored: %v", err)
		}
	})
	t.Run("delayed", func(t *testing.T) {
		if _, err := b.pub.Publish(t.Context(), "tasks.run.later", nil, &publisher.PublishOpts{ID: "later", Track: true, Delay: 2 * time.Second}); err != nil {
			t.Fatal(err)
		}
		if info, _ := b.store.Get(t.Context(), "later"); info.State != task.Scheduled || info.RunAt.IsZero() {
			t.Fatalf("a delayed task: got %s (run at %v), want scheduled", info.State, info.RunAt)
		}
		info, err := b.store.Cancel(t.Context(), "later")
		if err != nil || info.State != task.Cancelled {
			t.Fatalf("got %s, %v; want cancelled", info.State, err)
		}
		select {
		case id := <-started:
			t.Fatalf("task %s ran after its cancel", id)
		case <-time.After(3 * time.Second):
		}
	})
	t.Run("finished and unknown", func(t *testing.T) {
		if _, err := b.store.Cancel(t.Context(), "idle"); !errors.Is(err, task.ErrFinished) {
			t.Fatalf("cancel of a cancelled task: got %v, want ErrFinished", err)
		}
		if _, err := b.store.Cancel(t.Context(), "nope"); !errors.Is(err, task.ErrNotFound) {
			t.Fatalf("cancel of an unknown task: got %v, want ErrNotFound", err)
		}
	})
	t.Run("untracked by its ref", func(t *testing.T) {
		res, err := b.pub.Publish(t.Context(), "tasks.idle.y", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		removed, err := b.store.CancelRef(t.Context(), res.Stream, res.Sequence)
		if err != nil || !removed {
			t.Fatalf("CancelRef: %v, %v; want removed", removed, err)
		}
	})
}

func TestUnique(t *testing.T) {
	t.Parallel()
	b := setup(t)
	release := make(chan struct{})
	b.worker(t, func(ctx context.Context, tk *jetworker.Task) error {
		if tk.Subject == "tasks.u.active" {
			<-release
		}
		return nil
	}, consumer.Config{Durable: "unique", FilterSubjects: []string{"tasks.u.active", "tasks.u.for"}})
	ctx := t.Context()

	t.Run("while pending, beyond the duplicate window", func(t *testing.T) {
		// A stream whose duplicate window (1s) the second publish is past.
		if _, err := streams.Ensure(ctx, b.js, streams.Tasks{Name: "SHORT", Subjects: []string{"short.>"}, Duplicates: time.Second}.StreamConfig()); err != nil {
			t.Fatal(err)
		}
		opts := &publisher.PublishOpts{ID: "nightly", Unique: publisher.UniquePending}
		first, err := b.pub.Publish(ctx, "short.nightly", nil, opts) // nobody consumes it
		if err != nil || first.Duplicate {
			t.Fatalf("first: %+v %v", first, err)
		}
		time.Sleep(1500 * time.Millisecond) // past the stream's duplicate window
		// A publisher whose clock says the lock is older than the retry
		// window (a minute), as it would be for a later, separate publish.
		later, _ := task.New(b.js, task.Config{NowFunc: func() time.Time { return time.Now().Add(2 * time.Minute) }})
		pub, _ := publisher.New(b.js, publisher.Config{Tasks: later})
		second, err := pub.Publish(ctx, "short.nightly", nil, opts)
		if err != nil || !second.Duplicate {
			t.Fatalf("second publish while the first is pending: %+v %v, want a duplicate", second, err)
		}
		if n := msgs(t, b.js, "SHORT"); n != 1 {
			t.Fatalf("SHORT holds %d messages, want 1", n)
		}
		// A retry of the first (an unknown outcome) goes through only while
		// the stream would de-duplicate it: this one is past SHORT's window,
		// so it is a duplicate too, not a second copy.
		retry, err := b.pub.Publish(ctx, "short.nightly", nil, opts)
		if err != nil || !retry.Duplicate {
			t.Fatalf("retry past the stream's duplicate window: %+v %v, want a duplicate", retry, err)
		}
		if n := msgs(t, b.js, "SHORT"); n != 1 {
			t.Fatalf("SHORT holds %d messages after the retry, want 1", n)
		}
	})
	t.Run("a retry inside the duplicate window", func(t *testing.T) {
		opts := &publisher.PublishOpts{ID: "retried", Unique: publisher.UniquePending}
		if _, err := b.pub.Publish(ctx, "tasks.u.idle", nil, opts); err != nil { // nobody consumes it
			t.Fatal(err)
		}
		// The same publish again at once, as after an unknown outcome: it
		// reaches the server, which drops it.
		retry, err := b.pub.Publish(ctx, "tasks.u.idle", nil, opts)
		if err != nil || !retry.Duplicate {
			t.Fatalf("retry: %+v %v, want the server's duplicate", retry, err)
		}
		if n := msgsOn(t, b.js, "TASKS", "tasks.u.idle"); n != 1 {
			t.Fatalf("tasks.u.idle holds %d messages, want 1", n)
		}
		// The retry took no lock, so it gave none back: the first's holds.
		if _, err := b.store.Lock(ctx, "retried", 0, 0); !errors.Is(err, task.ErrLocked) {
			t.Fatalf("lock after a de-duplicated retry: got %v, want ErrLocked (the first task's)", err)
		}
	})
	t.Run("re-published inside the duplicate window after it ended", func(t *testing.T) {
		for i, async := range []bool{false, true} {
			id := fmt.Sprint("again-", i)
			opts := &publisher.PublishOpts{ID: id, Unique: publisher.UniqueActive, Track: true}
			if _, err := b.pub.Publish(ctx, "tasks.u.for", nil, opts); err != nil {
				t.Fatal(err)
			}
			b.wait(t, id)
			testutil.Eventually(t, 5*time.Second, func() error {
				if _, err := b.store.Lock(ctx, id, 0, 0); err != nil {
					return fmt.Errorf("the lock of a finished task is still held: %w", err)
				}
				return b.store.Unlock(ctx, id)
			})
			// The server drops it as a duplicate of the finished task; the
			// lock this publish took must not outlive it.
			if async {
				if _, err := b.pub.PublishAsync(ctx, "tasks.u.for", nil, opts); err != nil {
					t.Fatal(err)
				}
				if err := b.pub.Wait(ctx); err != nil {
					t.Fatal(err)
				}
			} else if res, err := b.pub.Publish(ctx, "tasks.u.for", nil, opts); err != nil || !res.Duplicate {
				t.Fatalf("re-publish: %+v %v, want a duplicate", res, err)
			}
			if _, err := b.store.Lock(ctx, id, 0, 0); err != nil {
				t.Fatalf("async %v: the lock taken by a publish the server dropped as a duplicate is held: %v", async, err)
			}
		}
	})
	t.Run("while active, released when it ends", func(t *testing.T) {
		opts := &publisher.PublishOpts{ID: "sync-acct", Unique: publisher.UniqueActive, Track: true}
		if _, err := b.pub.Publish(ctx, "tasks.u.active", nil, opts); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 5*time.Second, func() error {
			if info, _ := b.store.Get(ctx, "sync-acct"); info.State != task.Active {
				return fmt.Errorf("state %s", info.State)
			}
			return nil
		})
		if _, err := b.store.Lock(ctx, "sync-acct", 0, 0); !errors.Is(err, task.ErrLocked) {
			t.Fatalf("lock of a running unique task: got %v, want ErrLocked", err)
		}
		close(release)
		b.wait(t, "sync-acct")
		testutil.Eventually(t, 5*time.Second, func() error {
			if _, err := b.store.Lock(ctx, "sync-acct", time.Second, 0); err != nil {
				return fmt.Errorf("the lock of a finished task is still held: %v", err)
			}
			return nil
		})
	})
	t.Run("for a duration", func(t *testing.T) {
		if _, err := b.store.Lock(ctx, "ttl-task", 2*time.Second, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.Lock(ctx, "ttl-task", 2*time.Second, 0); !errors.Is(err, task.ErrLocked) {
			t.Fatalf("second lock: got %v, want ErrLocked", err)
		}
		testutil.Eventually(t, 10*time.Second, func() error {
			if _, err := b.store.Lock(ctx, "ttl-task", time.Second, 0); err != nil {
				return fmt.Errorf("lock not expired: %v", err)
			}
			return nil
		})
	})
	t.Run("no longer than the bucket keeps it", func(t *testing.T) {
		day := task.DefaultTTL
		for name, opts := range map[string]*publisher.PublishOpts{
			"UniqueFor":         {ID: "long-lock", UniqueFor: day + time.Hour},
			"a tracked delay":   {ID: "long-delay", Track: true, Delay: day + time.Hour},
			"a unique delay":    {ID: "long-unique", Unique: publisher.UniquePending, Delay: day + time.Hour},
			"a tracked release": {ID: "long-at", Track: true, At: time.Now().Add(day + time.Hour)},
		} {
			if _, err := b.pub.Publish(ctx, "tasks.u.x", nil, opts); !errors.Is(err, publisher.ErrInvalidOptions) {
				t.Errorf("%s beyond the TTL: got %v, want ErrInvalidOptions", name, err)
			}
		}
		if _, err := b.pub.Publish(ctx, "tasks.u.x", nil, &publisher.PublishOpts{ID: "short-lock", UniqueFor: time.Hour}); err != nil {
			t.Errorf("UniqueFor within the TTL: %v", err)
		}
	})
	t.Run("needs an ID", func(t *testing.T) {
		if _, err := b.pub.Publish(ctx, "tasks.u.x", nil, &publisher.PublishOpts{Unique: publisher.UniqueActive}); !errors.Is(err, publisher.ErrInvalidOptions) {
			t.Fatalf("unique without an ID: got %v, want ErrInvalidOptions", err)
		}
	})
}

func TestFollowAndList(t *testing.T) {
	t.Parallel()
	b := setup(t)
	step := make(chan struct{})
	b.worker(t, func(ctx context.Context, tk *jetworker.Task) error {
		for p := range 3 {
			_ = jetworker.SetProgress(ctx, float64(p*50), "step")
			<-step
		}
		return nil
	}, consumer.Config{Durable: "follow", FilterSubjects: []string{"tasks.f.>"}})
	if _, err := b.pub.Publish(t.Context(), "tasks.f.one", nil, &publisher.PublishOpts{ID: "followed", Track: true}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var seen []string
	for info, err := range b.store.Follow(ctx, "followed") {
		if err != nil {
			t.Fatal(err)
		}
		p := -1.0
		if info.Progress != nil {
			p = info.Progress.Percent
		}
		seen = append(seen, fmt.Sprintf("%s %v", info.State, p))
		if info.State == task.Active && p >= 0 {
			select {
			case step <- struct{}{}:
			default:
			}
		}
	}
	if len(seen) < 3 || seen[len(seen)-1] != "succeeded 100" {
		t.Fatalf("followed %v, want the changes through to succeeded", seen)
	}

	for i := range 5 {
		if _, err := b.pub.Publish(t.Context(), fmt.Sprintf("tasks.idle.%d", i), nil, &publisher.PublishOpts{Track: true}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := b.store.List(t.Context(), task.Filter{States: []task.State{task.Pending}, Subject: "tasks.idle.>"}, 0, 3)
	if err != nil || len(page.Tasks) != 3 || page.Next == 0 {
		t.Fatalf("first page: %d tasks, next %d, %v; want 3 and a cursor", len(page.Tasks), page.Next, err)
	}
	if page.Tasks[0].Subject != "tasks.idle.4" {
		t.Fatalf("newest first: got %s first", page.Tasks[0].Subject)
	}
	rest, err := b.store.List(t.Context(), task.Filter{States: []task.State{task.Pending}}, page.Next, 10)
	if err != nil || len(rest.Tasks) != 2 || rest.Next != 0 {
		t.Fatalf("second page: %d tasks, next %d, %v; want the other 2", len(rest.Tasks), rest.Next, err)
	}
	if _, err := b.store.Get(t.Context(), "nope"); !errors.Is(err, task.ErrNotFound) {
		t.Fatalf("Get of an unknown ID: got %v", err)
	}
	for _, err := range b.store.Follow(t.Context(), "nope") {
		if !errors.Is(err, task.ErrNotFound) {
			t.Fatalf("Follow of an unknown ID: got %v", err)
		}
	}
}

// TestStoreOutage: with the bucket gone mid-run, tracked tasks keep
// running and the lost writes are counted; a tracked publish into a full
// bucket still stores the tasks, and counts the records it could not
// write.
func TestStoreOutage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ran := make(chan string, 10)
	b.worker(t, func(ctx context.Context, tk *jetworker.Task) error {
		ran <- tk.ID
		return nil
	}, consumer.Config{Durable: "outage"})
	if _, err := b.pub.Publish(t.Context(), "tasks.o.1", nil, &publisher.PublishOpts{ID: "o1", Track: true}); err != nil {
		t.Fatal(err)
	}
	<-ran
	if err := b.js.DeleteKeyValue(t.Context(), task.DefaultBucket); err != nil {
		t.Fatal(err)
	}
	// Published through a publisher that still believes in the bucket: the
	// message carries Jetworker-Track, the record write fails.
	if _, err := b.js.Publish(t.Context(), "tasks.o.2", nil, jetstream.WithMsgID("o2")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pub.Publish(t.Context(), "tasks.o.3", nil, nil); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case <-ran:
		case <-time.After(10 * time.Second):
			t.Fatal("a task did not run while the task bucket was away")
		}
	}

	full := setup(t)
	small, _ := task.New(full.js, task.Config{Bucket: "tiny", MaxBytes: 1024})
	pub, _ := publisher.New(full.js, publisher.Config{Tasks: small})
	// The records no longer fit: the tasks are stored all the same (the
	// record is written after the task is), and the store counts the gap.
	for i := range 20 {
		if _, err := pub.Publish(t.Context(), "tasks.full", make([]byte, 10), &publisher.PublishOpts{ID: fmt.Sprint("f", i), Track: true}); err != nil {
			t.Fatalf("tracked publish %d into a full bucket: %v; want the task stored regardless", i, err)
		}
	}
	if n := msgs(t, full.js, "TASKS"); n != 20 {
		t.Fatalf("%d tasks stored, want 20", n)
	}
	if small.Lost() == 0 {
		t.Fatal("records that did not fit: Lost() is 0")
	}
}

func msgs(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// msgsOn counts the messages of stream stored on subject.
func msgsOn(t *testing.T, js jetstream.JetStream, stream, subject string) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

func TestQueuedAndRunNow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	for i := range 3 {
		if _, err := b.pub.Publish(ctx, fmt.Sprintf("tasks.q.%d", i), []byte("x"), &publisher.PublishOpts{ID: fmt.Sprint("q", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.pub.Publish(ctx, "tasks.q.later", []byte("later"), &publisher.PublishOpts{ID: "later", Delay: time.Hour, Track: true}); err != nil {
		t.Fatal(err)
	}
	page, err := b.store.Queued(ctx, "TASKS", task.QueuedFilter{Subject: "tasks.q.*"}, 0, 2)
	if err != nil || len(page.Tasks) != 2 || page.Tasks[0].ID != "q2" || page.Next == 0 {
		t.Fatalf("queued: %+v %v; want q2 first and a cursor", page, err)
	}
	delayed, err := b.store.Queued(ctx, "TASKS", task.QueuedFilter{Delayed: true}, 0, 0)
	if err != nil || len(delayed.Tasks) != 1 {
		t.Fatalf("delayed: %+v %v", delayed, err)
	}
	d := delayed.Tasks[0]
	if d.ID != "later" || d.Subject != "tasks.q.later" || !d.Tracked || time.Until(d.RunAt) < 50*time.Minute {
		t.Fatalf("delayed task %+v: want later on tasks.q.later in an hour, tracked", d)
	}
	ref, err := b.store.RunNow(ctx, d.Stream, d.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.RunNow(ctx, d.Stream, d.Sequence); !errors.Is(err, task.ErrNotFound) {
		t.Fatalf("second RunNow: got %v, want ErrNotFound", err)
	}
	stream, seq, _ := jetworker.ParseRef(ref)
	st, _ := b.js.Stream(ctx, stream)
	m, err := st.GetMsg(ctx, seq)
	if err != nil || m.Subject != "tasks.q.later" || string(m.Data) != "later" || jetworker.TaskID(m.Header) != "later" {
		t.Fatalf("released task %v: %+v", err, m)
	}
	if again, _ := b.store.Queued(ctx, "TASKS", task.QueuedFilter{Delayed: true}, 0, 0); len(again.Tasks) != 0 {
		t.Fatalf("delayed tasks after RunNow: %d, want 0", len(again.Tasks))
	}
}

// TestBurstOfFastTasksLosesNoRecord: thousands of tracked tasks that end
// at once, faster than the bucket takes writes, all end with their record
// terminal (writes for one task merge, none is dropped), the fast ones
// mostly in one write with every transition in the history.
func TestBurstOfFastTasksLosesNoRecord(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 3000
	b.worker(t, func(context.Context, *jetworker.Task) error { return nil }, consumer.Config{Durable: "burst", Concurrency: 64})
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("burst-%04d", i)
		if _, err := b.pub.PublishAsync(t.Context(), "tasks.burst", nil, &publisher.PublishOpts{ID: ids[i], Track: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.pub.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for _, id := range ids {
		info, err := b.store.Wait(ctx, id)
		if err != nil || info.State != task.Succeeded {
			t.Fatalf("task %s: %s, %v; want succeeded", id, info.State, err)
		}
		var states []task.State
		for _, h := range info.History {
			states = append(states, h.State)
		}
		if !slices.Equal(states, []task.State{task.Pending, task.Active, task.Succeeded}) &&
			!slices.Equal(states, []task.State{task.Active, task.Succeeded}) { // the worker wrote before the publisher
			t.Fatalf("task %s: history %v", id, states)
		}
	}
	if lost := b.store.Lost(); lost != 0 {
		t.Fatalf("%d record writes lost", lost)
	}
}
