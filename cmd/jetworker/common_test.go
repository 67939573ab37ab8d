package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/schedule"
)

func TestCleanStop(t *testing.T) {
	t.Parallel()
	live := t.Context()
	done, cancel := context.WithCancel(t.Context())
	cancel()
	boom := errors.New("boom")
	startUp := fmt.Errorf("schedule: provision bucket %q: %w", "jetworker_leases", context.Canceled)
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want error
	}{
		{name: "nil stays nil", ctx: done, err: nil, want: nil},
		{name: "cancelled during start-up, after the stop", ctx: done, err: startUp, want: nil},
		{name: "cancelled during start-up, joined", ctx: done, err: errors.Join(startUp, context.Canceled), want: nil},
		{name: "a real failure stays, after the stop", ctx: done, err: boom, want: boom},
		{name: "a real failure joined to a cancellation stays alone", ctx: done, err: errors.Join(startUp, boom), want: boom},
		{name: "a cancellation while ctx is live is a failure", ctx: live, err: startUp, want: startUp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := cleanStop(tt.ctx, tt.err)
			if (got == nil) != (tt.want == nil) || (got != nil && got.Error() != tt.want.Error()) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// A scheduler stopped while it binds its buckets returns "context
// canceled"; the commands that run it stop cleanly all the same.
func TestSchedulerStoppedDuringStartUpIsACleanStop(t *testing.T) {
	t.Parallel()
	js := embeddedtest.JetStream(t)
	newScheduler := func() jetworker.Runner {
		s, err := schedule.New(js, schedule.Config{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := jetworker.RunAll(ctx, newScheduler()); !errors.Is(err, context.Canceled) {
		t.Logf("the scheduler now stops cleanly during start-up by itself (got %v): this test still checks runAll", err)
	}
	if err := runAll(ctx, newScheduler()); err != nil {
		t.Fatalf("runAll stopped during start-up: got %v, want nil", err)
	}
}

// dev stopped as soon as it prints its banner, with its scheduler still
// starting, exits 0.
func TestDevStoppedDuringStartUpExitsZero(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &cancelOnWrite{cancel: cancel}
	var errb bytes.Buffer
	std := newStdio(strings.NewReader(""), out, &errb, false)
	code := run(ctx, std, []string{"dev", "--port", "-1", "--http-addr", "", "--no-demo", "--data-dir", t.TempDir(), "--log-format", "json"})
	if code != exitOK {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "jetworker dev") {
		t.Fatalf("dev printed no banner before its stop:\n%s", out.String())
	}
}

// cancelOnWrite cancels on its first write and keeps what is written.
type cancelOnWrite struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	cancel context.CancelFunc
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancel()
	return w.buf.Write(p)
}

func (w *cancelOnWrite) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
