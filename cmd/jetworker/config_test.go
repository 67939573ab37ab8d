package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/handlers/email"
)

func TestWorkerEnvToConsumerConfig(t *testing.T) {
	t.Parallel()
	e := workerEnv{
		Base:           Base{StreamEnv: StreamEnv{Stream: "JOBS", DLQStream: "DEAD"}},
		Durable:        "billing",
		Concurrency:    8,
		AckWait:        time.Minute,
		MaxDeliver:     4,
		HandlerTimeout: 20 * time.Second,
		ShutdownGrace:  3 * time.Second,
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
					c.ShutdownGrace != 3*time.Second || c.DeadLetterStream != "DEAD" || c.Backoff != nil {
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
				if d := c.Backoff(5, nil); d > 2*time.Second || d < time.Second {
					t.Fatalf("backoff(5) = %v, want capped at 2s", d)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.check(t, e.consumerConfig(tt.route, nil))
		})
	}
}

func TestSchedulerEnvToConfig(t *testing.T) {
	t.Parallel()
	c := schedulerEnv{LeaseKey: "billing", LeaseTTL: 4 * time.Second, Replicas: 3}.schedulerConfig(nil)
	if c.LeaseKey != "billing" || c.LeaseTTL != 4*time.Second || c.Replicas != 3 {
		t.Fatalf("got %+v", c)
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
		{name: "unknown field", file: "routes:\n  - {name: a, subject: tasks.a, log: {}, concurency: 3}\n", wantErr: "concurency"},
		{name: "two handlers", file: "routes:\n  - {name: a, subject: tasks.a, log: {}, webhook: {url: x, secret: y}}\n", wantErr: "exactly one handler"},
		{name: "bad subject", file: "routes:\n  - {name: a, subject: 'tasks.>.x', log: {}}\n", wantErr: "before its last token"},
		{name: "partial wildcard", file: "routes:\n  - {name: a, subject: 'tasks.a*', log: {}}\n", wantErr: "whole token"},
		{name: "duplicate name", file: "routes:\n  - {name: a, subject: tasks.a, log: {}}\n  - {name: a, subject: tasks.b, log: {}}\n", wantErr: "used twice"},
		{name: "bad name", file: "routes:\n  - {name: 'a b', subject: tasks.a, log: {}}\n", wantErr: "name"},
		{name: "webhook without secret", file: "routes:\n  - {name: a, subject: tasks.a, webhook: {url: x}}\n", wantErr: "url and secret"},
		{name: "bad duration", file: "routes:\n  - {name: a, subject: tasks.a, log: {}, ack_wait: soon}\n", wantErr: "duration"},
	}
	for _, tt := range tests {
		rs, err := parseRoutes("routes.yaml", []byte(tt.file))
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			if tt.name == "valid yaml" && rs[0].Webhook.Secret != "from-env" {
				t.Errorf("%s: secret %q, want it expanded from the environment", tt.name, rs[0].Webhook.Secret)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: got %v, want an error containing %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"nats://127.0.0.1:4222":        "nats://127.0.0.1:4222",
		"nats://u:p@host:4222":         "nats://[REDACTED]@host:4222",
		"nats://tok@a:1,tls://u:p@b:2": "nats://[REDACTED]@a:1,tls://[REDACTED]@b:2",
		"nats://u:p@ss@host:1":         "nats://[REDACTED]@host:1",
		"no-scheme":                    "no-scheme",
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
	h, err := multiFlag{"X-Tenant=acme", "X-Tag=a", "X-Tag=b=c"}.header()
	if err != nil || h.Get("X-Tenant") != "acme" || len(h.Values("X-Tag")) != 2 || h.Values("X-Tag")[1] != "b=c" {
		t.Fatalf("got %v, %v", h, err)
	}
	if h, err := (multiFlag{}).header(); h != nil || err != nil {
		t.Fatalf("no flags: got %v, %v", h, err)
	}
	for _, bad := range []string{"novalue", "=v"} {
		if _, err := (multiFlag{bad}).header(); err == nil {
			t.Errorf("%q: got nil error", bad)
		}
	}
}
