package schedule_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/schedule"
	"github.com/jetworker/jetworker/streams"
)

func TestStoreCRUD(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	// Provision is idempotent.
	if err := b.store.Provision(ctx); err != nil {
		t.Fatalf("second provision: %v", err)
	}
	e := schedule.Entry{Name: "b", Spec: "@hourly", TimeZone: "Europe/Berlin", Subject: "tasks.b",
		Payload: []byte("x"), Header: map[string][]string{"X-Tenant": {"t1"}}, CatchUp: schedule.CatchUpAll}
	b.put(t, e)
	b.put(t, schedule.Entry{Name: "a", Spec: "@daily", Subject: "tasks.a"})

	got, err := b.store.Get(ctx, "b")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.Spec != e.Spec || got.TimeZone != e.TimeZone || string(got.Payload) != "x" ||
		got.Header.Get("X-Tenant") != "t1" || got.CatchUp != schedule.CatchUpAll {
		t.Errorf("got %+v, want %+v", got, e)
	}
	list, err := b.store.List(ctx)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(list) != 2 || list[0].Name != "a" || list[1].Name != "b" {
		t.Errorf("got %v, want entries a and b", list)
	}
	if err := b.store.Pause(ctx, "a"); err != nil {
		t.Fatalf("pause: %v", err)
	}
	if a, _ := b.store.Get(ctx, "a"); !a.Paused {
		t.Errorf("got Paused false after Pause, want true")
	}
	if err := b.store.Delete(ctx, "a"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	for name, err := range map[string]error{
		"get":     func() error { _, err := b.store.Get(ctx, "a"); return err }(),
		"delete":  b.store.Delete(ctx, "a"),
		"pause":   b.store.Pause(ctx, "a"),
		"resume":  b.store.Resume(ctx, "missing"),
		"trigger": func() error { _, err := b.store.Trigger(ctx, "missing"); return err }(),
	} {
		if !errors.Is(err, schedule.ErrNotFound) {
			t.Errorf("%s of a missing entry: got %v, want ErrNotFound", name, err)
		}
	}
	if _, err := b.store.Put(ctx, schedule.Entry{Name: "bad", Spec: "@every 10ms", Subject: "tasks.x"}); !errors.Is(err, schedule.ErrInvalidEntry) {
		t.Errorf("put invalid: got %v, want ErrInvalidEntry", err)
	}
}

func TestStoreProvisionsOnFirstUse(t *testing.T) {
	t.Parallel()
	js := embeddedtest.JetStream(t)
	if err := streams.Provision(t.Context(), js, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	store, err := schedule.NewStore(js, schedule.StoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Put(t.Context(), schedule.Entry{Name: "x", Spec: "@daily", Subject: "tasks.x"}); err != nil {
		t.Fatalf("put without Provision: %v", err)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	js := embeddedtest.JetStream(t)
	_, err := schedule.New(js, schedule.Config{LeaseTTL: 500 * time.Millisecond, LeaseMargin: -1,
		MaxConcurrentFires: -1, LeaseKey: "bad key"})
	for _, w := range []string{"LeaseTTL", "LeaseMargin", "MaxConcurrentFires", "LeaseKey"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("got %v, want it to name %s", err, w)
		}
	}
	if _, err := schedule.New(js, schedule.Config{}); err != nil {
		t.Errorf("zero Config: got %v, want nil", err)
	}
	if _, err := schedule.NewStore(js, schedule.StoreConfig{Replicas: 9}); err == nil || !strings.Contains(err.Error(), "Replicas") {
		t.Errorf("got %v, want an error naming Replicas", err)
	}
}

func TestRunTwice(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s, err := schedule.New(b.js, schedule.Config{Logger: testutil.Logger(t, slog.LevelWarn)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-s.Ready()
	if err := s.Run(ctx); !errors.Is(err, schedule.ErrAlreadyRunning) {
		t.Errorf("second Run: got %v, want ErrAlreadyRunning", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel: got %v, want nil", err)
	}
}

// TestStatesShowFailingFires: Store.States reads every entry's state in
// one pass: the last fired slot of each, and the failure of an entry
// whose stream is gone, which clears with the first fire that succeeds
// once the stream is back, although the stream's duplicate window lets
// the scheduler record that entry's slots only every 30s. Reading the
// states leaves no consumer behind.
func TestStatesShowFailingFires(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	orders := jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Duplicates: 2 * time.Minute}
	if _, err := b.js.CreateStream(ctx, orders); err != nil {
		t.Fatal(err)
	}
	b.put(t, schedule.Entry{Name: "orders", Spec: "@every 1s", Subject: "orders.tick", CatchUp: schedule.CatchUpSkip})
	b.put(t, schedule.Entry{Name: "ok", Spec: "@every 1s", Subject: "tasks.ok", CatchUp: schedule.CatchUpSkip})
	b.put(t, schedule.Entry{Name: "idle", Spec: "@yearly", Subject: "tasks.idle"})

	states := func() map[string]schedule.State {
		t.Helper()
		sts, err := b.store.States(ctx)
		if err != nil {
			t.Fatalf("states: %v", err)
		}
		return sts
	}
	if sts := states(); len(sts) != 0 {
		t.Fatalf("before any scheduler: got %v, want no states", sts)
	}
	r := b.start(t, "s1", schedule.Config{LeaseTTL: 2 * time.Second})
	waitGain(t, r, 5*time.Second)
	testutil.Eventually(t, 10*time.Second, func() error {
		sts := states()
		if sts["orders"].LastSlot.IsZero() || sts["ok"].LastSlot.IsZero() {
			return fmt.Errorf("states %v, want both firing entries recorded", sts)
		}
		return nil
	})

	if err := b.js.DeleteStream(ctx, "ORDERS"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		sts := states()
		if st := sts["orders"]; !strings.Contains(st.Error, "no stream captures") || st.Failures < 1 || st.ErrorAt.IsZero() {
			return fmt.Errorf("orders: state %+v, want the no-stream failure recorded", st)
		}
		if st := sts["ok"]; st.Error != "" || st.LastSlot.IsZero() {
			return fmt.Errorf("ok: state %+v, want a last slot and no error", st)
		}
		if st, ok := sts["idle"]; ok {
			return fmt.Errorf("idle: state %+v, want none", st)
		}
		return nil
	})

	if _, err := b.js.CreateStream(ctx, orders); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	testutil.Eventually(t, 15*time.Second, func() error {
		if st := states()["orders"]; st.Error != "" || st.Failures != 0 {
			return fmt.Errorf("orders: state %+v, want the failure cleared", st)
		}
		return nil
	})
	t.Logf("failure cleared %s after the stream came back", time.Since(back))

	// The watches of States are gone once it returns.
	st, err := b.js.Stream(ctx, "KV_"+schedule.StateBucket)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		if n := info.State.Consumers; n != 0 {
			return fmt.Errorf("%d consumers on the state bucket, want 0", n)
		}
		return nil
	})
}

// TestFiresCarryTheEntry: a fire, by the scheduler or by Trigger, carries
// the entry's payload and headers (names canonical, every value) and the
// scheduler's three headers, the third fire as the first.
func TestFiresCarryTheEntry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	b.put(t, schedule.Entry{Name: "hdr", Spec: "@every 1s", Subject: "tasks.hdr", Payload: []byte("p"), CatchUp: schedule.CatchUpSkip,
		Header: nats.Header{"x-tenant": {"a", "b"}, "traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}})
	st, err := b.js.Stream(ctx, streams.DefaultTaskStream)
	if err != nil {
		t.Fatal(err)
	}
	check := func(how string, m *jetstream.RawStreamMsg, wantID func(fireTime string) string) {
		t.Helper()
		if string(m.Data) != "p" {
			t.Errorf("%s: payload %q, want %q", how, m.Data, "p")
		}
		if got := m.Header.Values("X-Tenant"); fmt.Sprint(got) != "[a b]" {
			t.Errorf("%s: X-Tenant %v, want [a b]", how, got)
		}
		if got := m.Header.Get("Traceparent"); !strings.HasPrefix(got, "00-0af7") {
			t.Errorf("%s: Traceparent %q, want the entry's", how, got)
		}
		if got := m.Header.Get(jetworker.HeaderSchedule); got != "hdr" {
			t.Errorf("%s: %s %q, want hdr", how, jetworker.HeaderSchedule, got)
		}
		at := m.Header.Get(jetworker.HeaderFireTime)
		if _, err := time.Parse(time.RFC3339, at); err != nil {
			t.Errorf("%s: %s %q: %v", how, jetworker.HeaderFireTime, at, err)
		}
		if got, want := m.Header.Get(jetworker.HeaderMsgID), wantID(at); got != want {
			t.Errorf("%s: %s %q, want %q", how, jetworker.HeaderMsgID, got, want)
		}
	}

	id, err := b.store.Trigger(ctx, "hdr")
	if err != nil {
		t.Fatalf("trigger: %v", err)
	}
	m, err := st.GetLastMsgForSubject(ctx, "tasks.hdr")
	if err != nil {
		t.Fatalf("the triggered fire: %v", err)
	}
	check("trigger", m, func(string) string { return id })

	b.put(t, schedule.Entry{Name: "plain", Spec: "@every 1s", Subject: "tasks.plain", CatchUp: schedule.CatchUpSkip})
	r := b.start(t, "s", schedule.Config{LeaseTTL: 2 * time.Second})
	waitGain(t, r, 5*time.Second)
	// Check a later fire (the scheduler may reuse the messages of earlier
	// ones), and that an entry without headers gets none of another's.
	testutil.Eventually(t, 10*time.Second, func() error {
		if n := len(r.firesOf("hdr")); n < 3 {
			return fmt.Errorf("%d fires, want 3", n)
		}
		return nil
	})
	m, err = st.GetLastMsgForSubject(ctx, "tasks.hdr")
	if err != nil {
		t.Fatalf("the scheduled fire: %v", err)
	}
	check("scheduler", m, func(at string) string { return "hdr@" + at })
	m, err = st.GetLastMsgForSubject(ctx, "tasks.plain")
	if err != nil {
		t.Fatalf("the plain entry's fire: %v", err)
	}
	if m.Header.Get(jetworker.HeaderSchedule) != "plain" || m.Header.Get("X-Tenant") != "" || m.Header.Get("Traceparent") != "" || len(m.Data) != 0 {
		t.Errorf("plain entry's fire: header %v, data %q; want no header or data of hdr's", m.Header, m.Data)
	}
}
