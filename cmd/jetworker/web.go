package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dashboard"
	"github.com/jetworker/jetworker/metrics"
	"github.com/jetworker/jetworker/schedule"
	"github.com/jetworker/jetworker/tracing"
)

// HTTPEnv configures the HTTP surface of long-running commands.
type HTTPEnv struct {
	HTTPUser     string `envconfig:"HTTP_USER" desc:"basic-auth user protecting the dashboard and metrics"`
	HTTPPassword string `envconfig:"HTTP_PASSWORD" desc:"basic-auth password"`
	HTTPToken    string `envconfig:"HTTP_TOKEN" desc:"bearer token protecting the dashboard and metrics"`
	HTTPReadOnly bool   `envconfig:"HTTP_READ_ONLY" desc:"dashboard refuses replay, delete, pause, resume, trigger and edit"`
}

func (h *HTTPEnv) flags(f flagEnv) {
	f.str(&h.HTTPUser, "http-user", "HTTP_USER", "dashboard basic-auth user")
	f.str(&h.HTTPPassword, "http-password", "HTTP_PASSWORD", "dashboard basic-auth password")
	f.str(&h.HTTPToken, "http-token", "HTTP_TOKEN", "dashboard bearer token")
	f.boolean(&h.HTTPReadOnly, "http-read-only", "HTTP_READ_ONLY", "read-only dashboard")
}

// web is the HTTP surface (health, readiness, metrics, dashboard) of a
// long-running command, and the tracing hooks its parts share. It is nil
// when no address is configured.
type web struct {
	srv     *dashboard.Server
	metrics *metrics.Metrics
	trace   tracing.Config
}

// newWeb builds the HTTP surface on addr; "" turns it off.
func newWeb(c *conn, addr string, b Base, h HTTPEnv, log *slog.Logger) (*web, error) {
	if addr == "" {
		return nil, nil
	}
	if host, _, err := net.SplitHostPort(addr); err == nil && !isLoopback(host) && h.HTTPPassword == "" && h.HTTPToken == "" && !h.HTTPReadOnly {
		log.Warn("the dashboard listens beyond loopback without authentication: set JETWORKER_HTTP_TOKEN or _HTTP_USER/_HTTP_PASSWORD, or JETWORKER_HTTP_READ_ONLY", slog.String("addr", addr))
	}
	m, err := metrics.New(metrics.Config{Version: version})
	if err != nil {
		return nil, err
	}
	srv, err := dashboard.New(c.js, dashboard.Config{
		Addr:              addr,
		TaskStreams:       []string{b.Stream},
		DeadLetterStream:  b.DLQStream,
		Metrics:           m,
		BasicAuthUser:     h.HTTPUser,
		BasicAuthPassword: h.HTTPPassword,
		BearerToken:       h.HTTPToken,
		ReadOnly:          h.HTTPReadOnly,
		Logger:            log,
	})
	if err != nil {
		return nil, usagef("http: %v", err)
	}
	return &web{srv: srv, metrics: m}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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
