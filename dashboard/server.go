package dashboard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/dlq"
	"github.com/jetworker/jetworker/internal/logkey"
	"github.com/jetworker/jetworker/metrics"
	"github.com/jetworker/jetworker/schedule"
)

// Server is the dashboard's HTTP server: health and readiness probes,
// Prometheus metrics, a JSON API and the web dashboard. Create it with New,
// serve it with [Server.Run] or mount [Server.Handler] in your own server.
// Its methods are safe for concurrent use.
type Server struct {
	js      jetstream.JetStream
	cfg     Config
	log     *slog.Logger
	metrics *metrics.Metrics
	dlq     *dlq.Store
	store   *schedule.Store
	csrf    string
	pages   map[string]*template.Template
	handler http.Handler

	mu     sync.Mutex
	checks []namedCheck

	running atomic.Bool
	ready   chan struct{}
	addr    atomic.Pointer[string]
}

// New returns a dashboard Server on js. It validates cfg and does no network
// I/O; Run listens on cfg.Addr. It returns an error when cfg is invalid or
// cfg.Metrics is already used by another Server.
func New(js jetstream.JetStream, cfg Config) (*Server, error) {
	if js == nil {
		return nil, errors.New("dashboard: nil JetStream")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Metrics == nil {
		m, err := metrics.New(metrics.Config{})
		if err != nil {
			return nil, err
		}
		cfg.Metrics = m
	}
	dead, err := dlq.New(js, dlq.Config{Stream: cfg.DeadLetterStream, Prefix: cfg.DeadLetterPrefix})
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	store, err := schedule.NewStore(js, schedule.StoreConfig{NowFunc: cfg.NowFunc})
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	token := make([]byte, 32)
	_, _ = rand.Read(token) // never fails (crypto/rand)
	s := &Server{
		js:      js,
		cfg:     cfg,
		log:     cfg.Logger.With(slog.String(logkey.Component, "dashboard")),
		metrics: cfg.Metrics,
		dlq:     dead,
		store:   store,
		csrf:    hex.EncodeToString(token),
		ready:   make(chan struct{}),
	}
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	if err := s.metrics.ObserveStreams(js, s.overviewConfig(), s.log); err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	s.handler = s.routes()
	return s, nil
}

// Config returns the effective configuration, defaults filled in.
func (s *Server) Config() Config { return s.cfg }

// Handler returns the dashboard's http.Handler, for tests and for mounting it
// at the root of a server of your own (the pages use absolute paths).
// It serves without [Server.Run].
func (s *Server) Handler() http.Handler { return s.handler }

// Ready returns a channel that is closed once Run listens.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr returns the address Run listens on, with the port it picked for
// ":0", or "" before [Server.Ready] is closed.
func (s *Server) Addr() string {
	if p := s.addr.Load(); p != nil {
		return *p
	}
	return ""
}

// Run listens on Config.Addr and serves the dashboard until ctx ends; then it
// shuts the HTTP server down gracefully, waiting up to ShutdownTimeout for
// requests in progress, and returns nil. It returns an error if it cannot
// listen or serving fails. A second call returns [ErrAlreadyRunning].
func (s *Server) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("dashboard: listen on %s: %w", s.cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	addr := ln.Addr().String()
	s.addr.Store(&addr)
	close(s.ready)
	s.log.LogAttrs(ctx, slog.LevelInfo, "dashboard listening", slog.String(logkey.Addr, addr),
		slog.Bool("read_only", s.cfg.ReadOnly), slog.Bool("auth", s.cfg.authEnabled()))

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("dashboard: serve on %s: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	<-served // Serve returns as soon as Shutdown starts
	if err != nil {
		_ = srv.Close()
		s.log.LogAttrs(ctx, slog.LevelWarn, "dashboard shutdown timed out; closed open connections",
			slog.String(logkey.Err, err.Error()))
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "dashboard stopped")
	return nil
}
