package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/schedule"
)

// DefaultSubjectTokens is how many subject tokens the default subject label
// keeps; see [SubjectTokens].
const DefaultSubjectTokens = 3

// defaultDurationBuckets and defaultLatencyBuckets are the histograms'
// default bucket bounds in seconds; MetricsConfig documents them.
func defaultDurationBuckets() []float64 {
	return []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
}

func defaultLatencyBuckets() []float64 {
	return []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 600}
}

// MetricsConfig tunes [NewMetrics]. The zero value is ready to use.
type MetricsConfig struct {
	// SubjectLabelFunc maps a task subject to the value of the "subject"
	// label. Every distinct value is a separate time series in every
	// subject-labelled metric, so it must return a small, bounded set of
	// values: never put IDs in it. Defaults to
	// SubjectTokens(DefaultSubjectTokens): "tasks.email.send.eu-1"
	// becomes "tasks.email.send.>".
	SubjectLabelFunc func(subject string) string
	// ScheduleLabelFunc maps a schedule name to the value of the
	// "schedule" label of jetworker_schedule_fires_total. Return "" to
	// drop the name (a single series for all schedules), which is wise with
	// thousands of entries. Defaults to the name itself.
	ScheduleLabelFunc func(name string) string
	// DurationBuckets are the handler duration histogram's bucket upper
	// bounds in seconds, increasing. Defaults to 5ms, 10ms, 25ms, 50ms,
	// 100ms, 250ms, 500ms, 1s, 2.5s, 5s, 10s, 30s, 1m, 2m, 5m, 10m.
	DurationBuckets []float64
	// LatencyBuckets are the enqueue-to-start latency and fire lag
	// histograms' bucket upper bounds in seconds, increasing. Defaults to
	// 1ms, 5ms, 10ms, 25ms, 50ms, 100ms, 250ms, 500ms, 1s, 2.5s, 5s, 10s,
	// 30s, 1m, 5m, 10m.
	LatencyBuckets []float64
	// DisableRuntimeMetrics leaves out the Go runtime and process
	// collectors (go_*, process_*). Defaults to false.
	DisableRuntimeMetrics bool
}

func (c MetricsConfig) withDefaults() MetricsConfig {
	if c.SubjectLabelFunc == nil {
		c.SubjectLabelFunc = SubjectTokens(DefaultSubjectTokens)
	}
	if c.ScheduleLabelFunc == nil {
		c.ScheduleLabelFunc = func(name string) string { return name }
	}
	if len(c.DurationBuckets) == 0 {
		c.DurationBuckets = defaultDurationBuckets()
	}
	if len(c.LatencyBuckets) == 0 {
		c.LatencyBuckets = defaultLatencyBuckets()
	}
	c.DurationBuckets = slices.Clone(c.DurationBuckets)
	c.LatencyBuckets = slices.Clone(c.LatencyBuckets)
	return c
}

func (c MetricsConfig) validate() error {
	var errs []error
	if !increasing(c.DurationBuckets) {
		errs = append(errs, errors.New("dashboard: MetricsConfig.DurationBuckets must be strictly increasing"))
	}
	if !increasing(c.LatencyBuckets) {
		errs = append(errs, errors.New("dashboard: MetricsConfig.LatencyBuckets must be strictly increasing"))
	}
	return errors.Join(errs...)
}

func increasing(b []float64) bool {
	for i := 1; i < len(b); i++ {
		if b[i] <= b[i-1] {
			return false
		}
	}
	return true
}

// SubjectTokens returns a subject label function that keeps the first n
// tokens of a subject and replaces the rest with ">": with n = 3,
// "tasks.email.send" stays as it is and "tasks.user.42.delete" becomes
// "tasks.user.42.>". Use it for [MetricsConfig.SubjectLabelFunc] when your
// task types are the first n tokens.
func SubjectTokens(n int) func(subject string) string {
	return func(subject string) string {
		i, seen := 0, 0
		for i < len(subject) {
			j := strings.IndexByte(subject[i:], '.')
			if j < 0 {
				return subject
			}
			seen++
			if seen == n {
				return subject[:i+j] + ".>"
			}
			i += j + 1
		}
		return subject
	}
}

