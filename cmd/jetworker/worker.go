package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/handlers/webhook"
	"github.com/jetworker/jetworker/internal/backoff"
	"github.com/jetworker/jetworker/streams"
)

// workerEnv configures "jetworker worker". Routes come from a file
// (JETWORKER_ROUTES) and/or the JETWORKER_WEBHOOK_* and JETWORKER_SMTP_*
// variables, each of which adds one route.
type workerEnv struct {
	Base
	Routes         string        `envconfig:"ROUTES" desc:"routes file (YAML or JSON): subject pattern -> stock handler"`
	Durable        string        `envconfig:"DURABLE" default:"worker" desc:"durable consumer name prefix; each route's is <durable>-<route>"`
	Concurrency    int           `envconfig:"CONCURRENCY" default:"10" desc:"handlers at once per route (unless the route sets it)"`
	AckWait        time.Duration `envconfig:"ACK_WAIT" default:"30s" desc:"redelivery wait without ack or heartbeat"`
	MaxDeliver     int           `envconfig:"MAX_DELIVER" default:"5" desc:"deliveries before a task is dead-lettered (unless the route sets it)"`
	HandlerTimeout time.Duration `envconfig:"HANDLER_TIMEOUT" default:"5m" desc:"bound on one handler call"`
	ShutdownGrace  time.Duration `envconfig:"SHUTDOWN_GRACE" default:"10s" desc:"time in-flight tasks get to finish on shutdown"`
	Provision      bool          `envconfig:"PROVISION" default:"true" desc:"create or update the task and dead-letter streams at start (needs admin permissions)"`
	Replicas       int           `envconfig:"REPLICAS" default:"1" desc:"replicas of the streams it creates (3 in a cluster)"`
	HTTPEnv
	HTTPAddr string `envconfig:"HTTP_ADDR" desc:"serve health, metrics and the dashboard on this address (empty: off)"`

	WebhookURL     string `envconfig:"WEBHOOK_URL" desc:"add a webhook route posting to this URL"`
	WebhookSecret  string `envconfig:"WEBHOOK_SECRET" desc:"HMAC secret of the webhook route"`
	WebhookSubject string `envconfig:"WEBHOOK_SUBJECT" default:"tasks.webhook.>" desc:"subjects of the webhook route"`

	SMTPHost     string `envconfig:"SMTP_HOST" desc:"add an email route sending through this SMTP server"`
	SMTPPort     int    `envconfig:"SMTP_PORT" default:"587" desc:"SMTP port"`
	SMTPUser     string `envconfig:"SMTP_USER" desc:"SMTP user"`
	SMTPPassword string `envconfig:"SMTP_PASSWORD" desc:"SMTP password"`
	SMTPFrom     string `envconfig:"SMTP_FROM" desc:"default From address"`
	SMTPTLS      string `envconfig:"SMTP_TLS" default:"starttls" desc:"starttls, opportunistic, tls or none"`
	EmailSubject string `envconfig:"EMAIL_SUBJECT" default:"tasks.email.>" desc:"subjects of the email route"`
}

func (e *workerEnv) bind(std *stdio, name string) (*flagEnv, error) {
	fs := newFlagSet(name, std, "", e)
	if err := e.Base.bind(fs, e); err != nil {
		return nil, err
	}
	f := &flagEnv{fs}
	f.str(&e.Routes, "routes", "ROUTES", "routes file")
	f.str(&e.Durable, "durable", "DURABLE", "durable name prefix")
	f.integer(&e.Concurrency, "concurrency", "CONCURRENCY", "handlers at once per route")
	f.dur(&e.AckWait, "ack-wait", "ACK_WAIT", "ack wait")
	f.integer(&e.MaxDeliver, "max-deliver", "MAX_DELIVER", "max deliveries")
	f.dur(&e.HandlerTimeout, "handler-timeout", "HANDLER_TIMEOUT", "handler timeout")
	f.dur(&e.ShutdownGrace, "shutdown-grace", "SHUTDOWN_GRACE", "shutdown grace")
	f.boolean(&e.Provision, "provision", "PROVISION", "provision streams")
	f.integer(&e.Replicas, "replicas", "REPLICAS", "replicas")
	f.str(&e.HTTPAddr, "http-addr", "HTTP_ADDR", "HTTP address")
	e.HTTPEnv.flags(*f)
	return f, nil
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

// consumerConfig maps the environment and one route to the route's
// consumer Config.
func (e workerEnv) consumerConfig(r route, log *slog.Logger) consumer.Config {
	cfg := consumer.Config{
		Stream:           e.Stream,
		Durable:          e.Durable + "-" + r.Name,
		FilterSubjects:   []string{r.Subject},
		Concurrency:      e.Concurrency,
		AckWait:          e.AckWait,
		MaxDeliver:       e.MaxDeliver,
		HandlerTimeout:   e.HandlerTimeout,
		ShutdownGrace:    e.ShutdownGrace,
		DeadLetterStream: e.DLQStream,
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
	if r.Timeout > 0 {
		cfg.HandlerTimeout = time.Duration(r.Timeout)
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
			log.InfoContext(ctx, "task", slog.String("route", r.Name), slog.String("subject", t.Subject),
				slog.String("task_id", t.ID), slog.Uint64("delivered", t.Delivered), slog.String("data", excerpt(string(t.Data), 200)))
			return nil
		})
	default:
		return nil, usagef("route %s: no handler", r.Name)
	}
	return h, nil
}

