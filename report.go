package jetworker

import (
	"context"
	"errors"
)

// ErrNotTracked is returned by [SetProgress] and [SetResult] when the task
// is not tracked: it was not published with tracking on, or the consumer
// running it does not track tasks.
var ErrNotTracked = errors.New("jetworker: task is not tracked")

// Reporter receives what a running tracked task reports. The consumer puts
// one in the handler's context for every tracked task; handlers reach it
// through [SetProgress] and [SetResult].
type Reporter interface {
	// Progress records how far the task is, percent in [0, 100], with a
	// short message.
	Progress(percent float64, message string) error
	// Result records the task's result, returned to whoever asks for the
	// task's state once it has succeeded.
	Result(data []byte) error
}

type reporterKey struct{}

// WithReporter returns a context that carries r for [SetProgress] and
// [SetResult]. The consumer calls it; handlers do not need to.
func WithReporter(ctx context.Context, r Reporter) context.Context {
	return context.WithValue(ctx, reporterKey{}, r)
}

// SetProgress records the progress of the tracked task running with ctx:
// percent in [0, 100] and a short message ("rendering page 3 of 9"). It
// does not block on the write. It returns [ErrNotTracked] for an untracked
// task, and an error for a percent outside [0, 100] or a message longer
// than 200 bytes. Safe to call often: writes are coalesced.
func SetProgress(ctx context.Context, percent float64, message string) error {
	r, ok := ctx.Value(reporterKey{}).(Reporter)
	if !ok {
		return ErrNotTracked
	}
	return r.Progress(percent, message)
}

// SetResult records the result of the tracked task running with ctx; it is
// stored with the task's state when the handler succeeds. It returns
// [ErrNotTracked] for an untracked task and an error when data is larger
// than the store's result limit (64 KiB by default).
func SetResult(ctx context.Context, data []byte) error {
	r, ok := ctx.Value(reporterKey{}).(Reporter)
	if !ok {
		return ErrNotTracked
	}
	return r.Result(data)
}
