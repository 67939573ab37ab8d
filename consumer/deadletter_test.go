package consumer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/streams"
)

func TestDeadLetterPaths(t *testing.T) {
	t.Parallel()
	type order struct {
		ID int `json:"id"`
	}
	tests := []struct {
		name       string
		data       string
		maxDeliver int
		handler    jetworker.HandlerFunc
		attempts   uint64
		errText    string
	}{
		{
			name: "permanent error", data: `{"id":1}`, maxDeliver: 5, attempts: 1, errText: "card declined",
			handler: func(ctx context.Context, task *jetworker.Task) error {
				return fmt.Errorf("charge: %w", jetworker.Permanent(errors.New("card declined")))
			},
		},
		{
			name: "last attempt fails", data: `{"id":2}`, maxDeliver: 3, attempts: 3, errText: "still down",
			handler: func(ctx context.Context, task *jetworker.Task) error {
				return errors.New("still down")
			},
		},
		{
			name: "undecodable payload", data: `{"id":`, maxDeliver: 5, attempts: 1, errText: "unexpected end of JSON input",
			handler: func(ctx context.Context, task *jetworker.Task) error {
				var o order
				if err := json.Unmarshal(task.Data, &o); err != nil {
					return jetworker.Permanent(err)
				}
				return nil
			},
		},
		{
			name: "handler panic", data: `{"id":4}`, maxDeliver: 2, attempts: 2, errText: "handler panic: runtime error: index out of range [4] with length 4",
			handler: func(ctx context.Context, task *jetworker.Task) error {
				_ = task.Data[len(task.Data)-4:][4] // panics: a bug in the handler
				return nil
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			var calls, hooked atomic.Int64
			h := jetworker.HandlerFunc(func(ctx context.Context, task *jetworker.Task) error {
				calls.Add(1)
				return tt.handler(ctx, task)
			})
			start(t, newConsumer(t, b.js, h, consumer.Config{
				Durable: "orders", MaxDeliver: tt.maxDeliver,
				Backoff: func(int, error) time.Duration { return 10 * time.Millisecond },
				Hooks:   consumer.Hooks{DeadLetterFunc: func(context.Context, *jetworker.Task, string) { hooked.Add(1) }},
			}))
			res, err := b.pub.Publish(t.Context(), "tasks.orders.charge", []byte(tt.data), &publisher.PublishOpts{
				ID: "task-" + tt.name, Header: nats.Header{"X-Tenant": {"acme"}},
			})
			if err != nil {
				t.Fatalf("publish: %v", err)
			}
			dl := waitDeadLetters(t, b.js, 1)[0]

			if want := "dlq.TASKS.orders.tasks.orders.charge"; dl.Subject != want {
				t.Errorf("subject: got %q, want %s", dl.Subject, want)
			}
			if string(dl.Data) != tt.data {
				t.Errorf("data: got %q, want the original %q", dl.Data, tt.data)
			}
			if !strings.Contains(dl.Error, tt.errText) {
				t.Errorf("Jetworker-Error %q does not contain %q", dl.Error, tt.errText)
			}
			checks := map[string]string{
				jetworker.HeaderAttempts:        fmt.Sprint(tt.attempts),
				jetworker.HeaderOriginalSubject: "tasks.orders.charge",
				jetworker.HeaderOriginalStream:  "TASKS",
				jetworker.HeaderOriginalSeq:     fmt.Sprint(res.Sequence),
				jetworker.HeaderConsumer:        "orders",
				jetworker.HeaderTaskID:          "task-" + tt.name,
				"X-Tenant":                      "acme",
			}
			for k, want := range checks {
				if got := dl.Header.Get(k); got != want {
					t.Errorf("header %s: got %q, want %q", k, got, want)
				}
			}
			if at, err := time.Parse(time.RFC3339Nano, dl.Header.Get(jetworker.HeaderFailedAt)); err != nil || time.Since(at) > time.Minute {
				t.Errorf("Jetworker-Failed-At %q: want a recent RFC 3339 time", dl.Header.Get(jetworker.HeaderFailedAt))
			}
			if got := calls.Load(); got != int64(tt.attempts) {
				t.Errorf("handler ran %d times, want %d", got, tt.attempts)
			}
			testutil.Eventually(t, 5*time.Second, func() error {
				if n := hooked.Load(); n != 1 {
					return fmt.Errorf("DeadLetterFunc called %d times, want 1", n)
				}
				return nil
			})
			testutil.Eventually(t, 5*time.Second, func() error {
				if m := streamMsgs(t, b.js, "TASKS"); m != 0 {
					return fmt.Errorf("TASKS still holds %d messages", m)
				}
				return nil
			})
		})
	}
}

