package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wneessen/go-mail"

	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dashboard"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/handlers/email"
	"github.com/jetworker/jetworker/task"
)

func TestWorkerEnvToConsumerConfig(t *testing.T) {
	t.Parallel()
	e := workerEnv{
		StreamEnv:      StreamEnv{Stream: "JOBS"},
		DLQStreamEnv:   DLQStreamEnv{DLQStream: "DEAD"},
		RoutesEnv:      RoutesEnv{Durable: "billing"},
		ConsumerEnv:    ConsumerEnv{Concurrency: 8, AckWait: time.Minute, MaxDeliver: 4},
		HandlerTimeout: 20 * time.Second,
		ShutdownGrace:  3 * time.Second,
		ReplicasEnv:    ReplicasEnv{Replicas: 3},
	}
	tests := []struct {
		name  string
		route route
		check func(t *testing.T, c consumer.Config)
	}{
		{
			name:  "route inherits the worker settings",
			route: route{Name: "hooks", Subject: "tasks.hooks.>"},
			check: func(t *testing.T, c consumer.Config) {
				if c.Stream != "JOBS" || c.Durable != "billing-hooks" || c.FilterSubjects[0] != "tasks.hooks.>" ||
					c.Concurrency != 8 || c.AckWait != time.Minute || c.MaxDeliver != 4 || c.HandlerTimeout != 20*time.Second ||
					c.ShutdownGrace != 3*time.Second || c.DeadLetterStream != "DEAD" || c.Backoff != nil || c.Presence.Replicas != 3 {
					t.Fatalf("got %+v", c)
				}
			},
		},
		{
			name:  "route settings win",
			route: route{Name: "mail", Subject: "tasks.mail.*", Concurrency: 2, MaxDeliver: 9, AckWait: duration(5 * time.Second), Timeout: duration(time.Second), Backoff: &backoffs{Base: duration(time.Second), Max: duration(2 * time.Second)}},
			check: func(t *testing.T, c consumer.Config) {
				if c.Concurrency != 2 || c.MaxDeliver != 9 || c.AckWait != 5*time.Second || c.HandlerTimeout != time.Second || c.Backoff == nil {
					t.Fatalf("got %+v", c)
				}
				// Capped at 2s, give or take the 20% jitter.
				if d := c.Backoff(5, nil); d > 2400*time.Millisecond || d < 1600*time.Millisecond {
					t.Fatalf("backoff(5) = %v, want 2s ± 20%%", d)
				}
			},
		},
		{
			name:  "invalid settings fail Validate before any connection",
			route: route{Name: "x", Subject: "tasks.x", AckWait: duration(time.Microsecond)},
			check: func(t *testing.T, c consumer.Config) {
				err := inTermsOf(c.Validate(), "consumer", "route x: ", consumerFields)
				if err == nil || !strings.Contains(err.Error(), "route x: --ack-wait (or the route's ack_wait) must be >= 1ms") {
					t.Fatalf("got %v, want the AckWait error in the words of the command line", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.check(t, e.consumerConfig(tt.route, nil, nil))
		})
	}
}

// The worker's consumers record tracked tasks in the configured store, and
// every task with --track-all or a route's track.
func TestWorkerTrackingConfig(t *testing.T) {
	t.Parallel()
	e := workerEnv{TaskStoreEnv: TaskStoreEnv{TaskBucketEnv{"jobs_status"}, 2 * time.Hour}, ReplicasEnv: ReplicasEnv{3}}
	tc := e.taskConfig(e.ReplicasEnv, nil)
	if tc.Bucket != "jobs_status" || tc.TTL != 2*time.Hour || tc.Replicas != 3 || tc.Validate() != nil {
		t.Fatalf("task config %+v: %v", tc, tc.Validate())
	}
	store, err := task.New(embeddedtest.JetStream(t), tc)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		trackAll bool
		route    route
		want     bool
	}{
		{"tracked tasks only", false, route{Name: "a", Subject: "tasks.a"}, false},
		{"every task of the route", false, route{Name: "a", Subject: "tasks.a", Track: true}, true},
		{"every task of every route", true, route{Name: "a", Subject: "tasks.a"}, true},
	} {
		e.TrackAll = tt.trackAll
		c := e.consumerConfig(tt.route, store, nil)
		if c.Tasks != store || c.TrackAll != tt.want {
			t.Errorf("%s: Tasks %p (want %p), TrackAll %v (want %v)", tt.name, c.Tasks, store, c.TrackAll, tt.want)
		}
	}
	e.TaskTTL = time.Second
	if err := inTermsOf(e.taskConfig(e.ReplicasEnv, nil).Validate(), "task", "", taskFields); err == nil || !strings.Contains(err.Error(), "--task-ttl must be >= 1m") {
		t.Fatalf("task TTL 1s: got %v", err)
	}
}

// provision creates the route consumers the worker runs: the same
// server-side settings from the same variables.
func TestProvisionAndWorkerAgreeOnConsumers(t *testing.T) {
	t.Parallel()
	re, ce := RoutesEnv{Durable: "svc"}, ConsumerEnv{Concurrency: 2000, AckWait: time.Minute, MaxDeliver: 7}
	r := route{Name: "a", Subject: "tasks.a"}
	w := workerEnv{RoutesEnv: re, ConsumerEnv: ce, StreamEnv: StreamEnv{"T"}, DLQStreamEnv: DLQStreamEnv{"D"}}.consumerConfig(r, nil, nil)
	p := routeConsumerConfig(StreamEnv{"T"}, DLQStreamEnv{"D"}, re, ce, r, nil)
	if w.Stream != p.Stream || w.Durable != p.Durable || w.Concurrency != p.Concurrency || w.AckWait != p.AckWait ||
		w.MaxDeliver != p.MaxDeliver || w.DeadLetterStream != p.DeadLetterStream {
		t.Fatalf("worker %+v\nprovision %+v", w, p)
	}
}

func TestSchedulerEnvToConfig(t *testing.T) {
	t.Parallel()
	e := schedulerEnv{LeaseKey: "billing", LeaseTTLEnv: LeaseTTLEnv{4 * time.Second}, ReplicasEnv: ReplicasEnv{3}}
	c := e.schedulerConfig(nil)
	if c.LeaseKey != "billing" || c.LeaseTTL != 4*time.Second || c.Replicas != 3 {
		t.Fatalf("got %+v", c)
	}
	e.LeaseTTL = 10 * time.Millisecond
	if err := inTermsOf(e.schedulerConfig(nil).Validate(), "schedule", "", schedulerFields); err == nil || !strings.Contains(err.Error(), "--lease-ttl must be >= 1s") {
		t.Fatalf("lease TTL 10ms: got %v", err)
	}
}

func TestDashboardConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		h      HTTPEnv
		m      MetricsEnv
		serve  bool
		check  func(c dashboard.Config) bool
		errHas string
	}{
		{name: "nothing set: no HTTP", serve: false, check: func(c dashboard.Config) bool { return true }},
		{
			name: "dashboard with a token", h: HTTPEnv{HTTPAddr: "0.0.0.0:8080", HTTPToken: "t"}, serve: true,
			check: func(c dashboard.Config) bool {
				return c.Addr == "0.0.0.0:8080" && !c.DisableUI && c.BearerToken == "t" && c.TaskStreams[0] == "JOBS" && c.DeadLetterStream == "DEAD"
			},
		},
		{
			name: "only the metrics address: no dashboard", m: MetricsEnv{MetricsAddrEnv{"0.0.0.0:9090"}, "m"}, serve: true,
			check: func(c dashboard.Config) bool {
				return c.DisableUI && c.MetricsAddr == "0.0.0.0:9090" && c.MetricsToken == "m"
			},
		},
		{
			name: "reachable without credentials is refused", h: HTTPEnv{HTTPAddr: "0.0.0.0:8080"}, serve: true,
			check: func(c dashboard.Config) bool { return !c.UnsafeNoAuth }, errHas: "http: --http-addr \"0.0.0.0:8080\" is reachable",
		},
		{
			name: "unless unsafe", h: HTTPEnv{HTTPAddr: "0.0.0.0:8080", HTTPUnsafeNoAuth: true}, serve: true,
			check: func(c dashboard.Config) bool { return c.UnsafeNoAuth },
		},
		{
			name: "basic auth halves", h: HTTPEnv{HTTPAddr: "127.0.0.1:8080", HTTPUser: "u"}, serve: true,
			check: func(c dashboard.Config) bool { return c.BasicAuthUser == "u" }, errHas: "--http-user and --http-password must be set together",
		},
		{
			name: "sessions and charts", serve: true,
			h: HTTPEnv{HTTPAddr: "127.0.0.1:8080", HTTPToken: "t", HTTPSessionKey: strings.Repeat("k", 32), HTTPSessionTTL: time.Hour,
				HTTPSampleInterval: 10 * time.Second, HTTPSampleWindow: 2 * time.Hour},
			check: func(c dashboard.Config) bool {
				return string(c.SessionKey) == strings.Repeat("k", 32) && c.SessionTTL == time.Hour && c.SampleInterval == 10*time.Second && c.SampleWindow == 2*time.Hour
			},
		},
		{
			name: "no session key: the dashboard makes one", h: HTTPEnv{HTTPAddr: "127.0.0.1:8080"}, serve: true,
			check: func(c dashboard.Config) bool { return c.SessionKey == nil },
		},
		{
			name: "a short session key", h: HTTPEnv{HTTPAddr: "127.0.0.1:8080", HTTPSessionKey: "short"}, serve: true,
			check: func(c dashboard.Config) bool { return true }, errHas: "http: --http-session-key must be at least 32 bytes, got 5",
		},
		{
			name: "a short session TTL", h: HTTPEnv{HTTPAddr: "127.0.0.1:8080", HTTPSessionTTL: time.Second}, serve: true,
			check: func(c dashboard.Config) bool { return true }, errHas: "http: --http-session-ttl must be at least 1m",
		},
		{
			name: "a negative sample interval: no charts", h: HTTPEnv{HTTPAddr: "127.0.0.1:8080", HTTPSampleInterval: -time.Second}, serve: true,
			check: func(c dashboard.Config) bool { return c.SampleInterval == -1 },
		},
		{
			name: "too many samples", h: HTTPEnv{HTTPAddr: "127.0.0.1:8080", HTTPSampleInterval: time.Millisecond, HTTPSampleWindow: time.Hour}, serve: true,
			check: func(c dashboard.Config) bool { return true }, errHas: "--http-sample-window / --http-sample-interval must be at most",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, serve := dashboardConfig(tt.h, tt.m, "JOBS", "DEAD", nil)
			if serve != tt.serve || !tt.check(c) {
				t.Fatalf("got %+v, serve %v", c, serve)
			}
			if !serve {
				return
			}
			err := inTermsOf(c.Validate(), "dashboard", "http: ", dashboardFields)
			switch {
			case tt.errHas == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.errHas != "" && (err == nil || !strings.Contains(err.Error(), tt.errHas)):
				t.Fatalf("Validate: got %v, want %q", err, tt.errHas)
			}
		})
	}
}

