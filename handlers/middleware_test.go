package handlers_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/handlers"
)

// stockMiddleware lists every stock middleware, configured so that a
// single task passes through to the next handler. The conformance test
// runs each through the same checks.
func stockMiddleware() []struct {
	name string
	mw   handlers.Middleware
} {
	return []struct {
		name string
		mw   handlers.Middleware
	}{
		{"Recover", handlers.Recover()},
		{"Timeout", handlers.Timeout(time.Minute)},
		{"ConcurrencyLimit", handlers.ConcurrencyLimit(1)},
		{"RateLimit", handlers.RateLimit(rate.Inf, 1)},
		{"Chain of all", handlers.Chain(
			handlers.Recover(), handlers.Timeout(time.Minute),
			handlers.ConcurrencyLimit(1), handlers.RateLimit(rate.Inf, 1),
		)},
		{"empty Chain", handlers.Chain()},
	}
}

type ctxKey struct{}

func TestMiddlewareConformance(t *testing.T) {
	t.Parallel()
	errBoom := errors.New("boom")
	results := []struct {
		name          string
		ret           error
		wantPermanent bool
		wantDelay     time.Duration // > 0: want a RetryError with this delay
	}{
		{"nil passes through", nil, false, 0},
		{"plain error", errBoom, false, 0},
		{"permanent", jetworker.Permanent(errBoom), true, 0},
		{"retry after", jetworker.RetryAfter(errBoom, 7*time.Second), false, 7 * time.Second},
		{"wrapped permanent", errors.Join(errors.New("context"), jetworker.Permanent(errBoom)), true, 0},
	}
	for _, m := range stockMiddleware() {
		for _, r := range results {
			t.Run(m.name+"/"+r.name, func(t *testing.T) {
				t.Parallel()
				task := &jetworker.Task{Subject: "tasks.conformance", ID: "id-1", Delivered: 1}
				var calls atomic.Int32
				var sawValue any
				var sawTask *jetworker.Task
				next := jetworker.HandlerFunc(func(ctx context.Context, got *jetworker.Task) error {
					calls.Add(1)
					sawValue = ctx.Value(ctxKey{})
					sawTask = got
					return r.ret
				})
				ctx := context.WithValue(t.Context(), ctxKey{}, "kept")

				err := m.mw(next).Handle(ctx, task)

				if got := calls.Load(); got != 1 {
					t.Errorf("next called %d times, want exactly 1 for an admitted task", got)
				}
				if sawValue != "kept" {
					t.Errorf("next saw context value %v, want %q", sawValue, "kept")
				}
				if sawTask != task {
					t.Errorf("next got task %p, want the same task %p", sawTask, task)
				}
				if r.ret == nil {
					if err != nil {
						t.Errorf("got %v, want nil", err)
					}
					return
				}
				if !errors.Is(err, errBoom) {
					t.Errorf("got %v, want it to wrap the handler's error", err)
				}
				if got := jetworker.IsPermanent(err); got != r.wantPermanent {
					t.Errorf("IsPermanent(%v) = %t, want %t", err, got, r.wantPermanent)
				}
				var retry *jetworker.RetryError
				switch {
				case r.wantDelay > 0 && !errors.As(err, &retry):
					t.Errorf("got %v, want a RetryError", err)
				case r.wantDelay > 0 && retry.Delay != r.wantDelay:
					t.Errorf("got delay %s, want %s", retry.Delay, r.wantDelay)
				case r.wantDelay == 0 && errors.As(err, &retry):
					t.Errorf("got RetryError %v, want none", err)
				}
			})
		}
	}
}

func TestChainOrder(t *testing.T) {
	t.Parallel()
	var order []string
	trace := func(name string) handlers.Middleware {
		return func(next jetworker.Handler) jetworker.Handler {
			return jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
				order = append(order, name)
				return next.Handle(ctx, t)
			})
		}
	}
	h := handlers.Chain(trace("m1"), trace("m2"), trace("m3"))(jetworker.HandlerFunc(
		func(ctx context.Context, t *jetworker.Task) error { order = append(order, "h"); return nil }))
	if err := h.Handle(t.Context(), &jetworker.Task{}); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(order, ","), "m1,m2,m3,h"; got != want {
		t.Errorf("order %s, want %s", got, want)
	}
}

func TestMiddlewareConstructorPanics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		build     func()
		wantPanic string
	}{
		{"Chain with nil", func() { handlers.Chain(handlers.Recover(), nil) }, "middleware 1 is nil"},
		{"Timeout zero", func() { handlers.Timeout(0) }, "duration must be > 0"},
		{"ConcurrencyLimit zero", func() { handlers.ConcurrencyLimit(0) }, "n must be > 0"},
		{"RateLimit zero rate", func() { handlers.RateLimit(0, 1) }, "rate must be > 0"},
		{"RateLimit zero burst", func() { handlers.RateLimit(1, 0) }, "burst must be >= 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := catchPanic(tt.build); !strings.Contains(got, tt.wantPanic) {
				t.Errorf("got panic %q, want one containing %q", got, tt.wantPanic)
			}
		})
	}
}

