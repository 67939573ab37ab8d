package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetworker/jetworker/dlq"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/handlers/webhook"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/task"
)

func TestPublishWorkerWebhook(t *testing.T) {
	t.Parallel()
	_, env := natsEnv(t)
	const secret = "s3cret-hook"
	var mu sync.Mutex
	var bodies []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(secret, r.Header.Get(webhook.HeaderSignature), body, time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		mu.Lock()
		bodies = append(bodies, string(body))
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)

	_, _ = background(t, append(env,
		"JETWORKER_WEBHOOK_URL="+hook.URL,
		"JETWORKER_WEBHOOK_SECRET="+secret,
	), "worker")

	for i := range 3 {
		r := jw(t, env, "", "publish", "--id", fmt.Sprintf("hook-%d", i), "tasks.webhook.order", fmt.Sprintf(`{"n":%d}`, i))
		if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("published task hook-%d", i)) {
			t.Fatalf("publish: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	}
	// Same ID again: reported as a duplicate, not an error.
	r := jw(t, env, "", "publish", "--id", "hook-0", "tasks.webhook.order", `{"n":0}`)
	if r.code != 0 || !strings.Contains(r.stdout, "duplicate") {
		t.Fatalf("duplicate publish: exit %d, stdout %q", r.code, r.stdout)
	}
	// Data from standard input.
	if r := jw(t, env, `{"n":"stdin"}`, "publish", "tasks.webhook.order"); r.code != 0 {
		t.Fatalf("publish from stdin: exit %d, %s", r.code, r.stderr)
	}
	testutil.Eventually(t, 20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(bodies) < 4 {
			return fmt.Errorf("webhook received %d of 4 tasks", len(bodies))
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 4 || !strings.Contains(strings.Join(bodies, ""), `{"n":"stdin"}`) {
		t.Fatalf("webhook bodies: %q", bodies)
	}
}

func TestScheduleCommands(t *testing.T) {
	t.Parallel()
	_, env := natsEnv(t)
	r := jw(t, env, "", "schedule", "add", "nightly", "--spec", "0 3 * * *", "--tz", "Europe/Berlin", "--subject", "tasks.cleanup", "--payload", `{"days":30}`)
	if r.code != 0 || !strings.Contains(r.stdout, `schedule "nightly" saved`) {
		t.Fatalf("add: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = jw(t, env, "", "schedule", "ls")
	if r.code != 0 {
		t.Fatalf("ls: exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"nightly", "0 3 * * *", "Europe/Berlin", "tasks.cleanup", "false"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("ls output lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := jw(t, env, "", "schedule", "pause", "nightly"); r.code != 0 {
		t.Fatalf("pause: exit %d: %s", r.code, r.stderr)
	}
	r = jw(t, env, "", "schedule", "ls", "--json")
	var rows []struct {
		Name     string    `json:"name"`
		Paused   bool      `json:"paused"`
		NextFire time.Time `json:"next_fire"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || len(rows) != 1 || !rows[0].Paused || !rows[0].NextFire.IsZero() {
		t.Fatalf("ls --json after pause: %v %+v (%s)", err, rows, r.stdout)
	}
	if r := jw(t, env, "", "schedule", "resume", "nightly"); r.code != 0 {
		t.Fatalf("resume: exit %d: %s", r.code, r.stderr)
	}
	if r := jw(t, env, "", "schedule", "trigger", "nightly"); r.code != 0 || !strings.Contains(r.stdout, "nightly@trigger-") {
		t.Fatalf("trigger: exit %d, %q, %s", r.code, r.stdout, r.stderr)
	}
	if r := jw(t, env, "", "schedule", "rm", "nightly"); r.code != 0 {
		t.Fatalf("rm: exit %d: %s", r.code, r.stderr)
	}
	if r := jw(t, env, "", "schedule", "get", "nightly"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("get after rm: exit %d, stderr %q; want exit 1, not found", r.code, r.stderr)
	}
}

func TestDLQCommands(t *testing.T) {
	t.Parallel()
	srv, env := natsEnv(t)
	// A worker whose webhook rejects with 400: tasks are dead-lettered at
	// once. After the fix (status flips to 200), a replay succeeds.
	var mu sync.Mutex
	status, got := http.StatusBadRequest, 0
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
		if status == http.StatusOK {
			got++
		}
	}))
	t.Cleanup(hook.Close)
	_, _ = background(t, append(env, "JETWORKER_WEBHOOK_URL="+hook.URL, "JETWORKER_WEBHOOK_SECRET=x"), "worker")
	for i := range 2 {
		if r := jw(t, env, "", "publish", "tasks.webhook.bad", fmt.Sprint(i)); r.code != 0 {
			t.Fatalf("publish: %s", r.stderr)
		}
	}
	_, js := embeddedtest.Connect(t, srv)
	store, _ := dlq.New(js, dlq.Config{})
	var seqs []uint64
	testutil.Eventually(t, 20*time.Second, func() error {
		page, err := store.List(t.Context(), dlq.Filter{}, 0, 0)
		list := page.Entries
		if err != nil {
			return err
		}
		if len(list) != 2 {
			return fmt.Errorf("%d dead letters", len(list))
		}
		seqs = []uint64{list[0].Sequence, list[1].Sequence}
		return nil
	})

	r := jw(t, env, "", "dlq", "ls")
	if r.code != 0 || !strings.Contains(r.stdout, "2 dead letters") || !strings.Contains(r.stdout, "tasks.webhook.bad") || !strings.Contains(r.stdout, "400") {
		t.Fatalf("dlq ls: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = jw(t, env, "", "dlq", "show", fmt.Sprint(seqs[0]))
	if r.code != 0 || !strings.Contains(r.stdout, "Jetworker-Error") || !strings.Contains(r.stdout, "Payload (1 bytes)") {
		t.Fatalf("dlq show: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// Replay without --yes and without an answer refuses.
	r = jw(t, env, "", "dlq", "replay", fmt.Sprint(seqs[0]))
	if r.code != 2 || !strings.Contains(r.stderr, "--yes") {
		t.Fatalf("unconfirmed replay: exit %d, stderr %q; want exit 2 naming --yes", r.code, r.stderr)
	}
	mu.Lock()
	status = http.StatusOK
	mu.Unlock()
	r = jw(t, env, "y\n", "dlq", "replay", fmt.Sprint(seqs[0]))
	if r.code != 0 || !strings.Contains(r.stdout, "replayed dead letter") {
		t.Fatalf("replay: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	testutil.Eventually(t, 20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if got != 1 {
			return fmt.Errorf("webhook got %d replayed tasks", got)
		}
		return nil
	})
	if r := jw(t, env, "", "dlq", "replay", "--yes", fmt.Sprint(seqs[0])); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("second replay: exit %d, stderr %q; want exit 1, not found", r.code, r.stderr)
	}
	if r := jw(t, env, "", "dlq", "purge", "--yes"); r.code != 0 || !strings.Contains(r.stdout, "purged 1") {
		t.Fatalf("purge: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	_, env := natsEnv(t)
	_, _ = background(t, append(env, "JETWORKER_WEBHOOK_URL=http://127.0.0.1:1/none", "JETWORKER_WEBHOOK_SECRET=x", "JETWORKER_DURABLE=svc"), "worker")
	_, _ = background(t, append(env, "JETWORKER_LEASE_TTL=2s"), "scheduler")
	testutil.Eventually(t, 20*time.Second, func() error {
		r := jw(t, env, "", "status", "--json")
		if r.code != 0 {
			return fmt.Errorf("exit %d: %s", r.code, r.stderr)
		}
		var rep struct {
			Streams   []struct{ Name string }
			Consumers []struct{ Stream, Name string }
			Workers   []struct{ Consumer string }
			Leader    string `json:"scheduler_leader"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			return err
		}
		if len(rep.Streams) != 2 || len(rep.Consumers) != 1 || rep.Consumers[0].Name != "svc-webhook" ||
			len(rep.Workers) != 1 || rep.Leader == "" {
			return fmt.Errorf("status: %+v", rep)
		}
		return nil
	})
	r := jw(t, env, "", "status")
	for _, want := range []string{"TASKS", "DLQ", "svc-webhook", "scheduler leader: "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status output lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestDevRunsDemoAndStopsOnSIGINT(t *testing.T) {
	t.Parallel()
	stop, out := background(t, []string{"JETWORKER_DATA_DIR=" + t.TempDir()}, "dev", "--port", "-1", "--http-addr", "")
	testutil.Eventually(t, 30*time.Second, func() error {
		s := out.String()
		for _, want := range []string{"hello, demo 3", "flaky task", "succeeded on attempt 2", "goes to the dead letters", "hello, delayed by 3s", "done after 20 steps"} {
			if !strings.Contains(s, want) {
				return fmt.Errorf("dev has not printed %q yet:\n%s", want, s)
			}
		}
		return nil
	})
	// The demo tasks are tracked, the slow one with its progress.
	url := regexp.MustCompile(`NATS:\s+(nats://\S+)`).FindStringSubmatch(out.String())
	if url == nil {
		t.Fatalf("no NATS URL in the banner:\n%s", out.String())
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		r := jw(t, []string{"JETWORKER_NATS_URL=" + url[1]}, "", "task", "ls", "--json")
		var tasks []task.Info
		if err := json.Unmarshal([]byte(r.stdout), &tasks); err != nil {
			return fmt.Errorf("task ls --json: %v: %s %s", err, r.stdout, r.stderr)
		}
		states := map[string]task.State{}
		var slow task.Info
		for _, ti := range tasks {
			states[ti.Subject] = ti.State
			if ti.Subject == "tasks.demo.slow" {
				slow = ti
			}
		}
		if len(tasks) != 7 || states["tasks.demo.flaky"] != task.Succeeded || states["tasks.demo.broken"] != task.Failed ||
			slow.State != task.Succeeded || slow.Progress == nil || slow.Progress.Percent != 100 || len(slow.Result) == 0 {
			return fmt.Errorf("%d tracked demo tasks: %v, slow %+v", len(tasks), states, slow)
		}
		return nil
	})
	began := time.Now()
	r := stop()
	if r.code != 0 {
		t.Fatalf("dev exit code %d after SIGINT, want 0\n%s", r.code, r.stderr)
	}
	if took := time.Since(began); took > 12*time.Second {
		t.Fatalf("dev took %s to stop, want within its 10s grace", took)
	}
	if !strings.Contains(r.stdout, "jetworker dev: stopped") {
		t.Fatalf("dev did not say it stopped:\n%s", r.stdout)
	}
}

func TestErrorsPeopleWillHit(t *testing.T) {
	t.Parallel()
	authSrv := embeddedtest.Start(t, embedded.Config{User: "app", Password: "right"})
	_, env := natsEnv(t)
	tests := []struct {
		name     string
		env      []string
		args     []string
		code     int
		want     []string
		notWant  string
		maxTaken time.Duration
	}{
		{name: "unknown subcommand", args: []string{"frobnicate"}, code: 2, want: []string{`unknown command "frobnicate"`}},
		{name: "no subcommand", args: nil, code: 2, want: []string{"Usage: jetworker"}},
		{
			// Nothing listens: said at once, not after the connect timeout.
			name: "NATS refuses", env: []string{"JETWORKER_NATS_URL=nats://127.0.0.1:1"}, args: []string{"status"},
			code: 1, want: []string{"nats://127.0.0.1:1", "connection refused"}, notWant: "within", maxTaken: 3 * time.Second,
		},
		{
			name: "authentication refused", env: []string{"JETWORKER_NATS_URL=" + authSrv.URL(), "JETWORKER_USER=app", "JETWORKER_PASSWORD=wrong"},
			args: []string{"status"}, code: 1, want: []string{"authentication refused", authSrv.URL()}, notWant: "wrong", maxTaken: 6 * time.Second,
		},
		{
			name: "password in URL is redacted", env: []string{"JETWORKER_NATS_URL=nats://app:hunter2@127.0.0.1:1"}, args: []string{"status"},
			code: 1, want: []string{"[REDACTED]@127.0.0.1:1"}, notWant: "hunter2",
		},
		{name: "missing stream", env: env, args: []string{"publish", "nowhere.x", "{}"}, code: 1, want: []string{"no stream captures the subject", `"nowhere.x"`}},
		{
			name: "invalid schedule spec", env: env, args: []string{"schedule", "add", "bad", "--spec", "61 * * * *", "--subject", "tasks.x"},
			code: 2, want: []string{"--spec", "61"}, notWant: "schedule: schedule:",
		},
		{name: "worker without routes", env: env, args: []string{"worker"}, code: 2, want: []string{"no routes"}},
		{name: "bad flag", env: env, args: []string{"status", "--bogus"}, code: 2, want: []string{`unknown flag --bogus (see "jetworker status --help")`}},
		{name: "bad value", env: env, args: []string{"worker", "--concurrency", "ten"}, code: 2, want: []string{`--concurrency "ten": want a whole number`}},
		{name: "bad variable", env: append(env, "JETWORKER_CONNECT_TIMEOUT=soon"), args: []string{"status"}, code: 2, want: []string{`JETWORKER_CONNECT_TIMEOUT="soon": want a duration`}},
		{name: "not found, one prefix", env: env, args: []string{"schedule", "get", "nope"}, code: 1, want: []string{`jetworker schedule: schedule "nope" not found`}},
		{name: "dead letter not found", env: env, args: []string{"dlq", "show", "99"}, code: 1, want: []string{"jetworker dlq: dead letter 99 not found in DLQ"}, notWant: "dlq: dlq:"},
		{name: "help lists env", args: []string{"worker", "--help"}, code: 0, want: []string{"JETWORKER_NATS_URL", "JETWORKER_ROUTES", "--concurrency", "JETWORKER_METRICS_ADDR"}},
		{name: "version flag", args: []string{"--version"}, code: 0, want: []string{"jetworker dev (commit none)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			began := time.Now()
			r := jw(t, tt.env, "", tt.args...)
			all := r.text()
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\n%s", r.code, tt.code, all)
			}
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
			if tt.notWant != "" && strings.Contains(all, tt.notWant) {
				t.Errorf("output reveals %q:\n%s", tt.notWant, all)
			}
			if tt.maxTaken > 0 && time.Since(began) > tt.maxTaken {
				t.Errorf("took %s, want < %s", time.Since(began), tt.maxTaken)
			}
		})
	}
}

func TestRoutesFileWorker(t *testing.T) {
	t.Parallel()
	_, env := natsEnv(t)
	var mu sync.Mutex
	hits := map[string]int{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(routes, []byte(`
routes:
  - name: orders
    subject: tasks.orders.>
    concurrency: 2
    max_deliver: 3
    webhook: {url: "`+hook.URL+`/orders", secret: "${HOOK_SECRET}"}
  - name: audit
    subject: tasks.audit.*
    log: {}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _ = background(t, append(env, "JETWORKER_ROUTES="+routes, "HOOK_SECRET=abc"), "worker")
	jw(t, env, "", "publish", "tasks.orders.created", "{}")
	jw(t, env, "", "publish", "tasks.audit.login", "{}")
	testutil.Eventually(t, 20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if hits["/orders"] != 1 {
			return fmt.Errorf("orders webhook hits: %d", hits["/orders"])
		}
		return nil
	})
	testutil.Eventually(t, 20*time.Second, func() error {
		r := jw(t, env, "", "status", "--json")
		if !strings.Contains(r.stdout, `"worker-orders"`) || !strings.Contains(r.stdout, `"worker-audit"`) {
			return fmt.Errorf("status lacks the route consumers: %s", r.stdout)
		}
		return nil
	})
}

func TestBenchJSON(t *testing.T) {
	t.Parallel()
	r := jw(t, nil, "", "bench", "--n", "2000", "--concurrency", "4", "--json")
	if r.code != 0 {
		t.Fatalf("bench: exit %d\n%s", r.code, r.stderr)
	}
	var rep struct {
		N            int
		Raw          struct{ Processed int }
		Jetworker    struct{ Processed int }
		ProcessRatio float64 `json:"process_ratio"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("bench --json output: %v\n%s", err, r.stdout)
	}
	if rep.N != 2000 || rep.Raw.Processed != 2000 || rep.Jetworker.Processed != 2000 || rep.ProcessRatio <= 0 {
		t.Fatalf("report: %+v", rep)
	}
}

// --load paces the mixed mode at a fraction of jetworker's own maximum,
// and the header says both.
func TestBenchLoad(t *testing.T) {
	t.Parallel()
	r := jw(t, nil, "", "bench", "--n", "1000", "--concurrency", "4", "--mode", "mixed", "--load", "0.5")
	if r.code != 0 || !regexp.MustCompile(`mixed mode at \d+/s \(50% of jetworker's unpaced \d+/s\)`).MatchString(r.stdout) ||
		!strings.Contains(r.stdout, "GOGC ") {
		t.Fatalf("bench --load: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := jw(t, nil, "", "bench", "--n", "1000", "--load", "0.5"); r.code == 0 || !strings.Contains(r.stderr, "Load applies to mixed mode") {
		t.Fatalf("bench --load in sequential mode: exit %d\n%s", r.code, r.stderr)
	}
}

func TestWorkerCheckAndProvision(t *testing.T) {
	t.Parallel()
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(routes, []byte("routes:\n  - {name: hooks, subject: tasks.hooks.>, concurrency: 3, webhook: {url: 'http://127.0.0.1:1/x', secret: s}}\n  - {name: mail, subject: tasks.mail.>, email: {host: smtp.example.com, from: 'a@example.com'}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// --check needs no server.
	r := jw(t, []string{"JETWORKER_NATS_URL=nats://127.0.0.1:1"}, "", "worker", "--check", "--routes", routes)
	if r.code != 0 || !strings.Contains(r.stdout, "route hooks: tasks.hooks.> -> webhook") || !strings.Contains(r.stdout, "concurrency 3") ||
		!strings.Contains(r.stdout, "route mail: tasks.mail.> -> email via smtp.example.com") || !strings.Contains(r.stdout, "configuration ok") {
		t.Fatalf("worker --check: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(bad, []byte("routes:\n  - {name: x, subject: tasks.x, email: {host: h, from: 'not an address'}}\n"), 0o600)
	if r := jw(t, nil, "", "worker", "--check", "--routes", bad); r.code != 2 {
		t.Fatalf("worker --check with a bad From: exit %d, want 2\n%s", r.code, r.stderr)
	}

	srv := embeddedtest.Start(t, embedded.Config{})
	env := []string{"JETWORKER_NATS_URL=" + srv.URL()}
	r = jw(t, env, "", "provision", "--routes", routes, "--lease-ttl", "4s", "--task-ttl", "2h")
	if r.code != 0 || !strings.Contains(r.stdout, "ok  consumer worker-hooks on TASKS\n") ||
		!strings.Contains(r.stdout, "ok  bucket jetworker_leases\n") || !strings.Contains(r.stdout, "ok  bucket jetworker_status\n") {
		t.Fatalf("provision: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// The buckets' TTLs are the lease TTL and the task TTL, so schedulers
	// and workers bind to them without managing them.
	_, js := embeddedtest.Connect(t, srv)
	for bucket, want := range map[string]time.Duration{"jetworker_leases": 4 * time.Second, "jetworker_status": 2 * time.Hour} {
		kv, err := js.KeyValue(t.Context(), bucket)
		if err != nil {
			t.Fatalf("bucket %s: %v", bucket, err)
		}
		st, err := kv.Status(t.Context())
		if err != nil || st.TTL() != want {
			t.Fatalf("bucket %s: TTL %v, %v; want %s", bucket, st.TTL(), err, want)
		}
	}
	if r := jw(t, env, "", "provision", "--routes", routes); r.code != 0 {
		t.Fatalf("second provision: exit %d\n%s", r.code, r.stderr)
	}
	if r := jw(t, env, "", "provision", "--lease-ttl", "10ms"); r.code != 2 || !strings.Contains(r.text(), "--lease-ttl must be >= 1s") {
		t.Fatalf("provision --lease-ttl 10ms: exit %d, want 2\n%s", r.code, r.text())
	}
	r = jw(t, env, "", "status", "--json")
	if !strings.Contains(r.stdout, `"worker-hooks"`) || !strings.Contains(r.stdout, `"worker-mail"`) {
		t.Fatalf("status after provision lacks the consumers:\n%s", r.stdout)
	}
}

func TestDurabilityGuard(t *testing.T) {
	t.Parallel()
	t.Run("single server without sync always", func(t *testing.T) {
		t.Parallel()
		srv := embeddedtest.Start(t, embedded.Config{MonitorPort: -1})
		env := []string{"JETWORKER_NATS_URL=" + srv.URL(), "JETWORKER_NATS_MONITOR_URL=" + srv.MonitorURL()}
		jw(t, env, "", "provision")
		r := jw(t, env, "", "status")
		if !strings.Contains(r.stdout, "server sync: every 2m0s") || !strings.Contains(r.stdout, "WARNING: the server syncs to disk only every 2m0s") {
			t.Fatalf("status:\n%s\n%s", r.stdout, r.stderr)
		}
	})
	t.Run("single server with sync always", func(t *testing.T) {
		t.Parallel()
		srv := embeddedtest.Start(t, embedded.Config{MonitorPort: -1, SyncAlways: true})
		env := []string{"JETWORKER_NATS_URL=" + srv.URL(), "JETWORKER_NATS_MONITOR_URL=" + srv.MonitorURL()}
		jw(t, env, "", "provision")
		r := jw(t, env, "", "status")
		if !strings.Contains(r.stdout, "server sync: always") || strings.Contains(r.stdout, "WARNING") {
			t.Fatalf("status:\n%s", r.stdout)
		}
	})
	t.Run("R1 streams in a cluster", func(t *testing.T) {
		t.Parallel()
		c := embeddedtest.StartCluster(t, 3)
		env := []string{"JETWORKER_NATS_URL=" + c.URL()}
		if r := jw(t, env, "", "provision"); r.code != 0 {
			t.Fatalf("provision: %s", r.stderr)
		}
		r := jw(t, env, "", "status", "--json")
		if !strings.Contains(r.stdout, "stream TASKS has 1 replica(s) in cluster jetworker") {
			t.Fatalf("status --json:\n%s", r.stdout)
		}
		stop, _ := background(t, append(env, "JETWORKER_WEBHOOK_URL=http://127.0.0.1:1/", "JETWORKER_WEBHOOK_SECRET=x"), "worker")
		testutil.Eventually(t, 15*time.Second, func() error {
			r := jw(t, env, "", "status", "--json")
			if !strings.Contains(r.stdout, `"worker-webhook"`) {
				return fmt.Errorf("worker not up yet")
			}
			return nil
		})
		res := stop()
		if !strings.Contains(res.stderr, `"msg":"durability"`) || !strings.Contains(res.stderr, "stream DLQ has 1 replica(s)") {
			t.Fatalf("worker did not warn at start-up:\n%s", res.stderr)
		}
		if r := jw(t, env, "", "provision", "--replicas", "3"); r.code != 0 {
			// Replicas can be raised in place.
			t.Fatalf("provision --replicas 3: %s", r.stderr)
		}
		r = jw(t, env, "", "status")
		if strings.Contains(r.stdout, "stream TASKS has") {
			t.Fatalf("after R3 still warned:\n%s", r.stdout)
		}
	})
}

func TestHTTPSurface(t *testing.T) {
	t.Parallel()
	_, env := natsEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	_, _ = background(t, append(env,
		"JETWORKER_WEBHOOK_URL=http://127.0.0.1:1/", "JETWORKER_WEBHOOK_SECRET=x",
		"JETWORKER_HTTP_ADDR="+addr, "JETWORKER_HTTP_TOKEN=let-me-in",
	), "worker")
	get := func(path string, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	testutil.Eventually(t, 20*time.Second, func() error {
		if code, body := get("/readyz", ""); code != http.StatusOK {
			return fmt.Errorf("/readyz: %d %s", code, body)
		}
		return nil
	})
	if code, _ := get("/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	if code, _ := get("/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without token: %d, want 401", code)
	}
	code, body := get("/metrics", "let-me-in")
	if code != http.StatusOK || !strings.Contains(body, "jetworker_") || !strings.Contains(body, `consumer="worker-webhook"`) {
		t.Errorf("/metrics: %d\n%.2000s", code, body)
	}
	if code, body := get("/", "let-me-in"); code != http.StatusOK || !strings.Contains(body, "worker-webhook") {
		t.Errorf("dashboard: %d\n%.500s", code, body)
	}
}
