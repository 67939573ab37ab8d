package schedule_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/schedule"
	"github.com/jetworker/jetworker/streams"
)

// testBundle is one embedded server with the task stream and a store.
type testBundle struct {
	srv   *embedded.Server
	js    jetstream.JetStream
	store *schedule.Store
}

func setup(t *testing.T) testBundle {
	t.Helper()
	srv := embeddedtest.Start(t, embedded.Config{})
	_, js := embeddedtest.Connect(t, srv)
	if err := streams.Provision(t.Context(), js, streams.Config{}); err != nil {
		t.Fatalf("provision streams: %v", err)
	}
	store, err := schedule.NewStore(js, schedule.StoreConfig{})
	if err != nil {
		t.Fatalf("new store: %v", err)
	}
	if err := store.Provision(t.Context()); err != nil {
		t.Fatalf("provision store: %v", err)
	}
	return testBundle{srv: srv, js: js, store: store}
}

func (b testBundle) put(t *testing.T, e schedule.Entry) {
	t.Helper()
	if _, err := b.store.Put(t.Context(), e); err != nil {
		t.Fatalf("put %q: %v", e.Name, err)
	}
}

// runner is one running scheduler on its own connection.
type runner struct {
	name    string
	nc      *nats.Conn
	cancel  context.CancelFunc
	done    chan error
	leading atomic.Bool
	gained  chan time.Time // one value per leadership gain

	mu    sync.Mutex
	fires []schedule.Fire
}

// start runs a scheduler with cfg's hooks wrapped for recording.
func (b testBundle) start(t *testing.T, name string, cfg schedule.Config) *runner {
	t.Helper()
	nc, js := embeddedtest.Connect(t, b.srv)
	r := &runner{name: name, nc: nc, done: make(chan error, 1), gained: make(chan time.Time, 16)}
	cfg.InstanceID = name
	cfg.Logger = testutil.Logger(t, slog.LevelWarn)
	cfg.Hooks = schedule.JoinHooks(cfg.Hooks, schedule.Hooks{
		LeaderFunc: func(leading bool) {
			r.leading.Store(leading)
			if leading {
				r.gained <- time.Now()
			}
		},
		FiredFunc: func(f schedule.Fire) {
			r.mu.Lock()
			r.fires = append(r.fires, f)
			r.mu.Unlock()
		},
	})
	s, err := schedule.New(js, cfg)
	if err != nil {
		t.Fatalf("new scheduler: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r.cancel = cancel
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	select {
	case <-s.Ready():
	case err := <-r.done:
		t.Fatalf("scheduler %s stopped before ready: %v", name, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("scheduler %s not ready within 10s", name)
	}
	return r
}

// stop cancels the scheduler and waits for Run to return.
func (r *runner) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("scheduler %s did not stop within 10s", r.name)
		return nil
	}
}

// crash closes the connection without releasing the lease.
func (r *runner) crash() { r.nc.Close() }

func (r *runner) firesOf(name string) []schedule.Fire {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []schedule.Fire
	for _, f := range r.fires {
		if f.Schedule == name && f.Err == nil {
			out = append(out, f)
		}
	}
	return out
}

// attemptsOf returns every fire attempt of schedule name, failed ones too.
func (r *runner) attemptsOf(name string) []schedule.Fire {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []schedule.Fire
	for _, f := range r.fires {
		if f.Schedule == name {
			out = append(out, f)
		}
	}
	return out
}

func waitGain(t *testing.T, r *runner, within time.Duration) time.Time {
	t.Helper()
	select {
	case at := <-r.gained:
		return at
	case <-time.After(within):
		t.Fatalf("%s did not gain leadership within %s", r.name, within)
		return time.Time{}
	}
}

// leaderOf returns the one runner that leads, failing if not exactly one
// does within timeout.
func leaderOf(t *testing.T, rs []*runner, timeout time.Duration) *runner {
	t.Helper()
	var leader *runner
	testutil.Eventually(t, timeout, func() error {
		leader = nil
		n := 0
		for _, r := range rs {
			if r.leading.Load() {
				leader = r
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("got %d leaders, want 1", n)
		}
		return nil
	})
	return leader
}

// storedFires reads the task stream and counts messages per
// Jetworker-Fire-Time for schedule name, and returns every message ID.
func storedFires(t *testing.T, js jetstream.JetStream, name string) (map[string]int, []string) {
	t.Helper()
	ctx := t.Context()
	s, err := js.Stream(ctx, streams.DefaultTaskStream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	slots := map[string]int{}
	var ids []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("get msg %d: %v", seq, err)
		}
		if m.Header.Get(jetworker.HeaderSchedule) != name {
			continue
		}
		slots[m.Header.Get(jetworker.HeaderFireTime)]++
		ids = append(ids, m.Header.Get(jetworker.HeaderMsgID))
	}
	return slots, ids
}

func TestOneLeaderAndCleanHandover(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := schedule.Config{LeaseTTL: 2 * time.Second}
	var rs []*runner
	for i := range 3 {
		rs = append(rs, b.start(t, fmt.Sprintf("s%d", i), cfg))
	}
	leader := leaderOf(t, rs, 5*time.Second)
	// Stays exactly one across several renewals.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if got := leaderOf(t, rs, time.Second); got != leader {
			t.Fatalf("leader changed from %s to %s without a failure", leader.name, got.name)
		}
		time.Sleep(50 * time.Millisecond) // sampling interval, not settling
	}

	stopped := time.Now()
	if err := leader.stop(t); err != nil {
		t.Fatalf("stop leader: got %v, want nil", err)
	}
	var rest []*runner
	for _, r := range rs {
		if r != leader {
			rest = append(rest, r)
		}
	}
	next := leaderOf(t, rest, time.Second)
	t.Logf("clean handover from %s to %s in %s", leader.name, next.name, time.Since(stopped))
}