// Metrics holds jetworker's Prometheus metrics in a registry of its own
// (never the global one). Feed it by installing [Metrics.ConsumerHooks] in
// consumers and [Metrics.SchedulerHooks] in schedulers, serve it with a
// dashboard [Server] (which adds stream and consumer state read at scrape
// time) or with [Metrics.Handler]. It is safe for concurrent use.
//
// The metrics, all prefixed jetworker_:
//
//	tasks_processed_total{subject,outcome}     counter; outcome is acked, retried, dead_lettered or requeued
//	task_duration_seconds{subject}             histogram of handler run time
//	task_wait_seconds{subject}                 histogram of enqueue-to-start latency (first deliveries)
//	tasks_in_flight                            gauge of handlers running
//	dead_letters_published_total{subject}      counter of tasks this process dead-lettered
//	schedule_fires_total{schedule,result}      counter; result is ok, duplicate or error
//	schedule_fire_lag_seconds                  histogram of slot-to-publish lag of successful fires
//	scheduler_leader                           gauge, 1 while this process leads
//	scheduler_lease_renew_failures_total       counter
//
// With a Server, also (read from the NATS server at scrape time):
//
//	nats_connected                             gauge, 1 while the connection is up
//	stream_messages{stream}, stream_bytes{stream}
//	consumer_pending_messages{stream,consumer}
//	consumer_ack_pending_messages{stream,consumer}
//	consumer_redelivered_messages{stream,consumer}
//	consumer_waiting_requests{stream,consumer}
//	state_scrape_success                       gauge, 0 when reading the state failed
//
// The subject label goes through [MetricsConfig.SubjectLabelFunc], which
// keeps its cardinality bounded.
type Metrics struct {
	cfg MetricsConfig
	reg *prometheus.Registry

	processed   *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	wait        *prometheus.HistogramVec
	inFlight    prometheus.Gauge
	deadLetters *prometheus.CounterVec
	fires       *prometheus.CounterVec
	fireLag     prometheus.Histogram
	leader      prometheus.Gauge
	renewFailed prometheus.Counter
}

// NewMetrics returns a Metrics with its own registry. It returns an error
// if cfg's buckets are not increasing.
func NewMetrics(cfg MetricsConfig) (*Metrics, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	const ns = "jetworker"
	m := &Metrics{
		cfg: cfg,
		reg: prometheus.NewRegistry(),
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "tasks_processed_total",
			Help: "Tasks settled by this process, by subject and outcome (acked, retried, dead_lettered, requeued).",
		}, []string{"subject", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "task_duration_seconds",
			Help:    "Handler run time of every attempt, by subject.",
			Buckets: cfg.DurationBuckets,
		}, []string{"subject"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "task_wait_seconds",
			Help:    "Time from enqueue (the stored time, or Jetworker-Enqueued-At for delayed tasks) to the start of the first attempt, by subject.",
			Buckets: cfg.LatencyBuckets,
		}, []string{"subject"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "tasks_in_flight",
			Help: "Handlers running now in this process.",
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "dead_letters_published_total",
			Help: "Tasks this process copied to the dead-letter stream, by subject.",
		}, []string{"subject"}),
		fires: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "schedule_fires_total",
			Help: "Schedule fire attempts by this process, by schedule and result (ok, duplicate, error).",
		}, []string{"schedule", "result"}),
		fireLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "schedule_fire_lag_seconds",
			Help:    "Time from a schedule slot to its successful publish.",
			Buckets: cfg.LatencyBuckets,
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "scheduler_leader",
			Help: "1 while this process's scheduler holds the leader lease.",
		}),
		renewFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "scheduler_lease_renew_failures_total",
			Help: "Lease writes that failed for a reason other than losing the lease.",
		}),
	}
	m.reg.MustRegister(m.processed, m.duration, m.wait, m.inFlight, m.deadLetters,
		m.fires, m.fireLag, m.leader, m.renewFailed)
	if !cfg.DisableRuntimeMetrics {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m, nil
}