// Each long-running command's dashboard browses the task bucket its
// settings name.
func TestDashboardTaskBucket(t *testing.T) {
	t.Parallel()
	h := HTTPEnv{HTTPAddr: "127.0.0.1:8080"}
	tb := TaskBucketEnv{"jobs_status"}
	worker, _ := workerEnv{HTTPEnv: h, TaskStoreEnv: TaskStoreEnv{TaskBucketEnv: tb}}.dashboardConfig(nil)
	scheduler, _ := schedulerEnv{HTTPEnv: h, TaskBucketEnv: tb}.dashboardConfig(nil)
	relay, _ := outboxEnv{HTTPEnv: h, TaskBucketEnv: tb}.dashboardConfig(nil)
	for name, c := range map[string]dashboard.Config{"worker": worker, "scheduler": scheduler, "outbox relay": relay} {
		if c.TaskBucket != "jobs_status" || c.Addr != "127.0.0.1:8080" {
			t.Errorf("%s: TaskBucket %q, Addr %q", name, c.TaskBucket, c.Addr)
		}
	}
}

func TestDevConfig(t *testing.T) {
	t.Parallel()
	e := devEnv{DataDir: "d", Host: "0.0.0.0", Port: 4333, UnsafeNoAuth: true, HTTPEnv: HTTPEnv{HTTPAddr: "0.0.0.0:8080"}}
	ec := e.embeddedConfig(nil)
	if ec.Host != "0.0.0.0" || ec.Port != 4333 || ec.StoreDir != filepath.Join("d", "nats") || !ec.UnsafeNoAuth {
		t.Fatalf("embedded config %+v", ec)
	}
	dc, serve := e.dashboardConfig(nil)
	if !serve || !dc.UnsafeNoAuth || dc.Validate() != nil {
		t.Fatalf("--unsafe-no-auth must cover the dashboard: %+v, %v", dc, dc.Validate())
	}
}

