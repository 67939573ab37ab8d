package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jetworker/jetworker/internal/hostcheck"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dashboard"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/handlers"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/schedule"
	"github.com/jetworker/jetworker/streams"
	"github.com/jetworker/jetworker/task"
)

// devEnv configures "jetworker dev".
type devEnv struct {
	DataDir      string `envconfig:"JETWORKER_DATA_DIR" flag:"data-dir" default:".jetworker" meta:"DIR" group:"Dev" desc:"where the embedded server stores its data"`
	Host         string `envconfig:"JETWORKER_DEV_HOST" flag:"host" default:"127.0.0.1" meta:"ADDR" group:"Dev" desc:"address the embedded server listens on (beyond loopback only with --unsafe-no-auth)"`
	Port         int    `envconfig:"JETWORKER_DEV_PORT" flag:"port" default:"4222" group:"Dev" desc:"client port of the embedded server (-1: any free port)"`
	NoDemo       bool   `envconfig:"JETWORKER_NO_DEMO" flag:"no-demo" group:"Dev" desc:"do not publish demo tasks or create the demo schedule"`
	UnsafeNoAuth bool   `envconfig:"JETWORKER_DEV_UNSAFE_NO_AUTH" flag:"unsafe-no-auth" group:"Dev" desc:"let the embedded server (no authentication) and the dashboard (read-only) listen beyond loopback"`
	LogEnv
	HTTPEnv
	MetricsEnv
}

// embeddedConfig maps the settings to the embedded server's Config.
func (e devEnv) embeddedConfig(log *slog.Logger) embedded.Config {
	return embedded.Config{
		Host: e.Host, Port: e.Port, StoreDir: filepath.Join(e.DataDir, "nats"),
		UnsafeNoAuth: e.UnsafeNoAuth, Logger: log,
	}
}

// dashboardConfig maps the HTTP and metrics settings; --unsafe-no-auth
// covers the dashboard too.
func (e devEnv) dashboardConfig(log *slog.Logger) (dashboard.Config, bool) {
	h := e.HTTPEnv
	h.HTTPUnsafeNoAuth = h.HTTPUnsafeNoAuth || e.UnsafeNoAuth
	return dashboardConfig(h, e.MetricsEnv, streams.DefaultTaskStream, streams.DefaultDeadLetterStream, log)
}

// slowSteps and slowStep pace the demo's slow task: long enough to watch
// its progress in the dashboard, short enough for a prompt Ctrl-C.
const (
	slowSteps = 20
	slowStep  = 400 * time.Millisecond
)

// demoHandler is what the dev worker runs: a few demo task types, and a
// logger for any other subject under tasks.>.
func demoHandler(log *slog.Logger, out func(format string, args ...any)) jetworker.Handler {
	type hello struct {
		Name string `json:"name"`
	}
	mux := handlers.NewMux()
	mux.Route("tasks.demo.hello", handlers.JSON(func(ctx context.Context, t *jetworker.Task, v hello) error {
		out("hello, %s (task %s)", inert(v.Name), taskName(t))
		return nil
	}))
	mux.RouteFunc("tasks.demo.flaky", func(ctx context.Context, t *jetworker.Task) error {
		if t.Delivered == 1 {
			out("flaky task %s failed on attempt 1; retrying in 1s", taskName(t))
			return jetworker.RetryAfter(errors.New("flaky dependency"), time.Second)
		}
		out("flaky task %s succeeded on attempt %d", taskName(t), t.Delivered)
		return nil
	})
	mux.RouteFunc("tasks.demo.slow", func(ctx context.Context, t *jetworker.Task) error {
		for i := range slowSteps {
			// Published without tracking, it has no one to report to:
			// ErrNotTracked is no reason to stop.
			if err := jetworker.SetProgress(ctx, float64(i*100/slowSteps), fmt.Sprintf("step %d of %d", i+1, slowSteps)); err != nil && !errors.Is(err, jetworker.ErrNotTracked) {
				return err
			}
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-time.After(slowStep):
			}
		}
		_ = jetworker.SetProgress(ctx, 100, "done")
		_ = jetworker.SetResult(ctx, []byte(`{"steps":`+strconv.Itoa(slowSteps)+`}`))
		out("slow task %s done after %d steps", taskName(t), slowSteps)
		return nil
	})
	mux.RouteFunc("tasks.demo.broken", func(ctx context.Context, t *jetworker.Task) error {
		out("broken task %s goes to the dead letters", taskName(t))
		return jetworker.Permanent(errors.New("demo: this task can never succeed"))
	})
	mux.RouteFunc("tasks.>", func(ctx context.Context, t *jetworker.Task) error {
		out("task %s on %s: %s", taskName(t), inert(t.Subject), excerpt(string(t.Data), 120))
		return nil
	})
	return mux
}

