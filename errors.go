package jetworker

import (
	"errors"
	"fmt"
	"time"
)

// Subject errors, shared by every package that publishes tasks or reads
// subject filters (the publisher, schedules, dead-letter replay, the mux
// and the consumer). Check them with errors.Is.
var (
	// ErrInvalidSubject is wrapped by the error for a subject that is
	// empty, has an empty token, white space, control characters or
	// wildcards where a literal subject is needed. The text quotes it.
	ErrInvalidSubject = errors.New("jetworker: invalid subject")
	// ErrReservedSubject is wrapped by the error for a subject in a space
	// the server owns: every subject starting with '$' ($JS., $KV., $O.,
	// $SYS., $NATS.) and _INBOX. replies. Publishing a task there would be
	// a request to the server, such as purging a stream.
	ErrReservedSubject = errors.New("jetworker: reserved subject")
)

// PermanentError marks a handler error that retrying cannot fix. The
// consumer copies the task to the dead-letter stream and terminates it.
// Create one with [Permanent].
type PermanentError struct {
	Err error
}

// Permanent marks err as permanent: the task is dead-lettered at once and
// never retried. The mark survives wrapping with fmt.Errorf and %w; detect
// it with errors.As or [IsPermanent]. Permanent(nil) returns nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// Error returns the wrapped error's text after "permanent: ".
func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *PermanentError) Unwrap() error { return e.Err }

// RetryError asks the consumer to retry the task after Delay instead of the
// consumer's backoff delay. Create one with [RetryAfter].
type RetryError struct {
	Err   error
	Delay time.Duration
}

// RetryAfter marks err as retryable after d, overriding the consumer's
// backoff (for example with an HTTP Retry-After). The retry still counts
// as a delivery, so the consumer's MaxDeliver bounds it. A negative d is
// treated as 0. The mark survives wrapping with fmt.Errorf and %w; detect
// it with errors.As. RetryAfter(nil, d) returns nil.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryError{Err: err, Delay: max(d, 0)}
}

// Error returns the wrapped error's text with the delay.
func (e *RetryError) Error() string {
	return fmt.Sprintf("retry after %s: %s", e.Delay, e.Err)
}

// Unwrap returns the wrapped error.
func (e *RetryError) Unwrap() error { return e.Err }

// PanicError is a handler panic recovered by the consumer (or by the
// handlers package's Recover middleware): the value passed to panic and the
// stack of the goroutine that panicked. The consumer logs it once, with its
// stack, and retries the task like any failure. If the value is an error,
// Unwrap returns it, so a panic(jetworker.Permanent(err)) keeps its meaning.
type PanicError struct {
	// Value is the value passed to panic.
	Value any
	// Stack is the formatted stack trace, as from runtime/debug.Stack.
	Stack []byte
}

// Error returns the panic value as text; the stack is in the Stack field.
func (e *PanicError) Error() string { return fmt.Sprintf("handler panic: %v", e.Value) }

// Unwrap returns the panic value if it is an error, and nil otherwise.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// IsPermanent reports whether err or any error it wraps is a
// [PermanentError].
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}