func TestMaxDeliveriesWithoutHandlerResult(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := consumer.Config{Durable: "crashy", AckWait: 500 * time.Millisecond, HeartbeatInterval: 100 * time.Millisecond, MaxDeliver: 2}
	raw, err := consumer.Provision(t.Context(), b.js, cfg)
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	res := publish(t, b.pub, "tasks.crashy", "payload", "crash-1")

	// A worker that takes the message and dies, twice.
	for i := 1; i <= 2; i++ {
		batch, err := raw.Fetch(1, jetstream.FetchMaxWait(3*time.Second))
		if err != nil {
			t.Fatalf("fetch %d: %v", i, err)
		}
		var got int
		for range batch.Messages() {
			got++
		}
		if got != 1 {
			t.Fatalf("fetch %d: got %d messages, want 1 (%v)", i, got, batch.Error())
		}
	}

	var calls atomic.Int64
	hooked := make(chan string, 2)
	cfg.Hooks.DeadLetterFunc = func(_ context.Context, task *jetworker.Task, reason string) {
		hooked <- task.ID + ": " + reason
	}
	start(t, newConsumer(t, b.js, jetworker.HandlerFunc(func(context.Context, *jetworker.Task) error {
		calls.Add(1)
		return nil
	}), cfg))
	dl := waitDeadLetters(t, b.js, 1)[0]
	select {
	case got := <-hooked:
		if !strings.HasPrefix(got, "crash-1: max deliveries") {
			t.Errorf("DeadLetterFunc got %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Error("DeadLetterFunc not called for the advisory path")
	}
	if dl.Attempts != 2 || dl.OriginalSequence != res.Sequence || dl.TaskID != "crash-1" || string(dl.Data) != "payload" {
		t.Fatalf("dead letter: got attempts=%d seq=%d id=%q data=%q", dl.Attempts, dl.OriginalSequence, dl.TaskID, dl.Data)
	}
	if !strings.Contains(dl.Error, "max deliveries") {
		t.Fatalf("error %q does not mention max deliveries", dl.Error)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if m := streamMsgs(t, b.js, "TASKS"); m != 0 {
			return fmt.Errorf("TASKS still holds %d messages", m)
		}
		return nil
	})
	if calls.Load() != 0 {
		t.Fatalf("handler ran %d times on a message past MaxDeliver", calls.Load())
	}
}

func TestDeadLetterPublishFailureKeepsTask(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.Start(t, embedded.Config{})
	_, js := embeddedtest.Connect(t, srv)
	// A task stream but no dead-letter stream.
	if _, err := streams.Ensure(t.Context(), js, streams.Tasks{}.StreamConfig()); err != nil {
		t.Fatalf("stream: %v", err)
	}
	pub, _ := publisher.New(js, publisher.Config{})
	calls := make(chan uint64, 10)
	start(t, newConsumer(t, js, jetworker.HandlerFunc(func(ctx context.Context, task *jetworker.Task) error {
		calls <- task.Delivered
		return jetworker.Permanent(errors.New("bad task"))
	}), consumer.Config{MaxDeliver: 10, Backoff: func(int, error) time.Duration { return 50 * time.Millisecond }}))
	publish(t, pub, "tasks.nodlq", "x", "keep-me")
	for want := uint64(1); want <= 2; want++ {
		select {
		case got := <-calls:
			if got != want {
				t.Fatalf("delivery %d, want %d", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("task not delivered again after the dead-letter publish failed (want delivery %d)", want)
		}
	}
	if m := streamMsgs(t, js, "TASKS"); m != 1 {
		t.Fatalf("TASKS holds %d messages, want the task kept", m)
	}
}
