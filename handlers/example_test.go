package handlers_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/handlers"
)

// Example routes tasks by subject to typed handlers. In a worker, the Mux
// is the handler given to the consumer; here tasks are dispatched
// directly.
func Example() {
	type welcome struct {
		Email string `json:"email"`
	}

	mux := handlers.NewMux()
	mux.Use(handlers.Recover()) // install middleware before routes
	mux.Route("tasks.email.welcome", handlers.JSON(
		func(ctx context.Context, t *jetworker.Task, v welcome) error {
			fmt.Println("welcome", v.Email)
			return nil
		}))
	mux.RouteFunc("tasks.email.>", func(ctx context.Context, t *jetworker.Task) error {
		fmt.Println("other email task:", t.Subject)
		return nil
	})

	ctx := context.Background()
	for _, task := range []*jetworker.Task{
		{Subject: "tasks.email.welcome", Data: []byte(`{"email":"ada@example.com"}`)},
		{Subject: "tasks.email.digest.weekly", Data: []byte(`{}`)},
		{Subject: "tasks.email.welcome", Data: []byte(`not json`)},
		{Subject: "tasks.emailer"},
	} {
		if err := mux.Handle(ctx, task); err != nil {
			fmt.Printf("%s: permanent=%t no-route=%t\n",
				task.Subject, jetworker.IsPermanent(err), errors.Is(err, handlers.ErrNoRoute))
		}
	}
	// Output:
	// welcome ada@example.com
	// other email task: tasks.email.digest.weekly
	// tasks.email.welcome: permanent=true no-route=false
	// tasks.emailer: permanent=false no-route=true
}

// ExampleChain composes middleware; the first runs outermost.
func ExampleChain() {
	trace := func(name string) handlers.Middleware {
		return func(next jetworker.Handler) jetworker.Handler {
			return jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
				fmt.Println("enter", name)
				defer fmt.Println("leave", name)
				return next.Handle(ctx, t)
			})
		}
	}
	h := handlers.Chain(trace("outer"), trace("inner"))(jetworker.HandlerFunc(
		func(ctx context.Context, t *jetworker.Task) error {
			fmt.Println("handle", t.Subject)
			return nil
		}))
	_ = h.Handle(context.Background(), &jetworker.Task{Subject: "tasks.report"})
	// Output:
	// enter outer
	// enter inner
	// handle tasks.report
	// leave inner
	// leave outer
}

// ExampleRateLimit shows that a task over the limit waits for its token,
// inside the handler call, rather than failing an attempt.
func ExampleRateLimit() {
	var ran []string
	h := handlers.RateLimit(20, 1)(jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
		ran = append(ran, t.Subject)
		return nil
	}))
	ctx := context.Background()
	for _, s := range []string{"tasks.sync.a", "tasks.sync.b"} {
		fmt.Println(s, h.Handle(ctx, &jetworker.Task{Subject: s}))
	}
	fmt.Println("ran:", ran)
	// Output:
	// tasks.sync.a <nil>
	// tasks.sync.b <nil>
	// ran: [tasks.sync.a tasks.sync.b]
}