// Registry returns the registry the metrics live in; register your own
// collectors there to serve them on the same /metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler returns an http.Handler serving the registry in the Prometheus
// exposition format, for programs that do not run a dashboard [Server].
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// ConsumerHooks returns hooks for consumer.Config.Hooks that count settled
// tasks, time handlers, measure enqueue-to-start latency and track handlers
// in flight. Combine them with tracing hooks using [JoinConsumerHooks].
func (m *Metrics) ConsumerHooks() consumer.Hooks {
	return consumer.Hooks{
		StartFunc: func(ctx context.Context, t *jetworker.Task) context.Context {
			m.inFlight.Inc()
			// Only first deliveries of original tasks: later attempts and
			// replays would measure retry and dead-letter time instead.
			if t.Delivered == 1 && t.Header.Get(jetworker.HeaderReplayedFrom) == "" {
				if at, ok := t.EnqueuedAt(); ok {
					m.wait.WithLabelValues(m.cfg.SubjectLabelFunc(t.Subject)).Observe(max(time.Since(at), 0).Seconds())
				}
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

// SchedulerHooks holds the hook functions of a schedule.Config. Install
// them with [SchedulerHooks.Apply].
type SchedulerHooks struct {
	// LeaderFunc is for schedule.Config.LeaderFunc.
	LeaderFunc func(leading bool)
	// FiredFunc is for schedule.Config.FiredFunc.
	FiredFunc func(schedule.Fire)
	// RenewFailedFunc is for schedule.Config.RenewFailedFunc.
	RenewFailedFunc func(err error)
}

// Apply returns cfg with h's functions installed. Functions already set in
// cfg are kept and called first.
func (h SchedulerHooks) Apply(cfg schedule.Config) schedule.Config {
	if prev, next := cfg.LeaderFunc, h.LeaderFunc; prev != nil && next != nil {
		cfg.LeaderFunc = func(l bool) { prev(l); next(l) }
	} else if next != nil {
		cfg.LeaderFunc = next
	}
	if prev, next := cfg.FiredFunc, h.FiredFunc; prev != nil && next != nil {
		cfg.FiredFunc = func(f schedule.Fire) { prev(f); next(f) }
	} else if next != nil {
		cfg.FiredFunc = next
	}
	if prev, next := cfg.RenewFailedFunc, h.RenewFailedFunc; prev != nil && next != nil {
		cfg.RenewFailedFunc = func(err error) { prev(err); next(err) }
	} else if next != nil {
		cfg.RenewFailedFunc = next
	}
	return cfg
}

// SchedulerHooks returns hooks that count schedule fires, observe fire lag
// and track leadership and lease renewal failures:
//
//	cfg = m.SchedulerHooks().Apply(cfg)
func (m *Metrics) SchedulerHooks() SchedulerHooks {
	return SchedulerHooks{
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

// JoinConsumerHooks combines consumer hooks (metrics and tracing, say) into
// one. StartFuncs run in the order given, each receiving the context the
// previous one returned; DoneFuncs run in reverse order, so the first hook
// wraps the others like a deferred call; DeadLetterFuncs run in order.
// Missing functions are skipped.
func JoinConsumerHooks(hooks ...consumer.Hooks) consumer.Hooks {
	var starts []func(context.Context, *jetworker.Task) context.Context
	var dones []func(context.Context, *jetworker.Task, consumer.Outcome, time.Duration, error)
	var deads []func(context.Context, *jetworker.Task, string)
	for _, h := range hooks {
		if h.DeadLetterFunc != nil {
			deads = append(deads, h.DeadLetterFunc)
		}
		if h.StartFunc != nil {
			starts = append(starts, h.StartFunc)
		}
		if h.DoneFunc != nil {
			dones = append(dones, h.DoneFunc)
		}
	}
	var out consumer.Hooks
	if len(starts) > 0 {
		out.StartFunc = func(ctx context.Context, t *jetworker.Task) context.Context {
			for _, f := range starts {
				ctx = f(ctx, t)
			}
			return ctx
		}
	}
	if len(dones) > 0 {
		out.DoneFunc = func(ctx context.Context, t *jetworker.Task, o consumer.Outcome, d time.Duration, err error) {
			for _, f := range slices.Backward(dones) {
				f(ctx, t, o, d, err)
			}
		}
	}
	if len(deads) > 0 {
		out.DeadLetterFunc = func(ctx context.Context, t *jetworker.Task, reason string) {
			for _, f := range deads {
				f(ctx, t, reason)
			}
		}
	}
	return out
}

// register adds c to m's registry.
func (m *Metrics) register(c prometheus.Collector) error {
	if err := m.reg.Register(c); err != nil {
		return fmt.Errorf("dashboard: register state collector (is this Metrics used by another Server?): %w", err)
	}
	return nil
}
