package dashboard_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetworker/jetworker/dashboard"
)

// TestDNSRebindingRefused: without credentials the dashboard answers only
// to this machine's names, so a page on evil.example whose name resolves to
// 127.0.0.1 cannot read it, nor fetch its CSRF token.
func TestDNSRebindingRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{})
	provision(t, b.js)
	for _, host := range []string{"evil.example", "evil.example:8080", "127.0.0.1.evil.example", "localhost.evil.example", "10.0.0.5:8080", "[fe80::1]:8080"} {
		for _, path := range []string{"/", "/api/csrf-token", "/api/dead-letters", "/metrics"} {
			if r := b.get(t, path, "Host", host); r.code != http.StatusMisdirectedRequest {
				t.Errorf("GET %s with Host %s: got %d, want 421", path, host, r.code)
			} else if strings.Contains(r.body, "token") && path == "/api/csrf-token" && !strings.Contains(r.body, "refused") {
				t.Errorf("GET %s with Host %s leaked %q", path, host, r.body)
			}
		}
	}
	for _, host := range []string{"localhost:8080", "LOCALHOST", "dev.localhost:8080", "127.0.0.1:8080", "127.9.9.9", "[::1]:8080"} {
		if r := b.get(t, "/api/csrf-token", "Host", host); r.code != http.StatusOK {
			t.Errorf("GET /api/csrf-token with Host %s: got %d, want 200", host, r.code)
		}
	}
	// With credentials, the Host does not matter: the browser has no way
	// to send them to a rebinding page's origin.
	auth := setup(t, dashboard.Config{BearerToken: "tok"})
	if r := auth.get(t, "/api/overview", "Host", "jetworker.example.com", "Authorization", "Bearer tok"); r.code != http.StatusOK {
		t.Errorf("authenticated request with another Host: got %d, want 200", r.code)
	}
}

// TestReachableDashboardNeedsAuth: a dashboard that other machines can
// reach is refused without credentials, and with the unsafe flag it
// serves read-only.
func TestReachableDashboardNeedsAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{})
	for _, addr := range []string{"0.0.0.0:8080", ":8080", "[::]:8080", "10.1.2.3:8080", "example.com:8080"} {
		_, err := dashboard.New(b.js, dashboard.Config{Addr: addr})
		if err == nil || !strings.Contains(err.Error(), "UnsafeNoAuth") {
			t.Errorf("Addr %s without credentials: got %v, want a refusal naming UnsafeNoAuth", addr, err)
		}
		if _, err := dashboard.New(b.js, dashboard.Config{Addr: addr, BearerToken: "t"}); err != nil {
			t.Errorf("Addr %s with a token: %v", addr, err)
		}
	}
	unsafe, err := dashboard.New(b.js, dashboard.Config{Addr: "0.0.0.0:0", UnsafeNoAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	if !unsafe.Config().ReadOnly {
		t.Fatal("UnsafeNoAuth without credentials: got a writable dashboard, want read-only")
	}
}

func TestMetricsListener(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{})
	provision(t, b.js)
	srv, err := dashboard.New(b.js, dashboard.Config{DisableUI: true, MetricsAddr: "127.0.0.1:0", MetricsToken: "scrape", BearerToken: "ui"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	base := "http://" + srv.MetricsAddr()
	get := func(path, token string) int {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/healthz", "", 200}, {"/readyz", "", 200}, {"/metrics", "", 401}, {"/metrics", "ui", 401},
		{"/metrics", "scrape", 200}, {"/", "scrape", 404}, {"/api/overview", "ui", 404},
	} {
		if got := get(c.path, c.token); got != c.want {
			t.Errorf("GET %s (token %q) on the metrics listener: got %d, want %d", c.path, c.token, got, c.want)
		}
	}
	if srv.Addr() != "" {
		t.Errorf("DisableUI: the dashboard listens on %s", srv.Addr())
	}
}

// TestRunFailsWhenTheConnectionCloses, as every Run of jetworker does.
func TestRunFailsWhenTheConnectionCloses(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{})
	srv, err := dashboard.New(b.js, dashboard.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(t.Context()) }()
	<-srv.Ready()
	b.nc.Close()
	select {
	case err := <-done:
		if !errors.Is(err, nats.ErrConnectionClosed) {
			t.Fatalf("Run: got %v, want an error wrapping nats.ErrConnectionClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its connection closed")
	}
}