func TestStreamsConfig(t *testing.T) {
	t.Parallel()
	c := streamsConfig(StreamEnv{"JOBS"}, DLQStreamEnv{"DEAD"}, ReplicasEnv{3})
	if c.Tasks.Name != "JOBS" || c.DeadLetters.Name != "DEAD" || c.Replicas != 3 {
		t.Fatalf("got %+v", c)
	}
}

func TestPublishOptions(t *testing.T) {
	t.Parallel()
	o, err := publishOpts{ID: "a", Delay: time.Second, TTL: time.Minute, At: "2026-01-02T15:04:05Z", Header: []string{"X-A=1", "X-A=2,3"}}.publishOptions()
	if err != nil || o.ID != "a" || o.Delay != time.Second || o.TTL != time.Minute || o.At.Year() != 2026 ||
		len(o.Header.Values("X-A")) != 2 || o.Header.Values("X-A")[1] != "2,3" {
		t.Fatalf("got %+v, %v", o, err)
	}
	if _, err := (publishOpts{At: "tomorrow"}).publishOptions(); err == nil || !strings.Contains(err.Error(), "RFC 3339") {
		t.Fatalf("bad --at: %v", err)
	}
}

func TestScheduleEntryFromOptions(t *testing.T) {
	t.Parallel()
	e, err := scheduleOpts{Spec: "0 3 * * *", TimeZone: "Europe/Berlin", Subject: "tasks.x", Payload: "{}", Jitter: time.Second, CatchUp: "all", Start: "2026-01-01T00:00:00Z"}.entry("n")
	if err != nil || e.Name != "n" || e.Spec != "0 3 * * *" || e.TimeZone != "Europe/Berlin" || string(e.Payload) != "{}" ||
		e.Jitter != time.Second || e.CatchUp != "all" || e.Start.Year() != 2026 {
		t.Fatalf("got %+v, %v", e, err)
	}
	_, err = scheduleOpts{Spec: "61 * * * *", Subject: "tasks.x", TimeZone: "Mars/Olympus"}.entry("n")
	if err == nil || !strings.Contains(err.Error(), "--spec: ") || !strings.Contains(err.Error(), "--tz \"Mars/Olympus\"") || strings.Contains(err.Error(), "schedule: ") {
		t.Fatalf("bad spec and zone: got %v", err)
	}
}

