package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/handlers"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/schedule"
	"github.com/jetworker/jetworker/streams"
)

// devEnv configures "jetworker dev".
type devEnv struct {
	LogEnv
	DataDir  string `envconfig:"DATA_DIR" default:".jetworker" desc:"where the embedded server stores its data"`
	Host     string `envconfig:"DEV_HOST" default:"127.0.0.1" desc:"address the embedded server listens on"`
	Port     int    `envconfig:"DEV_PORT" default:"4222" desc:"client port of the embedded server (-1: any free port)"`
	HTTPAddr string `envconfig:"HTTP_ADDR" default:"127.0.0.1:8080" desc:"dashboard, health and metrics address (empty: off)"`
	NoDemo   bool   `envconfig:"NO_DEMO" desc:"do not publish demo tasks or create the demo schedule"`
	HTTPEnv
}

// demoHandler is what the dev worker runs: a few demo task types, and a
// logger for any other subject under tasks.>.
func demoHandler(log *slog.Logger, out func(format string, args ...any)) jetworker.Handler {
	type hello struct {
		Name string `json:"name"`
	}
	mux := handlers.NewMux()
	mux.Use(handlers.Recover())
	mux.Route("tasks.demo.hello", handlers.JSON(func(ctx context.Context, t *jetworker.Task, v hello) error {
		out("hello, %s (task %s)", v.Name, t.ID)
		return nil
	}))
	mux.RouteFunc("tasks.demo.flaky", func(ctx context.Context, t *jetworker.Task) error {
		if t.Delivered == 1 {
			out("flaky task %s failed on attempt 1; retrying in 1s", t.ID)
			return jetworker.RetryAfter(errors.New("flaky dependency"), time.Second)
		}
		out("flaky task %s succeeded on attempt %d", t.ID, t.Delivered)
		return nil
	})
	mux.RouteFunc("tasks.demo.broken", func(ctx context.Context, t *jetworker.Task) error {
		out("broken task %s goes to the dead letters", t.ID)
		return jetworker.Permanent(errors.New("demo: this task can never succeed"))
	})
	mux.RouteFunc("tasks.>", func(ctx context.Context, t *jetworker.Task) error {
		out("task %s on %s: %s", t.ID, t.Subject, excerpt(string(t.Data), 120))
		return nil
	})
	return mux
}

func runDev(ctx context.Context, std *stdio, args []string) error {
	var e devEnv
	fs := newFlagSet("dev", std, "", &e)
	if err := loadEnv(&e); err != nil {
		return err
	}
	f := flagEnv{fs}
	e.LogEnv.flags(f)
	f.str(&e.DataDir, "data-dir", "DATA_DIR", "data directory")
	f.str(&e.Host, "host", "DEV_HOST", "listen address")
	f.integer(&e.Port, "port", "DEV_PORT", "client port")
	f.str(&e.HTTPAddr, "http-addr", "HTTP_ADDR", "HTTP address")
	f.boolean(&e.NoDemo, "no-demo", "NO_DEMO", "no demo tasks")
	e.HTTPEnv.flags(f)
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	log, err := newLogger(e.LogEnv, std.err, std.isTTY)
	if err != nil {
		return err
	}
	out := func(format string, args ...any) { fmt.Fprintf(std.out, format+"\n", args...) }

	srv, err := embedded.Start(embedded.Config{
		Host: e.Host, Port: e.Port, StoreDir: filepath.Join(e.DataDir, "nats"),
		Logger: serverLogger(e.LogEnv, std.err, std.isTTY),
	})
	if err != nil {
		return fmt.Errorf("start embedded nats-server on %s:%d (try --port -1): %w", e.Host, e.Port, err)
	}
	defer srv.Shutdown()

	c, err := connect(ctx, ConnEnv{NATSURL: srv.URL(), ConnectTimeout: 5 * time.Second}, "dev", log)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := streams.Provision(ctx, c.js, streams.Config{}); err != nil {
		return err
	}
	store, err := schedule.NewStore(c.js, schedule.StoreConfig{})
	if err != nil {
		return err
	}
	if err := store.Provision(ctx); err != nil {
		return err
	}

	b := Base{ConnEnv: ConnEnv{NATSURL: srv.URL()}, LogEnv: e.LogEnv, StreamEnv: StreamEnv{Stream: streams.DefaultTaskStream, DLQStream: streams.DefaultDeadLetterStream}}
	web, err := newWeb(c, e.HTTPAddr, b, e.HTTPEnv, log)
	if err != nil {
		return err
	}
	ccfg := consumer.Config{Durable: "dev", Concurrency: 4, Logger: log}
	scfg := schedule.Config{LeaseTTL: 3 * time.Second, Logger: log}
	if web != nil {
		web.consumerHooks(&ccfg)
		web.schedulerHooks(&scfg)
	}
	cons, err := consumer.New(c.js, demoHandler(log, out), ccfg)
	if err != nil {
		return err
	}
	sched, err := schedule.New(c.js, scfg)
	if err != nil {
		return err
	}
	parts := []jetworker.Runner{jetworker.RunnerFunc(c.watch), cons, sched}
	if web != nil {
		web.readyWhen("consumer", cons.Ready())
		web.readyWhen("scheduler", sched.Ready())
		parts = append(parts, web)
	}

	out("jetworker dev: everything on one embedded nats-server (data in %s; fast, not fsync'ed per write)", e.DataDir)
	out("  NATS:      %s", srv.URL())
	if web != nil {
		out("  dashboard: http://%s/", e.HTTPAddr)
	}
	out("  try:       jetworker publish --url %s tasks.demo.hello '{\"name\":\"you\"}'", srv.URL())
	out("             jetworker status --url %s", srv.URL())
	out("  Ctrl-C stops it.")

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- jetworker.RunAll(runCtx, parts...) }()

	if !e.NoDemo {
		select {
		case <-cons.Ready():
		case err := <-errc:
			return err
		}
		if err := demo(ctx, c, store, out); err != nil {
			cancel()
			return errors.Join(err, <-errc)
		}
	}
	err = <-errc
	out("jetworker dev: stopped")
	return err
}

// demo publishes a few tasks and creates the demo schedule.
func demo(ctx context.Context, c *conn, store *schedule.Store, out func(string, ...any)) error {
	pub, err := publisher.New(c.js, publisher.Config{})
	if err != nil {
		return err
	}
	hello := func(name string) []byte {
		b, _ := json.Marshal(map[string]string{"name": name})
		return b
	}
	for i := 1; i <= 3; i++ {
		if _, err := pub.Publish(ctx, "tasks.demo.hello", hello("demo "+strconv.Itoa(i)), nil); err != nil {
			return err
		}
	}
	if _, err := pub.Publish(ctx, "tasks.demo.flaky", []byte(`{}`), nil); err != nil {
		return err
	}
	if _, err := pub.Publish(ctx, "tasks.demo.broken", []byte(`{}`), nil); err != nil {
		return err
	}
	if _, err := pub.Publish(ctx, "tasks.demo.hello", hello("delayed by 3s"), &publisher.PublishOpts{Delay: 3 * time.Second}); err != nil {
		return err
	}
	if _, err := store.Get(ctx, "demo-every-10s"); errors.Is(err, schedule.ErrNotFound) {
		if _, err := store.Put(ctx, schedule.Entry{
			Name: "demo-every-10s", Spec: "@every 10s", Subject: "tasks.demo.hello", Payload: hello("scheduler"), CatchUp: schedule.CatchUpSkip,
		}); err != nil {
			return err
		}
	}
	out("published 6 demo tasks (one delayed, one flaky, one broken) and the schedule demo-every-10s")
	return nil
}
