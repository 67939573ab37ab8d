package consumer

import (
	"context"
	"sync"
	"time"
)

// maxDeadlineSlice bounds how much a handler's deadline may be rounded up.
const maxDeadlineSlice = 100 * time.Millisecond

// deadlines hands out handler contexts with a deadline. Tasks that start
// within the same slice of time share one context, so the hot path does
// not create a context and a runtime timer per task: a task's deadline is
// its start plus HandlerTimeout, rounded up to the end of its slice (a
// tenth of the timeout, at most 100ms). Shared contexts are never
// cancelled early; they end at their deadline or with their parent.
type deadlines struct {
	parent  context.Context
	timeout time.Duration
	slice   time.Duration

	mu     sync.Mutex
	end    time.Time // end of the current slice
	ctx    context.Context
	cancel context.CancelFunc // the current slice's; released with the parent
}

func newDeadlines(parent context.Context, timeout time.Duration) *deadlines {
	return &deadlines{parent: parent, timeout: timeout, slice: min(maxDeadlineSlice, max(timeout/10, time.Millisecond))}
}

// context returns the context of a task that starts at now: one whose
// deadline is at least now + timeout and at most one slice later.
func (d *deadlines) context(now time.Time) context.Context {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx == nil || !now.Before(d.end) {
		d.end = now.Truncate(d.slice).Add(d.slice)
		d.ctx, d.cancel = context.WithDeadline(d.parent, d.end.Add(d.timeout))
	}
	return d.ctx
}
