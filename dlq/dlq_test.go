package dlq_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dlq"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/internal/wire"
	"github.com/jetworker/jetworker/streams"
)

type testBundle struct {
	js    jetstream.JetStream
	store *dlq.Store
}

func setup(t *testing.T) testBundle {
	t.Helper()
	js := embeddedtest.JetStream(t)
	if err := streams.Provision(t.Context(), js, streams.Config{}); err != nil {
		t.Fatalf("provision: %v", err)
	}
	store, err := dlq.New(js, dlq.Config{})
	if err != nil {
		t.Fatalf("dlq.New: %v", err)
	}
	return testBundle{js: js, store: store}
}

// letter stores a dead letter the way the consumer's dead-letter path
// writes it, and returns its sequence in the DLQ.
func (b testBundle) letter(t *testing.T, l dlq.Letter) uint64 {
	t.Helper()
	if l.Stream == "" {
		l.Stream = "TASKS"
	}
	if l.Consumer == "" {
		l.Consumer = "worker"
	}
	if l.FailedAt.IsZero() {
		l.FailedAt = time.Now()
	}
	if l.Attempts == 0 {
		l.Attempts = 1
	}
	ack, err := b.js.PublishMsg(t.Context(), dlq.Message(l, b.js.Conn().MaxPayload()))
	if err != nil {
		t.Fatalf("store dead letter: %v", err)
	}
	return ack.Sequence
}

func msgs(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	return info.State.Msgs
}

func TestListNewestFirstWithCursor(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 130
	var want []uint64
	for i := range n {
		want = append(want, b.letter(t, dlq.Letter{Sequence: uint64(i + 1), Subject: "tasks.page", Reason: "x"}))
	}
	slices.Reverse(want)
	var got []uint64
	var before uint64
	pages := 0
	for {
		page, err := b.store.List(t.Context(), dlq.Filter{}, before, 50)
		if err != nil {
			t.Fatalf("list before %d: %v", before, err)
		}
		pages++
		for _, e := range page.Entries {
			got = append(got, e.Sequence)
		}
		if page.Next == 0 {
			break
		}
		if len(page.Entries) != 50 {
			t.Fatalf("page %d has %d entries and a next cursor; want 50", pages, len(page.Entries))
		}
		before = page.Next
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged sequences:\n got %v\nwant %v", got, want)
	}
	if pages != 3 {
		t.Fatalf("got %d pages, want 3", pages)
	}
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	t0 := time.Now().Add(-time.Hour)
	add := func(stream, cons, subject, id string, at time.Time) {
		h := nats.Header{}
		if id != "" {
			h.Set(jetworker.HeaderMsgID, id)
		}
		b.letter(t, dlq.Letter{Stream: stream, Consumer: cons, Sequence: uint64(time.Since(t0)), Subject: subject, Header: h, Reason: "no", FailedAt: at})
	}
	add("TASKS", "loader", "tasks.load.a.broken", "id-1", t0)
	add("TASKS", "loader", "tasks.load.b.broken", "id-2", t0.Add(time.Minute))
	add("TASKS", "loader", "tasks.load.b.fine", "id-3", t0.Add(2*time.Minute))
	add("TASKS", "mailer", "tasks.email.welcome", "id-4", t0.Add(3*time.Minute))
	add("OTHER", "mailer", "tasks.email.welcome", "id-5", t0.Add(4*time.Minute))
	// A dead letter of the layout before the original subject was part of
	// the subject.
	legacy := dlq.Message(dlq.Letter{Stream: "TASKS", Consumer: "old", Sequence: 9, Subject: "tasks.legacy", Reason: "old"}, 0)
	legacy.Subject = "dlq.TASKS.old"
	if _, err := b.js.PublishMsg(t.Context(), legacy); err != nil {
		t.Fatalf("legacy: %v", err)
	}

	tests := []struct {
		name string
		f    dlq.Filter
		want []string // task IDs, newest first
	}{
		{name: "all, legacy included", f: dlq.Filter{}, want: []string{"", "id-5", "id-4", "id-3", "id-2", "id-1"}},
		{name: "subject wildcard in the middle", f: dlq.Filter{Subject: "tasks.load.*.broken"}, want: []string{"id-2", "id-1"}},
		{name: "subject tail wildcard", f: dlq.Filter{Subject: "tasks.email.>"}, want: []string{"id-5", "id-4"}},
		{name: "exact subject", f: dlq.Filter{Subject: "tasks.load.b.fine"}, want: []string{"id-3"}},
		{name: "by consumer", f: dlq.Filter{Consumer: "mailer"}, want: []string{"id-5", "id-4"}},
		{name: "by stream and consumer", f: dlq.Filter{Stream: "TASKS", Consumer: "mailer"}, want: []string{"id-4"}},
		{name: "by stream", f: dlq.Filter{Stream: "OTHER"}, want: []string{"id-5"}},
		{name: "by task ID", f: dlq.Filter{TaskID: "id-3"}, want: []string{"id-3"}},
		{name: "time range", f: dlq.Filter{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}, want: []string{"id-3", "id-2"}},
		{name: "no match", f: dlq.Filter{Subject: "tasks.nothing.>"}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			page, err := b.store.List(t.Context(), tt.f, 0, 0)
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			var got []string
			for _, e := range page.Entries {
				got = append(got, e.TaskID)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got task IDs %q, want %q", got, tt.want)
			}
			n, err := b.store.Count(t.Context(), tt.f)
			if err != nil || n != len(tt.want) {
				t.Fatalf("Count: got %d, %v; want %d", n, err, len(tt.want))
			}
		})
	}
	if _, err := b.store.List(t.Context(), dlq.Filter{Subject: "$JS.>"}, 0, 0); !errors.Is(err, jetworker.ErrReservedSubject) {
		t.Fatalf("a reserved subject filter: got %v, want ErrReservedSubject", err)
	}
}