func TestDLQFilterFromOptions(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f, err := dlqOpts{FromStream: "T", Consumer: "c", Subject: "tasks.>", TaskID: "id", Since: "1h", Until: "2026-05-01T11:30:00Z"}.filter(now)
	if err != nil || f.Stream != "T" || f.Consumer != "c" || f.Subject != "tasks.>" || f.TaskID != "id" ||
		!f.Since.Equal(now.Add(-time.Hour)) || !f.Until.Equal(now.Add(-30*time.Minute)) {
		t.Fatalf("got %+v, %v", f, err)
	}
	if _, err := (dlqOpts{Since: "last week"}).filter(now); err == nil || !strings.Contains(err.Error(), "--since") {
		t.Fatalf("bad --since: %v", err)
	}
}

func TestBenchConfig(t *testing.T) {
	t.Parallel()
	o := benchOpts{N: 5, Size: 9, Publishers: 2, Concurrency: 3, Mode: "mixed", Rate: 7, Load: 0.5, Work: time.Millisecond, Replicas: 3, Rounds: 4}
	if c := o.benchConfig(); c.N != 5 || c.Size != 9 || c.Publishers != 2 || c.Concurrency != 3 || c.Mode != "mixed" ||
		c.Rate != 7 || c.Load != 0.5 || c.Work != time.Millisecond || c.Replicas != 3 || c.Rounds != 4 {
		t.Fatalf("got %+v", c)
	}
}

func TestHealthURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		e    healthEnv
		want string
	}{
		{healthEnv{}, "http://127.0.0.1:9090/readyz"},
		{healthEnv{URL: "http://x:1/ok"}, "http://x:1/ok"},
		{healthEnv{MetricsAddrEnv: MetricsAddrEnv{"0.0.0.0:9191"}}, "http://127.0.0.1:9191/readyz"},
		{healthEnv{MetricsAddrEnv: MetricsAddrEnv{":9191"}}, "http://127.0.0.1:9191/readyz"},
		{healthEnv{MetricsAddrEnv: MetricsAddrEnv{"10.0.0.5:9191"}}, "http://10.0.0.5:9191/readyz"},
	} {
		if got := tt.e.healthURL(); got != tt.want {
			t.Errorf("%+v: got %s, want %s", tt.e, got, tt.want)
		}
	}
}

