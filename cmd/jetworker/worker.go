package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dashboard"
	"github.com/jetworker/jetworker/handlers/webhook"
	"github.com/jetworker/jetworker/internal/backoff"
	"github.com/jetworker/jetworker/internal/logkey"
	"github.com/jetworker/jetworker/streams"
	"github.com/jetworker/jetworker/task"
)

// workerEnv configures "jetworker worker". Routes come from a file
// (JETWORKER_ROUTES) and/or the JETWORKER_WEBHOOK_* and JETWORKER_SMTP_*
// variables, each of which adds one route.
type workerEnv struct {
	RoutesEnv
	ConsumerEnv
	HandlerTimeout time.Duration `envconfig:"JETWORKER_HANDLER_TIMEOUT" flag:"handler-timeout" default:"5m" group:"Routes" desc:"bound on one handler call"`
	ShutdownGrace  time.Duration `envconfig:"JETWORKER_SHUTDOWN_GRACE" flag:"shutdown-grace" default:"10s" group:"Routes" desc:"time in-flight tasks get to finish on shutdown"`
	WebhookEnv
	EmailEnv
	Base
	MonitorEnv
	StreamEnv
	DLQStreamEnv
	Provision bool `envconfig:"JETWORKER_PROVISION" flag:"provision" default:"true" group:"Streams" desc:"create or update the streams and the presence and task status buckets at start (needs admin permissions)"`
	ReplicasEnv
	TrackAll bool `envconfig:"JETWORKER_TRACK_ALL" flag:"track-all" group:"Tracking" desc:"record every task the worker runs (jetworker task get, the dashboard's task browser), not only those published with tracking; a route can ask for it alone (track: true)"`
	TaskStoreEnv
	HTTPEnv
	MetricsEnv
}

// workerOpts are the options of one "jetworker worker" run.
type workerOpts struct {
	Check bool `flag:"check" desc:"validate the configuration and routes, print them and exit without connecting"`
}

// routes returns the routes of the file and of the environment.
func (e workerEnv) routes() ([]route, error) {
	var rs []route
	if e.Routes != "" {
		file, err := loadRoutes(e.Routes)
		if err != nil {
			return nil, err
		}
		rs = append(rs, file...)
	}
	if e.WebhookURL != "" {
		rs = append(rs, route{Name: "webhook", Subject: e.WebhookSubject, Webhook: &webhookRoute{URL: e.WebhookURL, Secret: e.WebhookSecret}})
	}
	if e.SMTPHost != "" {
		rs = append(rs, route{Name: "email", Subject: e.EmailSubject, Email: &emailRoute{
			Host: e.SMTPHost, Port: e.SMTPPort, Username: e.SMTPUser, Password: e.SMTPPassword, From: e.SMTPFrom, TLS: e.SMTPTLS,
		}})
	}
	if len(rs) == 0 {
		return nil, usagef("no routes: set JETWORKER_ROUTES (a routes file), JETWORKER_WEBHOOK_URL or JETWORKER_SMTP_HOST")
	}
	if err := validateRoutes(rs); err != nil {
		return nil, usagef("%v", err)
	}
	return rs, nil
}

// consumerConfig maps the settings and one route to the route's consumer
// Config; tasks is the task store its tracked tasks are recorded in.
func (e workerEnv) consumerConfig(r route, tasks *task.Store, log *slog.Logger) consumer.Config {
	cfg := routeConsumerConfig(e.StreamEnv, e.DLQStreamEnv, e.RoutesEnv, e.ConsumerEnv, r, log)
	cfg.HandlerTimeout = e.HandlerTimeout
	cfg.ShutdownGrace = e.ShutdownGrace
	cfg.Presence = consumer.Presence{Replicas: e.Replicas}
	cfg.Tasks = tasks
	cfg.TrackAll = e.TrackAll || r.Track
	if r.Timeout > 0 {
		cfg.HandlerTimeout = time.Duration(r.Timeout)
	}
	return cfg
}

// routeConsumerConfig maps the settings the worker and provision share,
// and one route, to the route's consumer Config: a route's own settings
// win.
func routeConsumerConfig(s StreamEnv, d DLQStreamEnv, re RoutesEnv, ce ConsumerEnv, r route, log *slog.Logger) consumer.Config {
	cfg := consumer.Config{
		Stream:           s.Stream,
		Durable:          re.Durable + "-" + r.Name,
		FilterSubjects:   []string{r.Subject},
		Concurrency:      ce.Concurrency,
		AckWait:          ce.AckWait,
		MaxDeliver:       ce.MaxDeliver,
		DeadLetterStream: d.DLQStream,
		Logger:           log,
	}
	if r.Concurrency > 0 {
		cfg.Concurrency = r.Concurrency
	}
	if r.MaxDeliver > 0 {
		cfg.MaxDeliver = r.MaxDeliver
	}
	if r.AckWait > 0 {
		cfg.AckWait = time.Duration(r.AckWait)
	}
	if r.Backoff != nil {
		b := backoff.Exponential{Base: time.Duration(r.Backoff.Base), Max: time.Duration(r.Backoff.Max), Jitter: consumer.DefaultBackoffJitter}
		if b.Base <= 0 {
			b.Base = consumer.DefaultBackoffBase
		}
		if b.Max <= 0 {
			b.Max = consumer.DefaultBackoffMax
		}
		cfg.Backoff = func(attempt int, _ error) time.Duration { return b.Delay(attempt) }
	}
	return cfg
}

