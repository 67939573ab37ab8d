// Package handlers builds [jetworker.Handler] values: a [Mux] that routes
// tasks by subject, [Middleware] and the stock middleware, and the typed
// adapter [JSON]. Stock handlers live in the sub-packages webhook (POST a
// task to an HTTP endpoint) and email (send an email through SMTP).
//
// The shapes mirror net/http: a Mux is itself a Handler, a Middleware
// wraps a Handler, and [Chain] composes middleware with the first one
// outermost.
//
// # Routing
//
// Patterns follow NATS subject rules. A pattern is a dot-separated list of
// tokens; the token "*" matches exactly one subject token and the token
// ">", allowed only last, matches one or more trailing tokens. Matching is
// token by token, never by string prefix: the pattern "tasks.email" does
// not match "tasks.emailer", and "tasks.email.>" does not match
// "tasks.email" itself.
//
// When several patterns match a subject, the most specific wins. Patterns
// are compared token by token from the left, and at the first position
// where they differ a literal token beats "*", which beats ">". So for the
// subject "tasks.email.welcome":
//
//	tasks.email.welcome   wins over everything below
//	tasks.email.*         wins over tasks.*.welcome (position 2 decides)
//	tasks.email.>         wins over tasks.*.welcome and tasks.>
//	tasks.*.welcome
//	tasks.>
//
// Two different patterns never tie, so the winner does not depend on the
// order of registration.
//
// A task whose subject matches no pattern goes to the Mux's not-found
// handler ([Mux.NotFound]). By default ([RetryUnrouted]) it is retried with
// a delay growing from 30s to 5m, so during a rolling deploy a task type
// the old workers do not know yet waits (about 7.5 minutes with the
// consumer's default 5 deliveries) for a new worker instead of landing in
// the dead letters; [DeadLetterUnrouted] dead-letters it at once instead.
//
// # Middleware and limits
//
// Middleware passed to [Mux.Use] is applied to each route separately, once,
// when the route is registered. Stateful middleware such as
// [ConcurrencyLimit] and [RateLimit] therefore limits each pattern on its
// own when installed with Use, and limits all tasks together when it wraps
// the whole Mux:
//
//	mux.Use(handlers.ConcurrencyLimit(4))                   // 4 per pattern
//	h := handlers.ConcurrencyLimit(16)(mux)                  // 16 in total
//
// Every stock middleware calls the next handler at most once, keeps the
// context's values, and returns the next handler's error unchanged or
// wrapped with %w, so [jetworker.Permanent] and [jetworker.RetryAfter]
// keep their meaning.
package handlers