// runDev runs dev; stopped at any point (Ctrl-C during start-up too), it
// stops cleanly.
func runDev(ctx context.Context, std *stdio, args []string) error {
	return cleanStop(ctx, dev(ctx, std, args))
}

func dev(ctx context.Context, std *stdio, args []string) error {
	e := devEnv{HTTPEnv: HTTPEnv{HTTPAddr: dashboard.DefaultAddr}}
	c := newCLI("dev", "", `
Run everything on one embedded nats-server: the streams, a worker with demo
handlers (tasks.demo.hello, .flaky, .slow, .broken; anything else under
tasks.> is printed), the scheduler and the dashboard. The demo tasks are
tracked: jetworker task ls and the dashboard's task browser show them.
Data stays in --data-dir between runs.`).env(&e)
	if err := c.parseNoArgs(std, args); err != nil {
		return err
	}
	log, err := std.logger(e.LogEnv)
	if err != nil {
		return err
	}
	out := func(format string, args ...any) { fmt.Fprintf(std.out, format+"\n", args...) }

	if !hostcheck.Loopback(e.Host) && !e.UnsafeNoAuth {
		return usagef("--host %q is reachable from other machines, and the embedded server has no authentication: listen on 127.0.0.1, or pass --unsafe-no-auth", e.Host)
	}
	ecfg := e.embeddedConfig(serverLogger(e.LogEnv, std.err, std.isTTY))
	dcfg, serve := e.dashboardConfig(log)
	if serve {
		if err := dcfg.Validate(); err != nil {
			return inTermsOf(err, "dashboard", "http: ", dashboardFields)
		}
	}
	if err := portFree(e.Host, e.Port); err != nil {
		return err
	}
	srv, err := embedded.Start(ecfg)
	if err != nil {
		return fmt.Errorf("start the embedded nats-server on %s: %w", net.JoinHostPort(e.Host, strconv.Itoa(e.Port)), err)
	}
	defer srv.Shutdown()

	conn, err := connect(ctx, ConnEnv{NATSURL: srv.URL(), ConnectTimeout: 5 * time.Second}, "dev", log)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := streams.Provision(ctx, conn.js, streams.Config{}); err != nil {
		return err
	}
	store, err := schedule.NewStore(conn.js, schedule.StoreConfig{})
	if err != nil {
		return err
	}
	if err := store.Provision(ctx); err != nil {
		return err
	}
	tasks, err := task.New(conn.js, task.Config{Logger: log})
	if err != nil {
		return err
	}
	if err := tasks.Provision(ctx); err != nil {
		return err
	}

	var w *web
	if serve {
		if w, err = newWeb(conn, dcfg); err != nil {
			return err
		}
		w.metrics.ObserveTaskStore(tasks)
	}
	ccfg := consumer.Config{Durable: "dev", Concurrency: 4, Tasks: tasks, Logger: log}
	scfg := schedule.Config{LeaseTTL: 3 * time.Second, Logger: log}
	if w != nil {
		w.consumerHooks(&ccfg)
		w.schedulerHooks(&scfg)
	}
	cons, err := consumer.New(conn.js, demoHandler(log, out), ccfg)
	if err != nil {
		return err
	}
	sched, err := schedule.New(conn.js, scfg)
	if err != nil {
		return err
	}
	parts := []jetworker.Runner{jetworker.RunnerFunc(conn.watch), cons, sched}
	if w != nil {
		w.readyWhen("consumer", cons.Ready())
		w.readyWhen("scheduler", sched.Ready())
		parts = append(parts, w)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- runAll(runCtx, parts...) }()

	// Print the banner once everything listens: a busy HTTP port fails
	// before it, not after a dashboard URL that does not work.
	if w != nil {
		select {
		case <-w.srv.Ready():
		case err := <-errc:
			return err
		}
	}
	out("jetworker dev: everything on one embedded nats-server (data in %s; fast, not fsync'ed per write)", inert(e.DataDir))
	out("  NATS:      %s", srv.URL())
	if w != nil {
		if a := w.srv.Addr(); a != "" {
			out("  dashboard: %s", browsable(a, "/"))
		}
		if a := w.srv.MetricsAddr(); a != "" {
			out("  metrics:   %s", browsable(a, "/metrics"))
		}
	}
	out("  try:       jetworker publish --url %s --track tasks.demo.hello '{\"name\":\"you\"}'", srv.URL())
	out("             jetworker task ls --url %s", srv.URL())
	out("             jetworker status --url %s", srv.URL())
	out("  Ctrl-C stops it.")

	if !e.NoDemo {
		select {
		case <-cons.Ready():
		case err := <-errc:
			return err
		}
		if err := demo(ctx, conn, store, tasks, out); err != nil {
			cancel()
			return errors.Join(err, <-errc)
		}
	}
	err = <-errc
	out("jetworker dev: stopped")
	return err
}