func TestCrashedLeaderIsReplacedWithinTTL(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const ttl = 2 * time.Second
	cfg := schedule.Config{LeaseTTL: ttl}
	rs := []*runner{b.start(t, "a", cfg), b.start(t, "b", cfg)}
	leader := leaderOf(t, rs, 5*time.Second)
	follower := rs[0]
	if follower == leader {
		follower = rs[1]
	}
	crashed := time.Now()
	leader.crash()
	at := waitGain(t, follower, ttl+time.Second)
	t.Logf("takeover after crash in %s", at.Sub(crashed))
}

// pauseClock is a NowFunc that blocks every caller while paused, which
// stops a scheduler's renewals and fires alike, like a SIGSTOP.
type pauseClock struct{ mu sync.RWMutex }

func (c *pauseClock) now() time.Time {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return time.Now()
}

func TestPausedLeaderDoesNotFireAfterWaking(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const ttl = 2 * time.Second
	b.put(t, schedule.Entry{Name: "tick", Spec: "@every 1s", Subject: "tasks.tick", CatchUp: schedule.CatchUpAll})
	clock := &pauseClock{}
	a := b.start(t, "a", schedule.Config{LeaseTTL: ttl, NowFunc: clock.now})
	waitGain(t, a, 5*time.Second)
	bb := b.start(t, "b", schedule.Config{LeaseTTL: ttl})
	testutil.Eventually(t, 3*time.Second, func() error {
		if len(a.firesOf("tick")) == 0 {
			return errors.New("a has not fired yet")
		}
		return nil
	})

	clock.mu.Lock() // pause a
	paused := time.Now()
	waitGain(t, bb, ttl+2*time.Second)
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := len(bb.firesOf("tick")); n < 2 {
			return fmt.Errorf("b fired %d slots, want 2", n)
		}
		return nil
	})
	clock.mu.Unlock() // wake a up
	woke := time.Now()
	t.Logf("a paused for %s", woke.Sub(paused))

	// Let b fire three more slots after a woke, then check a's record.
	n := len(bb.firesOf("tick"))
	testutil.Eventually(t, 6*time.Second, func() error {
		if got := len(bb.firesOf("tick")); got < n+3 {
			return fmt.Errorf("b fired %d slots since a woke, want 3", got-n)
		}
		return nil
	})
	for _, f := range a.firesOf("tick") {
		if f.Slot.After(paused.Add(time.Second)) {
			t.Errorf("a fired slot %s after being paused at %s", f.Slot.Format(time.RFC3339Nano), paused.Format(time.RFC3339Nano))
		}
	}
	if a.leading.Load() {
		t.Errorf("a still reports leading after waking")
	}
	slots, _ := storedFires(t, b.js, "tick")
	for slot, c := range slots {
		if c != 1 {
			t.Errorf("slot %s stored %d times, want 1", slot, c)
		}
	}
}

func TestCatchUpPolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		policy schedule.CatchUp
		want   int // missed slots fired after a 10-slot outage
	}{
		{schedule.CatchUpSkip, 0},
		{schedule.CatchUpOnce, 1},
		{schedule.CatchUpAll, 10},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.put(t, schedule.Entry{Name: "job", Spec: "@every 1s", Subject: "tasks.job", CatchUp: tt.policy})
			first := b.start(t, "first", schedule.Config{LeaseTTL: 2 * time.Second})
			testutil.Eventually(t, 5*time.Second, func() error {
				if len(first.firesOf("job")) == 0 {
					return errors.New("no fire yet")
				}
				return nil
			})
			if err := first.stop(t); err != nil {
				t.Fatalf("stop: %v", err)
			}
			last, err := b.store.LastFired(t.Context(), "job")
			if err != nil || last.IsZero() {
				t.Fatalf("LastFired: got %s, %v; want a slot", last, err)
			}

			// The second scheduler's clock starts 10.5 slots after the
			// last fired one: slots last+1s ... last+10s were missed.
			offset := time.Until(last.Add(10*time.Second + 500*time.Millisecond))
			second := b.start(t, "second", schedule.Config{LeaseTTL: 2 * time.Second,
				NowFunc: func() time.Time { return time.Now().Add(offset) }})
			testutil.Eventually(t, 5*time.Second, func() error {
				for _, f := range second.firesOf("job") {
					if !f.Slot.Before(last.Add(11 * time.Second)) {
						return nil
					}
				}
				return errors.New("regular slot after the outage not fired yet")
			})
			slots, _ := storedFires(t, b.js, "job")
			missed := 0
			for i := 1; i <= 10; i++ {
				missed += slots[last.Add(time.Duration(i)*time.Second).UTC().Format(time.RFC3339)]
			}
			if missed != tt.want {
				t.Errorf("policy %s: got %d missed slots fired, want %d", tt.policy, missed, tt.want)
			}
		})
	}
}

