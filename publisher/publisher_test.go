package publisher_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/streams"
)

type testBundle struct {
	js  jetstream.JetStream
	pub *publisher.Publisher
}

// setup starts a server, provisions the default streams and returns a
// publisher on them.
func setup(t *testing.T, cfg publisher.Config) testBundle {
	t.Helper()
	js := embeddedtest.JetStream(t)
	if err := streams.Provision(t.Context(), js, streams.Config{}); err != nil {
		t.Fatalf("provision: %v", err)
	}
	pub, err := publisher.New(js, cfg)
	if err != nil {
		t.Fatalf("new publisher: %v", err)
	}
	return testBundle{js: js, pub: pub}
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatalf("stream info %s: %v", name, err)
	}
	return info.State.Msgs
}

func TestPublishAsyncStoresEveryTask(t *testing.T) {
	t.Parallel()
	var acked, dups atomic.Int64
	b := setup(t, publisher.Config{MaxInFlight: 256, Hooks: publisher.Hooks{ResultFunc: func(_ string, r publisher.Result, err error) {
		if err == nil {
			acked.Add(1)
			if r.Duplicate {
				dups.Add(1)
			}
		}
	}}})
	const n = 10_000
	payload := bytes.Repeat([]byte("x"), 128)
	for i := range n {
		if _, err := b.pub.PublishAsync(t.Context(), fmt.Sprintf("tasks.bulk.%d", i%7), payload, nil); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		if in := b.pub.InFlight(); in > 256 {
			t.Fatalf("in flight %d, want <= 256", in)
		}
	}
	if err := b.pub.Wait(t.Context()); err != nil {
		t.Fatalf("wait: %v", err)
	}
	if got := b.pub.InFlight(); got != 0 {
		t.Fatalf("in flight after Wait: got %d, want 0", got)
	}
	if got := streamMsgs(t, b.js, "TASKS"); got != n {
		t.Fatalf("stream holds %d messages, want %d", got, n)
	}
	if acked.Load() != n || dups.Load() != 0 {
		t.Fatalf("ResultFunc saw %d acks (%d duplicates), want %d (0)", acked.Load(), dups.Load(), n)
	}
}

func TestPublishDuplicateIDStoresOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, publisher.Config{})
	opts := &publisher.PublishOpts{ID: "order-42"}
	first, err := b.pub.Publish(t.Context(), "tasks.email", []byte(`{"n":1}`), opts)
	if err != nil {
		t.Fatalf("first publish: %v", err)
	}
	second, err := b.pub.Publish(t.Context(), "tasks.email", []byte(`{"n":1}`), opts)
	if err != nil {
		t.Fatalf("second publish: %v", err)
	}
	if first.Duplicate || !second.Duplicate {
		t.Fatalf("duplicate flags: got first=%v second=%v, want false, true", first.Duplicate, second.Duplicate)
	}
	if first.ID != "order-42" || second.Sequence != first.Sequence {
		t.Fatalf("got ids %q/%q seqs %d/%d, want the same stored message", first.ID, second.ID, first.Sequence, second.Sequence)
	}
	if got := streamMsgs(t, b.js, "TASKS"); got != 1 {
		t.Fatalf("stream holds %d messages, want 1", got)
	}
}

func TestPublishSetsHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t, publisher.Config{})
	res, err := b.pub.Publish(t.Context(), "tasks.hdr", []byte("x"), &publisher.PublishOpts{
		Header: nats.Header{"X-Tenant": []string{"acme"}},
	})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if res.ID != "" {
		t.Fatalf("ID of a publish without one: got %q, want none", res.ID)
	}
	s, _ := b.js.Stream(t.Context(), "TASKS")
	m, err := s.GetMsg(t.Context(), res.Sequence)
	if err != nil {
		t.Fatalf("get msg: %v", err)
	}
	if got := m.Header.Get(jetworker.HeaderMsgID); got != "" {
		t.Errorf("Nats-Msg-Id on a task without an ID: got %q, want none", got)
	}
	if got := m.Header.Get("X-Tenant"); got != "acme" {
		t.Errorf("X-Tenant: got %q, want acme", got)
	}
	if got := m.Header.Get(jetworker.HeaderEnqueuedAt); got != "" {
		t.Errorf("Enqueued-At on an immediate task: got %q, want none (the stored time is its enqueue time)", got)
	}
}

func TestGeneratedIDsAreTimeOrdered(t *testing.T) {
	t.Parallel()
	b := setup(t, publisher.Config{IDFunc: publisher.NewID})
	prev := ""
	for i := range 50 {
		r, err := b.pub.Publish(t.Context(), "tasks.order", nil, nil)
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		if u, err := uuid.Parse(r.ID); err != nil || u.Version() != 7 {
			t.Fatalf("generated ID %q, want a UUIDv7 (%v)", r.ID, err)
		}
		if r.ID <= prev {
			t.Fatalf("ID %q after %q: want increasing IDs", r.ID, prev)
		}
		prev = r.ID
	}
}

