package handlers

import (
	"errors"
	"fmt"
)

// ErrNoRoute is wrapped, inside a [jetworker.Permanent] error, by
// [Mux.Handle] when no pattern matches the task's subject. The error text
// names the subject.
var ErrNoRoute = errors.New("handlers: no route")

// ErrRateLimited is wrapped, inside a [jetworker.RetryAfter] error, by the
// [RateLimit] middleware when a task arrives over the limit.
var ErrRateLimited = errors.New("handlers: rate limited")

// PanicError is returned by the [Recover] middleware when the next handler
// panics. It carries the panic value and the stack of the panicking
// goroutine. If the value is an error, Unwrap returns it.
type PanicError struct {
	// Value is the value passed to panic.
	Value any
	// Stack is the formatted stack trace, as from runtime/debug.Stack.
	Stack []byte
}

// Error returns the panic value as text. The stack is not part of it; read
// the Stack field (the [Logging] middleware logs it).
func (e *PanicError) Error() string { return fmt.Sprintf("handler panic: %v", e.Value) }

// Unwrap returns the panic value if it is an error, and nil otherwise.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}