func TestStoreEditsTakeEffect(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// "clock" fires every second throughout and paces the test.
	b.put(t, schedule.Entry{Name: "clock", Spec: "@every 1s", Subject: "tasks.clock"})
	b.put(t, schedule.Entry{Name: "job", Spec: "@every 1s", Subject: "tasks.job", Payload: []byte("v1")})
	r := b.start(t, "s", schedule.Config{LeaseTTL: 2 * time.Second})
	waitGain(t, r, 5*time.Second)
	ctx := t.Context()

	firesWithin := func(name string, after time.Time, within time.Duration) {
		t.Helper()
		testutil.Eventually(t, within, func() error {
			for _, f := range r.firesOf(name) {
				if f.Slot.After(after) {
					return nil
				}
			}
			return fmt.Errorf("%s has not fired a slot after %s", name, after.Format(time.RFC3339Nano))
		})
	}
	// silent checks that name fires no slot later than 1s after since
	// while clock fires three more.
	silent := func(name string, since time.Time) {
		t.Helper()
		firesWithin("clock", since.Add(3*time.Second), 6*time.Second)
		for _, f := range r.firesOf(name) {
			if f.Slot.After(since.Add(time.Second)) {
				t.Errorf("%s fired slot %s after the change at %s", name, f.Slot.Format(time.RFC3339), since.Format(time.RFC3339Nano))
			}
		}
	}

	firesWithin("job", time.Now(), 3*time.Second)

	if err := b.store.Pause(ctx, "job"); err != nil {
		t.Fatalf("pause: %v", err)
	}
	silent("job", time.Now())

	resumed := time.Now()
	if err := b.store.Resume(ctx, "job"); err != nil {
		t.Fatalf("resume: %v", err)
	}
	firesWithin("job", resumed, 2*time.Second)

	id, err := b.store.Trigger(ctx, "job")
	if err != nil {
		t.Fatalf("trigger: %v", err)
	}
	testutil.Eventually(t, time.Second, func() error {
		_, ids := storedFires(t, b.js, "job")
		for _, got := range ids {
			if got == id {
				return nil
			}
		}
		return fmt.Errorf("triggered message %s not stored", id)
	})

	edited := time.Now()
	if _, err := b.store.Put(ctx, schedule.Entry{Name: "job", Spec: "@every 1s", Subject: "tasks.job2"}); err != nil {
		t.Fatalf("edit: %v", err)
	}
	testutil.Eventually(t, 2*time.Second, func() error {
		st, err := b.js.Stream(ctx, streams.DefaultTaskStream)
		if err != nil {
			return err
		}
		if _, err := st.GetLastMsgForSubject(ctx, "tasks.job2"); err != nil {
			return fmt.Errorf("no message on tasks.job2 yet: %w", err)
		}
		return nil
	})
	t.Logf("edit took effect within %s", time.Since(edited))

	deleted := time.Now()
	if err := b.store.Delete(ctx, "job"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	silent("job", deleted)
	if _, err := b.store.Get(ctx, "job"); !errors.Is(err, schedule.ErrNotFound) {
		t.Errorf("get after delete: got %v, want ErrNotFound", err)
	}
}

func TestEverySlotFiredOnceWhileLeadersCrash(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("30s soak; skipped with -short")
	}
	b := setup(t)
	const ttl = 2 * time.Second
	b.put(t, schedule.Entry{Name: "tick", Spec: "@every 1s", Subject: "tasks.tick", CatchUp: schedule.CatchUpAll})
	cfg := schedule.Config{LeaseTTL: ttl}
	rs := []*runner{b.start(t, "a", cfg), b.start(t, "b", cfg), b.start(t, "c", cfg)}
	begin := time.Now()

	alive := rs
	for kill := range 2 {
		// Let the current leader fire for a while, then crash it.
		time.Sleep(10 * time.Second) // the soak's pacing, not settling
		leader := leaderOf(t, alive, ttl+2*time.Second)
		crashed := time.Now()
		leader.crash()
		var rest []*runner
		for _, r := range alive {
			if r != leader {
				rest = append(rest, r)
			}
		}
		alive = rest
		next := leaderOf(t, alive, ttl+time.Second)
		t.Logf("kill %d: %s crashed, %s leads after %s", kill+1, leader.name, next.name, time.Since(crashed))
	}
	time.Sleep(10 * time.Second) // the soak's pacing, not settling
	end := time.Now()
	for _, r := range alive {
		if err := r.stop(t); err != nil {
			t.Errorf("stop %s: %v", r.name, err)
		}
	}

	// Every slot from the first fired to the last fired is stored once.
	slots, ids := storedFires(t, b.js, "tick")
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Errorf("message ID %s stored twice", id)
		}
		seen[id] = true
	}
	var first, last time.Time
	for s := range slots {
		ts, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatalf("bad fire time %q: %v", s, err)
		}
		if first.IsZero() || ts.Before(first) {
			first = ts
		}
		if ts.After(last) {
			last = ts
		}
	}
	if first.After(begin.Add(2*time.Second)) || last.Before(end.Add(-2*time.Second)) {
		t.Errorf("fired slots span %s..%s, want the whole run %s..%s", first, last, begin, end)
	}
	gaps, dups := 0, 0
	for ts := first; !ts.After(last); ts = ts.Add(time.Second) {
		switch n := slots[ts.UTC().Format(time.RFC3339)]; {
		case n == 0:
			gaps++
			t.Errorf("slot %s never fired", ts.UTC().Format(time.RFC3339))
		case n > 1:
			dups++
			t.Errorf("slot %s fired %d times", ts.UTC().Format(time.RFC3339), n)
		}
	}
	t.Logf("%d slots over %s, %d gaps, %d duplicates", len(slots), last.Sub(first), gaps, dups)
}