func runWorker(ctx context.Context, std *stdio, args []string) error {
	var e workerEnv
	f, err := e.bind(std, "worker")
	if err != nil {
		return err
	}
	var check bool
	f.fs.BoolVar(&check, "check", false, "validate the configuration and routes, print them and exit without connecting")
	if _, err := parseArgs(f.fs, args); err != nil {
		return err
	}
	rs, err := e.routes()
	if err != nil {
		return err
	}
	log, err := newLogger(e.LogEnv, std.err, std.isTTY)
	if err != nil {
		return err
	}
	// Build every handler before connecting: configuration mistakes fail
	// fast and clearly.
	hs := make([]jetworker.Handler, len(rs))
	for i, r := range rs {
		if hs[i], err = routeHandler(r, log); err != nil {
			return err
		}
	}
	if check {
		for i, r := range rs {
			cfg := e.consumerConfig(r, log)
			if _, err := consumer.New(noJetStream{}, hs[i], cfg); err != nil {
				return usagef("route %s: %v", r.Name, err)
			}
			fmt.Fprintf(std.out, "route %s: %s -> %s (durable %s, concurrency %d, max deliver %d)\n",
				r.Name, r.Subject, r.kind(), cfg.Durable, cfg.Concurrency, cfg.MaxDeliver)
		}
		fmt.Fprintln(std.out, "configuration ok")
		return nil
	}
	c, err := connect(ctx, e.ConnEnv, "worker", log)
	if err != nil {
		return err
	}
	defer c.Close()
	logConfig(log, "worker", e.Base, slog.Int("routes", len(rs)), slog.String("durable", e.Durable), slog.Bool("provision", e.Provision))

	if e.Provision {
		if err := streams.Provision(ctx, c.js, streams.Config{Tasks: streams.Tasks{Name: e.Stream}, DeadLetters: streams.DeadLetters{Name: e.DLQStream}, Replicas: e.Replicas}); err != nil {
			return err
		}
		// With the same replicas, so presence survives a node loss.
		if err := (consumer.Presence{Replicas: e.Replicas}).Provision(ctx, c.js); err != nil {
			return err
		}
	}
	warnDurability(ctx, log, checkDurability(ctx, c, e.MonitorURL, []string{e.Stream, e.DLQStream}))
	web, err := newWeb(c, e.HTTPAddr, e.Base, e.HTTPEnv, log)
	if err != nil {
		return err
	}
	parts := []jetworker.Runner{jetworker.RunnerFunc(c.watch)}
	for i, r := range rs {
		cfg := e.consumerConfig(r, log)
		if web != nil {
			web.consumerHooks(&cfg)
		}
		cons, err := consumer.New(c.js, hs[i], cfg)
		if err != nil {
			return fmt.Errorf("route %s: %w", r.Name, err)
		}
		if web != nil {
			web.readyWhen("consumer "+cfg.Durable, cons.Ready())
		}
		log.Info("route", slog.String("route", r.Name), slog.String("subject", r.Subject), slog.String("durable", cfg.Durable), slog.Int("concurrency", cfg.Concurrency))
		parts = append(parts, cons)
	}
	if web != nil {
		parts = append(parts, web)
	}
	return jetworker.RunAll(ctx, parts...)
}
