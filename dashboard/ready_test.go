package dashboard_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dashboard"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/metrics"
)

type readyBody struct {
	Status string   `json:"status"`
	Failed []string `json:"failed"`
	Checks []struct {
		Name  string `json:"name"`
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	} `json:"checks"`
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{BearerToken: "secret"})
	r := b.get(t, "/healthz")
	if r.code != http.StatusOK || r.body != "{\n  \"status\": \"ok\"\n}\n" {
		t.Errorf("GET /healthz: got %d %q, want 200 with status ok", r.code, r.body)
	}
}

func TestReadyzTransitions(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{BearerToken: "secret"}) // probes stay open

	// 1. Nothing provisioned, the consumer's check not passing.
	c, err := consumer.New(b.js, jetworker.HandlerFunc(func(context.Context, *jetworker.Task) error { return nil }),
		consumer.Config{Durable: "ready", DisablePresence: true})
	if err != nil {
		t.Fatal(err)
	}
	b.dash.AddReadyCheck("consumer:ready", dashboard.ChanCheck(c.Ready()))
	r := b.get(t, "/readyz")
	body := decode[readyBody](t, r)
	if r.code != http.StatusServiceUnavailable {
		t.Errorf("before provisioning: got %d, want 503", r.code)
	}
	if want := []string{"stream:TASKS", "stream:DLQ", "consumer:ready"}; !slices.Equal(body.Failed, want) {
		t.Errorf("before provisioning: failed checks got %v, want %v", body.Failed, want)
	}
	if body.Status != "not ready" {
		t.Errorf("status: got %q, want %q", body.Status, "not ready")
	}

	// 2. Streams provisioned; the consumer has not started.
	provision(t, b.js)
	r = b.get(t, "/readyz")
	body = decode[readyBody](t, r)
	if r.code != http.StatusServiceUnavailable || !slices.Equal(body.Failed, []string{"consumer:ready"}) {
		t.Errorf("after provisioning: got %d failed %v, want 503 failed [consumer:ready]", r.code, body.Failed)
	}
	for _, ch := range body.Checks {
		if ch.Name == "consumer:ready" && ch.Error != "dashboard: not ready: not started yet" {
			t.Errorf("consumer check error: got %q", ch.Error)
		}
	}

	// 3. Consumer running: ready.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-c.Ready()
	r = b.get(t, "/readyz")
	body = decode[readyBody](t, r)
	if r.code != http.StatusOK || body.Status != "ready" || len(body.Failed) != 0 {
		t.Errorf("with everything up: got %d %q failed %v, want 200 ready", r.code, body.Status, body.Failed)
	}
	if len(body.Checks) != 4 {
		t.Errorf("checks: got %d, want 4 (nats, 2 streams, consumer)", len(body.Checks))
	}

	// 4. A failing user check is named with its error.
	b.dash.AddReadyCheck("database", func(context.Context) error { return errors.New("connection refused") })
	r = b.get(t, "/readyz")
	body = decode[readyBody](t, r)
	if r.code != http.StatusServiceUnavailable || !slices.Equal(body.Failed, []string{"database"}) {
		t.Errorf("with a failing check: got %d failed %v, want 503 [database]", r.code, body.Failed)
	}
	if got := body.Checks[len(body.Checks)-1]; got.Error != "connection refused" {
		t.Errorf("database check error: got %q, want %q", got.Error, "connection refused")
	}
}

func TestReadyzNATSDown(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		drop func(b *testBundle)
	}{
		{"server shut down", func(b *testBundle) { b.srv.Shutdown() }},
		{"connection closed", func(b *testBundle) { b.nc.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, dashboard.Config{})
			provision(t, b.js)
			if r := b.get(t, "/readyz"); r.code != http.StatusOK {
				t.Fatalf("before the drop: got %d %s, want 200", r.code, r.body)
			}
			tc.drop(b)
			testutil.Eventually(t, 5*time.Second, func() error {
				r := b.get(t, "/readyz")
				body := decode[readyBody](t, r)
				if r.code != http.StatusServiceUnavailable {
					return fmt.Errorf("got %d, want 503", r.code)
				}
				if want := []string{"nats", "stream:TASKS", "stream:DLQ"}; !slices.Equal(body.Failed, want) {
					return fmt.Errorf("failed checks: got %v, want %v", body.Failed, want)
				}
				return nil
			})
			// healthz does not depend on NATS.
			if r := b.get(t, "/healthz"); r.code != http.StatusOK {
				t.Errorf("healthz with NATS down: got %d, want 200", r.code)
			}
		})
	}
}

func TestAddReadyCheckPanics(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{})
	b.dash.AddReadyCheck("x", func(context.Context) error { return nil })
	for name, f := range map[string]func(){
		"duplicate":  func() { b.dash.AddReadyCheck("x", func(context.Context) error { return nil }) },
		"empty name": func() { b.dash.AddReadyCheck("", func(context.Context) error { return nil }) },
		"nil check":  func() { b.dash.AddReadyCheck("y", nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: got no panic, want one", name)
				}
			}()
			f()
		}()
	}
}

func TestRunServesAndStops(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{Addr: "127.0.0.1:0"})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- b.dash.Run(ctx) }()
	select {
	case <-b.dash.Ready():
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	}
	res, err := http.Get("http://" + b.dash.Addr() + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz: got %d, want 200", res.StatusCode)
	}
	if err := b.dash.Run(ctx); !errors.Is(err, dashboard.ErrAlreadyRunning) {
		t.Errorf("second Run: got %v, want ErrAlreadyRunning", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel: got %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of cancel")
	}
	if _, err := http.Get("http://" + b.dash.Addr() + "/healthz"); err == nil {
		t.Error("GET after Run returned: got a response, want connection refused")
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{})
	_, err := dashboard.New(b.js, dashboard.Config{
		Addr:          "nope",
		TaskStreams:   []string{"bad.name"},
		BasicAuthUser: "admin",
	})
	if err == nil {
		t.Fatal("New with a bad config: got nil error")
	}
	for _, want := range []string{"Addr", "TaskStreams[0]", "BasicAuthUser and BasicAuthPassword"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	m, _ := metrics.New(metrics.Config{})
	if _, err := dashboard.New(b.js, dashboard.Config{Metrics: m}); err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := dashboard.New(b.js, dashboard.Config{Metrics: m}); err == nil {
		t.Error("second New with the same Metrics: got nil error, want a registration error")
	}
}