// TestSchedulerLeaseBucketFollowsTTL: a scheduler binds to an existing
// lease bucket as it is, and updates it when the configured lease TTL
// changed.
func TestSchedulerLeaseBucketFollowsTTL(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ttl := func() time.Duration {
		kv, err := b.js.KeyValue(t.Context(), schedule.LeaseBucket)
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return st.TTL()
	}
	for _, want := range []time.Duration{2 * time.Second, 2 * time.Second, 3 * time.Second} {
		r := b.start(t, "s-"+want.String(), schedule.Config{LeaseTTL: want})
		r.stop(t)
		if got := ttl(); got != want {
			t.Fatalf("lease bucket TTL %s after a scheduler with LeaseTTL %s ran", got, want)
		}
	}
}

// TestFiredSlotsRecordedByDuplicateWindow: with the stream's default
// 2-minute duplicate window, an entry firing every second has its cursor
// written once and then not for a while (a new leader's re-fires would be
// dropped as duplicates), and written on a clean stop; with a window too
// short to cover a failover, every fire is recorded.
func TestFiredSlotsRecordedByDuplicateWindow(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		duplicates time.Duration
		coalesced  bool
	}{
		{"default window", 0, true},
		{"short window", 5 * time.Second, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := embeddedtest.Start(t, embedded.Config{})
			_, js := embeddedtest.Connect(t, srv)
			if err := streams.Provision(t.Context(), js, streams.Config{Tasks: streams.Tasks{Duplicates: tt.duplicates}}); err != nil {
				t.Fatal(err)
			}
			store, _ := schedule.NewStore(js, schedule.StoreConfig{})
			b := testBundle{srv: srv, js: js, store: store}
			b.put(t, schedule.Entry{Name: "often", Spec: "@every 1s", Subject: "tasks.often"})
			r := b.start(t, "s", schedule.Config{LeaseTTL: 2 * time.Second})
			testutil.Eventually(t, 10*time.Second, func() error {
				if n := len(r.firesOf("often")); n < 4 {
					return fmt.Errorf("%d fires", n)
				}
				return nil
			})
			fires := r.firesOf("often")
			first, latest := fires[0].Slot, fires[len(fires)-1].Slot
			var st schedule.State
			testutil.Eventually(t, 5*time.Second, func() error {
				var err error
				st, err = store.State(t.Context(), "often")
				if err != nil {
					return err
				}
				if !tt.coalesced && st.LastSlot.Before(latest) {
					return fmt.Errorf("cursor at %s, last fire %s", st.LastSlot, latest)
				}
				return nil
			})
			if tt.coalesced && !st.LastSlot.Equal(first) {
				t.Fatalf("cursor at %s after fires %s..%s: want the first fire's, the rest not written yet", st.LastSlot, first, latest)
			}
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}
			fires = r.firesOf("often")
			st, _ = store.State(t.Context(), "often")
			if want := fires[len(fires)-1].Slot; !st.LastSlot.Equal(want) {
				t.Fatalf("after a clean stop the cursor is at %s, want the last fire's %s", st.LastSlot, want)
			}
		})
	}
}
