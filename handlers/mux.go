package handlers

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/internal/backoff"
	"github.com/jetworker/jetworker/internal/subject"
)

// Mux routes each task to the handler registered for the most specific
// pattern matching the task's subject (see the package documentation for
// the pattern syntax and precedence). A Mux is itself a [jetworker.Handler].
//
// The zero value is an empty Mux ready to use. A Mux is safe for
// concurrent use: routes may be added while tasks are dispatched, though
// the usual pattern is to register everything before the consumer starts.
// A Mux must not be copied after first use.
type Mux struct {
	mu       sync.RWMutex
	root     node
	mws      []Middleware
	routed   bool              // a route has been registered; Use is closed
	notFound jetworker.Handler // nil: RetryUnrouted's default
}

// route is one registered pattern with its handler, already wrapped in the
// Mux's middleware.
type route struct {
	pattern string
	h       jetworker.Handler
}

// node is one level of the routing trie. Children are keyed by the next
// pattern token.
type node struct {
	literal map[string]*node
	star    *node  // the next token is "*"
	rest    *route // the pattern ends here with ">"
	leaf    *route // the pattern ends here
}

var _ jetworker.Handler = (*Mux)(nil)

// NewMux returns an empty Mux. It is equivalent to new(Mux).
func NewMux() *Mux { return new(Mux) }

// Use appends middleware that wraps every route registered afterwards, the
// first one outermost, as with [Chain]. The chain is built once per route,
// when the route is registered, so stateful middleware such as
// [ConcurrencyLimit] gets one state per pattern.
//
// Use panics if a middleware is nil or if a route has already been
// registered: middleware must be installed before the routes it wraps.
func (m *Mux) Use(mws ...Middleware) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.routed {
		panic("handlers: Mux.Use called after Mux.Route; install middleware before registering routes")
	}
	for i, mw := range mws {
		if mw == nil {
			panic(fmt.Sprintf("handlers: Mux.Use: middleware %d is nil", i))
		}
	}
	m.mws = append(m.mws, mws...)
}

