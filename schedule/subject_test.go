package schedule_test

import (
	"encoding/json"
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
)

// TestPutRefusesWhatCouldHurtTheServer covers the ways a schedule could
// reach a system subject or carry a server directive.
func TestPutRefusesWhatCouldHurtTheServer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name string
		e    schedule.Entry
		want error
	}{
		{name: "purge the task stream", e: schedule.Entry{Subject: "$JS.API.STREAM.PURGE.TASKS"}, want: jetworker.ErrReservedSubject},
		{name: "delete the dead letters", e: schedule.Entry{Subject: "$JS.API.STREAM.DELETE.DLQ"}, want: jetworker.ErrReservedSubject},
		{name: "write a lease", e: schedule.Entry{Subject: "$KV.jetworker_leases.scheduler"}, want: jetworker.ErrReservedSubject},
		{name: "object store", e: schedule.Entry{Subject: "$O.files.C.x"}, want: jetworker.ErrReservedSubject},
		{name: "system account", e: schedule.Entry{Subject: "$SYS.REQ.SERVER.PING"}, want: jetworker.ErrReservedSubject},
		{name: "NATS internal", e: schedule.Entry{Subject: "$NATS.x"}, want: jetworker.ErrReservedSubject},
		{name: "any dollar subject", e: schedule.Entry{Subject: "$anything.at.all"}, want: jetworker.ErrReservedSubject},
		{name: "somebody's reply inbox", e: schedule.Entry{Subject: "_INBOX.abc"}, want: jetworker.ErrReservedSubject},
		{name: "wildcard", e: schedule.Entry{Subject: "tasks.>"}, want: jetworker.ErrInvalidSubject},
		{name: "control characters", e: schedule.Entry{Subject: "tasks.\x1b[2J"}, want: jetworker.ErrInvalidSubject},
		{name: "the delay subject", e: schedule.Entry{Subject: "jetworker.delay.TASKS.x"}, want: jetworker.ErrReservedSubject},
		{name: "a roll-up header", e: schedule.Entry{Subject: "tasks.x", Header: nats.Header{"Nats-Rollup": {"all"}}}, want: schedule.ErrInvalidEntry},
		{name: "an expected-stream header", e: schedule.Entry{Subject: "tasks.x", Header: nats.Header{"nats-expected-stream": {"DLQ"}}}, want: schedule.ErrInvalidEntry},
		{name: "a message TTL header", e: schedule.Entry{Subject: "tasks.x", Header: nats.Header{"Nats-TTL": {"1s"}}}, want: schedule.ErrInvalidEntry},
		{name: "a uniqueness header", e: schedule.Entry{Subject: "tasks.x", Header: nats.Header{"Jetworker-Unique": {"pending"}}}, want: schedule.ErrInvalidEntry},
		{name: "a tracking header", e: schedule.Entry{Subject: "tasks.x", Header: nats.Header{"Jetworker-Track": {"1"}}}, want: schedule.ErrInvalidEntry},
		{name: "a task ID header", e: schedule.Entry{Subject: "tasks.x", Header: nats.Header{"Jetworker-Task-Id": {"t1"}}}, want: schedule.ErrInvalidEntry},
		{name: "the fire-time header, lower case", e: schedule.Entry{Subject: "tasks.x", Header: nats.Header{"jetworker-fire-time": {"2000-01-01T00:00:00Z"}}}, want: schedule.ErrInvalidEntry},
		{name: "a value smuggling a roll-up line with CR LF", e: schedule.Entry{Subject: "tasks.x", Header: nats.Header{"X-Split": {"a\r\nNats-Rollup: all"}}}, want: schedule.ErrInvalidEntry},
		{name: "a value with a bare LF", e: schedule.Entry{Subject: "tasks.x", Header: nats.Header{"X-Split": {"a\nb"}}}, want: schedule.ErrInvalidEntry},
		{name: "a value with a bare CR", e: schedule.Entry{Subject: "tasks.x", Header: nats.Header{"X-Split": {"a\rb"}}}, want: schedule.ErrInvalidEntry},
		{name: "a header name with a colon", e: schedule.Entry{Subject: "tasks.x", Header: nats.Header{"X:Y": {"1"}}}, want: schedule.ErrInvalidEntry},
		{name: "the delay subject of another stream", e: schedule.Entry{Subject: "jetworker.delay.ORDERS.x"}, want: jetworker.ErrReservedSubject},
		{name: "no stream captures it", e: schedule.Entry{Subject: "nowhere.x"}, want: schedule.ErrNoStream},
		{name: "only the dead-letter stream captures it", e: schedule.Entry{Subject: "dlq.TASKS.worker.tasks.x"}, want: schedule.ErrNoStream},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.e.Name, tt.e.Spec = fmt.Sprintf("bad-%d", i), "@every 1h"
			if _, err := b.store.Put(t.Context(), tt.e); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want an error wrapping %v", err, tt.want)
			}
			if _, err := b.store.Get(t.Context(), tt.e.Name); !errors.Is(err, schedule.ErrNotFound) {
				t.Fatalf("the refused entry was stored: %v", err)
			}
		})
	}
}