func TestParseRoutes(t *testing.T) {
	t.Setenv("TEST_HOOK_SECRET", "from-env")
	tests := []struct {
		name, file string
		wantErr    string
	}{
		{name: "valid yaml", file: "routes:\n  - {name: a, subject: tasks.a.>, webhook: {url: 'http://x', secret: '${TEST_HOOK_SECRET}'}}\n"},
		{name: "valid json", file: `{"routes":[{"name":"a","subject":"tasks.a","log":{}}]}`},
		{name: "no routes", file: "routes: []\n", wantErr: "no routes"},
		{name: "unknown field", file: "routes:\n  - {name: a, subject: tasks.a, log: {}, concurency: 3}\n", wantErr: `route 1 (a): unknown field "concurency"`},
		{name: "unknown nested field", file: "routes:\n  - {name: a, subject: tasks.a, webhook: {url: x, secret: y, retries: 3}}\n", wantErr: `route 1 (a): unknown field "retries"`},
		{name: "wrong type", file: "routes:\n  - {name: a, subject: tasks.a, log: {}}\n  - {name: b, subject: tasks.b, log: {}, concurrency: three}\n", wantErr: "route 2 (b): concurrency: want a number, got a string"},
		{name: "YAML syntax", file: "routes:\n  - name: a\n   subject: x\n", wantErr: "line 2: did not find expected"},
		{name: "JSON syntax", file: `{"routes": [}`, wantErr: "routes file routes.yaml: "},
		{name: "two handlers", file: "routes:\n  - {name: a, subject: tasks.a, log: {}, webhook: {url: x, secret: y}}\n", wantErr: "exactly one handler"},
		{name: "bad subject", file: "routes:\n  - {name: a, subject: 'tasks.>.x', log: {}}\n", wantErr: "before its last token"},
		{name: "partial wildcard", file: "routes:\n  - {name: a, subject: 'tasks.a*', log: {}}\n", wantErr: "whole token"},
		{name: "duplicate name", file: "routes:\n  - {name: a, subject: tasks.a, log: {}}\n  - {name: a, subject: tasks.b, log: {}}\n", wantErr: "used twice"},
		{name: "bad name", file: "routes:\n  - {name: 'a b', subject: tasks.a, log: {}}\n", wantErr: "name"},
		{name: "webhook without secret", file: "routes:\n  - {name: a, subject: tasks.a, webhook: {url: x}}\n", wantErr: "url and secret"},
		{name: "bad duration", file: "routes:\n  - {name: a, subject: tasks.a, log: {}, ack_wait: soon}\n", wantErr: `duration "soon": want a number and a unit`},
		{name: "tracked", file: "routes:\n  - {name: a, subject: tasks.a, log: {}, track: true}\n"},
		{name: "track not a bool", file: "routes:\n  - {name: a, subject: tasks.a, log: {}, track: always}\n", wantErr: "route 1 (a): track: want true or false, got a string"},
	}
	for _, tt := range tests {
		rs, err := parseRoutes("routes.yaml", []byte(tt.file))
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			if tt.name == "tracked" && !rs[0].Track {
				t.Errorf("%s: route not tracked", tt.name)
			}
			if tt.name == "valid yaml" && rs[0].Webhook.Secret != "from-env" {
				t.Errorf("%s: secret %q, want it expanded from the environment", tt.name, rs[0].Webhook.Secret)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: got %v, want an error containing %q", tt.name, err, tt.wantErr)
		}
		for _, internal := range []string{"JSON", "unmarshal", "Go struct", "main.", ": yaml:", "converting"} {
			if err != nil && strings.Contains(err.Error(), internal) {
				t.Errorf("%s: %v: speaks of %q", tt.name, err, internal)
			}
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"nats://127.0.0.1:4222":                  "nats://127.0.0.1:4222",
		"nats://u:p@host:4222":                   "nats://[REDACTED]@host:4222",
		"nats://tok@a:1,tls://u:p@b:2":           "nats://[REDACTED]@a:1,tls://[REDACTED]@b:2",
		"nats://u:p@ss@host:1":                   "nats://[REDACTED]@host:1",
		"https://u:p@hooks.example.com/h?tok=1":  "https://[REDACTED]@hooks.example.com/h?[REDACTED]",
		"https://hooks.example.com/h#access=2":   "https://hooks.example.com/h#[REDACTED]",
		"https://hooks.example.com/a/b":          "https://hooks.example.com/a/b",
		"postgres://app:pw@db:5432/app?ssl=true": "postgres://[REDACTED]@db:5432/app?[REDACTED]",
		"no-scheme":                              "no-scheme",
		"u:p@host:4222":                          "[REDACTED]@host:4222",
	}
	for in, want := range tests {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSecretFileMode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		perm  os.FileMode
		owner int
		ok    bool
	}{
		{0o600, 1000, true},
		{0o400, 65532, true},
		{0o640, 0, true}, // root-owned, group-readable: a Kubernetes Secret with fsGroup
		{0o440, 0, true}, // the same, read-only
		{0o640, 1000, false},
		{0o644, 0, false}, // world-readable, whoever owns it
		{0o604, 1000, false},
	}
	for _, tt := range tests {
		err := secretFileMode("x.creds", tt.perm, tt.owner)
		if (err == nil) != tt.ok {
			t.Errorf("mode %v owner %d: got %v, want ok=%v", tt.perm, tt.owner, err, tt.ok)
		}
	}
}

func TestEmailRouteConfig(t *testing.T) {
	t.Parallel()
	for tls, check := range map[string]func(c email.Config) bool{
		"":              func(c email.Config) bool { return c.TLSPolicy == mail.TLSMandatory && !c.ImplicitTLS },
		"opportunistic": func(c email.Config) bool { return c.TLSPolicy == mail.TLSOpportunistic },
		"tls":           func(c email.Config) bool { return c.ImplicitTLS },
		"none":          func(c email.Config) bool { return c.TLSPolicy == mail.NoTLS },
	} {
		c, err := emailConfig(emailRoute{Host: "smtp", Port: 25, From: "a@b.c", TLS: tls})
		if err != nil || !check(c) || c.Host != "smtp" || c.Port != 25 || c.From != "a@b.c" {
			t.Errorf("tls %q: got %+v, %v", tls, c, err)
		}
	}
	if _, err := emailConfig(emailRoute{Host: "smtp", TLS: "ssl3"}); err == nil {
		t.Error("tls ssl3: got nil error")
	}
}

func TestHeaderFlags(t *testing.T) {
	t.Parallel()
	h, err := parseHeaders([]string{"X-Tenant=acme", "X-Tag=a", "X-Tag=b=c"})
	if err != nil || h.Get("X-Tenant") != "acme" || len(h.Values("X-Tag")) != 2 || h.Values("X-Tag")[1] != "b=c" {
		t.Fatalf("got %v, %v", h, err)
	}
	if h, err := parseHeaders(nil); h != nil || err != nil {
		t.Fatalf("no flags: got %v, %v", h, err)
	}
	for _, bad := range []string{"novalue", "=v"} {
		if _, err := parseHeaders([]string{bad}); err == nil {
			t.Errorf("%q: got nil error", bad)
		}
	}
}

func TestNATSOptions(t *testing.T) {
	t.Parallel()
	apply := func(e ConnEnv) (nats.Options, error) {
		opts, err := natsOptions(e, "worker")
		o := nats.GetDefaultOptions()
		for _, opt := range opts {
			if err := opt(&o); err != nil {
				return o, err
			}
		}
		return o, err
	}
	o, err := apply(ConnEnv{ConnectTimeout: 3 * time.Second, AuthEnv: AuthEnv{User: "app", Password: "pw"}})
	if err != nil || o.Name != "jetworker worker" || o.Timeout != 3*time.Second || o.User != "app" || o.Password != "pw" || o.MaxReconnect != -1 {
		t.Fatalf("user/password: got %+v, %v", o, err)
	}
	if o, err := apply(ConnEnv{AuthEnv: AuthEnv{Token: "tok"}}); err != nil || o.Token != "tok" || o.User != "" {
		t.Fatalf("token: got %+v, %v", o, err)
	}
	for name, e := range map[string]ConnEnv{
		"two kinds of credentials": {AuthEnv: AuthEnv{User: "app", Password: "pw", Token: "tok"}},
		"certificate without key":  {TLSEnv: TLSEnv{TLSCert: "c.pem"}},
		"missing creds file":       {AuthEnv: AuthEnv{Creds: filepath.Join(t.TempDir(), "none.creds")}},
	} {
		var ue *usageError
		if _, err := natsOptions(e, "worker"); !errors.As(err, &ue) {
			t.Errorf("%s: got %v, want a usage error", name, err)
		}
	}
}
