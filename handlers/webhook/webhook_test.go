package webhook_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/handlers/webhook"
)

const secret = "s3cret"

// testBundle is a webhook Handler pointed at a real httptest server.
type testBundle struct {
	srv     *httptest.Server
	handler *webhook.Handler
	hits    *atomic.Int32 // requests the server received
}

// setup starts a server that answers with serve and returns a Handler
// posting to it with cfg (URL and Secret are filled in when empty).
func setup(t *testing.T, cfg webhook.Config, serve http.HandlerFunc) testBundle {
	t.Helper()
	hits := new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		serve(w, r)
	}))
	t.Cleanup(srv.Close)
	if cfg.URL == "" {
		cfg.URL = srv.URL + "/hook?token=abc"
	}
	if cfg.Secret == "" {
		cfg.Secret = secret
	}
	h, err := webhook.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return testBundle{srv: srv, handler: h, hits: hits}
}

func task() *jetworker.Task {
	return &jetworker.Task{
		ID: "task-1", Subject: "tasks.hook", Data: []byte(`{"n":1}`),
		Stream: "TASKS", Sequence: 7, Delivered: 1,
	}
}

func TestOutcomeByStatus(t *testing.T) {
	t.Parallel()
	type outcome int
	const (
		ack outcome = iota
		retry
		retryAfter
		permanent
	)
	tests := []struct {
		name       string
		status     int
		retryAfter func() string // value of Retry-After, nil for none
		body       string
		want       outcome
		wantDelay  [2]time.Duration // inclusive range for retryAfter
		wantText   []string
	}{
		{name: "200 acks", status: 200, want: ack},
		{name: "204 acks", status: 204, want: ack},
		{name: "202 with body acks", status: 202, body: "queued", want: ack},
		{name: "429 with seconds", status: 429, retryAfter: func() string { return "7" },
			want: retryAfter, wantDelay: [2]time.Duration{7 * time.Second, 7 * time.Second}, wantText: []string{"429 Too Many Requests"}},
		{name: "503 with seconds", status: 503, retryAfter: func() string { return "120" },
			want: retryAfter, wantDelay: [2]time.Duration{2 * time.Minute, 2 * time.Minute}},
		{name: "503 with HTTP date", status: 503,
			retryAfter: func() string { return time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat) },
			want:       retryAfter, wantDelay: [2]time.Duration{85 * time.Second, 90 * time.Second}},
		{name: "429 with past date retries at once", status: 429,
			retryAfter: func() string { return "Mon, 02 Jan 2006 15:04:05 GMT" },
			want:       retryAfter, wantDelay: [2]time.Duration{0, 0}},
		{name: "429 without Retry-After uses backoff", status: 429, want: retry},
		{name: "503 with garbage Retry-After uses backoff", status: 503, retryAfter: func() string { return "soon" }, want: retry},
		{name: "500 retries", status: 500, body: "oops", want: retry, wantText: []string{"500 Internal Server Error", "oops"}},
		{name: "502 retries", status: 502, want: retry},
		{name: "408 retries", status: 408, want: retry},
		{name: "500 ignores Retry-After", status: 500, retryAfter: func() string { return "7" }, want: retry},
		{name: "400 is permanent with body", status: 400, body: "field \"n\"\n  is invalid", want: permanent,
			wantText: []string{"400 Bad Request", `field "n" is invalid`}},
		{name: "404 is permanent", status: 404, want: permanent, wantText: []string{"404 Not Found"}},
		{name: "410 is permanent", status: 410, want: permanent},
		{name: "redirect is not followed and is permanent", status: 302, want: permanent, wantText: []string{"302 Found"}},
		{name: "error text names the URL without its path or query", status: 400, want: permanent, wantText: []string{"/...: status 400"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, webhook.Config{}, func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != nil {
					w.Header().Set("Retry-After", tt.retryAfter())
				}
				if tt.status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			})
			err := b.handler.Handle(t.Context(), task())

			var re *jetworker.RetryError
			isRetryAfter := errors.As(err, &re)
			switch tt.want {
			case ack:
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
			case retry:
				if err == nil || isRetryAfter || jetworker.IsPermanent(err) {
					t.Fatalf("got %v, want a plain retryable error", err)
				}
			case retryAfter:
				if !isRetryAfter || jetworker.IsPermanent(err) {
					t.Fatalf("got %v, want a RetryAfter error", err)
				}
				if re.Delay < tt.wantDelay[0] || re.Delay > tt.wantDelay[1] {
					t.Errorf("delay %s, want in [%s, %s]", re.Delay, tt.wantDelay[0], tt.wantDelay[1])
				}
			case permanent:
				if !jetworker.IsPermanent(err) {
					t.Fatalf("got %v, want a permanent error", err)
				}
			}
			if err != nil && (strings.Contains(err.Error(), "token=abc") || strings.Contains(err.Error(), "/hook")) {
				t.Errorf("got %q, want the URL's path and query kept out of the error", err)
			}
			for _, s := range tt.wantText {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("got %q, want it to contain %q", err, s)
				}
			}
			if got := b.hits.Load(); got != 1 {
				t.Errorf("server got %d requests, want 1", got)
			}
		})
	}
}

