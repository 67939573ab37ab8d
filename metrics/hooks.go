package metrics

import (
	"context"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/schedule"
)

// ConsumerHooks returns hooks for consumer.Config.Hooks that count settled
// tasks, time handlers, measure enqueue-to-start latency and track handlers
// in flight. Combine them with others (tracing) with consumer.JoinHooks.
func (m *Metrics) ConsumerHooks() consumer.Hooks {
	return consumer.Hooks{
		StartFunc: func(ctx context.Context, t *jetworker.Task) context.Context {
			m.inFlight.Inc()
			// Only first deliveries of original tasks (Task.QueueWait).
			if wait, ok := t.QueueWait(time.Now()); ok {
				m.wait.WithLabelValues(m.cfg.SubjectLabelFunc(t.Subject)).Observe(wait.Seconds())
			}
			return ctx
		},
		DoneFunc: func(_ context.Context, t *jetworker.Task, o consumer.Outcome, d time.Duration, _ error) {
			m.inFlight.Dec()
			subj := m.cfg.SubjectLabelFunc(t.Subject)
			m.processed.WithLabelValues(subj, o.String()).Inc()
			m.duration.WithLabelValues(subj).Observe(d.Seconds())
		},
		DeadLetterFunc: func(_ context.Context, t *jetworker.Task, _ string) {
			m.deadLetters.WithLabelValues(m.cfg.SubjectLabelFunc(t.Subject)).Inc()
		},
	}
}

// SchedulerHooks returns hooks for schedule.Config.Hooks that count
// schedule fires, observe fire lag and track leadership and lease renewal
// failures. Combine them with others with schedule.JoinHooks.
func (m *Metrics) SchedulerHooks() schedule.Hooks {
	return schedule.Hooks{
		LeaderFunc: func(leading bool) {
			if leading {
				m.leader.Set(1)
			} else {
				m.leader.Set(0)
			}
		},
		FiredFunc: func(f schedule.Fire) {
			name := m.cfg.ScheduleLabelFunc(f.Schedule)
			switch {
			case f.Err != nil:
				m.fires.WithLabelValues(name, "error").Inc()
			case f.Duplicate:
				m.fires.WithLabelValues(name, "duplicate").Inc()
			default:
				m.fires.WithLabelValues(name, "ok").Inc()
				m.fireLag.Observe(max(f.Lag, 0).Seconds())
			}
		},
		RenewFailedFunc: func(error) { m.renewFailed.Inc() },
	}
}

// PublisherHooks returns hooks for publisher.Config.Hooks that count
// published tasks by subject and result: stored, duplicate (the server
// already had the ID) or failed. Combine them with others with
// publisher.JoinHooks.
func (m *Metrics) PublisherHooks() publisher.Hooks {
	return publisher.Hooks{ResultFunc: func(subject string, r publisher.Result, err error) {
		result := "stored"
		switch {
		case err != nil:
			result = "failed"
		case r.Duplicate:
			result = "duplicate"
		}
		m.published.WithLabelValues(m.cfg.SubjectLabelFunc(subject), result).Inc()
	}}
}
