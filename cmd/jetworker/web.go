package main

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dashboard"
	"github.com/jetworker/jetworker/metrics"
	"github.com/jetworker/jetworker/schedule"
	"github.com/jetworker/jetworker/tracing"
)

// web is the HTTP surface (dashboard, health, readiness, metrics) of a
// long-running command, and the hooks its parts share. It is nil when no
// address is configured.
type web struct {
	srv     *dashboard.Server
	metrics *metrics.Metrics
	trace   tracing.Config
}

// newMetrics makes the metrics registry of a command's HTTP surface.
func newMetrics() (*metrics.Metrics, error) {
	v, _ := buildVersion(debug.ReadBuildInfo())
	return metrics.New(metrics.Config{Version: v})
}

// newWeb builds the HTTP surface of cfg (see dashboardConfig) on c, with
// cfg.Metrics, or a registry of its own when that is nil.
func newWeb(c *conn, cfg dashboard.Config) (*web, error) {
	m := cfg.Metrics
	if m == nil {
		var err error
		if m, err = newMetrics(); err != nil {
			return nil, err
		}
		cfg.Metrics = m
	}
	srv, err := dashboard.New(c.js, cfg)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return &web{srv: srv, metrics: m}, nil
}

// schedulerHooks installs the metrics hooks in cfg.
func (w *web) schedulerHooks(cfg *schedule.Config) {
	cfg.Hooks = schedule.JoinHooks(cfg.Hooks, w.metrics.SchedulerHooks())
}

// consumerHooks installs tracing and metrics hooks in cfg.
func (w *web) consumerHooks(cfg *consumer.Config) {
	cfg.Hooks = consumer.JoinHooks(cfg.Hooks, tracing.ConsumerHooks(w.trace), w.metrics.ConsumerHooks())
}

// readyWhen makes /readyz wait for ready.
func (w *web) readyWhen(name string, ready <-chan struct{}) {
	w.srv.AddReadyCheck(name, dashboard.ChanCheck(ready))
}

// Run serves until ctx ends.
func (w *web) Run(ctx context.Context) error {
	if err := w.srv.Run(ctx); err != nil {
		return fmt.Errorf("http: %w", err)
	}
	return nil
}