func TestReadsCreateNoConsumers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	seq := b.letter(t, dlq.Letter{Sequence: 1, Subject: "tasks.x", Reason: "x"})
	for range 20 {
		if _, err := b.store.List(t.Context(), dlq.Filter{Subject: "tasks.>"}, 0, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.Get(t.Context(), seq); err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.Count(t.Context(), dlq.Filter{TaskID: "nope"}); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := b.js.Stream(t.Context(), "DLQ")
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != 0 {
		t.Fatalf("the DLQ has %d consumers after reading it, want 0", info.State.Consumers)
	}
}

func TestReplayRunsTaskOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var runs, successes atomic.Int64
	h := jetworker.HandlerFunc(func(ctx context.Context, task *jetworker.Task) error {
		if runs.Add(1) == 1 {
			return jetworker.Permanent(errors.New("downstream rejected"))
		}
		if task.Header.Get(jetworker.HeaderReplayedFrom) == "" {
			t.Errorf("replayed task has no %s header", jetworker.HeaderReplayedFrom)
		}
		if task.ID != "replay-me" {
			t.Errorf("replayed task ID: got %q, want the original replay-me", task.ID)
		}
		successes.Add(1)
		return nil
	})
	c, err := consumer.New(b.js, h, consumer.Config{Logger: testutil.Logger(t, 0)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-c.Ready()
	if _, err := b.js.PublishMsg(t.Context(), &nats.Msg{Subject: "tasks.replay", Data: []byte("data"),
		Header: nats.Header{jetworker.HeaderMsgID: {"replay-me"}}}); err != nil {
		t.Fatal(err)
	}
	var seq uint64
	testutil.Eventually(t, 10*time.Second, func() error {
		page, err := b.store.List(t.Context(), dlq.Filter{}, 0, 0)
		if err != nil || len(page.Entries) != 1 {
			return fmt.Errorf("%d dead letters (%v), want 1", len(page.Entries), err)
		}
		seq = page.Entries[0].Sequence
		return nil
	})
	res, err := b.store.Replay(t.Context(), seq)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if res.TaskID != "replay-me" || res.Stream != "TASKS" || res.Ref != jetworker.Ref("TASKS", res.Sequence) {
		t.Fatalf("replay result %+v: want task replay-me stored in TASKS", res)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if successes.Load() != 1 {
			return errors.New("replayed task has not run")
		}
		return nil
	})
	if _, err := b.store.Replay(t.Context(), seq); !errors.Is(err, dlq.ErrNotFound) {
		t.Fatalf("second replay: got %v, want ErrNotFound", err)
	}
	if m := msgs(t, b.js, "DLQ"); m != 0 {
		t.Fatalf("DLQ still holds %d messages after replay", m)
	}
}

func TestConcurrentReplayHasOneWinner(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for round := range 5 {
		seq := b.letter(t, dlq.Letter{Sequence: uint64(round + 1), Subject: "tasks.race", Data: []byte("x"), Reason: "x"})
		const callers = 8
		var wg sync.WaitGroup
		var won, lost atomic.Int32
		errs := make(chan error, callers)
		start := make(chan struct{})
		for range callers {
			wg.Go(func() {
				<-start
				_, err := b.store.Replay(t.Context(), seq)
				switch {
				case err == nil:
					won.Add(1)
				case errors.Is(err, dlq.ErrNotFound):
					lost.Add(1)
				default:
					errs <- err
				}
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: a loser got %v, want ErrNotFound", round, err)
		}
		if won.Load() != 1 || lost.Load() != callers-1 {
			t.Fatalf("round %d: %d winners and %d ErrNotFound, want 1 and %d", round, won.Load(), lost.Load(), callers-1)
		}
		if got := msgs(t, b.js, "TASKS"); got != uint64(round+1) {
			t.Fatalf("round %d: TASKS holds %d tasks, want %d (one per replayed entry)", round, got, round+1)
		}
	}
}

// TestReplayRefusesPlantedEntries plants dead letters the way a worker
// allowed to publish on dlq.> could, and checks that none is replayed and
// that the task stream is untouched.
func TestReplayRefusesPlantedEntries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	if _, err := b.js.CreateOrUpdateConsumer(ctx, "TASKS", jetstream.ConsumerConfig{
		Durable: "mailer", FilterSubject: "tasks.email.>", AckPolicy: jetstream.AckExplicitPolicy,
	}); err != nil {
		t.Fatal(err)
	}
	// Work the attacker would like to destroy.
	for i := range 3 {
		if _, err := b.js.Publish(ctx, fmt.Sprintf("tasks.keep.%d", i), []byte("keep")); err != nil {
			t.Fatal(err)
		}
	}
	var seq atomic.Uint64 // distinct original sequences: distinct dead letters
	honest := func(orig string) *nats.Msg {
		return dlq.Message(dlq.Letter{Stream: "TASKS", Consumer: "worker", Sequence: seq.Add(1), Subject: orig, Data: []byte("x"), Reason: "x"}, 0)
	}
	tests := []struct {
		name    string
		msg     func() *nats.Msg
		problem string
	}{
		{name: "reserved original subject", problem: "reserved", msg: func() *nats.Msg {
			return honest("$JS.API.STREAM.PURGE.TASKS")
		}},
		{name: "reserved subject in the header only", problem: "disagrees", msg: func() *nats.Msg {
			m := honest("tasks.email.x")
			m.Header.Set(jetworker.HeaderOriginalSubject, "$JS.API.STREAM.DELETE.DLQ")
			return m
		}},
		{name: "inbox subject", problem: "reserved", msg: func() *nats.Msg { return honest("_INBOX.abc") }},
		{name: "stream header disagrees", problem: "disagrees", msg: func() *nats.Msg {
			m := honest("tasks.email.x")
			m.Header.Set(jetworker.HeaderOriginalStream, "DLQ")
			return m
		}},
		{name: "consumer header disagrees", problem: "disagrees", msg: func() *nats.Msg {
			m := honest("tasks.email.x")
			m.Header.Set(jetworker.HeaderConsumer, "someone-else")
			return m
		}},
		{name: "message id not the dead-letter path's", problem: "Nats-Msg-Id", msg: func() *nats.Msg {
			m := honest("tasks.email.x")
			m.Header.Set(jetworker.HeaderMsgID, "anything")
			return m
		}},
		{name: "no original sequence", problem: "Original-Seq", msg: func() *nats.Msg {
			m := honest("tasks.email.x")
			m.Header.Del(jetworker.HeaderOriginalSeq)
			return m
		}},
		{name: "stream does not exist", problem: "does not exist", msg: func() *nats.Msg {
			return dlq.Message(dlq.Letter{Stream: "NOPE", Consumer: "worker", Sequence: seq.Add(1), Subject: "tasks.email.x", Reason: "x"}, 0)
		}},
		{name: "dead-letter stream as origin", problem: "dead-letter stream", msg: func() *nats.Msg {
			return dlq.Message(dlq.Letter{Stream: "DLQ", Consumer: "worker", Sequence: seq.Add(1), Subject: "dlq.TASKS.worker.tasks.x", Reason: "x"}, 0)
		}},
		{name: "subject the stream does not capture", problem: "does not capture", msg: func() *nats.Msg {
			return honest("orders.created")
		}},
		{name: "the stream's delay subject", problem: "delayed tasks", msg: func() *nats.Msg {
			return honest("jetworker.delay.TASKS.x")
		}},
		{name: "subject the consumer does not take", problem: "does not take", msg: func() *nats.Msg {
			return dlq.Message(dlq.Letter{Stream: "TASKS", Consumer: "mailer", Sequence: seq.Add(1), Subject: "tasks.billing.x", Reason: "x"}, 0)
		}},
		{name: "truncated payload", problem: "cut to", msg: func() *nats.Msg {
			m := honest("tasks.email.x")
			m.Header.Set(jetworker.HeaderPayloadTruncated, "5000")
			return m
		}},
	}
	for _, tt := range tests {
		ack, err := b.js.PublishMsg(ctx, tt.msg())
		if err != nil {
			t.Fatalf("%s: plant: %v", tt.name, err)
		}
		e, err := b.store.Get(ctx, ack.Sequence)
		if err != nil {
			t.Fatalf("%s: get: %v", tt.name, err)
		}
		if !strings.Contains(e.Problem, tt.problem) {
			t.Errorf("%s: Problem %q, want it to mention %q", tt.name, e.Problem, tt.problem)
		}
		if _, err := b.store.Replay(ctx, ack.Sequence); !errors.Is(err, dlq.ErrUntrusted) {
			t.Errorf("%s: replay: got %v, want ErrUntrusted", tt.name, err)
		}
		if _, err := b.store.Get(ctx, ack.Sequence); err != nil {
			t.Errorf("%s: the refused entry is gone: %v", tt.name, err)
		}
	}
	if got := msgs(t, b.js, "TASKS"); got != 3 {
		t.Fatalf("TASKS holds %d messages after the refused replays, want the 3 kept tasks", got)
	}
	if n, err := b.store.ReplayMatching(ctx, dlq.Filter{}); n != 0 || !errors.Is(err, dlq.ErrUntrusted) {
		t.Fatalf("replay of every planted entry: replayed %d (%v), want 0 and ErrUntrusted", n, err)
	}
	if got := msgs(t, b.js, "TASKS"); got != 3 {
		t.Fatalf("TASKS holds %d messages after replaying everything, want 3", got)
	}
}

// TestReplayDropsServerDirectives: a trusted entry whose headers carry a
// server directive is replayed without it. (The dead-letter stream itself
// refuses the most harmful ones, such as Nats-Rollup, when they are
// planted; an expected-sequence header it accepts would make the replay
// fail, or worse, if it reached the task stream.)
func TestReplayDropsServerDirectives(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	for range 3 {
		if _, err := b.js.Publish(ctx, "tasks.email.x", []byte("keep")); err != nil {
			t.Fatal(err)
		}
	}
	first := b.letter(t, dlq.Letter{Sequence: 1, Subject: "tasks.email.x", Reason: "x"})
	m := dlq.Message(dlq.Letter{Stream: "TASKS", Consumer: "worker", Sequence: 7, Subject: "tasks.email.x", Data: []byte("x"), Reason: "x"}, 0)
	m.Header.Set(jetstream.ExpectedLastSeqHeader, fmt.Sprint(first))
	ack, err := b.js.PublishMsg(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.store.Replay(ctx, ack.Sequence)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if got := msgs(t, b.js, "TASKS"); got != 4 {
		t.Fatalf("TASKS holds %d messages after the replay, want the 3 old ones and the replayed one", got)
	}
	s, _ := b.js.Stream(ctx, "TASKS")
	stored, err := s.GetMsg(ctx, res.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if v := stored.Header.Get(jetstream.ExpectedLastSeqHeader); v != "" {
		t.Errorf("replayed task carries the directive %s: %s", jetstream.ExpectedLastSeqHeader, v)
	}
}

func TestPurge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := range 3 {
		b.letter(t, dlq.Letter{Consumer: "alpha", Sequence: uint64(i + 1), Subject: "tasks.alpha.x", Reason: "x"})
		b.letter(t, dlq.Letter{Consumer: "beta", Sequence: uint64(i + 10), Subject: "tasks.beta.y", Reason: "x",
			Header: nats.Header{jetworker.HeaderMsgID: {fmt.Sprintf("b%d", i)}}})
	}
	n, err := b.store.Purge(t.Context(), dlq.Filter{TaskID: "b1"})
	if err != nil || n != 1 {
		t.Fatalf("purge by task ID: got %d, %v; want 1", n, err)
	}
	n, err = b.store.Purge(t.Context(), dlq.Filter{Consumer: "alpha"})
	if err != nil || n != 3 {
		t.Fatalf("purge alpha: got %d, %v; want 3", n, err)
	}
	if got := msgs(t, b.js, "DLQ"); got != 2 {
		t.Fatalf("%d dead letters left, want 2", got)
	}
	if err := b.store.Delete(t.Context(), 99999); !errors.Is(err, dlq.ErrNotFound) {
		t.Fatalf("delete of a missing entry: got %v, want ErrNotFound", err)
	}
}

func TestMessageAlwaysFits(t *testing.T) {
	t.Parallel()
	const limit = 4096
	big := strings.Repeat("e", 5000)
	tests := []struct {
		name      string
		data      int
		truncated bool
	}{
		{name: "small", data: 100},
		{name: "fits once the error is cut", data: limit - 900},
		{name: "payload near the limit", data: limit - 50, truncated: true},
		{name: "payload at the limit", data: limit, truncated: true},
	}
	for _, tt := range tests {
		m := dlq.Message(dlq.Letter{Stream: "TASKS", Consumer: "c", Sequence: 1, Subject: "tasks.big", Data: make([]byte, tt.data), Reason: big,
			Header: nats.Header{"X-Tenant": {"acme"}}}, limit)
		size := len(m.Data)
		for k, vs := range m.Header {
			for _, v := range vs {
				size += len(k) + len(v) + 4
			}
		}
		if size+len("NATS/1.0\r\n\r\n") > limit {
			t.Errorf("%s: copy is %d bytes, over the %d limit", tt.name, size, limit)
		}
		if got := m.Header.Get(jetworker.HeaderPayloadTruncated) != ""; got != tt.truncated {
			t.Errorf("%s: truncated %v, want %v", tt.name, got, tt.truncated)
		}
		if !tt.truncated && len(m.Data) != tt.data {
			t.Errorf("%s: payload %d bytes, want the full %d", tt.name, len(m.Data), tt.data)
		}
		if m.Header.Get("X-Tenant") != "acme" {
			t.Errorf("%s: original header lost", tt.name)
		}
	}
}

// A task whose own headers alone exceed the limit next to the dead-letter
// headers still fits: its largest headers are left out (counted in
// Jetworker-Headers-Dropped), every dead-letter header is kept, and the
// entry says it cannot be replayed.
func TestMessageWithHugeHeadersFits(t *testing.T) {
	t.Parallel()
	const limit = 4096
	for _, tt := range []struct {
		name    string
		header  nats.Header
		data    int
		dropped int
		kept    []string
	}{
		{name: "one huge header", header: nats.Header{"X-Blob": {strings.Repeat("b", limit)}, "X-Tenant": {"acme"}, "Jetworker-Task-Id": {"t-1"}},
			data: 100, dropped: 1, kept: []string{"X-Tenant"}},
		{name: "many headers", header: func() nats.Header {
			h := nats.Header{"Jetworker-Task-Id": {"t-1"}}
			for i := range 40 {
				h.Set(fmt.Sprintf("X-H%02d", i), strings.Repeat("h", 100+i))
			}
			return h
		}(), data: 10, dropped: 40 - 26},
	} {
		m := dlq.Message(dlq.Letter{Stream: "TASKS", Consumer: "c", Sequence: 9, Subject: "tasks.big", Header: tt.header,
			Data: make([]byte, tt.data), Reason: "boom", Attempts: 1}, limit)
		if size := wire.HeaderSize(m.Header) + len(m.Data); size > limit {
			t.Errorf("%s: copy is %d bytes, over the %d limit", tt.name, size, limit)
		}
		got, _ := strconv.Atoi(m.Header.Get(jetworker.HeaderHeadersDropped))
		if got < 1 || (tt.dropped > 0 && got > tt.dropped) {
			t.Errorf("%s: %s %d, want 1 to %d", tt.name, jetworker.HeaderHeadersDropped, got, tt.dropped)
		}
		for _, k := range append([]string{jetworker.HeaderTaskID, jetworker.HeaderMsgID, jetworker.HeaderError, jetworker.HeaderAttempts,
			jetworker.HeaderOriginalSubject, jetworker.HeaderOriginalStream, jetworker.HeaderOriginalSeq, jetworker.HeaderConsumer,
			jetworker.HeaderFailedAt}, tt.kept...) {
			if m.Header.Get(k) == "" {
				t.Errorf("%s: header %s lost", tt.name, k)
			}
		}
		if m.Header.Get("X-Blob") != "" {
			t.Errorf("%s: the huge header was kept", tt.name)
		}
		if len(m.Data) != tt.data {
			t.Errorf("%s: payload %d bytes, want the full %d once the headers make room", tt.name, len(m.Data), tt.data)
		}
	}
}

// An empty page has an empty, non-nil list: its JSON is [], not null.
func TestListEmptyPageIsEmptyList(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.letter(t, dlq.Letter{Sequence: 1, Subject: "tasks.x", Reason: "x"})
	for name, f := range map[string]dlq.Filter{
		"no match":   {Subject: "tasks.nothing.>"},
		"by task ID": {TaskID: "nobody"},
		"before all": {Until: time.Now().Add(-time.Hour)},
	} {
		page, err := b.store.List(t.Context(), f, 0, 0)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if page.Entries == nil {
			t.Errorf("%s: Entries is nil, want an empty list", name)
		}
		data, err := json.Marshal(page)
		if err != nil || string(data) != `{"entries":[]}` {
			t.Errorf("%s: JSON %s, %v; want {\"entries\":[]}", name, data, err)
		}
	}
}
