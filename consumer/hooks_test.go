package consumer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
)

func TestJoinHooks(t *testing.T) {
	t.Parallel()
	type key string
	var calls []string
	mk := func(name string) consumer.Hooks {
		return consumer.Hooks{
			StartFunc: func(ctx context.Context, _ *jetworker.Task) context.Context {
				calls = append(calls, "start "+name)
				return context.WithValue(ctx, key(name), true)
			},
			DoneFunc: func(ctx context.Context, _ *jetworker.Task, o consumer.Outcome, _ time.Duration, _ error) {
				_, a := ctx.Value(key("a")).(bool)
				_, b := ctx.Value(key("b")).(bool)
				calls = append(calls, fmt.Sprintf("done %s %s a=%v b=%v", name, o, a, b))
			},
		}
	}
	h := consumer.JoinHooks(mk("a"), consumer.Hooks{}, mk("b"))
	ctx := h.StartFunc(context.Background(), &jetworker.Task{})
	h.DoneFunc(ctx, &jetworker.Task{}, consumer.Acked, 0, nil)
	want := []string{"start a", "start b", "done b acked a=true b=true", "done a acked a=true b=true"}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("calls: got %q, want %q", calls, want)
	}
	if empty := consumer.JoinHooks(); empty.StartFunc != nil || empty.DoneFunc != nil {
		t.Error("JoinHooks(): got functions, want none")
	}
}