// Route registers h for tasks whose subject matches pattern, wrapped in
// the middleware installed with [Mux.Use].
//
// Route panics if pattern is empty or not a valid NATS subject pattern
// (empty tokens, white space, ">" not last, or "*" or ">" inside a longer
// token such as "email*"), if it selects a reserved space ($JS.>,
// _INBOX.>), if h is nil, or if pattern is already registered.
func (m *Mux) Route(pattern string, h jetworker.Handler) {
	if err := subject.ValidateFilter(pattern); err != nil {
		panic("handlers: Mux.Route: pattern: " + err.Error())
	}
	if h == nil {
		panic(fmt.Sprintf("handlers: Mux.Route: nil handler for pattern %q", pattern))
	}
	if f, ok := h.(jetworker.HandlerFunc); ok && f == nil {
		panic(fmt.Sprintf("handlers: Mux.Route: nil handler for pattern %q", pattern))
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	slot := m.root.slot(pattern)
	if *slot != nil {
		panic(fmt.Sprintf("handlers: Mux.Route: pattern %q is already registered", pattern))
	}
	*slot = &route{pattern: pattern, h: Chain(m.mws...)(h)}
	m.routed = true
}

// RouteFunc registers f for pattern like [Mux.Route]. It panics if f is
// nil.
func (m *Mux) RouteFunc(pattern string, f func(ctx context.Context, t *jetworker.Task) error) {
	if f == nil {
		panic(fmt.Sprintf("handlers: Mux.RouteFunc: nil handler for pattern %q", pattern))
	}
	m.Route(pattern, jetworker.HandlerFunc(f))
}

// NotFound sets the handler for tasks whose subject no pattern matches,
// wrapped in the middleware installed with [Mux.Use] so far. Without it,
// the Mux uses [RetryUnrouted] with its defaults: the task is retried
// for minutes (a newer worker that routes it may be rolling out), then
// dead-lettered. Use [DeadLetterUnrouted] to dead-letter such tasks at
// once. NotFound panics if h is nil.
func (m *Mux) NotFound(h jetworker.Handler) {
	if h == nil {
		panic("handlers: Mux.NotFound: nil handler")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.notFound = Chain(m.mws...)(h)
}

// Handle dispatches t to the handler of the most specific pattern that
// matches t.Subject and returns that handler's result. If no pattern
// matches, it runs the [Mux.NotFound] handler, whose errors wrap
// [ErrNoRoute].
func (m *Mux) Handle(ctx context.Context, t *jetworker.Task) error {
	m.mu.RLock()
	r := m.root.match(t.Subject)
	nf := m.notFound
	m.mu.RUnlock()
	if r == nil {
		if nf == nil {
			nf = RetryUnrouted(0, 0)
		}
		return nf.Handle(ctx, t)
	}
	return r.h.Handle(ctx, t)
}

// Defaults of [RetryUnrouted].
const (
	// DefaultUnroutedBase is the delay after the first attempt of a task
	// no route handles.
	DefaultUnroutedBase = 30 * time.Second
	// DefaultUnroutedMax caps that delay.
	DefaultUnroutedMax = 5 * time.Minute
)

// RetryUnrouted returns a not-found handler (see [Mux.NotFound]) that
// fails each task with a [jetworker.RetryAfter] error wrapping
// [ErrNoRoute], the delay doubling from base up to max (0 means
// [DefaultUnroutedBase] and [DefaultUnroutedMax]). With the consumer's
// default of 5 deliveries, a task waits 30s, 1m, 2m and 4m, about 7.5
// minutes in all, for a worker that knows its subject, and is then
// dead-lettered: long enough for a rolling deploy, as asynq and River
// retry unknown kinds too.
func RetryUnrouted(base, max time.Duration) jetworker.Handler {
	b := backoff.Exponential{Base: cmp.Or(base, DefaultUnroutedBase), Max: cmp.Or(max, DefaultUnroutedMax)}
	return jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
		return jetworker.RetryAfter(fmt.Errorf("%w for subject %q (retrying: a newer worker may route it)", ErrNoRoute, t.Subject), b.Delay(int(t.Delivered)))
	})
}

// DeadLetterUnrouted returns a not-found handler (see [Mux.NotFound])
// that dead-letters a task no route handles at once, with a
// [jetworker.Permanent] error wrapping [ErrNoRoute].
func DeadLetterUnrouted() jetworker.Handler {
	return jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
		return jetworker.Permanent(fmt.Errorf("%w for subject %q", ErrNoRoute, t.Subject))
	})
}

// slot walks to, creating as needed, the place where the route for the
// valid pattern p is stored.
func (n *node) slot(p string) **route {
	for {
		tok, next, more := strings.Cut(p, ".")
		switch {
		case tok == ">":
			return &n.rest
		case tok == "*":
			if n.star == nil {
				n.star = new(node)
			}
			n = n.star
		default:
			if n.literal == nil {
				n.literal = make(map[string]*node)
			}
			c := n.literal[tok]
			if c == nil {
				c = new(node)
				n.literal[tok] = c
			}
			n = c
		}
		if !more {
			return &n.leaf
		}
		p = next
	}
}

// match returns the most specific route matching subject, or nil. It tries
// a literal token first, then "*", then ">", and returns the first full
// match: this depth-first order is exactly the precedence order.
func (n *node) match(subject string) *route {
	tok, next, more := strings.Cut(subject, ".")
	if tok == "" {
		return nil // empty subject or empty token: not a valid subject
	}
	if c := n.literal[tok]; c != nil {
		if r := c.matchRest(next, more); r != nil {
			return r
		}
	}
	if n.star != nil {
		if r := n.star.matchRest(next, more); r != nil {
			return r
		}
	}
	return n.rest
}

// matchRest continues a match below n: with more tokens left it matches
// them, otherwise the pattern must end at n.
func (n *node) matchRest(next string, more bool) *route {
	if !more {
		return n.leaf
	}
	return n.match(next)
}
