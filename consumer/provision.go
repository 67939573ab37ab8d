package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Provision creates the durable pull consumer cfg describes, or updates an
// existing one to match it. It is idempotent, and when the existing
// consumer already matches it only reads. Differences the server cannot
// update in place (a push consumer, another ack policy) are returned as
// [ErrConsumerConflict] naming the fields; the consumer is left unchanged.
// [Consumer.Run] calls it; call it yourself to provision with an admin
// identity while workers run with consume-only permissions.
func Provision(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Consumer, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	want := consumerConfig(cfg)
	existing, err := js.Consumer(ctx, cfg.Stream, cfg.Durable)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
	case errors.Is(err, jetstream.ErrNotPullConsumer):
		return nil, fmt.Errorf("consumer %q on stream %q: %w: it is a push consumer, want pull", cfg.Durable, cfg.Stream, ErrConsumerConflict)
	case err != nil:
		return nil, fmt.Errorf("consumer: look up %q on stream %q: %w", cfg.Durable, cfg.Stream, err)
	default:
		have := existing.CachedInfo().Config
		if conflicts := consumerConflicts(have, want); len(conflicts) > 0 {
			return nil, fmt.Errorf("consumer %q on stream %q: %w: %s", cfg.Durable, cfg.Stream, ErrConsumerConflict, strings.Join(conflicts, "; "))
		}
		if !needsUpdate(have, want) {
			return existing, nil
		}
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, cfg.Stream, want)
	if err != nil {
		return nil, fmt.Errorf("consumer: create or update %q on stream %q: %w", cfg.Durable, cfg.Stream, err)
	}
	return cons, nil
}

func consumerConfig(cfg Config) jetstream.ConsumerConfig {
	cc := jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		MaxAckPending: cfg.MaxAckPending,
	}
	if len(cfg.FilterSubjects) == 1 {
		cc.FilterSubject = cfg.FilterSubjects[0]
	} else {
		cc.FilterSubjects = slices.Clone(cfg.FilterSubjects)
	}
	return cc
}

func filters(cc jetstream.ConsumerConfig) []string {
	if cc.FilterSubject != "" {
		return []string{cc.FilterSubject}
	}
	f := slices.Clone(cc.FilterSubjects)
	slices.Sort(f)
	return f
}

func consumerConflicts(have, want jetstream.ConsumerConfig) []string {
	var out []string
	if have.DeliverSubject != "" {
		out = append(out, fmt.Sprintf("it is a push consumer (DeliverSubject %q), want pull", have.DeliverSubject))
	}
	if have.AckPolicy != want.AckPolicy {
		out = append(out, fmt.Sprintf("AckPolicy is %v, want %v", have.AckPolicy, want.AckPolicy))
	}
	return out
}

func needsUpdate(have, want jetstream.ConsumerConfig) bool {
	return have.AckWait != want.AckWait ||
		have.MaxDeliver != want.MaxDeliver ||
		have.MaxAckPending != want.MaxAckPending ||
		!slices.Equal(filters(have), filters(want))
}
