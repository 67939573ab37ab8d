package publisher_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/streams"
)

func batch(n int, subject string) []publisher.BatchTask {
	tasks := make([]publisher.BatchTask, n)
	for i := range tasks {
		tasks[i] = publisher.BatchTask{Subject: subject, Data: []byte(strconv.Itoa(i))}
	}
	return tasks
}

func TestPublishBatchStoresEveryTaskInOrder(t *testing.T) {
	t.Parallel()
	b := setup(t, publisher.Config{})
	tasks := batch(5000, "tasks.bulk")
	tasks[7].Header = nats.Header{"X-Tenant": {"acme"}}
	res, err := b.pub.PublishBatch(t.Context(), tasks)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored != len(tasks) || res.Sent != len(tasks) || res.Stream != "TASKS" || res.LastSeq != uint64(len(tasks)) {
		t.Fatalf("result %+v: want all %d stored in TASKS", res, len(tasks))
	}
	s, _ := b.js.Stream(t.Context(), "TASKS")
	for _, seq := range []uint64{1, 8, 2500, 5000} {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Data) != strconv.Itoa(int(seq-1)) {
			t.Fatalf("seq %d holds %q, want task %d: out of order", seq, m.Data, seq-1)
		}
		if seq == 8 && m.Header.Get("X-Tenant") != "acme" {
			t.Fatalf("task 7 lost its header: %v", m.Header)
		}
	}
}

func TestPublishBatchRefusesBadTasksBeforeSending(t *testing.T) {
	t.Parallel()
	b := setup(t, publisher.Config{})
	for _, tt := range []struct {
		name string
		task publisher.BatchTask
		want error
	}{
		{"reserved subject", publisher.BatchTask{Subject: "$JS.API.STREAM.PURGE.TASKS"}, jetworker.ErrReservedSubject},
		{"wildcard", publisher.BatchTask{Subject: "tasks.>"}, jetworker.ErrInvalidSubject},
		{"too large", publisher.BatchTask{Subject: "tasks.x", Data: make([]byte, 2<<20)}, publisher.ErrPayloadTooLarge},
		{"roll-up header", publisher.BatchTask{Subject: "tasks.x", Header: nats.Header{"Nats-Rollup": {"all"}}}, publisher.ErrInvalidOptions},
	} {
		tasks := batch(10, "tasks.ok")
		tasks[5] = tt.task
		res, err := b.pub.PublishBatch(t.Context(), tasks)
		if !errors.Is(err, tt.want) || res.Sent != 0 {
			t.Errorf("%s: got %+v, %v; want %v before anything is sent", tt.name, res, err, tt.want)
		}
	}
	if n := streamMsgs(t, b.js, "TASKS"); n != 0 {
		t.Fatalf("TASKS holds %d messages after refused batches", n)
	}
	plain := embeddedtest.JetStream(t)
	if _, err := plain.CreateStream(t.Context(), jetstream.StreamConfig{Name: "PLAIN", Subjects: []string{"plain.>"}}); err != nil {
		t.Fatal(err)
	}
	pub, _ := publisher.New(plain, publisher.Config{})
	if res, err := pub.PublishBatch(t.Context(), batch(3, "plain.x")); !errors.Is(err, publisher.ErrBatchNotSupported) || res.Sent != 0 {
		t.Fatalf("a batch into a stream without batch publishing: got %+v, %v; want ErrBatchNotSupported, nothing sent", res, err)
	}
	mixed := batch(3, "tasks.ok")
	mixed[2].Subject = "plain.y"
	if res, err := b.pub.PublishBatch(t.Context(), mixed); !errors.Is(err, publisher.ErrInvalidOptions) || res.Sent != 0 {
		t.Fatalf("a batch over two streams: got %+v, %v; want ErrInvalidOptions, nothing sent", res, err)
	}
	if _, err := b.pub.PublishBatch(t.Context(), batch(3, "nowhere.x")); !errors.Is(err, publisher.ErrNoStream) {
		t.Fatalf("a batch no stream stores: got %v, want ErrNoStream", err)
	}
}

// TestPublishBatchServerKilledMidBatch: the server dies while a batch is
// streaming; after a restart every task the result calls stored is in the
// stream, and the stream holds a prefix of the batch.
func TestPublishBatchServerKilledMidBatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := embeddedtest.Start(t, embedded.Config{StoreDir: dir, SyncAlways: true})
	nc, js := embeddedtest.Connect(t, srv, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err := streams.Provision(t.Context(), js, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	pub, _ := publisher.New(js, publisher.Config{AsyncAckTimeout: 5 * time.Second})
	tasks := batch(400_000, "tasks.bulk")
	type outcome struct {
		res publisher.BatchResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := pub.PublishBatch(context.Background(), tasks)
		done <- outcome{res, err}
	}()
	// Let some of it land, then kill the server.
	var o outcome
	early := false
	for landed := false; !landed; {
		select {
		case o = <-done:
			early, landed = true, true
		case <-time.After(2 * time.Millisecond):
			st, err := js.Stream(t.Context(), "TASKS")
			landed = err == nil && st.CachedInfo().State.Msgs > 5000
		}
	}
	srv.Shutdown()
	if early && o.err != nil {
		t.Fatalf("the batch failed before the server went down: %+v, %v", o.res, o.err)
	}
	if early {
		t.Skipf("the batch ended before the server went down (%+v): nothing to check", o.res)
	}
	o = <-done
	if o.err == nil {
		t.Skipf("the batch of %d finished before the server went down (%+v): nothing to check", len(tasks), o.res)
	}
	if !errors.Is(o.err, publisher.ErrOutcomeUnknown) {
		t.Fatalf("error %v, want ErrOutcomeUnknown", o.err)
	}
	if o.res.Stored == 0 || o.res.Stored > o.res.Sent || o.res.Sent > len(tasks) {
		t.Fatalf("result %+v: want 0 < Stored <= Sent <= %d", o.res, len(tasks))
	}
	nc.Close()

	again := embeddedtest.Start(t, embedded.Config{StoreDir: dir, SyncAlways: true})
	_, js2 := embeddedtest.Connect(t, again)
	st, err := js2.Stream(t.Context(), "TASKS")
	if err != nil {
		t.Fatal(err)
	}
	stored := st.CachedInfo().State.Msgs
	if stored < uint64(o.res.Stored) {
		t.Fatalf("after the restart TASKS holds %d tasks, fewer than the %d acknowledged: acknowledged tasks were lost", stored, o.res.Stored)
	}
	if stored > uint64(o.res.Sent) {
		t.Fatalf("TASKS holds %d tasks, more than the %d sent", stored, o.res.Sent)
	}
	for _, seq := range []uint64{1, uint64(o.res.Stored), stored} {
		m, err := st.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		if want := strconv.Itoa(int(seq - 1)); string(m.Data) != want {
			t.Fatalf("seq %d holds %q, want task %s: not a prefix of the batch", seq, m.Data, want)
		}
	}
	t.Logf("batch of %d: %d acknowledged, %d sent, %d found stored after the restart", len(tasks), o.res.Stored, o.res.Sent, stored)
}
