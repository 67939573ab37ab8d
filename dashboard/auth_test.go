package dashboard_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dashboard"
	"github.com/jetworker/jetworker/dlq"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/schedule"
)

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func csrfToken(t *testing.T, b *testBundle, header ...string) string {
	t.Helper()
	r := b.get(t, "/api/csrf-token", header...)
	if r.code != http.StatusOK {
		t.Fatalf("GET /api/csrf-token: got %d %s", r.code, r.body)
	}
	return decode[map[string]string](t, r)["token"]
}

func TestAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{BasicAuthUser: "admin", BasicAuthPassword: "s3cret", BearerToken: "tok"})
	provision(t, b.js)
	for _, path := range []string{"/", "/dead-letters", "/schedules", "/workers", "/metrics", "/api/overview", "/api/dead-letters"} {
		if r := b.get(t, path); r.code != http.StatusUnauthorized {
			t.Errorf("GET %s without credentials: got %d, want 401", path, r.code)
		} else if !strings.HasPrefix(r.hdr.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("GET %s: WWW-Authenticate got %q, want Basic", path, r.hdr.Get("WWW-Authenticate"))
		}
		if r := b.get(t, path, "Authorization", basic("admin", "wrong")); r.code != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong password: got %d, want 401", path, r.code)
		}
		if r := b.get(t, path, "Authorization", "Bearer nope"); r.code != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token: got %d, want 401", path, r.code)
		}
		if r := b.get(t, path, "Authorization", basic("admin", "s3cret")); r.code != http.StatusOK {
			t.Errorf("GET %s with basic auth: got %d, want 200", path, r.code)
		}
		if r := b.get(t, path, "Authorization", "Bearer tok"); r.code != http.StatusOK {
			t.Errorf("GET %s with the bearer token: got %d, want 200", path, r.code)
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/static/app.css"} {
		if r := b.get(t, path); r.code != http.StatusOK {
			t.Errorf("GET %s without credentials: got %d, want 200 (open)", path, r.code)
		}
	}
	// Unauthenticated mutations are refused before anything else.
	if r := b.do(t, http.MethodDelete, "/api/dead-letters/1", nil); r.code != http.StatusUnauthorized {
		t.Errorf("DELETE without credentials: got %d, want 401", r.code)
	}
}

// deadLetter makes one dead letter with a real consumer and returns its
// sequence. Each call uses its own durable and subject.
func deadLetter(t *testing.T, b *testBundle) uint64 {
	t.Helper()
	store, _ := dlq.New(b.js, dlq.Config{})
	n := deadLetterCalls.Add(1)
	subject := fmt.Sprintf("tasks.doomed.%d", n)
	startConsumer(t, b.js, func(context.Context, *jetworker.Task) error {
		return jetworker.Permanent(errors.New("doomed"))
	}, consumer.Config{Durable: fmt.Sprintf("doomed%d", n), FilterSubjects: []string{subject}})
	pub, _ := publisher.New(b.js, publisher.Config{})
	if _, err := pub.Publish(t.Context(), subject, []byte(`{"n":1}`), nil); err != nil {
		t.Fatal(err)
	}
	var dls []dlq.Entry
	testutil.Eventually(t, 10*time.Second, func() error {
		var err error
		var page dlq.Page
		if page, err = store.List(t.Context(), dlq.Filter{Subject: subject}, 0, 0); err == nil && len(page.Entries) != 1 {
			err = fmt.Errorf("%d dead letters on %s, want 1", len(page.Entries), subject)
		}
		if err == nil {
			dls = page.Entries
		}
		return err
	})
	return dls[0].Sequence
}

var deadLetterCalls atomic.Int64