func TestDelayedTaskIsReleasedOnTime(t *testing.T) {
	t.Parallel()
	b := setup(t, publisher.Config{})
	cons, err := b.js.CreateOrUpdateConsumer(t.Context(), "TASKS", jetstream.ConsumerConfig{
		Durable: "delayed", FilterSubject: "tasks.>", AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	const delay = 2 * time.Second
	start := time.Now()
	res, err := b.pub.Publish(t.Context(), "tasks.later", []byte("hello"), &publisher.PublishOpts{ID: "later-1", Delay: delay})
	if err != nil {
		t.Fatalf("publish delayed: %v", err)
	}
	msgs, err := cons.Fetch(1, jetstream.FetchMaxWait(delay+3*time.Second))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	var got jetstream.Msg
	for m := range msgs.Messages() {
		got = m
	}
	if got == nil {
		t.Fatalf("delayed task not delivered: %v", msgs.Error())
	}
	elapsed := time.Since(start)
	if elapsed < delay {
		t.Fatalf("delivered after %s, before its delay of %s", elapsed, delay)
	}
	if elapsed > delay+time.Second {
		t.Fatalf("delivered after %s, want within 1s after %s", elapsed, delay)
	}
	if got.Subject() != "tasks.later" || string(got.Data()) != "hello" {
		t.Fatalf("got %s %q, want tasks.later \"hello\"", got.Subject(), got.Data())
	}
	if id := jetworker.TaskID(got.Headers()); id != res.ID {
		t.Fatalf("task ID on released task: got %q, want %q", id, res.ID)
	}
	at, err := time.Parse(time.RFC3339Nano, got.Headers().Get(jetworker.HeaderEnqueuedAt))
	if err != nil || at.Before(start.Add(delay-time.Millisecond)) || at.After(start.Add(delay+time.Second)) {
		t.Errorf("Enqueued-At on released task: got %q (%v), want its due time, about %s", got.Headers().Get(jetworker.HeaderEnqueuedAt), err, start.Add(delay))
	}
	_ = got.Ack()
}

func TestPublishBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t, publisher.Config{})
	// A stream without message schedules, for the delay case.
	if _, err := b.js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "PLAIN", Subjects: []string{"plain.>"}}); err != nil {
		t.Fatalf("create PLAIN: %v", err)
	}
	max := int(b.js.Conn().MaxPayload())

	tests := []struct {
		name    string
		subject string
		data    []byte
		opts    *publisher.PublishOpts
		want    error
		wantIn  string
	}{
		{name: "empty subject", subject: "", want: jetworker.ErrInvalidSubject},
		{name: "wildcard subject", subject: "tasks.*", want: jetworker.ErrInvalidSubject, wantIn: `"tasks.*"`},
		{name: "full wildcard", subject: "tasks.>", want: jetworker.ErrInvalidSubject},
		{name: "space in subject", subject: "tasks.a b", want: jetworker.ErrInvalidSubject},
		{name: "empty token", subject: "tasks..a", want: jetworker.ErrInvalidSubject},
		{name: "JetStream API: purge", subject: "$JS.API.STREAM.PURGE.TASKS", want: jetworker.ErrReservedSubject},
		{name: "JetStream API: delete", subject: "$JS.API.STREAM.DELETE.DLQ", want: jetworker.ErrReservedSubject},
		{name: "KV", subject: "$KV.jetworker_leases.scheduler", want: jetworker.ErrReservedSubject},
		{name: "object store", subject: "$O.bucket.C.x", want: jetworker.ErrReservedSubject},
		{name: "system", subject: "$SYS.REQ.ACCOUNT.PING.CONNZ", want: jetworker.ErrReservedSubject},
		{name: "any dollar subject", subject: "$X", want: jetworker.ErrReservedSubject},
		{name: "an inbox", subject: "_INBOX.xyz", want: jetworker.ErrReservedSubject},
		{name: "the delay subject", subject: "jetworker.delay.TASKS.x", want: jetworker.ErrReservedSubject},
		{name: "control characters", subject: "tasks.\x1b]0;pwned\x07", want: jetworker.ErrInvalidSubject},
		{name: "roll-up header", subject: "tasks.x", opts: &publisher.PublishOpts{Header: nats.Header{"Nats-Rollup": {"all"}}}, want: publisher.ErrInvalidOptions},
		{name: "TTL header", subject: "tasks.x", opts: &publisher.PublishOpts{Header: nats.Header{"nats-ttl": {"1s"}}}, want: publisher.ErrInvalidOptions},
		{name: "schedule header", subject: "tasks.x", opts: &publisher.PublishOpts{Header: nats.Header{"Nats-Schedule": {"@every 1s"}}}, want: publisher.ErrInvalidOptions},
		{name: "jetworker header", subject: "tasks.x", opts: &publisher.PublishOpts{Header: nats.Header{"Jetworker-Task-Id": {"x"}}}, want: publisher.ErrInvalidOptions},
		{name: "no stream captures subject", subject: "nowhere.at.all", want: publisher.ErrNoStream, wantIn: `"nowhere.at.all"`},
		{name: "payload above max payload", subject: "tasks.big", data: make([]byte, max+1), want: publisher.ErrPayloadTooLarge, wantIn: fmt.Sprintf("max payload %d bytes", max)},
		{name: "delay on stream without schedules", subject: "plain.x", opts: &publisher.PublishOpts{Delay: time.Second}, want: publisher.ErrDelayNotSupported, wantIn: `"PLAIN"`},
		{name: "delay on subject without stream", subject: "nowhere.x", opts: &publisher.PublishOpts{Delay: time.Second}, want: publisher.ErrNoStream},
		{name: "delay and at", subject: "tasks.x", opts: &publisher.PublishOpts{Delay: time.Second, At: time.Now()}, want: publisher.ErrInvalidOptions},
		{name: "negative delay", subject: "tasks.x", opts: &publisher.PublishOpts{Delay: -time.Second}, want: publisher.ErrInvalidOptions},
		{name: "sub-second TTL", subject: "tasks.x", opts: &publisher.PublishOpts{TTL: time.Millisecond}, want: publisher.ErrInvalidOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, async := range []bool{false, true} {
				var err error
				if async {
					_, err = b.pub.PublishAsync(t.Context(), tt.subject, tt.data, tt.opts)
					if err == nil {
						err = b.pub.Wait(t.Context())
					}
				} else {
					_, err = b.pub.Publish(t.Context(), tt.subject, tt.data, tt.opts)
				}
				if !errors.Is(err, tt.want) {
					t.Fatalf("async=%v: got error %v, want %v", async, err, tt.want)
				}
				if errors.Is(err, publisher.ErrOutcomeUnknown) {
					t.Fatalf("async=%v: error %v claims the message may be stored", async, err)
				}
				if tt.wantIn != "" && !strings.Contains(err.Error(), tt.wantIn) {
					t.Fatalf("async=%v: error %q does not mention %s", async, err, tt.wantIn)
				}
			}
		})
	}
	if got := streamMsgs(t, b.js, "TASKS"); got != 0 {
		t.Fatalf("TASKS holds %d messages after bad publishes, want 0", got)
	}
}

