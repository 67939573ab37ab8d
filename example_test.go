package jetworker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jetworker/jetworker"
)

// ExampleRetryAfter shows how a handler asks for a retry at a time of its
// choosing, and how the classification survives wrapping.
func ExampleRetryAfter() {
	h := jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
		err := errors.New("rate limited by the mail provider")
		return fmt.Errorf("send welcome email: %w", jetworker.RetryAfter(err, 30*time.Second))
	})
	err := h.Handle(context.Background(), &jetworker.Task{Subject: "tasks.email.welcome"})

	var retry *jetworker.RetryError
	if errors.As(err, &retry) {
		fmt.Println("retry in", retry.Delay)
	}
	fmt.Println("permanent:", jetworker.IsPermanent(err))
	// Output:
	// retry in 30s
	// permanent: false
}

// ExampleRunAll runs two parts until one of them fails.
func ExampleRunAll() {
	worker := jetworker.RunnerFunc(func(ctx context.Context) error {
		<-ctx.Done() // a consumer would process tasks here
		fmt.Println("worker stopped")
		return nil
	})
	broken := jetworker.RunnerFunc(func(ctx context.Context) error {
		return errors.New("dashboard: listen: address in use")
	})
	err := jetworker.RunAll(context.Background(), worker, broken)
	fmt.Println(err)
	// Output:
	// worker stopped
	// dashboard: listen: address in use
}
