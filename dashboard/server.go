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
	"github.com/jetworker/jetworker/internal/natsconn"
	"github.com/jetworker/jetworker/metrics"
	"github.com/jetworker/jetworker/schedule"
	"github.com/jetworker/jetworker/task"
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
	tasks   *task.Store
	csrf    string
	pages   map[string]*template.Template
	login   *template.Template
	handler http.Handler

	sessions *sessions
	loginCOP *http.CrossOriginProtection

	mu     sync.Mutex
	checks []namedCheck

	sampler     *sampler
	sampling    atomic.Bool // the sampler runs (inside Run)
	outboxCache outboxCache

	running     atomic.Bool
	ready       chan struct{}
	stopping    chan struct{} // closed when Run shuts down: event streams end
	addr        atomic.Pointer[string]
	metricsAddr atomic.Pointer[string]
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
	tasks, err := task.New(js, task.Config{Bucket: cfg.TaskBucket, NowFunc: cfg.NowFunc, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	token := make([]byte, 32)
	_, _ = rand.Read(token) // never fails (crypto/rand)
	s := &Server{
		js:       js,
		cfg:      cfg,
		log:      cfg.Logger.With(slog.String(logkey.Component, "dashboard")),
		metrics:  cfg.Metrics,
		dlq:      dead,
		store:    store,
		tasks:    tasks,
		csrf:     hex.EncodeToString(token),
		ready:    make(chan struct{}),
		stopping: make(chan struct{}),
	}
	if cfg.SampleInterval > 0 {
		s.sampler = newSampler(int(cfg.SampleWindow / cfg.SampleInterval))
	}
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	if s.login, err = template.ParseFS(assets, "templates/login.html"); err != nil {
		return nil, fmt.Errorf("dashboard: parse template login: %w", err)
	}
	s.sessions = newSessions(cfg.SessionKey, cfg.SessionTTL, cfg.NowFunc)
	s.loginCOP = http.NewCrossOriginProtection()
	if err := s.metrics.ObserveStreams(js, s.overviewConfig(), s.log); err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	if cfg.Outbox != nil {
		s.checks = append(s.checks, namedCheck{"outbox", func(ctx context.Context) error {
			_, err := s.outboxStats(ctx, false)
			return err
		}})
	}
	s.handler = s.routes()
	return s, nil
}

// Config returns the effective configuration, defaults filled in.
func (s *Server) Config() Config { return s.cfg }

// Handler returns the dashboard's http.Handler, for tests and for mounting it
// at the root of a server of your own (the pages use absolute paths).
// It serves without [Server.Run]. Without credentials (and without
// Config.UnsafeNoAuth) it answers only requests from this machine: a
// request whose RemoteAddr is not a loopback address gets 403, whatever
// address your server listens on.
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

// Run listens on Config.Addr (unless DisableUI) and Config.MetricsAddr
// (when set) and serves until ctx ends; then it ends open event streams,
// shuts the HTTP servers down gracefully, waiting up to ShutdownTimeout
// for requests in progress, and returns nil. While it serves the
// dashboard, it samples the state for the overview's charts every
// Config.SampleInterval, in a goroutine it owns and waits for. It returns an error if it cannot listen or serving fails,
// and one wrapping nats.ErrConnectionClosed when its NATS connection is
// closed for good. A second call returns [ErrAlreadyRunning].
func (s *Server) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	type listener struct {
		name string
		ln   net.Listener
		h    http.Handler
	}
	var lns []listener
	closeAll := func() {
		for _, l := range lns {
			_ = l.ln.Close()
		}
	}
	var lc net.ListenConfig
	if !s.cfg.DisableUI {
		ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
		if err != nil {
			return fmt.Errorf("dashboard: listen on %s: %w", s.cfg.Addr, err)
		}
		lns = append(lns, listener{"dashboard", ln, s.handler})
		addr := ln.Addr().String()
		s.addr.Store(&addr)
	}
	if s.cfg.MetricsAddr != "" {
		ln, err := lc.Listen(ctx, "tcp", s.cfg.MetricsAddr)
		if err != nil {
			closeAll()
			return fmt.Errorf("dashboard: listen on %s (metrics): %w", s.cfg.MetricsAddr, err)
		}
		lns = append(lns, listener{"metrics", ln, s.probeRoutes()})
		addr := ln.Addr().String()
		s.metricsAddr.Store(&addr)
	}
	closed, stopWatch := natsconn.Watch(s.js.Conn())
	defer stopWatch()

	served := make(chan error, len(lns))
	servers := make([]*http.Server, len(lns))
	for i, l := range lns {
		servers[i] = &http.Server{
			Handler:           l.h,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
		s.log.LogAttrs(ctx, slog.LevelInfo, l.name+" listening", slog.String(logkey.Addr, l.ln.Addr().String()),
			slog.Bool("read_only", s.cfg.ReadOnly), slog.Bool("auth", s.cfg.authEnabled()))
		go func() { served <- servers[i].Serve(l.ln) }() // owned: Run waits for every Serve below
	}
	var sampled sync.WaitGroup
	sctx, stopSampler := context.WithCancel(ctx)
	defer stopSampler()
	if s.sampler != nil && !s.cfg.DisableUI {
		s.sampling.Store(true)
		sampled.Go(func() { sampleLoop(sctx, s.cfg.SampleInterval, s.sampleOnce) }) // owned: Run waits below
	}
	close(s.ready)

	var runErr error
	pending := len(servers)
	select {
	case err := <-served:
		pending--
		runErr = fmt.Errorf("dashboard: serve: %w", err)
	case <-closed:
		runErr = natsconn.Error("dashboard")
	case <-ctx.Done():
	}
	stopSampler()
	close(s.stopping)
	shctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shctx); err != nil {
			_ = srv.Close()
			s.log.LogAttrs(ctx, slog.LevelWarn, "dashboard shutdown timed out; closed open connections", slog.Any(logkey.Err, err))
		}
	}
	for range pending {
		<-served // Serve returns as soon as Shutdown starts
	}
	sampled.Wait()
	s.sampling.Store(false)
	s.log.LogAttrs(ctx, slog.LevelInfo, "dashboard stopped")
	return runErr
}

// MetricsAddr returns the address the metrics listener listens on, or ""
// before [Server.Ready] is closed or without Config.MetricsAddr.
func (s *Server) MetricsAddr() string {
	if p := s.metricsAddr.Load(); p != nil {
		return *p
	}
	return ""
}
