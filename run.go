package jetworker

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Runner is a long-running part: a consumer, a scheduler, a dashboard
// server. Run blocks until ctx is cancelled, shuts down gracefully and
// returns nil, or returns the error that stopped it.
type Runner interface {
	Run(ctx context.Context) error
}

// RunnerFunc adapts a function to the [Runner] interface.
type RunnerFunc func(ctx context.Context) error

// Run calls f(ctx).
func (f RunnerFunc) Run(ctx context.Context) error { return f(ctx) }

// RunAll runs every part in its own goroutine and blocks until all have
// returned. When one part returns an error, RunAll cancels the context of
// the others and, once they have all stopped, returns the first error as
// the part returned it (later errors are joined to it, except those that
// only report the cancellation). A part that returns nil while ctx is
// still live does not stop the others. Cancelling ctx stops every part;
// RunAll then returns nil if they all shut down cleanly.
func RunAll(ctx context.Context, parts ...Runner) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i, p := range parts {
		if p == nil {
			return fmt.Errorf("jetworker: RunAll part %d is nil", i)
		}
	}
	for _, p := range parts {
		wg.Go(func() {
			err := p.Run(ctx)
			if err == nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			// A part cut short by our own cancel only echoes the first
			// failure; leave it out so the cause stands alone.
			if len(errs) > 0 && errors.Is(err, context.Canceled) {
				return
			}
			errs = append(errs, err)
			cancel()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