func TestErrorBodyExcerptIsBounded(t *testing.T) {
	t.Parallel()
	b := setup(t, webhook.Config{MaxErrorBody: 20}, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(422)
		_, _ = io.WriteString(w, strings.Repeat("é", 1000))
	})
	err := b.handler.Handle(t.Context(), task())
	if !jetworker.IsPermanent(err) {
		t.Fatalf("got %v, want permanent", err)
	}
	_, excerpt, _ := strings.Cut(err.Error(), "Unprocessable Entity: ")
	if want := strings.Repeat("é", 10) + "…"; excerpt != want {
		t.Errorf("excerpt %q, want %q (20 bytes, whole runes, marked as cut)", excerpt, want)
	}

	none := setup(t, webhook.Config{MaxErrorBody: -1}, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(422)
		_, _ = io.WriteString(w, "secret details")
	})
	if err := none.handler.Handle(t.Context(), task()); strings.Contains(err.Error(), "secret") {
		t.Errorf("got %q, want no body with MaxErrorBody -1", err)
	}
}

func TestSignatureVerifiedByReceiver(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		receiverSecret string
		wantErr        error
	}{
		{"same secret verifies", secret, nil},
		{"other secret fails", "other", webhook.ErrInvalidSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			verified := make(chan error, 1)
			b := setup(t, webhook.Config{}, func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(r.Body)
				if err != nil {
					verified <- err
					return
				}
				verified <- webhook.Verify(tc.receiverSecret, r.Header.Get(webhook.HeaderSignature), body, time.Minute)
			})
			if err := b.handler.Handle(t.Context(), task()); err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if err := <-verified; !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("Verify: got %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestTimeoutIsRetryable(t *testing.T) {
	t.Parallel()
	stop := make(chan struct{})
	b := setup(t, webhook.Config{Timeout: 50 * time.Millisecond}, func(w http.ResponseWriter, r *http.Request) {
		// Read the body so the server notices the client hanging up, then
		// never answer.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	t.Cleanup(func() { close(stop) }) // runs before the server's Close
	err := b.handler.Handle(t.Context(), task())
	var re *jetworker.RetryError
	if err == nil || jetworker.IsPermanent(err) || errors.As(err, &re) {
		t.Fatalf("got %v, want a plain retryable error", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want it to wrap context.DeadlineExceeded", err)
	}
}

func TestNetworkErrorIsRetryable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	h, err := webhook.New(webhook.Config{URL: url, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	err = h.Handle(t.Context(), task())
	if err == nil || jetworker.IsPermanent(err) {
		t.Fatalf("got %v, want a retryable error", err)
	}
}

// A request that fails before any response (nothing listens, a timeout)
// returns http.Client's *url.Error, which quotes the URL: the error names
// where it went (scheme and host) without user info, path or query, and
// still says why.
func TestRequestErrorHidesCredentials(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close() // nothing listens there any more
	h, err := webhook.New(webhook.Config{URL: "http://hookuser:hookpass@" + addr + "/services/T0/B0/pathT0ken?token=t0ps3cret#frag", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	err = h.Handle(t.Context(), task())
	if err == nil || jetworker.IsPermanent(err) {
		t.Fatalf("got %v, want a retryable error", err)
	}
	for _, leak := range []string{"hookuser", "hookpass", "t0ps3cret", "token", "frag", "pathT0ken", "services"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q reveals %q", err, leak)
		}
	}
	var ue *url.Error
	if !errors.As(err, &ue) || ue.URL != "http://"+addr+"/..." || !strings.Contains(err.Error(), "http://"+addr+"/...") {
		t.Errorf("got %v, want a *url.Error naming http://%s/...", err, addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("got %v, want it to wrap the refused connection", err)
	}
}

func TestHeaderMapping(t *testing.T) {
	t.Parallel()
	got := make(chan *http.Request, 1)
	gotBody := make(chan []byte, 1)
	b := setup(t, webhook.Config{}, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- r
		gotBody <- body
	})
	tk := task()
	tk.Delivered = 3
	tk.Header = nats.Header{
		"Nats-Msg-Id":  {"task-1"},
		"X-Tenant":     {"acme", "globex"},
		"traceparent":  {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		"content-type": {"text/plain"}, // NATS headers are case-sensitive; matched in any case
	}
	if err := b.handler.Handle(t.Context(), tk); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	r := <-got
	if r.Method != http.MethodPost || r.URL.Path != "/hook" {
		t.Errorf("got %s %s, want POST /hook", r.Method, r.URL.Path)
	}
	if body := <-gotBody; string(body) != `{"n":1}` {
		t.Errorf("body %q, want the task data", body)
	}
	want := map[string][]string{
		"Jetworker-Task-Id":             {"task-1"},
		"Jetworker-Subject":             {"tasks.hook"},
		"Jetworker-Delivered":           {"3"},
		"Jetworker-Stream":              {"TASKS"},
		"Jetworker-Sequence":            {"7"},
		"Jetworker-Header-Nats-Msg-Id":  {"task-1"},
		"Jetworker-Header-X-Tenant":     {"acme", "globex"},
		"Jetworker-Header-Traceparent":  {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		"Jetworker-Header-Content-Type": {"text/plain"},
		"Traceparent":                   {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		"Content-Type":                  {"text/plain"},
		"User-Agent":                    {"jetworker-webhook"},
	}
	for k, v := range want {
		if g := r.Header.Values(k); strings.Join(g, "|") != strings.Join(v, "|") {
			t.Errorf("header %s = %q, want %q", k, g, v)
		}
	}
	if r.Header.Get(webhook.HeaderSignature) == "" {
		t.Errorf("no %s header", webhook.HeaderSignature)
	}
}

func TestDefaultContentType(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	b := setup(t, webhook.Config{}, func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Get("Content-Type") })
	if err := b.handler.Handle(t.Context(), task()); err != nil {
		t.Fatal(err)
	}
	if ct := <-got; ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
}

func TestInvalidTaskHeaderIsPermanentWithoutRequest(t *testing.T) {
	t.Parallel()
	for name, hdr := range map[string]nats.Header{
		"bad name":  {"Bad Name": {"v"}},
		"bad value": {"X-Ok": {"line\nbreak"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, webhook.Config{}, func(w http.ResponseWriter, r *http.Request) {})
			tk := task()
			tk.Header = hdr
			if err := b.handler.Handle(t.Context(), tk); !jetworker.IsPermanent(err) {
				t.Errorf("got %v, want permanent", err)
			}
			if got := b.hits.Load(); got != 0 {
				t.Errorf("server got %d requests, want 0", got)
			}
		})
	}
}

func TestNewValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  webhook.Config
		want []string
	}{
		{"zero config names every required field", webhook.Config{},
			[]string{"webhook: URL must be set", "webhook: Secret must be set"}},
		{"bad scheme", webhook.Config{URL: "ftp://example.com", Secret: "x"}, []string{`scheme "ftp"`}},
		{"no host", webhook.Config{URL: "http:///path", Secret: "x"}, []string{"URL must have a host"}},
		{"unparseable URL", webhook.Config{URL: "http://a b/", Secret: "x"}, []string{"webhook: URL:"}},
		{"unparseable URL with credentials", webhook.Config{URL: "http://u:p4ssw0rd@a b/?token=t0k3n", Secret: "x"}, []string{"webhook: URL: invalid character"}},
		{"negative timeout and bad prefix", webhook.Config{URL: "https://example.com", Secret: "x",
			Timeout: -time.Second, HeaderPrefix: "X Bad"},
			[]string{"Timeout must be >= 0", `HeaderPrefix "X Bad"`}},
		{"MaxErrorBody below -1", webhook.Config{URL: "https://example.com", Secret: "x", MaxErrorBody: -2},
			[]string{"MaxErrorBody must be >= -1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := webhook.New(tt.cfg)
			if err == nil {
				t.Fatal("got nil error, want a validation error")
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("got %q, want it to contain %q", err, s)
				}
			}
			for _, secret := range []string{"p4ssw0rd", "t0k3n"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("got %q: it reveals %q", err, secret)
				}
			}
		})
	}
}
