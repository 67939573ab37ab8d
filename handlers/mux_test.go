package handlers_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/handlers"
)

// routingPatterns are registered for the routing table test.
var routingPatterns = []string{
	"email",
	"tasks.email",
	"tasks.email.welcome",
	"tasks.email.*",
	"tasks.*.welcome",
	"tasks.email.>",
	"tasks.>",
	"billing.*",
	"reports.*.daily.>",
}

// routedTo returns a mux with patterns registered in the given order; each
// route's handler returns an error naming its pattern, so a test can read
// which route ran.
func routedTo(t *testing.T, patterns []string) *handlers.Mux {
	t.Helper()
	mux := handlers.NewMux()
	for _, p := range patterns {
		mux.RouteFunc(p, func(ctx context.Context, t *jetworker.Task) error {
			return &routeHit{pattern: p}
		})
	}
	return mux
}

type routeHit struct{ pattern string }

func (r *routeHit) Error() string { return "hit " + r.pattern }

func TestMuxRouting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		subject string
		want    string // "" means no route
	}{
		{"exact single token", "email", "email"},
		{"email does not match emailer", "emailer", ""},
		{"exact two tokens", "tasks.email", "tasks.email"},
		{"tasks.email does not match tasks.emailer, tasks.> does", "tasks.emailer", "tasks.>"},
		{"literal beats star and tail", "tasks.email.welcome", "tasks.email.welcome"},
		{"star in last position", "tasks.email.reset", "tasks.email.*"},
		{"tail matches several tokens", "tasks.email.reset.v2", "tasks.email.>"},
		{"literal before star wins at the first difference", "tasks.sms.welcome", "tasks.*.welcome"},
		{"tail catches the rest", "tasks.sms", "tasks.>"},
		{"tail catches deep subjects", "tasks.sms.reminder.daily", "tasks.>"},
		{"tail needs at least one token", "tasks", ""},
		{"star matches one token", "billing.charge", "billing.*"},
		{"star does not match two tokens", "billing.charge.now", ""},
		{"star does not match zero tokens", "billing", ""},
		{"star then literal then tail", "reports.sales.daily.eu.csv", "reports.*.daily.>"},
		{"tail after literal needs a token", "reports.sales.daily", ""},
		{"no pattern at all", "audit.login", ""},
		{"empty subject", "", ""},
		{"empty token never matches", "tasks..email", ""},
	}
	// The winner must not depend on the order of registration.
	reversed := slices.Clone(routingPatterns)
	slices.Reverse(reversed)
	orders := map[string][]string{
		"registered in order":   routingPatterns,
		"registered in reverse": reversed,
	}

	for orderName, patterns := range orders {
		mux := routedTo(t, patterns)
		for _, tt := range tests {
			t.Run(orderName+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				err := mux.Handle(t.Context(), &jetworker.Task{Subject: tt.subject})
				var hit *routeHit
				switch {
				case errors.As(err, &hit):
					if hit.pattern != tt.want {
						t.Errorf("subject %q routed to %q, want %q", tt.subject, hit.pattern, tt.want)
					}
				case tt.want != "":
					t.Errorf("subject %q: got error %v, want route %q", tt.subject, err, tt.want)
				case !errors.Is(err, handlers.ErrNoRoute) || jetworker.IsPermanent(err):
					t.Errorf("subject %q: got %v, want ErrNoRoute, retried", tt.subject, err)
				}
			})
		}
	}
}

// TestMuxNoRoute: by default a task no route handles is retried with a
// delay growing from 30s, long enough for a rolling deploy to bring a
// worker that routes it; DeadLetterUnrouted dead-letters it at once; any
// handler can be the not-found hook.
func TestMuxNoRoute(t *testing.T) {
	t.Parallel()
	ok := func(ctx context.Context, t *jetworker.Task) error { return nil }
	mux := handlers.NewMux()
	mux.RouteFunc("tasks.email", ok)
	for delivered, want := range map[uint64]time.Duration{1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute, 4: 4 * time.Minute, 9: 5 * time.Minute} {
		err := mux.Handle(t.Context(), &jetworker.Task{Subject: "tasks.emailer", Delivered: delivered})
		var retry *jetworker.RetryError
		if !errors.As(err, &retry) || !errors.Is(err, handlers.ErrNoRoute) || jetworker.IsPermanent(err) {
			t.Fatalf("delivery %d: got %v, want a retry wrapping ErrNoRoute", delivered, err)
		}
		if retry.Delay != want {
			t.Errorf("delivery %d: retry after %s, want %s", delivered, retry.Delay, want)
		}
		if !strings.Contains(err.Error(), `"tasks.emailer"`) {
			t.Errorf("got %v, want the error to name the subject", err)
		}
	}

	strict := handlers.NewMux()
	strict.RouteFunc("tasks.email", ok)
	strict.NotFound(handlers.DeadLetterUnrouted())
	if err := strict.Handle(t.Context(), &jetworker.Task{Subject: "tasks.other"}); !jetworker.IsPermanent(err) || !errors.Is(err, handlers.ErrNoRoute) {
		t.Errorf("DeadLetterUnrouted: got %v, want a permanent ErrNoRoute", err)
	}

	var seen string
	hooked := handlers.NewMux()
	hooked.Use(func(next jetworker.Handler) jetworker.Handler {
		return jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
			seen = "middleware saw " + t.Subject
			return next.Handle(ctx, t)
		})
	})
	hooked.NotFound(jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error { return nil }))
	if err := hooked.Handle(t.Context(), &jetworker.Task{Subject: "tasks.any"}); err != nil || seen != "middleware saw tasks.any" {
		t.Errorf("a custom not-found hook: got %v and %q, want nil through the middleware", err, seen)
	}
}