// dashboardConfig maps the HTTP and metrics settings.
func (e workerEnv) dashboardConfig(log *slog.Logger) (dashboard.Config, bool) {
	cfg, ok := dashboardConfig(e.HTTPEnv, e.MetricsEnv, e.Stream, e.DLQStream, log)
	cfg.TaskBucket = e.TaskBucket
	return cfg, ok
}

// routeHandler builds the stock handler of a route.
func routeHandler(r route, log *slog.Logger) (jetworker.Handler, error) {
	var h jetworker.Handler
	switch {
	case r.Webhook != nil:
		wh, err := webhook.New(webhook.Config{URL: r.Webhook.URL, Secret: r.Webhook.Secret, Timeout: time.Duration(r.Webhook.Timeout)})
		if err != nil {
			return nil, usagef("route %s: %v", r.Name, err)
		}
		h = wh
	case r.Email != nil:
		eh, err := emailHandler(*r.Email)
		if err != nil {
			return nil, usagef("route %s: %v", r.Name, err)
		}
		h = eh
	case r.Log != nil:
		h = jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
			log.InfoContext(ctx, "task", slog.String("route", r.Name), slog.String(logkey.Subject, t.Subject),
				slog.String(logkey.TaskID, t.ID), slog.Uint64(logkey.Delivered, t.Delivered), slog.String("data", excerpt(string(t.Data), 200)))
			return nil
		})
	default:
		return nil, usagef("route %s: no handler", r.Name)
	}
	return h, nil
}

func runWorker(ctx context.Context, std *stdio, args []string) error {
	var (
		e    workerEnv
		opts workerOpts
	)
	c := newCLI("worker", "", `
Run a durable consumer per route and hand each task to the route's stock
handler (webhook, email or log). Routes come from a routes file and from
the webhook and email variables, each of which adds one route.`).options("Routes", &opts).env(&e)
	if err := c.parseNoArgs(std, args); err != nil {
		return err
	}
	rs, err := e.routes()
	if err != nil {
		return err
	}
	std.scrub.add(routeSecrets(rs)...)
	log, err := std.logger(e.LogEnv)
	if err != nil {
		return err
	}
	// Build every handler and check every Config before connecting:
	// configuration mistakes fail fast and clearly.
	tcfg := e.taskConfig(e.ReplicasEnv, log)
	if err := tcfg.Validate(); err != nil {
		return inTermsOf(err, "task", "", taskFields)
	}
	hs := make([]jetworker.Handler, len(rs))
	for i, r := range rs {
		if hs[i], err = routeHandler(r, log); err != nil {
			return err
		}
		if err := e.consumerConfig(r, nil, log).Validate(); err != nil {
			return inTermsOf(err, "consumer", "route "+r.Name+": ", consumerFields)
		}
	}
	dcfg, serve := e.dashboardConfig(log)
	if serve {
		if err := dcfg.Validate(); err != nil {
			return inTermsOf(err, "dashboard", "http: ", dashboardFields)
		}
	}
	if opts.Check {
		for _, r := range rs {
			cfg := e.consumerConfig(r, nil, log)
			tracks := ""
			if cfg.TrackAll {
				tracks = ", tracks every task"
			}
			fmt.Fprintf(std.out, "route %s: %s -> %s (durable %s, concurrency %d, max deliver %d%s)\n",
				inert(r.Name), inert(r.Subject), inert(r.kind()), inert(cfg.Durable), cfg.Concurrency, cfg.MaxDeliver, tracks)
		}
		fmt.Fprintln(std.out, "configuration ok")
		return nil
	}
	conn, err := connect(ctx, e.ConnEnv, "worker", log)
	if err != nil {
		return err
	}
	defer conn.Close()
	logConfig(ctx, log, c, slog.String("auth", e.authKind()), slog.Int("routes", len(rs)))
	tasks, err := task.New(conn.js, tcfg)
	if err != nil {
		return err
	}

	if e.Provision {
		if err := streams.Provision(ctx, conn.js, streamsConfig(e.StreamEnv, e.DLQStreamEnv, e.ReplicasEnv)); err != nil {
			return err
		}
		// With the same replicas, so presence survives a node loss.
		if err := (consumer.Presence{Replicas: e.Replicas}).Provision(ctx, conn.js); err != nil {
			return err
		}
		if err := tasks.Provision(ctx); err != nil {
			return err
		}
	}
	warnDurability(ctx, log, checkDurability(ctx, conn, e.MonitorURL, []string{e.Stream, e.DLQStream}))
	var w *web
	if serve {
		if w, err = newWeb(conn, dcfg); err != nil {
			return err
		}
		w.metrics.ObserveTaskStore(tasks)
	}
	parts := []jetworker.Runner{jetworker.RunnerFunc(conn.watch)}
	for i, r := range rs {
		cfg := e.consumerConfig(r, tasks, log)
		if w != nil {
			w.consumerHooks(&cfg)
		}
		cons, err := consumer.New(conn.js, hs[i], cfg)
		if err != nil {
			return fmt.Errorf("route %s: %w", r.Name, err)
		}
		if w != nil {
			w.readyWhen("consumer "+cfg.Durable, cons.Ready())
		}
		log.Info("route", slog.String("route", r.Name), slog.String("subject", r.Subject), slog.String("durable", cfg.Durable),
			slog.Int("concurrency", cfg.Concurrency), slog.Bool("track_all", cfg.TrackAll))
		parts = append(parts, cons)
	}
	if w != nil {
		parts = append(parts, w)
	}
	return runAll(ctx, parts...)
}
