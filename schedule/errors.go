package schedule

import "errors"

var (
	// ErrInvalidEntry is wrapped by every problem [Entry.Validate] finds and
	// is returned by [Store.Put] before any I/O. The message names the field
	// and says what is wrong with it.
	ErrInvalidEntry = errors.New("schedule: invalid entry")
	// ErrNotFound is returned by [Store.Get], [Store.Delete], [Store.Pause],
	// [Store.Resume] and [Store.Trigger] when no entry has the name.
	ErrNotFound = errors.New("schedule: entry not found")
	// ErrNoStream is returned by [Store.Put] and [Store.Trigger] when no
	// task stream captures the entry's subject: the entry could never fire.
	ErrNoStream = errors.New("schedule: no task stream captures the subject")
	// ErrAlreadyRunning is returned by a second call to [Scheduler.Run].
	ErrAlreadyRunning = errors.New("schedule: scheduler already running")
)