func TestMuxRegistrationPanics(t *testing.T) {
	t.Parallel()
	ok := jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error { return nil })
	tests := []struct {
		name      string
		register  func(m *handlers.Mux)
		wantPanic string // "" means no panic
	}{
		{"empty pattern", func(m *handlers.Mux) { m.Route("", ok) }, "empty"},
		{"reserved pattern", func(m *handlers.Mux) { m.Route("$JS.API.>", ok) }, "reserved"},
		{"white space", func(m *handlers.Mux) { m.Route("tasks. email", ok) }, "white space"},
		{"empty middle token", func(m *handlers.Mux) { m.Route("tasks..email", ok) }, "empty token"},
		{"leading dot", func(m *handlers.Mux) { m.Route(".tasks", ok) }, "empty token"},
		{"trailing dot", func(m *handlers.Mux) { m.Route("tasks.", ok) }, "empty token"},
		{"tail not last", func(m *handlers.Mux) { m.Route("tasks.>.email", ok) }, `">" before its last token`},
		{"star inside a token", func(m *handlers.Mux) { m.Route("tasks.email*", ok) }, "wildcard inside the token"},
		{"tail inside a token", func(m *handlers.Mux) { m.Route("tasks.email>", ok) }, "wildcard inside the token"},
		{"nil handler", func(m *handlers.Mux) { m.Route("tasks.email", nil) }, "nil handler"},
		{"nil HandlerFunc", func(m *handlers.Mux) { m.Route("tasks.email", jetworker.HandlerFunc(nil)) }, "nil handler"},
		{"nil RouteFunc", func(m *handlers.Mux) { m.RouteFunc("tasks.email", nil) }, "nil handler"},
		{"duplicate literal", func(m *handlers.Mux) { m.Route("tasks.email", ok); m.Route("tasks.email", ok) }, "already registered"},
		{"duplicate star", func(m *handlers.Mux) { m.Route("tasks.*", ok); m.Route("tasks.*", ok) }, "already registered"},
		{"duplicate tail", func(m *handlers.Mux) { m.Route("tasks.>", ok); m.Route("tasks.>", ok) }, "already registered"},
		{"nil middleware", func(m *handlers.Mux) { m.Use(nil) }, "middleware 0 is nil"},
		{"Use after Route", func(m *handlers.Mux) { m.Route("tasks.email", ok); m.Use(handlers.Recover()) }, "Use called after Mux.Route"},
		{"star and tail alone are valid", func(m *handlers.Mux) { m.Route("*", ok); m.Route(">", ok) }, ""},
		{"same prefix, different wildcards are distinct", func(m *handlers.Mux) {
			m.Route("tasks", ok)
			m.Route("tasks.*", ok)
			m.Route("tasks.>", ok)
			m.Route("tasks.*.>", ok)
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := catchPanic(func() { tt.register(handlers.NewMux()) })
			switch {
			case tt.wantPanic == "" && got != "":
				t.Errorf("got panic %q, want none", got)
			case tt.wantPanic != "" && !strings.Contains(got, tt.wantPanic):
				t.Errorf("got panic %q, want one containing %q", got, tt.wantPanic)
			}
		})
	}
}

// catchPanic runs f and returns the text of its panic, or "" if it did not
// panic.
func catchPanic(f func()) (msg string) {
	defer func() {
		if v := recover(); v != nil {
			msg = toString(v)
		}
	}()
	f()
	return ""
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if err, ok := v.(error); ok {
		return err.Error()
	}
	return "non-string panic value"
}

func TestMuxUseWrapsEachRouteOnce(t *testing.T) {
	t.Parallel()
	var built atomic.Int32
	var order []string
	trace := func(name string) handlers.Middleware {
		return func(next jetworker.Handler) jetworker.Handler {
			built.Add(1)
			return jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
				order = append(order, name+" in")
				err := next.Handle(ctx, t)
				order = append(order, name+" out")
				return err
			})
		}
	}
	mux := handlers.NewMux()
	mux.Use(trace("m1"), trace("m2"))
	mux.RouteFunc("tasks.a", func(ctx context.Context, t *jetworker.Task) error {
		order = append(order, "handler")
		return nil
	})
	mux.RouteFunc("tasks.b", func(ctx context.Context, t *jetworker.Task) error { return nil })
	if got := built.Load(); got != 4 {
		t.Fatalf("after registering 2 routes with 2 middleware, built %d wrappers, want 4", got)
	}

	for range 3 {
		if err := mux.Handle(t.Context(), &jetworker.Task{Subject: "tasks.a"}); err != nil {
			t.Fatalf("Handle: got %v, want nil", err)
		}
	}
	if got := built.Load(); got != 4 {
		t.Errorf("after 3 tasks, built %d wrappers, want still 4 (no rebuild per message)", got)
	}
	want := []string{"m1 in", "m2 in", "handler", "m2 out", "m1 out"}
	if got := order[:5]; !slices.Equal(got, want) {
		t.Errorf("call order %q, want %q", got, want)
	}
}

func TestMuxUnroutedTaskSkipsMiddleware(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	mux := handlers.NewMux()
	mux.Use(func(next jetworker.Handler) jetworker.Handler {
		return jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
			calls.Add(1)
			return next.Handle(ctx, t)
		})
	})
	mux.RouteFunc("tasks.a", func(ctx context.Context, t *jetworker.Task) error { return nil })

	if err := mux.Handle(t.Context(), &jetworker.Task{Subject: "tasks.b"}); !errors.Is(err, handlers.ErrNoRoute) {
		t.Fatalf("got %v, want ErrNoRoute", err)
	}
	if got := calls.Load(); got != 0 {
		t.Errorf("middleware ran %d times for an unrouted task, want 0", got)
	}
}
