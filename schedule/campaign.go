package schedule

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/internal/logkey"
)

// campaign keeps bidding for (or renewing) the lease every LeaseTTL/3, and
// at once when the watch shows the key deleted or expired, until ctx ends.
func (s *Scheduler) campaign(ctx context.Context, l *lease, w jetstream.KeyWatcher, changed chan<- struct{}, ready chan<- struct{}) {
	tick := time.NewTicker(s.cfg.LeaseTTL / 3)
	defer tick.Stop()
	was := false
	step := func() {
		lead, err := l.attempt(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "lease write", slog.Any(logkey.Err, err))
			s.cfg.Hooks.renewFailed(err)
		}
		s.transition(ctx, &was, lead, changed)
	}
	step()
	close(ready)
	updates := w.Updates()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			step()
		case kve, ok := <-updates:
			if !ok {
				updates = nil // the watch ended; the ticker still retries
				continue
			}
			if kve != nil && kve.Operation() != jetstream.KeyValuePut {
				step() // released or expired: bid now
			}
		}
		if l.expire() {
			s.transition(ctx, &was, false, changed)
		}
	}
}

// transition reports a leadership change to the log, the hooks and the
// fire loop.
func (s *Scheduler) transition(ctx context.Context, was *bool, lead bool, changed chan<- struct{}) {
	if lead == *was {
		if lead {
			// A new term may have started without us noticing a gap.
			notify(changed)
		}
		return
	}
	*was = lead
	if lead {
		s.log.LogAttrs(ctx, slog.LevelInfo, "leader gained", slog.Bool(logkey.Leader, true))
	} else {
		s.log.LogAttrs(ctx, slog.LevelInfo, "leader lost", slog.Bool(logkey.Leader, false))
	}
	s.cfg.Hooks.leader(lead)
	notify(changed)
}

func notify(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
