package metrics

import (
	"context"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetworker/jetworker/internal/logkey"
	"github.com/jetworker/jetworker/overview"
)

// ObserveStreams adds to m the state of the streams cfg names and of their
// consumers, read from the server at every scrape (see the package
// documentation). Logger, when set, receives a warning for a scrape that
// cannot read the state. It returns an error if m already observes
// streams.
func (m *Metrics) ObserveStreams(js jetstream.JetStream, cfg overview.Config, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.Default()
	}
	return m.register(newStateCollector(js, cfg, logger))
}

// stateCollector reads stream and consumer state at scrape time and keeps
// the last values it read for scrapes that cannot.
type stateCollector struct {
	js  jetstream.JetStream
	cfg overview.Config
	log *slog.Logger

	connected, scrapeOK              *prometheus.Desc
	streamMsgs, streamBytes          *prometheus.Desc
	pending, ackPending, redelivered *prometheus.Desc
	waiting, oldest                  *prometheus.Desc

	mu   sync.Mutex
	last overview.Overview // of the last scrape that read it
}

var _ prometheus.Collector = (*stateCollector)(nil)

func newStateCollector(js jetstream.JetStream, cfg overview.Config, logger *slog.Logger) *stateCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("jetworker_"+name, help, labels, nil)
	}
	return &stateCollector{
		js: js, cfg: cfg, log: logger.With(slog.String(logkey.Component, "metrics")),
		connected:   d("nats_connected", "1 while the NATS connection is connected."),
		scrapeOK:    d("state_scrape_success", "1 when stream and consumer state was read from the server during this scrape; 0 when the values shown are the last ones read."),
		streamMsgs:  d("stream_messages", "Messages stored in the stream.", "stream"),
		streamBytes: d("stream_bytes", "Bytes stored in the stream.", "stream"),
		pending:     d("consumer_pending_messages", "Messages in the consumer's filter not yet delivered.", "stream", "consumer"),
		ackPending:  d("consumer_ack_pending_messages", "Messages delivered and not yet acknowledged (running or buffered by a worker).", "stream", "consumer"),
		redelivered: d("consumer_redelivered_messages", "Messages delivered more than once and not yet acknowledged.", "stream", "consumer"),
		waiting:     d("consumer_waiting_requests", "Pull requests waiting for messages (idle workers).", "stream", "consumer"),
		oldest:      d("consumer_oldest_pending_seconds", "Age of the oldest message in the consumer's filter not yet delivered; 0 when none is pending.", "stream", "consumer"),
	}
}

// Describe sends the descriptors of every metric the collector emits.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.connected, c.scrapeOK, c.streamMsgs, c.streamBytes, c.pending, c.ackPending, c.redelivered, c.waiting, c.oldest} {
		ch <- d
	}
}

// Collect reads the state of the configured streams and their consumers.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	up := c.js.Conn().Status() == nats.CONNECTED
	gauge(c.connected, b2f(up))
	ov, err := overview.Read(context.Background(), c.js, c.cfg)
	c.mu.Lock()
	if err == nil {
		c.last = ov
	} else {
		if up {
			c.log.LogAttrs(context.Background(), slog.LevelWarn, "read state for metrics", slog.Any(logkey.Err, err))
		}
		ov = c.last
	}
	c.mu.Unlock()
	gauge(c.scrapeOK, b2f(err == nil))
	for _, st := range ov.Streams {
		if st.Missing {
			continue
		}
		gauge(c.streamMsgs, float64(st.Messages), st.Name)
		gauge(c.streamBytes, float64(st.Bytes), st.Name)
	}
	for _, co := range ov.Consumers {
		gauge(c.pending, float64(co.Pending), co.Stream, co.Name)
		gauge(c.ackPending, float64(co.AckPending), co.Stream, co.Name)
		gauge(c.redelivered, float64(co.Redelivered), co.Stream, co.Name)
		gauge(c.waiting, float64(co.Waiting), co.Stream, co.Name)
		gauge(c.oldest, co.OldestPending.Seconds(), co.Stream, co.Name)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
