package handlers

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"golang.org/x/time/rate"

	"github.com/jetworker/jetworker"
)

// Middleware wraps a [jetworker.Handler] in another, to add behaviour
// around every task: recovery, timeouts, logging, limits.
//
// A Middleware must call the next handler at most once per task, pass on
// the context it was given (or one derived from it, so values survive),
// and return the next handler's error unchanged or wrapped with %w, so
// that [jetworker.Permanent] and [jetworker.RetryAfter] keep their
// meaning.
type Middleware func(next jetworker.Handler) jetworker.Handler

// Chain composes middleware into one: Chain(m1, m2)(h) is m1(m2(h)), so
// m1 runs outermost. Chain with no middleware returns h unchanged. Chain
// panics if a middleware is nil.
func Chain(mws ...Middleware) Middleware {
	for i, mw := range mws {
		if mw == nil {
			panic(fmt.Sprintf("handlers: Chain: middleware %d is nil", i))
		}
	}
	mws = append([]Middleware(nil), mws...) // the caller may reuse its slice
	return func(h jetworker.Handler) jetworker.Handler {
		for i := len(mws) - 1; i >= 0; i-- {
			h = mws[i](h)
		}
		return h
	}
}

// Recover returns middleware that turns a panic in the next handler into a
// returned [*jetworker.PanicError] carrying the panic value and the stack,
// so the task is retried like any failure. The consumer already recovers
// handler panics into the same error; Recover is for running handlers
// outside a consumer (tests, other frameworks). It does not log: the
// consumer logs every failure once, with the stack of a panic.
func Recover() Middleware {
	return func(next jetworker.Handler) jetworker.Handler {
		return jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) (err error) {
			defer func() {
				if v := recover(); v != nil {
					err = &jetworker.PanicError{Value: v, Stack: debug.Stack()}
				}
			}()
			return next.Handle(ctx, t)
		})
	}
}

// Timeout returns middleware that gives the next handler a context that
// expires after d. The handler must watch its context: Timeout does not
// abandon a handler that ignores it. When the handler fails after its
// deadline passed, the error is wrapped with the timeout, keeping its
// classification; a plain timeout is retried. Timeout panics if d <= 0.
func Timeout(d time.Duration) Middleware {
	if d <= 0 {
		panic(fmt.Sprintf("handlers: Timeout: duration must be > 0, got %s", d))
	}
	return func(next jetworker.Handler) jetworker.Handler {
		return jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			err := next.Handle(ctx, t)
			if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("handler timeout %s: %w", d, err)
			}
			return err
		})
	}
}

// ConcurrencyLimit returns middleware that lets at most n tasks run the
// next handler at once; further tasks wait for a slot. Each handler the
// middleware wraps gets its own limit, so installed with [Mux.Use] it
// limits each pattern separately, and wrapped around a whole [Mux] it
// limits all tasks together. A task whose context ends while it waits
// returns a retryable error wrapping the context's error. ConcurrencyLimit
// panics if n <= 0.
func ConcurrencyLimit(n int) Middleware {
	if n <= 0 {
		panic(fmt.Sprintf("handlers: ConcurrencyLimit: n must be > 0, got %d", n))
	}
	return func(next jetworker.Handler) jetworker.Handler {
		sem := make(chan struct{}, n)
		return jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return fmt.Errorf("wait for concurrency slot: %w", context.Cause(ctx))
			}
			defer func() { <-sem }()
			return next.Handle(ctx, t)
		})
	}
}

// RateLimit returns middleware that admits tasks at r per second on
// average with bursts of up to burst tasks (a token bucket, see
// [rate.Limiter]). A task over the limit waits for its token inside the
// handler call, while the consumer keeps its message alive with heartbeats:
// throttling never costs a delivery, never counts as a failed attempt and
// never dead-letters anything. Only when the wait would outlast the
// handler's deadline (HandlerTimeout shorter than Concurrency/r) does it
// fail at once with a [jetworker.RetryAfter] error wrapping
// [ErrRateLimited] whose delay is the time until a token is free; size
// HandlerTimeout so that it does not.
//
// As with [ConcurrencyLimit], each handler the middleware wraps gets its
// own bucket. RateLimit panics if r <= 0 or burst < 1.
func RateLimit(r rate.Limit, burst int) Middleware {
	if r <= 0 {
		panic(fmt.Sprintf("handlers: RateLimit: rate must be > 0, got %v", r))
	}
	if burst < 1 {
		panic(fmt.Sprintf("handlers: RateLimit: burst must be >= 1, got %d", burst))
	}
	return func(next jetworker.Handler) jetworker.Handler {
		lim := rate.NewLimiter(r, burst)
		return jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
			now := time.Now()
			res := lim.ReserveN(now, 1)
			d := res.DelayFrom(now)
			if d <= 0 {
				return next.Handle(ctx, t)
			}
			if deadline, ok := ctx.Deadline(); ok && deadline.Sub(now) <= d {
				res.CancelAt(now)
				return jetworker.RetryAfter(fmt.Errorf("%w: subject %q: the next token (in %s) is past the handler's deadline", ErrRateLimited, t.Subject, d), d)
			}
			wait := time.NewTimer(d)
			defer wait.Stop()
			select {
			case <-wait.C:
			case <-ctx.Done():
				res.Cancel()
				return fmt.Errorf("wait for rate limit: %w", context.Cause(ctx))
			}
			return next.Handle(ctx, t)
		})
	}
}
