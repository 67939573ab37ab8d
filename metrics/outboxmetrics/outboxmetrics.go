// Package outboxmetrics adds the transactional outbox's relay to a
// [metrics.Metrics]: what each batch did, and the outbox's backlog read at
// scrape time. It is a package of its own so that programs that want
// jetworker's metrics but no outbox do not link the PostgreSQL driver.
//
//	jetworker_outbox_rows_total{result}       rows the relay handled: published, duplicate, dead, failed
//	jetworker_outbox_batches_total{result}    batches: ok, error
//	jetworker_outbox_batch_duration_seconds   claim to commit of a batch
//	jetworker_outbox_pending_rows             rows not yet published (due or delayed)
//	jetworker_outbox_due_rows                 pending rows due now
//	jetworker_outbox_lag_seconds              how long the oldest due row has waited
//	jetworker_outbox_dead_rows                rows moved aside for good
//	jetworker_outbox_scrape_success           0 when the backlog could not be read (values are the last read)
package outboxmetrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetworker/jetworker/internal/logkey"
	"github.com/jetworker/jetworker/metrics"
	"github.com/jetworker/jetworker/outbox"
)

// Outbox holds the relay's metrics, registered in a [metrics.Metrics].
type Outbox struct {
	rows     *prometheus.CounterVec
	batches  *prometheus.CounterVec
	duration prometheus.Histogram
	reg      prometheus.Registerer
}

// New registers the relay's counters in m's registry. It returns an error
// if they are registered there already.
func New(m *metrics.Metrics) (*Outbox, error) {
	const ns = "jetworker"
	o := &Outbox{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "outbox_rows_total",
			Help: "Outbox rows the relay handled, by result (published, duplicate, dead, failed).",
		}, []string{"result"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "outbox_batches_total",
			Help: "Relay batches, by result (ok, error).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "outbox_batch_duration_seconds",
			Help:    "Time from a batch's claim to its commit.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		reg: m.Registry(),
	}
	for _, c := range []prometheus.Collector{o.rows, o.batches, o.duration} {
		if err := o.reg.Register(c); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// Hooks returns hooks for outbox.RelayConfig.Hooks that count rows and
// batches and time batches.
func (o *Outbox) Hooks() outbox.Hooks {
	return outbox.Hooks{
		BatchFunc: func(b outbox.Batch) {
			o.rows.WithLabelValues("published").Add(float64(b.Published - b.Duplicates))
			o.rows.WithLabelValues("duplicate").Add(float64(b.Duplicates))
			o.rows.WithLabelValues("dead").Add(float64(b.Dead))
			o.rows.WithLabelValues("failed").Add(float64(b.Failed))
			result := "ok"
			if b.Err != nil {
				result = "error"
			}
			o.batches.WithLabelValues(result).Inc()
			o.duration.Observe(b.Duration.Seconds())
		},
	}
}

// ObserveBacklog adds the outbox's backlog (pending, due and dead rows,
// the lag), read with stats at every scrape, bounded by timeout (0 means
// 2s). stats is typically a Relay's Stats method. Logger, when set,
// receives a warning for a scrape that cannot read it.
func (o *Outbox) ObserveBacklog(stats func(context.Context) (outbox.Stats, error), timeout time.Duration, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.Default()
	}
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("jetworker_outbox_"+name, help, nil, nil)
	}
	return o.reg.Register(&backlog{
		stats: stats, timeout: timeout, log: logger.With(slog.String(logkey.Component, "metrics")),
		pending:  d("pending_rows", "Outbox rows not yet published, due or delayed."),
		due:      d("due_rows", "Pending outbox rows due now."),
		lag:      d("lag_seconds", "How long the oldest due outbox row has waited; 0 when none is due."),
		dead:     d("dead_rows", "Outbox rows moved aside for good (jetworker outbox dead ls)."),
		scrapeOK: d("scrape_success", "1 when the outbox backlog was read during this scrape; 0 when the values shown are the last ones read."),
	})
}

// backlog reads the outbox's Stats at scrape time and keeps the last
// values read for scrapes that cannot.
type backlog struct {
	stats   func(context.Context) (outbox.Stats, error)
	timeout time.Duration
	log     *slog.Logger

	pending, due, lag, dead, scrapeOK *prometheus.Desc

	mu   sync.Mutex
	last outbox.Stats
	read bool
}

func (b *backlog) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{b.pending, b.due, b.lag, b.dead, b.scrapeOK} {
		ch <- d
	}
}

func (b *backlog) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	s, err := b.stats(ctx)
	b.mu.Lock()
	ok := err == nil
	if ok {
		b.last, b.read = s, true
	} else {
		s = b.last
		b.log.LogAttrs(ctx, slog.LevelWarn, "read outbox backlog", slog.Any(logkey.Err, err))
	}
	read := b.read
	b.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	if read {
		gauge(b.pending, float64(s.Pending))
		gauge(b.due, float64(s.Due))
		gauge(b.lag, s.Lag.Seconds())
		gauge(b.dead, float64(s.Dead))
	}
	if ok {
		gauge(b.scrapeOK, 1)
	} else {
		gauge(b.scrapeOK, 0)
	}
}
