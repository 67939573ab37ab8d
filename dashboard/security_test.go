package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetworker/jetworker/dashboard"
	"github.com/jetworker/jetworker/schedule"
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

// serveFrom sends a request to h as if it came from remote (a RemoteAddr),
// with Host localhost:8080; header pairs are key, value.
func serveFrom(t *testing.T, h http.Handler, remote, method, path, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, "http://localhost:8080"+path, strings.NewReader(body))
	req.RemoteAddr = remote
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestMountedHandlerAnswersOnlyThisMachine: a program that mounts
// Server.Handler without credentials in a server of its own listening on
// every address does not serve the dashboard, reads or changes, to another
// machine that sends "Host: localhost"; requests from this machine work,
// as do requests with credentials, and UnsafeNoAuth serves others
// read-only.
func TestMountedHandlerAnswersOnlyThisMachine(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{})
	provision(t, b.js)
	tok := csrfToken(t, b)
	h := b.dash.Handler()
	entry := `{"spec":"@every 1h","subject":"tasks.x","paused":true}`
	for _, remote := range []string{"203.0.113.7:41000", "[2001:db8::7]:41000", "10.0.0.5:1", "@"} {
		for _, path := range []string{"/", "/dead-letters", "/api/overview", "/api/csrf-token", "/metrics", "/healthz"} {
			rec := serveFrom(t, h, remote, http.MethodGet, path, "")
			if rec.Code != http.StatusForbidden {
				t.Errorf("GET %s from %s: got %d, want 403", path, remote, rec.Code)
			}
			if strings.Contains(rec.Body.String(), tok) {
				t.Errorf("GET %s from %s leaked the CSRF token", path, remote)
			}
		}
		rec := serveFrom(t, h, remote, http.MethodPut, "/api/schedules/pwn", entry, dashboard.CSRFHeader, tok)
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "not from this machine") {
			t.Errorf("PUT /api/schedules/pwn from %s: got %d %s, want 403 saying why", remote, rec.Code, rec.Body)
		}
	}
	store, _ := schedule.NewStore(b.js, schedule.StoreConfig{})
	if _, err := store.Get(t.Context(), "pwn"); !errors.Is(err, schedule.ErrNotFound) {
		t.Fatalf("the schedule another machine tried to save: got %v, want not stored", err)
	}
	for _, remote := range []string{"127.0.0.1:41000", "127.0.0.2:41000", "[::1]:41000"} {
		if rec := serveFrom(t, h, remote, http.MethodGet, "/api/csrf-token", ""); rec.Code != http.StatusOK {
			t.Errorf("GET /api/csrf-token from %s: got %d, want 200", remote, rec.Code)
		}
	}
	if rec := serveFrom(t, h, "127.0.0.1:41000", http.MethodPut, "/api/schedules/local", entry, dashboard.CSRFHeader, tok); rec.Code != http.StatusOK {
		t.Errorf("PUT /api/schedules/local from this machine: got %d %s, want 200", rec.Code, rec.Body)
	}

	unsafe := b.another(t, dashboard.Config{UnsafeNoAuth: true})
	if rec := serveFrom(t, unsafe.dash.Handler(), "203.0.113.7:41000", http.MethodGet, "/api/overview", ""); rec.Code != http.StatusOK {
		t.Errorf("UnsafeNoAuth, GET from another machine: got %d, want 200", rec.Code)
	}
	utok := csrfToken(t, unsafe)
	if rec := serveFrom(t, unsafe.dash.Handler(), "203.0.113.7:41000", http.MethodPut, "/api/schedules/pwn", entry, dashboard.CSRFHeader, utok); rec.Code != http.StatusForbidden {
		t.Errorf("UnsafeNoAuth, PUT from another machine: got %d, want 403 (read-only)", rec.Code)
	}
	authed := b.another(t, dashboard.Config{BearerToken: "tok"})
	if rec := serveFrom(t, authed.dash.Handler(), "203.0.113.7:41000", http.MethodGet, "/api/overview", "", "Authorization", "Bearer tok"); rec.Code != http.StatusOK {
		t.Errorf("with a token, GET from another machine: got %d, want 200", rec.Code)
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

// TestMetricsListenerChecksHost: without MetricsToken the metrics listener
// answers, as a dashboard without credentials does, only to this machine's
// names (DNS rebinding); with a token, any Host.
func TestMetricsListenerChecksHost(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{})
	provision(t, b.js)
	start := func(cfg dashboard.Config) string {
		cfg.DisableUI, cfg.MetricsAddr = true, "127.0.0.1:0"
		srv, err := dashboard.New(b.js, cfg)
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
		return "http://" + srv.MetricsAddr()
	}
	get := func(base, path, host, token string) int {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path, nil)
		req.Host = host
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
	open := start(dashboard.Config{})
	for _, c := range []struct {
		host string
		want int
	}{
		{"evil.example", 421}, {"evil.example:9090", 421}, {"127.0.0.1.nip.io:9090", 421}, {"10.0.0.5:9090", 421},
		{"localhost:9090", 200}, {"127.0.0.1:9090", 200}, {"[::1]:9090", 200},
	} {
		for _, path := range []string{"/metrics", "/readyz"} {
			if got := get(open, path, c.host, ""); got != c.want {
				t.Errorf("GET %s with Host %s, no MetricsToken: got %d, want %d", path, c.host, got, c.want)
			}
		}
	}
	withToken := start(dashboard.Config{MetricsToken: "scrape"})
	if got := get(withToken, "/metrics", "metrics.example.com", "scrape"); got != 200 {
		t.Errorf("GET /metrics with Host metrics.example.com and the MetricsToken: got %d, want 200", got)
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

// TestSchedulesRefuseSystemSubjects: neither the JSON API nor the edit
// form saves an entry that would fire into a system subject (the
// $JS.API.STREAM.PURGE.TASKS schedule that wiped the task stream), or
// into a subject no task stream captures; nothing is stored, the answer
// says why, and TASKS keeps its tasks.
func TestSchedulesRefuseSystemSubjects(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{})
	provision(t, b.js)
	if _, err := b.js.Publish(t.Context(), "tasks.keep", []byte("x")); err != nil {
		t.Fatal(err)
	}
	tok := csrfToken(t, b)
	subjects := []string{"$JS.API.STREAM.PURGE.TASKS", "$JS.API.STREAM.DELETE.DLQ", "$KV.jetworker_leases.scheduler", "$SYS.REQ.SERVER.PING", "_INBOX.x", "$anything", "nowhere.at.all", "dlq.TASKS.c.tasks.x"}
	for i, subj := range subjects {
		name := fmt.Sprintf("pwn%d", i)
		body, _ := json.Marshal(map[string]any{"spec": "@every 1h", "subject": subj, "paused": true})
		r := b.do(t, http.MethodPut, "/api/schedules/"+name, bytes.NewReader(body), dashboard.CSRFHeader, tok)
		if r.code != http.StatusUnprocessableEntity || !strings.Contains(r.body, "error") {
			t.Errorf("PUT /api/schedules/%s with subject %q: got %d %s, want 422 with the reason", name, subj, r.code, r.body)
		}
		form := url.Values{"name": {name + "f"}, "spec": {"@every 1h"}, "subject": {subj}, "csrf_token": {tok}}
		r = b.do(t, http.MethodPost, "/schedules/+new", strings.NewReader(form.Encode()),
			"Content-Type", "application/x-www-form-urlencoded", dashboard.CSRFHeader, tok)
		if r.code < 400 {
			t.Errorf("form with subject %q: got %d, want it refused", subj, r.code)
		}
	}
	store, _ := schedule.NewStore(b.js, schedule.StoreConfig{})
	if list, err := store.List(t.Context()); err != nil || len(list) != 0 {
		t.Fatalf("entries stored after refused saves: %v, %v", list, err)
	}
	st, err := b.js.Stream(t.Context(), "TASKS")
	if err != nil || st.CachedInfo().State.Msgs != 1 {
		t.Fatalf("TASKS after the attempts: %v, %v", st, err)
	}
}
