package main_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jetworker/jetworker/dlq"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/internal/testutil"
)

// secretEnv sets every secret-bearing variable to a distinctive value
// made with mark. Secrets of 6 bytes and more are also caught by the
// output scrubber, shorter ones only by the printers that redact them: a
// test with each keeps both honest.
type secretEnv struct {
	vars    map[string]string
	secrets []string // what must never be printed
}

func newSecretEnv(mark func(i int) string, natsHost string) secretEnv {
	s := func(i int) string { return mark(i) }
	e := secretEnv{vars: map[string]string{
		"JETWORKER_USER":               "app",
		"JETWORKER_PASSWORD":           s(1),
		"JETWORKER_HTTP_USER":          "admin",
		"JETWORKER_HTTP_PASSWORD":      s(2),
		"JETWORKER_HTTP_TOKEN":         s(3),
		"JETWORKER_WEBHOOK_SECRET":     s(4),
		"JETWORKER_SMTP_PASSWORD":      s(5),
		"JETWORKER_METRICS_TOKEN":      s(6),
		"JETWORKER_DATABASE_URL":       "postgres://dbuser:" + s(7) + "@db.example.com:5432/app?password=" + s(8),
		"JETWORKER_NATS_URL":           "nats://natsuser:" + s(9) + "@" + natsHost,
		"JETWORKER_WEBHOOK_URL":        "http://hookuser:" + s(10) + "@127.0.0.1:1/hook/" + s(20) + "?token=" + s(11),
		"JETWORKER_BENCH_URL":          "nats://benchuser:" + s(12) + "@127.0.0.1:1",
		"JETWORKER_BENCH_DATABASE_URL": "host=127.0.0.1 port=1 user=bench password=" + s(22) + " dbname=bench",
		"JETWORKER_HEALTHCHECK_URL":    "http://hcuser:" + s(13) + "@127.0.0.1:1/readyz?token=" + s(14),
		"JETWORKER_NATS_MONITOR_URL":   "http://monuser:" + s(15) + "@127.0.0.1:1",
		// At least 32 bytes, as the dashboard wants it; the mark is what
		// must not show.
		"JETWORKER_HTTP_SESSION_KEY": s(18) + "-padding-to-thirty-two-bytes",
		"JETWORKER_SMTP_HOST":        "smtp.example.com",
		"JETWORKER_SMTP_USER":        "mailer",
		"JETWORKER_SMTP_FROM":        "noreply@example.com",
	}}
	for i := 1; i <= 15; i++ {
		e.secrets = append(e.secrets, s(i))
	}
	e.secrets = append(e.secrets, s(18), s(20), s(22))
	return e
}

// with returns the variables as an environment, changed by kv ("K=V"
// sets, "K=" with nothing after removes K).
func (e secretEnv) with(kv ...string) []string {
	vars := maps.Clone(e.vars)
	for _, x := range kv {
		k, v, _ := strings.Cut(x, "=")
		if v == "" {
			delete(vars, k)
			continue
		}
		vars[k] = v
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		out = append(out, k+"="+vars[k])
	}
	return out
}

// check fails the test if any secret appears in what was printed.
func (e secretEnv) check(t *testing.T, what string, stdout, stderr string) {
	t.Helper()
	for _, s := range e.secrets {
		if strings.Contains(stdout, s) {
			t.Errorf("%s: stdout reveals %q:\n%s", what, s, stdout)
		}
		if strings.Contains(stderr, s) {
			t.Errorf("%s: stderr reveals %q:\n%s", what, s, stderr)
		}
	}
}

