// Package metrics exposes jetworker's Prometheus metrics. A worker, a
// scheduler or a publisher that wants metrics imports it alone; it does not
// link the web dashboard, which serves the same registry on its /metrics.
//
// [New] makes a [Metrics] with a registry of its own (never the global
// one). Install [Metrics.ConsumerHooks] in consumer.Config.Hooks,
// [Metrics.SchedulerHooks] in schedule.Config.Hooks and
// [Metrics.PublisherHooks] in publisher.Config.Hooks; call
// [Metrics.ObserveStreams] to add stream and consumer state read from the
// server at scrape time; serve [Metrics.Handler].
//
// The metrics, all prefixed jetworker_:
//
//	build_info{version,go_version}             gauge, always 1
//	tasks_processed_total{subject,outcome}     counter; outcome is acked, retried, dead_lettered, requeued or cancelled
//	task_duration_seconds{subject}             histogram of handler run time
//	task_wait_seconds{subject}                 histogram of enqueue-to-start latency (first deliveries)
//	tasks_in_flight                            gauge of handlers running in this process
//	dead_letters_published_total{subject}      counter of tasks this process dead-lettered
//	tasks_published_total{subject,result}      counter; result is stored, duplicate or failed
//	schedule_fires_total{schedule,result}      counter; result is ok, duplicate or error
//	schedule_fire_lag_seconds                  histogram of slot-to-PubAck lag of successful fires
//	scheduler_leader                           gauge, 1 while this process leads
//	scheduler_lease_renew_failures_total       counter
//	task_record_writes_lost_total              counter of task record writes given up (ObserveTaskStore)
//
// With ObserveStreams, read from the NATS server at scrape time:
//
//	nats_connected                             gauge, 1 while the connection is up
//	state_scrape_success                       gauge, 0 when reading the state failed
//	stream_messages{stream}, stream_bytes{stream}
//	consumer_pending_messages{stream,consumer}
//	consumer_ack_pending_messages{stream,consumer}
//	consumer_redelivered_messages{stream,consumer}
//	consumer_waiting_requests{stream,consumer}
//	consumer_oldest_pending_seconds{stream,consumer}  age of the oldest task not yet delivered
//
// When a scrape cannot read the state, the stream and consumer gauges keep
// their last values and state_scrape_success is 0, so dashboards and alerts
// see stale numbers flagged, not series that vanish.
//
// The subject label goes through [Config.SubjectLabelFunc], which keeps its
// cardinality bounded.
package metrics

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultSubjectTokens is how many subject tokens the default subject label
// keeps; see [SubjectTokens].
const DefaultSubjectTokens = 3

// defaultDurationBuckets and defaultLatencyBuckets are the histograms'
// default bucket bounds in seconds; Config documents them.
func defaultDurationBuckets() []float64 {
	return []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
}

func defaultLatencyBuckets() []float64 {
	return []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 600}
}

// Config tunes [New]. The zero value is ready to use.
type Config struct {
	// Version is the build_info version label. Defaults to the main
	// module's version from the build information, or "devel".
	Version string
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

func (c Config) withDefaults() Config {
	if c.Version == "" {
		c.Version = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			c.Version = bi.Main.Version
		}
	}
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

// Validate reports every problem with c, joined, as [New] would.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if !increasing(c.DurationBuckets) {
		errs = append(errs, errors.New("metrics: DurationBuckets must be strictly increasing"))
	}
	if !increasing(c.LatencyBuckets) {
		errs = append(errs, errors.New("metrics: LatencyBuckets must be strictly increasing"))
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
// "tasks.user.42.>". Use it for [Config.SubjectLabelFunc] when your task
// types are the first n tokens.
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

// Metrics holds jetworker's Prometheus metrics in a registry of its own.
// It is safe for concurrent use. See the package documentation for the
// list.
type Metrics struct {
	cfg Config
	reg *prometheus.Registry

	processed   *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	wait        *prometheus.HistogramVec
	inFlight    prometheus.Gauge
	deadLetters *prometheus.CounterVec
	published   *prometheus.CounterVec
	fires       *prometheus.CounterVec
	fireLag     prometheus.Histogram
	leader      prometheus.Gauge
	renewFailed prometheus.Counter
	tasks       taskStores
}

// New returns a Metrics with its own registry. It returns an error if
// cfg's buckets are not increasing.
func New(cfg Config) (*Metrics, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	const ns = "jetworker"
	m := &Metrics{
		cfg: cfg,
		reg: prometheus.NewRegistry(),
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "tasks_processed_total",
			Help: "Tasks settled by this process, by subject and outcome (acked, retried, dead_lettered, requeued, cancelled).",
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
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "tasks_published_total",
			Help: "Tasks this process published, by subject and result (stored, duplicate, failed).",
		}, []string{"subject", "result"}),
		fires: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "schedule_fires_total",
			Help: "Schedule fire attempts by this process, by schedule and result (ok, duplicate, error).",
		}, []string{"schedule", "result"}),
		fireLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "schedule_fire_lag_seconds",
			Help:    "Time from a schedule slot to the PubAck of its fire.",
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
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: ns, Name: "build_info",
		Help: "Always 1; the labels say which jetworker build this process runs.",
	}, []string{"version", "go_version"})
	build.WithLabelValues(cfg.Version, runtime.Version()).Set(1)
	m.reg.MustRegister(build, m.processed, m.duration, m.wait, m.inFlight, m.deadLetters,
		m.published, m.fires, m.fireLag, m.leader, m.renewFailed, newLostCounter(&m.tasks))
	if !cfg.DisableRuntimeMetrics {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m, nil
}

// Registry returns the registry the metrics live in; register your own
// collectors there to serve them on the same /metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler returns an http.Handler serving the registry in the Prometheus
// exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// register adds c to m's registry.
func (m *Metrics) register(c prometheus.Collector) error {
	if err := m.reg.Register(c); err != nil {
		return fmt.Errorf("metrics: register state collector (are these Metrics observing streams already?): %w", err)
	}
	return nil
}