func TestRecover(t *testing.T) {
	t.Parallel()
	errCause := errors.New("cause")
	tests := []struct {
		name  string
		value any
	}{
		{"string value", "kaboom"},
		{"error value", errCause},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := handlers.Recover()(jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
				panicInHandler(tt.value)
				return nil
			}))
			err := h.Handle(t.Context(), &jetworker.Task{})
			var pe *jetworker.PanicError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a *PanicError", err)
			}
			if pe.Value != tt.value {
				t.Errorf("panic value %v, want %v", pe.Value, tt.value)
			}
			if !strings.Contains(string(pe.Stack), "panicInHandler") {
				t.Errorf("stack does not name the panicking function:\n%s", pe.Stack)
			}
			if jetworker.IsPermanent(err) {
				t.Errorf("got a permanent error, want a panic to be retried")
			}
			if got := errors.Is(err, errCause); got != (tt.value == errCause) {
				t.Errorf("errors.Is(err, cause) = %t, want %t", got, tt.value == errCause)
			}
		})
	}
}

func panicInHandler(v any) { panic(v) }

func TestTimeout(t *testing.T) {
	t.Parallel()
	h := handlers.Timeout(time.Millisecond)(jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
		if _, ok := ctx.Deadline(); !ok {
			return errors.New("no deadline")
		}
		<-ctx.Done()
		return ctx.Err()
	}))
	err := h.Handle(t.Context(), &jetworker.Task{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
	if jetworker.IsPermanent(err) {
		t.Errorf("got a permanent error, want a timeout to be retried")
	}
	if !strings.Contains(err.Error(), "handler timeout 1ms") {
		t.Errorf("got %q, want it to name the timeout", err)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	release := make(chan struct{})
	h := handlers.ConcurrencyLimit(2)(jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
		entered <- struct{}{}
		<-release
		return nil
	}))

	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { _ = h.Handle(context.Background(), &jetworker.Task{}) })
	}
	<-entered
	<-entered

	// Both slots are taken, so a third task can only end by its context.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := h.Handle(ctx, &jetworker.Task{})
	if !errors.Is(err, context.Canceled) || jetworker.IsPermanent(err) {
		t.Errorf("third task: got %v, want a retryable error wrapping context.Canceled", err)
	}

	close(release)
	wg.Wait()
	go func() { <-entered }()
	if err := h.Handle(t.Context(), &jetworker.Task{}); err != nil {
		t.Errorf("after release: got %v, want nil", err)
	}
}

func TestConcurrencyLimitIsPerPatternInMux(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	release := make(chan struct{})
	mux := handlers.NewMux()
	mux.Use(handlers.ConcurrencyLimit(1))
	mux.RouteFunc("tasks.slow", func(ctx context.Context, t *jetworker.Task) error {
		entered <- struct{}{}
		<-release
		return nil
	})
	mux.RouteFunc("tasks.fast", func(ctx context.Context, t *jetworker.Task) error { return nil })

	done := make(chan error)
	go func() { done <- mux.Handle(context.Background(), &jetworker.Task{Subject: "tasks.slow"}) }()
	<-entered

	if err := mux.Handle(t.Context(), &jetworker.Task{Subject: "tasks.fast"}); err != nil {
		t.Errorf("tasks.fast while tasks.slow holds its slot: got %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := mux.Handle(ctx, &jetworker.Task{Subject: "tasks.slow"}); !errors.Is(err, context.Canceled) {
		t.Errorf("second tasks.slow: got %v, want it to wait for the pattern's only slot", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("first tasks.slow: got %v, want nil", err)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		h := handlers.RateLimit(2, 1)(jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
			calls.Add(1)
			return nil
		}))
		task := &jetworker.Task{Subject: "tasks.limited"}

		start := time.Now()
		for i := range 3 {
			if err := h.Handle(t.Context(), task); err != nil {
				t.Fatalf("task %d: got %v, want it to wait for its token and run", i, err)
			}
		}
		// Two tasks per second, a burst of one: the third starts 1s after
		// the first.
		if took := time.Since(start); took != time.Second {
			t.Errorf("three tasks took %s, want 1s at 2 per second", took)
		}
		if got := calls.Load(); got != 3 {
			t.Errorf("next called %d times, want 3", got)
		}

		// A handler deadline nearer than the next token: the task is not
		// run and asks to be retried when the token is free.
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		_ = h.Handle(t.Context(), task) // takes the token of now
		err := h.Handle(ctx, task)
		var retry *jetworker.RetryError
		if !errors.As(err, &retry) || !errors.Is(err, handlers.ErrRateLimited) || retry.Delay != 500*time.Millisecond {
			t.Fatalf("past the deadline: got %v, want a RetryAfter of 500ms wrapping ErrRateLimited", err)
		}

		// A task whose context ends while it waits gives its token back.
		ctx2, cancel2 := context.WithCancel(t.Context())
		go func() {
			time.Sleep(100 * time.Millisecond)
			cancel2()
		}()
		if err := h.Handle(ctx2, task); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled while waiting: got %v, want context.Canceled", err)
		}
	})
}
