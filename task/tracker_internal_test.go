package task

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
)

// lookupHook is a context that runs f the first time a deadline is
// derived from it: inside Begin, during its record lookup.
type lookupHook struct {
	context.Context
	once sync.Once
	f    func()
}

func (c *lookupHook) Deadline() (time.Time, bool) {
	c.once.Do(c.f)
	return c.Context.Deadline()
}

// TestBeginSeesACancelThatLandsWhileItRuns: a cancel request that arrives
// while Begin looks up a redelivered task's record either skips the task
// or cancels its handler's context; it is never missed.
func TestBeginSeesACancelThatLandsWhileItRuns(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.Start(t, embedded.Config{})
	_, js := embeddedtest.Connect(t, srv)
	s, err := New(js, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Track(t.Context(), Stored{ID: "x", Subject: "tasks.x", Stream: "TASKS", Sequence: 7}); err != nil {
		t.Fatal(err)
	}
	tr := s.NewTracker("w", false)
	tk := &jetworker.Task{ID: "x", Subject: "tasks.x", Stream: "TASKS", Sequence: 7, Delivered: 2,
		Header: nats.Header{jetworker.HeaderTrack: []string{"1"}}}
	ctx := &lookupHook{Context: t.Context(), f: func() { tr.cancel("x", time.Now()) }}
	hctx, _, skip := tr.Begin(ctx, tk)
	if skip != SkipCancelled && !errors.Is(context.Cause(hctx), ErrCancelled) {
		t.Fatalf("a cancel during Begin: skip %v, handler context cause %v; want skipped or cancelled", skip, context.Cause(hctx))
	}
}