// TestPlantedEntryNeverFires writes entries straight into the schedules
// bucket, past Store.Put, as anyone with write access to the bucket could:
// neither Trigger nor a running scheduler publishes them.
func TestPlantedEntryNeverFires(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	for i := range 3 {
		if _, err := b.js.Publish(ctx, fmt.Sprintf("tasks.keep.%d", i), []byte("keep")); err != nil {
			t.Fatal(err)
		}
	}
	kv, err := b.js.KeyValue(ctx, schedule.SchedulesBucket)
	if err != nil {
		t.Fatal(err)
	}
	plant := func(e schedule.Entry) {
		data, _ := json.Marshal(e)
		if _, err := kv.Put(ctx, e.Name, data); err != nil {
			t.Fatal(err)
		}
	}
	plant(schedule.Entry{Name: "purge", Spec: "@every 1s", Subject: "$JS.API.STREAM.PURGE.TASKS"})
	plant(schedule.Entry{Name: "rollup", Spec: "@every 1s", Subject: "tasks.keep.0", Header: nats.Header{"Nats-Rollup": {"all"}}})
	plant(schedule.Entry{Name: "smuggled", Spec: "@every 1s", Subject: "tasks.keep.1", Header: nats.Header{"X-Split": {"a\r\nNats-Rollup: all"}}})
	plant(schedule.Entry{Name: "tracked", Spec: "@every 1s", Subject: "tasks.keep.2", Header: nats.Header{"Jetworker-Track": {"1"}}})
	plant(schedule.Entry{Name: "delayed", Spec: "@every 1s", Subject: "jetworker.delay.TASKS.x"})
	planted := []string{"purge", "rollup", "smuggled", "tracked", "delayed"}
	for _, name := range planted {
		if _, err := b.store.Trigger(ctx, name); !errors.Is(err, schedule.ErrInvalidEntry) {
			t.Errorf("trigger %s: got %v, want ErrInvalidEntry", name, err)
		}
	}
	b.put(t, schedule.Entry{Name: "ok", Spec: "@every 1s", Subject: "tasks.tick", CatchUp: schedule.CatchUpSkip})
	r := b.start(t, "s1", schedule.Config{LeaseTTL: 2 * time.Second})
	waitGain(t, r, 5*time.Second)
	testutil.Eventually(t, 10*time.Second, func() error {
		if n := countOn(t, b.js, "tasks.tick"); n < 3 {
			return fmt.Errorf("%d ticks fired, want 3", n)
		}
		return nil
	})
	if n := countOn(t, b.js, "tasks.keep.>"); n != 3 {
		t.Fatalf("TASKS holds %d of the 3 kept tasks: a planted entry fired", n)
	}
	if n := countOn(t, b.js, "jetworker.delay.>"); n != 0 {
		t.Fatalf("%d messages on the delay subjects: a planted entry fired", n)
	}
	for _, name := range planted {
		if fs := r.attemptsOf(name); len(fs) > 0 {
			t.Errorf("the planted entry %s was fired %d times", name, len(fs))
		}
	}
}

// TestFireWithoutStreamIsReported: an entry saved while its stream existed
// keeps failing once the stream is gone; the failure is recorded on the
// entry's state and retried with a growing delay, not every second.
func TestFireWithoutStreamIsReported(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	if _, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	b.put(t, schedule.Entry{Name: "orders", Spec: "@every 1s", Subject: "orders.tick", CatchUp: schedule.CatchUpSkip})
	if err := b.js.DeleteStream(ctx, "ORDERS"); err != nil {
		t.Fatal(err)
	}
	r := b.start(t, "s1", schedule.Config{LeaseTTL: 2 * time.Second})
	waitGain(t, r, 5*time.Second)
	testutil.Eventually(t, 10*time.Second, func() error {
		st, err := b.store.State(ctx, "orders")
		if err != nil {
			return err
		}
		if !strings.Contains(st.Error, "no stream captures") || st.Failures < 1 {
			return fmt.Errorf("state %+v, want the no-stream failure recorded", st)
		}
		return nil
	})
	// Retried every second, the third attempt would come 1s after the
	// second; with the delay doubling from 1s it comes 2s after.
	var attempts []schedule.Fire
	testutil.Eventually(t, 15*time.Second, func() error {
		if attempts = r.attemptsOf("orders"); len(attempts) < 3 {
			return fmt.Errorf("%d fire attempts, want 3", len(attempts))
		}
		return nil
	})
	at := func(i int) time.Time { return attempts[i].Slot.Add(attempts[i].Lag) }
	if gap := at(2).Sub(at(1)); gap < 1500*time.Millisecond {
		t.Fatalf("attempts 2 and 3 were %s apart, want a doubled delay of about 2s", gap)
	}
	for _, f := range attempts {
		if f.Err == nil || !strings.Contains(f.Err.Error(), "no stream captures") {
			t.Fatalf("attempt error %v, want it to say no stream captures the subject", f.Err)
		}
	}
}

// countOn counts the messages stored on subjects matching filter in the
// task stream.
func countOn(t *testing.T, js jetstream.JetStream, filter string) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), "TASKS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

// TestRunFailsWhenTheConnectionCloses, as every Run of jetworker does:
// the lease campaign used to keep Run alive until its context ended.
func TestRunFailsWhenTheConnectionCloses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	nc, js := embeddedtest.Connect(t, b.srv)
	s, err := schedule.New(js, schedule.Config{LeaseTTL: 2 * time.Second, Logger: testutil.Logger(t, slog.LevelWarn)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(t.Context()) }()
	<-s.Ready()
	nc.Close()
	select {
	case err := <-done:
		if !errors.Is(err, nats.ErrConnectionClosed) {
			t.Fatalf("Run: got %v, want an error wrapping nats.ErrConnectionClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of its connection closing")
	}
}
