package jetworker

import "context"

// Handler processes one task. The error it returns decides what happens to
// the task's message: nil acknowledges it, [Permanent] sends it to the dead
// letters, [RetryAfter] retries it after a given delay, and any other error
// retries it after the consumer's backoff delay.
//
// Handlers never acknowledge messages themselves. A Handler may be called
// from many goroutines at once and must be safe for concurrent use.
type Handler interface {
	Handle(ctx context.Context, t *Task) error
}

// HandlerFunc adapts an ordinary function to the [Handler] interface.
type HandlerFunc func(ctx context.Context, t *Task) error

// Handle calls f(ctx, t).
func (f HandlerFunc) Handle(ctx context.Context, t *Task) error { return f(ctx, t) }

var _ Handler = HandlerFunc(nil)
