package dashboard

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetworker/jetworker/internal/logkey"
)

// stateCollector reads stream and consumer state from the NATS server at
// scrape time.
type stateCollector struct {
	s *Server

	connected, scrapeOK              *prometheus.Desc
	streamMsgs, streamBytes          *prometheus.Desc
	pending, ackPending, redelivered *prometheus.Desc
	waiting                          *prometheus.Desc
}

var _ prometheus.Collector = (*stateCollector)(nil)

func newStateCollector(s *Server) *stateCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("jetworker_"+name, help, labels, nil)
	}
	return &stateCollector{
		s:           s,
		connected:   d("nats_connected", "1 while the dashboard's NATS connection is connected."),
		scrapeOK:    d("state_scrape_success", "1 when stream and consumer state was read from the server during this scrape."),
		streamMsgs:  d("stream_messages", "Messages stored in the stream.", "stream"),
		streamBytes: d("stream_bytes", "Bytes stored in the stream.", "stream"),
		pending:     d("consumer_pending_messages", "Messages in the consumer's filter not yet delivered.", "stream", "consumer"),
		ackPending:  d("consumer_ack_pending_messages", "Messages delivered and not yet acknowledged.", "stream", "consumer"),
		redelivered: d("consumer_redelivered_messages", "Messages delivered more than once and not yet acknowledged.", "stream", "consumer"),
		waiting:     d("consumer_waiting_requests", "Pull requests waiting for messages (idle workers).", "stream", "consumer"),
	}
}

// Describe sends the descriptors of every metric the collector emits.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.connected, c.scrapeOK, c.streamMsgs, c.streamBytes, c.pending, c.ackPending, c.redelivered, c.waiting} {
		ch <- d
	}
}

// Collect reads the state of the configured streams and their consumers.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	up := c.s.js.Conn().Status() == nats.CONNECTED
	gauge(c.connected, b2f(up))
	if !up {
		gauge(c.scrapeOK, 0)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.CheckTimeout)
	defer cancel()
	ov, err := c.s.overview(ctx)
	if err != nil {
		c.s.log.LogAttrs(ctx, slog.LevelWarn, "read state for metrics", slog.String(logkey.Err, err.Error()))
	}
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
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
