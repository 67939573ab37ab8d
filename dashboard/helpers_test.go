package dashboard_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dashboard"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/internal/outboxdata"
	"github.com/jetworker/jetworker/streams"
)

type testBundle struct {
	srv  *embedded.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	dash *dashboard.Server
	http *httptest.Server
}

// setup starts an embedded server and a dashboard on it, served by an
// httptest server on 127.0.0.1. Streams are not provisioned.
func setup(t *testing.T, cfg dashboard.Config) *testBundle {
	t.Helper()
	srv := embeddedtest.Start(t, embedded.Config{})
	nc, js := embeddedtest.Connect(t, srv, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	dash, err := dashboard.New(js, cfg)
	if err != nil {
		t.Fatalf("dashboard.New: %v", err)
	}
	hs := httptest.NewServer(dash.Handler())
	t.Cleanup(hs.Close)
	return &testBundle{srv: srv, nc: nc, js: js, dash: dash, http: hs}
}

func provision(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	if err := streams.Provision(t.Context(), js, streams.Config{}); err != nil {
		t.Fatalf("provision: %v", err)
	}
}

// startConsumer runs a consumer until the test ends and waits until it is
// ready.
func startConsumer(t *testing.T, js jetstream.JetStream, h jetworker.HandlerFunc, cfg consumer.Config) *consumer.Consumer {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Backoff == nil {
		cfg.Backoff = func(int, error) time.Duration { return 10 * time.Millisecond }
	}
	c, err := consumer.New(js, h, cfg)
	if err != nil {
		t.Fatalf("consumer.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("consumer Run: %v", err)
		}
	})
	select {
	case <-c.Ready():
	case err := <-done:
		t.Fatalf("consumer Run returned early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("consumer not ready within 10s")
	}
	return c
}

type response struct {
	code int
	body string
	hdr  http.Header
}

// do sends a request to the dashboard; body may be nil. Header pairs are
// key, value, key, value.
func (b *testBundle) do(t *testing.T, method, path string, body io.Reader, header ...string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, b.http.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1] // Go's client sends req.Host, not a Host header
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	res, err := b.http.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{code: res.StatusCode, body: string(data), hdr: res.Header}
}

func (b *testBundle) get(t *testing.T, path string, header ...string) response {
	t.Helper()
	return b.do(t, http.MethodGet, path, nil, header...)
}

// postForm posts form values (key, value pairs) to path.
func (b *testBundle) postForm(t *testing.T, path string, kv ...string) response {
	t.Helper()
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, kv[i]+"="+kv[i+1])
	}
	return b.do(t, http.MethodPost, path, strings.NewReader(strings.Join(parts, "&")),
		"Content-Type", "application/x-www-form-urlencoded")
}

func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
	return v
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// run runs the dashboard's Run (on a free loopback port) until the test
// ends, so that its sampler feeds the charts, and waits until it listens.
func (b *testBundle) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.dash.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dashboard Run: %v", err)
		}
	})
	select {
	case <-b.dash.Ready():
	case err := <-done:
		t.Fatalf("dashboard Run returned early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("dashboard not ready within 10s")
	}
}

// another builds a second dashboard on the same server with cfg, served by
// an httptest server of its own.
func (b *testBundle) another(t *testing.T, cfg dashboard.Config) *testBundle {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	dash, err := dashboard.New(b.js, cfg)
	if err != nil {
		t.Fatalf("dashboard.New: %v", err)
	}
	hs := httptest.NewServer(dash.Handler())
	t.Cleanup(hs.Close)
	return &testBundle{srv: b.srv, nc: b.nc, js: b.js, dash: dash, http: hs}
}

// fixedOutbox is an outbox whose figures the test sets. The dashboard
// reads an outbox only through the Outbox interface (Stats) and an
// OutboxDeadFunc, so its outbox pages are tested here without PostgreSQL;
// TestOutbox runs them against a real relay.
type fixedOutbox struct{ stats outboxdata.Stats }

func (o fixedOutbox) Stats(context.Context) (outboxdata.Stats, error) { return o.stats, nil }

// deadRows is an OutboxDeadFunc that lists rows, as the outbox's ListDead
// would.
func deadRows(rows ...outboxdata.DeadRow) dashboard.OutboxDeadFunc {
	return func(_ context.Context, f outboxdata.DeadFilter) ([]outboxdata.DeadRow, error) {
		var out []outboxdata.DeadRow
		for _, r := range rows {
			if r.ID > f.AfterID && (f.Subject == "" || r.Subject == f.Subject) && (f.Limit <= 0 || len(out) < f.Limit) {
				out = append(out, r)
			}
		}
		return out, nil
	}
}