func TestPublishContextEndsBeforeAck(t *testing.T) {
	t.Parallel()
	b := setup(t, publisher.Config{})

	t.Run("cancelled before sending is not stored", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := b.pub.Publish(ctx, "tasks.x", nil, nil)
		if !errors.Is(err, context.Canceled) || errors.Is(err, publisher.ErrOutcomeUnknown) {
			t.Fatalf("got %v, want context.Canceled without ErrOutcomeUnknown", err)
		}
	})

	t.Run("deadline while waiting for the ack may be stored", func(t *testing.T) {
		// A core subscriber takes the message and never replies, as a
		// stream whose ack is lost would.
		sub, err := b.js.Conn().SubscribeSync("blackhole.>")
		if err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		defer sub.Unsubscribe()
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		_, err = b.pub.Publish(ctx, "blackhole.x", []byte("maybe"), nil)
		if !errors.Is(err, publisher.ErrOutcomeUnknown) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want ErrOutcomeUnknown wrapping context.DeadlineExceeded", err)
		}
		if _, err := sub.NextMsg(time.Second); err != nil {
			t.Fatalf("the message was not sent: %v", err)
		}
	})
}

func TestPublishJSON(t *testing.T) {
	t.Parallel()
	b := setup(t, publisher.Config{})
	type welcome struct {
		Email string `json:"email"`
	}
	res, err := publisher.PublishJSON(t.Context(), b.pub, "tasks.welcome", welcome{Email: "a@example.com"}, nil)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	s, _ := b.js.Stream(t.Context(), "TASKS")
	m, err := s.GetMsg(t.Context(), res.Sequence)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got, want := string(m.Data), `{"email":"a@example.com"}`; got != want {
		t.Fatalf("data: got %s, want %s", got, want)
	}
	if _, err := publisher.PublishJSON(t.Context(), b.pub, "tasks.bad", make(chan int), nil); err == nil {
		t.Fatal("encoding a channel: got nil error, want an encode error")
	}
}

