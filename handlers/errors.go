package handlers

import "errors"

// ErrNoRoute is wrapped by the error of a task no pattern of a [Mux]
// matches: inside a [jetworker.RetryAfter] error with the default
// not-found handler ([RetryUnrouted]), inside a [jetworker.Permanent] one
// with [DeadLetterUnrouted]. The error text names the subject.
var ErrNoRoute = errors.New("handlers: no route")

// ErrRateLimited is wrapped, inside a [jetworker.RetryAfter] error, by the
// [RateLimit] middleware when a task's token would come only after the
// handler's deadline (it waits for it otherwise).
var ErrRateLimited = errors.New("handlers: rate limited")