// browsable is the http URL of path on a listener's address; a wildcard
// address is reached on loopback.
func browsable(addr, path string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + path
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return "http://" + net.JoinHostPort("127.0.0.1", port) + path + " (on every interface)"
	}
	return "http://" + net.JoinHostPort(host, port) + path
}

// portFree fails at once, naming the port, when something listens on the
// embedded server's port already (nats-server itself would only report it
// after its start-up timeout).
func portFree(host string, port int) error {
	if port <= 0 {
		return nil
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("NATS port %s is in use (another jetworker dev or nats-server?): stop it, or pick another port with --port (-1: any free port)", addr)
		}
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln.Close()
}

// demo publishes a few tracked tasks and creates the demo schedule.
func demo(ctx context.Context, c *conn, store *schedule.Store, tasks *task.Store, out func(string, ...any)) error {
	pub, err := publisher.New(c.js, publisher.Config{Tasks: tasks})
	if err != nil {
		return err
	}
	hello := func(name string) []byte {
		b, _ := json.Marshal(map[string]string{"name": name})
		return b
	}
	tracked := &publisher.PublishOpts{Track: true}
	for i := 1; i <= 3; i++ {
		if _, err := pub.Publish(ctx, "tasks.demo.hello", hello("demo "+strconv.Itoa(i)), tracked); err != nil {
			return err
		}
	}
	for _, subject := range []string{"tasks.demo.slow", "tasks.demo.flaky", "tasks.demo.broken"} {
		if _, err := pub.Publish(ctx, subject, []byte(`{}`), tracked); err != nil {
			return err
		}
	}
	if _, err := pub.Publish(ctx, "tasks.demo.hello", hello("delayed by 3s"), &publisher.PublishOpts{Delay: 3 * time.Second, Track: true}); err != nil {
		return err
	}
	if _, err := store.Get(ctx, "demo-every-10s"); errors.Is(err, schedule.ErrNotFound) {
		if _, err := store.Put(ctx, schedule.Entry{
			Name: "demo-every-10s", Spec: "@every 10s", Subject: "tasks.demo.hello", Payload: hello("scheduler"), CatchUp: schedule.CatchUpSkip,
		}); err != nil {
			return err
		}
	}
	out("published 7 tracked demo tasks (one delayed, one slow, one flaky, one broken) and the schedule demo-every-10s")
	return nil
}

// taskName is how a printed line names a task: its ID, or its stream and
// sequence when it has none.
func taskName(t *jetworker.Task) string { return inert(cmp.Or(t.ID, t.Ref())) }
