package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/internal/subject"
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
	// On a work-queue stream each message goes to one consumer, so the
	// server refuses a second consumer whose filters overlap another's
	// ("filtered consumer not unique on workqueue stream"). Say which one
	// and what to do, before and (should two start at once) after trying.
	if err := checkOverlap(ctx, js, cfg); err != nil {
		return nil, err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, cfg.Stream, want)
	if err != nil {
		if oerr := checkOverlap(ctx, js, cfg); oerr != nil {
			return nil, oerr
		}
		return nil, fmt.Errorf("consumer: create or update %q on stream %q: %w", cfg.Durable, cfg.Stream, err)
	}
	return cons, nil
}

// checkOverlap returns an error wrapping [ErrFilterOverlap] when cfg's
// stream is a work-queue stream and another consumer's filters overlap
// cfg's.
func checkOverlap(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	st, err := js.Stream(ctx, cfg.Stream)
	if err != nil {
		return fmt.Errorf("consumer: look up stream %q: %w", cfg.Stream, err)
	}
	if st.CachedInfo().Config.Retention != jetstream.WorkQueuePolicy {
		return nil
	}
	lister := st.ListConsumers(ctx)
	for ci := range lister.Info() {
		if ci.Name == cfg.Durable {
			continue
		}
		theirs := filters(ci.Config)
		if len(theirs) == 0 {
			theirs = []string{">"}
		}
		for _, mine := range cfg.FilterSubjects {
			for _, other := range theirs {
				if subject.Overlap(mine, other) {
					return fmt.Errorf("%w: consumer %q would take %q on the work-queue stream %q, which consumer %q already takes with %q; "+
						"on a work-queue stream each task goes to exactly one consumer: give each service its own subjects "+
						"(FilterSubjects such as tasks.billing.> and tasks.email.>), share one Durable to split the work, "+
						"or, to deliver every task to several services, use a stream with interest retention (streams.Interest)",
						ErrFilterOverlap, cfg.Durable, mine, cfg.Stream, ci.Name, other)
				}
			}
		}
	}
	if err := lister.Err(); err != nil {
		return fmt.Errorf("consumer: list consumers of %q: %w", cfg.Stream, err)
	}
	return nil
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
