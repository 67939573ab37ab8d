package task

import "errors"

var (
	// ErrNotFound is returned when no record exists for a task ID (never
	// tracked, or expired after Config.TTL).
	ErrNotFound = errors.New("task: not found")
	// ErrFinished is returned by [Store.Cancel] for a task that already
	// succeeded, failed or was cancelled.
	ErrFinished = errors.New("task: already finished")
	// ErrCancelled is the cause of a running task's context when the task
	// is cancelled (context.Cause); the consumer then ends it Cancelled,
	// neither retried nor dead-lettered.
	ErrCancelled = errors.New("task: cancelled")
	// ErrResultTooLarge is returned by jetworker.SetResult for a result
	// larger than Config.MaxResult.
	ErrResultTooLarge = errors.New("task: result too large")
	// ErrInvalidProgress is returned by jetworker.SetProgress for a
	// percent outside [0, 100] or a message over 200 bytes.
	ErrInvalidProgress = errors.New("task: invalid progress")
	// ErrLocked is wrapped by [Store.Lock]'s error when another task holds
	// the uniqueness lock.
	ErrLocked = errors.New("task: unique task already queued")
)