// Every secret-bearing variable set to a distinctive value, and every
// command run every way that prints: help, bad flags and values, a check,
// a refused connection, a refused password. No secret is printed.
func TestSecretsNeverPrinted(t *testing.T) {
	t.Parallel()
	authSrv := embeddedtest.Start(t, embedded.Config{User: "app", Password: "the-right-one"})
	authHost := strings.TrimPrefix(authSrv.URL(), "nats://")
	marks := map[string]func(int) string{
		"long secrets": func(i int) string { return fmt.Sprintf("Sekr1t-%02d-LONG", i) },
		// Under the scrubber's minimum length: only the printers' own
		// redaction keeps these out.
		"short secrets": func(i int) string { return fmt.Sprintf("Zq%02dX", i) },
	}
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(routes, []byte("routes:\n"+
		"  - {name: hooks, subject: tasks.hooks.>, webhook: {url: 'https://u:${ROUTE_HOOK_PASSWORD}@hooks.example.com/services/${ROUTE_HOOK_PATH}?key=${ROUTE_HOOK_KEY}', secret: '${ROUTE_HOOK_SECRET}'}}\n"+
		"  - {name: mail, subject: tasks.mail.>, email: {host: smtp.example.com, from: 'a@example.com', username: u, password: '${ROUTE_SMTP_PASSWORD}'}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	nats := []string{"worker", "scheduler", "provision", "publish", "schedule", "dlq", "status", "task"}
	all := append(slices.Clone(nats), "dev", "bench", "healthcheck", "version", "outbox")
	nonNATSArgs := map[string][]string{"publish": {"tasks.x", "{}"}, "schedule": {"ls"}, "dlq": {"ls"}, "task": {"ls"}}

	for markName, mark := range marks {
		e := newSecretEnv(mark, "127.0.0.1:1")
		routeEnv := []string{
			"ROUTE_HOOK_PASSWORD=" + mark(21), "ROUTE_HOOK_KEY=" + mark(22), "ROUTE_HOOK_SECRET=" + mark(23), "ROUTE_SMTP_PASSWORD=" + mark(24),
			"ROUTE_HOOK_PATH=" + mark(25),
		}
		e.secrets = append(e.secrets, mark(19), mark(21), mark(22), mark(23), mark(24), mark(25))
		type run struct {
			name string
			env  []string
			args []string
			code int // -1: any but 0
		}
		var runs []run
		for _, cmd := range all {
			runs = append(runs,
				run{cmd + " --help", e.with(), []string{cmd, "--help"}, 0},
				run{cmd + " --help-all", e.with(), []string{cmd, "--help-all"}, 0},
				run{cmd + " bad flag", e.with(), []string{cmd, "--bogus"}, 2},
			)
		}
		for _, cmd := range nats {
			args := append([]string{cmd}, nonNATSArgs[cmd]...)
			runs = append(runs,
				run{cmd + " bad value", e.with(), append(slices.Clone(args), "--log-level", "loud"), 2},
				run{cmd + " bad variable", e.with("JETWORKER_CONNECT_TIMEOUT=soon"), args, 2},
				run{cmd + " two kinds of credentials", e.with("JETWORKER_TOKEN=" + mark(16)), args, 2},
				run{cmd + " refused connection", e.with(), args, 1},
				run{cmd + " refused connection, text", e.with("JETWORKER_LOG_FORMAT=text"), args, 1},
				run{cmd + " bad password", e.with("JETWORKER_NATS_URL=nats://" + authHost), args, 1},
				run{cmd + " bad password in the URL", e.with("JETWORKER_NATS_URL=nats://app:"+mark(17)+"@"+authHost, "JETWORKER_USER=", "JETWORKER_PASSWORD="), args, 1},
			)
		}
		runs = append(runs,
			run{"worker --check", append(e.with("JETWORKER_ROUTES="+routes), routeEnv...), []string{"worker", "--check"}, 0},
			run{"worker with a bad routes value", append(e.with("JETWORKER_ROUTES="+routes, "JETWORKER_CONCURRENCY=-1"), routeEnv...), []string{"worker"}, 2},
			run{"worker --check, text", append(e.with("JETWORKER_ROUTES="+routes, "JETWORKER_LOG_FORMAT=text"), routeEnv...), []string{"worker", "--check"}, 0},
			run{"dev on a reachable host", e.with(), []string{"dev", "--host", "0.0.0.0"}, 2},
			run{"dev with a reachable dashboard", e.with("JETWORKER_HTTP_USER=", "JETWORKER_HTTP_PASSWORD=", "JETWORKER_HTTP_TOKEN="), []string{"dev", "--http-addr", "0.0.0.0:0"}, 2},
			run{"worker with a short session key", append(e.with("JETWORKER_ROUTES="+routes, "JETWORKER_HTTP_ADDR=127.0.0.1:0", "JETWORKER_HTTP_SESSION_KEY="+mark(19)), routeEnv...), []string{"worker"}, 2},
			run{"task wait refused", e.with(), []string{"task", "wait", "x"}, 1},
			run{"bench refused", e.with(), []string{"bench", "--n", "10"}, 1},
			run{"healthcheck refused", e.with(), []string{"healthcheck"}, 1},
			run{"healthcheck bad value", e.with(), []string{"healthcheck", "--timeout", "soon"}, 2},
			run{"version extra argument", e.with(), []string{"version", "x"}, 2},
			run{"outbox unknown host", e.with(), []string{"outbox", "dead", "ls"}, 1},
			run{"outbox refused", e.with("JETWORKER_DATABASE_URL=postgres://dbuser:" + mark(7) + "@127.0.0.1:1/app?password=" + mark(8)), []string{"outbox", "migrate"}, 1},
			run{"outbox refused, key=value", e.with("JETWORKER_DATABASE_URL=host=127.0.0.1 port=1 user=u password=" + mark(7) + " dbname=app"), []string{"outbox", "dead", "ls", "--json"}, 1},
			run{"outbox relay, NATS refused", e.with("JETWORKER_DATABASE_URL=postgres://dbuser:" + mark(7) + "@127.0.0.1:1/app"), []string{"outbox", "relay"}, 1},
			run{"outbox bad value", e.with(), []string{"outbox", "relay", "--batch-size", "many"}, 2},
			run{"outbox without a subcommand", e.with(), []string{"outbox"}, 2},
		)
		for _, r := range runs {
			t.Run(markName+"/"+r.name, func(t *testing.T) {
				t.Parallel()
				res := jw(t, r.env, "", r.args...)
				if (r.code >= 0 && res.code != r.code) || (r.code < 0 && res.code == 0) {
					t.Errorf("exit %d, want %d\n%s\n%s", res.code, r.code, res.stdout, res.stderr)
				}
				e.check(t, strings.Join(r.args, " "), res.stdout, res.stderr)
			})
		}
	}
}

// A worker whose webhook cannot connect logs the failure and dead-letters
// the task with the error: the webhook URL's user info, path and query appear
// neither in the logs nor in the dead letter. The effective configuration
// logged at start-up redacts every secret, and so does dev's.
func TestSecretsNotInLogsOrDeadLetters(t *testing.T) {
	t.Parallel()
	srv, _ := natsEnv(t)
	for name, mark := range map[string]func(int) string{
		"long":  func(i int) string { return fmt.Sprintf("Lg%02d-secret-value", i) },
		"short": func(i int) string { return fmt.Sprintf("Sh%02dY", i) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newSecretEnv(mark, strings.TrimPrefix(srv.URL(), "nats://"))
			env := e.with("JETWORKER_HTTP_ADDR=127.0.0.1:0", "JETWORKER_METRICS_ADDR=127.0.0.1:0", "JETWORKER_MAX_DELIVER=1",
				"JETWORKER_WEBHOOK_SUBJECT=tasks.leak-"+name+".>", "JETWORKER_DURABLE=leak-"+name, "JETWORKER_SMTP_HOST=")
			stop, _ := background(t, env, "worker")
			if r := jw(t, env, "", "publish", "tasks.leak-"+name+".x", "{}"); r.code != 0 {
				t.Fatalf("publish: exit %d\n%s", r.code, r.stderr)
			}
			_, js := embeddedtest.Connect(t, srv)
			store, err := dlq.New(js, dlq.Config{})
			if err != nil {
				t.Fatal(err)
			}
			var seq uint64
			testutil.Eventually(t, 20*time.Second, func() error {
				page, err := store.List(t.Context(), dlq.Filter{Consumer: "leak-" + name + "-webhook"}, 0, 0)
				if err != nil {
					return err
				}
				if len(page.Entries) != 1 {
					return fmt.Errorf("%d dead letters", len(page.Entries))
				}
				seq = page.Entries[0].Sequence
				if msg := page.Entries[0].Error; !strings.Contains(msg, "http://127.0.0.1:1/...") || !strings.Contains(msg, "connection refused") {
					return fmt.Errorf("Jetworker-Error %q does not say where and why", msg)
				}
				return nil
			})
			for _, args := range [][]string{{"dlq", "show", fmt.Sprint(seq)}, {"dlq", "show", "--json", fmt.Sprint(seq)}, {"dlq", "ls", "--json"}, {"dlq", "ls"}} {
				r := jw(t, env, "", args...)
				e.check(t, strings.Join(args, " "), r.stdout, r.stderr)
			}
			res := stop()
			e.check(t, "worker", res.stdout, res.stderr)
			if !strings.Contains(res.stderr, `"msg":"worker starting"`) || !strings.Contains(res.stderr, `"password":"[REDACTED]"`) ||
				!strings.Contains(res.stderr, `"webhook_url":"http://127.0.0.1:1/..."`) {
				t.Errorf("worker did not log its configuration, redacted:\n%s", res.stderr)
			}
		})
	}
	t.Run("dev", func(t *testing.T) {
		t.Parallel()
		e := newSecretEnv(func(i int) string { return fmt.Sprintf("Dv%02dZ", i) }, "127.0.0.1:1")
		stop, out := background(t, e.with("JETWORKER_DATA_DIR="+t.TempDir()), "dev", "--port", "-1", "--http-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--no-demo")
		testutil.Eventually(t, 20*time.Second, func() error {
			if !strings.Contains(out.String(), "Ctrl-C stops it") {
				return fmt.Errorf("no banner yet: %s", out.String())
			}
			return nil
		})
		res := stop()
		e.check(t, "dev", res.stdout, res.stderr)
	})
}

// The final error of a command in JSON log mode is one JSON log line.
func TestFatalErrorIsOneJSONLine(t *testing.T) {
	t.Parallel()
	r := jw(t, []string{"JETWORKER_NATS_URL=nats://127.0.0.1:1"}, "", "status")
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	var rec struct {
		Level, Msg, Command string
	}
	if r.code != 1 || len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &rec) != nil || rec.Level != "ERROR" || rec.Command != "status" ||
		!strings.HasPrefix(rec.Msg, "jetworker status: connect to nats://127.0.0.1:1: connection refused") {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	r = jw(t, []string{"JETWORKER_NATS_URL=nats://127.0.0.1:1", "JETWORKER_LOG_FORMAT=text"}, "", "status")
	if want := "jetworker status: connect to nats://127.0.0.1:1: connection refused: is nats-server running and listening there?\n"; r.code != 1 || r.stderr != want {
		t.Fatalf("text mode: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
	// A usage error comes before the logger exists; the --log-format flag
	// still decides its form, over the environment.
	for _, args := range [][]string{
		{"status", "--log-format", "text", "--bogus"},
		{"status", "--log-format=text", "--bogus"},
		{"worker", "--bogus", "--log-format", "text"},
	} {
		r = jw(t, []string{"JETWORKER_LOG_FORMAT=json"}, "", args...)
		want := fmt.Sprintf("jetworker %s: unknown flag --bogus (see \"jetworker %s --help\")\n", args[0], args[0])
		if r.code != 2 || r.stderr != want {
			t.Errorf("%v: exit %d, stderr %q, want %q", args, r.code, r.stderr, want)
		}
	}
}
