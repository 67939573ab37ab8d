package handlers

import "errors"

// ErrNoRoute is wrapped, inside a [jetworker.Permanent] error, by
// [Mux.Handle] when no pattern matches the task's subject. The error text
// names the subject.
var ErrNoRoute = errors.New("handlers: no route")

// ErrRateLimited is wrapped, inside a [jetworker.RetryAfter] error, by the
// [RateLimit] middleware when a task arrives over the limit.
var ErrRateLimited = errors.New("handlers: rate limited")