func TestPublishTTL(t *testing.T) {
	t.Parallel()
	b := setup(t, publisher.Config{})
	if _, err := b.pub.Publish(t.Context(), "tasks.ttl", []byte("x"), &publisher.PublishOpts{TTL: time.Second}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := streamMsgs(t, b.js, "TASKS"); n != 0 {
			return fmt.Errorf("stream still holds %d messages", n)
		}
		return nil
	})
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	js := embeddedtest.JetStream(t)
	_, err := publisher.New(js, publisher.Config{MaxInFlight: -1, AsyncAckTimeout: -time.Second})
	if err == nil || !strings.Contains(err.Error(), "MaxInFlight") || !strings.Contains(err.Error(), "AsyncAckTimeout") {
		t.Fatalf("got %v, want errors naming MaxInFlight and AsyncAckTimeout", err)
	}
	if _, err := publisher.New(nil, publisher.Config{}); err == nil {
		t.Fatal("nil JetStream: got nil error")
	}
}

func TestHeaderFuncAddsContextHeaders(t *testing.T) {
	t.Parallel()
	type key struct{}
	b := setup(t, publisher.Config{HeaderFunc: func(ctx context.Context, h nats.Header) {
		if v, ok := ctx.Value(key{}).(string); ok {
			h.Set("traceparent", v)
		}
	}})
	ctx := context.WithValue(t.Context(), key{}, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	res, err := b.pub.Publish(ctx, "tasks.traced", nil, nil)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	s, _ := b.js.Stream(t.Context(), "TASKS")
	m, err := s.GetMsg(t.Context(), res.Sequence)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got := m.Header.Get("traceparent"); got != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" {
		t.Fatalf("traceparent: got %q", got)
	}
}

// TestTaskWithoutIDCarriesNoHeaders: a plain publish is what raw nats.go
// would send, so any NATS client can publish first-class tasks and the
// fast path pays for nothing it does not use.
func TestTaskWithoutIDCarriesNoHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t, publisher.Config{})
	res, err := b.pub.Publish(t.Context(), "tasks.plain", []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.ID != "" || res.Ref() != jetworker.Ref("TASKS", res.Sequence) {
		t.Fatalf("result %+v (ref %s): want no ID and ref TASKS/<seq>", res, res.Ref())
	}
	id, err := b.pub.PublishAsync(t.Context(), "tasks.plain", []byte("y"), nil)
	if err != nil || id != "" {
		t.Fatalf("async: got id %q, %v; want none", id, err)
	}
	if err := b.pub.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	s, _ := b.js.Stream(t.Context(), "TASKS")
	for seq := uint64(1); seq <= 2; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		for k := range m.Header {
			switch k {
			case jetstream.StreamHeader, jetstream.SequenceHeader, jetstream.TimeStampHeaer, jetstream.SubjectHeader:
				// added by the direct get that read it
			default:
				t.Errorf("task %d carries header %s: want none", seq, k)
			}
		}
	}
}

func TestResultHookSeesEveryOutcome(t *testing.T) {
	t.Parallel()
	type seen struct {
		subject string
		dup     bool
		failed  bool
	}
	got := make(chan seen, 10)
	b := setup(t, publisher.Config{Hooks: publisher.Hooks{ResultFunc: func(subject string, r publisher.Result, err error) {
		got <- seen{subject, r.Duplicate, err != nil}
	}}})
	opts := &publisher.PublishOpts{ID: "once"}
	_, _ = b.pub.Publish(t.Context(), "tasks.a", nil, opts)
	_, _ = b.pub.Publish(t.Context(), "tasks.a", nil, opts)
	_, _ = b.pub.Publish(t.Context(), "nowhere.b", nil, nil)
	if _, err := b.pub.PublishAsync(t.Context(), "tasks.c", nil, &publisher.PublishOpts{Delay: time.Minute}); err != nil {
		t.Fatal(err)
	}
	_ = b.pub.Wait(t.Context())
	_, _ = b.pub.Publish(t.Context(), "$JS.API.INFO", nil, nil) // refused before building: no outcome
	want := []seen{{"tasks.a", false, false}, {"tasks.a", true, false}, {"nowhere.b", false, true}, {"tasks.c", false, false}}
	for i, w := range want {
		select {
		case s := <-got:
			if s != w {
				t.Errorf("outcome %d: got %+v, want %+v", i, s, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("outcome %d not reported", i)
		}
	}
	select {
	case s := <-got:
		t.Fatalf("an extra outcome: %+v", s)
	default:
	}
}