func TestReadOnly(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{ReadOnly: true})
	provision(t, b.js)
	seq := deadLetter(t, b)
	tok := csrfToken(t, b)
	for _, tc := range []struct{ method, path string }{
		{http.MethodPost, "/api/dead-letters/1/replay"},
		{http.MethodDelete, "/api/dead-letters/1"},
		{http.MethodPut, "/api/schedules/x"},
		{http.MethodPost, "/api/schedules/x/pause"},
		{http.MethodPost, "/dead-letters/1/replay"},
		{http.MethodPost, "/schedules/x/trigger"},
	} {
		if r := b.do(t, tc.method, tc.path, strings.NewReader(`{}`), dashboard.CSRFHeader, tok); r.code != http.StatusForbidden || !strings.Contains(r.body, "read-only") {
			t.Errorf("%s %s in read-only mode: got %d %q, want 403 read-only", tc.method, tc.path, r.code, r.body)
		}
	}
	page := b.get(t, "/dead-letters")
	if page.code != http.StatusOK || strings.Contains(page.body, "/replay") || !strings.Contains(page.body, "read-only") {
		t.Errorf("read-only dead letters page: got %d, want 200 with no replay form and a read-only badge", page.code)
	}
	if !strings.Contains(page.body, fmt.Sprintf(`data-testid="dead-letter-%d"`, seq)) {
		t.Errorf("read-only dead letters page does not list dead letter %d", seq)
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{})
	provision(t, b.js)
	store, _ := schedule.NewStore(b.js, schedule.StoreConfig{})
	if _, err := store.Put(t.Context(), schedule.Entry{Name: "nightly", Spec: "@daily", Subject: "tasks.nightly"}); err != nil {
		t.Fatal(err)
	}
	tok := csrfToken(t, b)

	// Without the token: refused, nothing changes.
	if r := b.postForm(t, "/schedules/nightly/pause"); r.code != http.StatusForbidden || !strings.Contains(r.body, "CSRF") {
		t.Errorf("form POST without the token: got %d %q, want 403 CSRF", r.code, r.body)
	}
	if r := b.postForm(t, "/schedules/nightly/pause", dashboard.CSRFField, "wrong"); r.code != http.StatusForbidden {
		t.Errorf("form POST with a wrong token: got %d, want 403", r.code)
	}
	if r := b.do(t, http.MethodPost, "/api/schedules/nightly/pause", nil); r.code != http.StatusForbidden {
		t.Errorf("API POST without the token: got %d, want 403", r.code)
	}
	if e, _ := store.Get(t.Context(), "nightly"); e.Paused {
		t.Fatal("entry paused by a refused request")
	}
	// A cross-site browser request is refused even with the token.
	if r := b.do(t, http.MethodPost, "/api/schedules/nightly/pause", nil, dashboard.CSRFHeader, tok, "Sec-Fetch-Site", "cross-site"); r.code != http.StatusForbidden {
		t.Errorf("cross-site POST: got %d, want 403", r.code)
	}
	// With the token: the form post redirects back with a flash message.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, b.http.URL+"/schedules/nightly/pause",
		strings.NewReader(dashboard.CSRFField+"="+tok))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	client := *b.http.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/schedules?flash=") {
		t.Errorf("form POST with the token: got %d Location %q, want 303 to /schedules?flash=", res.StatusCode, res.Header.Get("Location"))
	}
	if e, _ := store.Get(t.Context(), "nightly"); !e.Paused {
		t.Error("entry not paused after an accepted request")
	}
	// API with the header token.
	if r := b.do(t, http.MethodPost, "/api/schedules/nightly/resume", nil, dashboard.CSRFHeader, tok); r.code != http.StatusOK {
		t.Errorf("API POST with the token: got %d %s, want 200", r.code, r.body)
	}
}

func TestBearerNeedsNoCSRF(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{BearerToken: "tok", BasicAuthUser: "u", BasicAuthPassword: "p"})
	provision(t, b.js)
	body := `{"spec":"@every 5s","subject":"tasks.ping"}`
	if r := b.do(t, http.MethodPut, "/api/schedules/ping", strings.NewReader(body), "Authorization", "Bearer tok"); r.code != http.StatusOK {
		t.Errorf("PUT with the bearer token and no CSRF token: got %d %s, want 200", r.code, r.body)
	}
	// Basic auth is sent by browsers automatically, so it still needs the token.
	if r := b.do(t, http.MethodPut, "/api/schedules/ping", strings.NewReader(body), "Authorization", basic("u", "p")); r.code != http.StatusForbidden {
		t.Errorf("PUT with basic auth and no CSRF token: got %d, want 403", r.code)
	}
	tok := csrfToken(t, b, "Authorization", basic("u", "p"))
	if r := b.do(t, http.MethodPut, "/api/schedules/ping", strings.NewReader(body), "Authorization", basic("u", "p"), dashboard.CSRFHeader, tok); r.code != http.StatusOK {
		t.Errorf("PUT with basic auth and the CSRF token: got %d %s, want 200", r.code, r.body)
	}
	// A bad entry is 422 and names the field.
	if r := b.do(t, http.MethodPut, "/api/schedules/ping", strings.NewReader(`{"spec":"nope","subject":"tasks.ping"}`), "Authorization", "Bearer tok"); r.code != http.StatusUnprocessableEntity || !strings.Contains(r.body, "Spec") {
		t.Errorf("PUT with a bad spec: got %d %s, want 422 naming Spec", r.code, r.body)
	}
}
