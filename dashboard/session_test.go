package dashboard_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetworker/jetworker/dashboard"
)

// noRedirect sends req without following redirects.
func (b *testBundle) noRedirect(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	client := *b.http.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// login posts the login form and returns the response (not followed).
func (b *testBundle) login(t *testing.T, form url.Values, header ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, b.http.URL+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.noRedirect(t, req)
}

func sessionCookie(t *testing.T, res *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range res.Cookies() {
		if c.Name == dashboard.SessionCookie {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", dashboard.SessionCookie, res.Header.Values("Set-Cookie"))
	return nil
}

// TestLoginFlow: a browser with only the bearer token signs in on the
// login page and gets a session cookie that opens the pages; machines keep
// using the token; a session still needs the CSRF token to change things;
// signing out ends it.
func TestLoginFlow(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{BearerToken: "tok"})
	provision(t, b.js)

	// A browser asking for a page is sent to the login page; machines and
	// the API get 401.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, b.http.URL+"/dead-letters?stream=TASKS", nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	res := b.noRedirect(t, req)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login?next="+url.QueryEscape("/dead-letters?stream=TASKS") {
		t.Errorf("browser GET without credentials: got %d to %q, want 303 to the login page with next", res.StatusCode, res.Header.Get("Location"))
	}
	if r := b.get(t, "/"); r.code != http.StatusUnauthorized {
		t.Errorf("GET / without Accept: text/html: got %d, want 401", r.code)
	}
	if r := b.get(t, "/api/overview", "Accept", "text/html"); r.code != http.StatusUnauthorized {
		t.Errorf("API GET accepting HTML: got %d, want 401", r.code)
	}
	if r := b.get(t, "/login"); r.code != http.StatusOK || !strings.Contains(r.body, `name="token"`) || strings.Contains(r.body, `name="password"`) {
		t.Errorf("login page with a token only: got %d, want a token field and no password field", r.code)
	}

	// A wrong token: 401 and the page says so; no cookie.
	res = b.login(t, url.Values{"token": {"nope"}, "next": {"/workers"}})
	if res.StatusCode != http.StatusUnauthorized || len(res.Cookies()) != 0 {
		t.Errorf("wrong token: got %d with cookies %v, want 401 and none", res.StatusCode, res.Cookies())
	}
	// A cross-site form post is refused.
	if res := b.login(t, url.Values{"token": {"tok"}}, "Sec-Fetch-Site", "cross-site"); res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site login: got %d, want 403", res.StatusCode)
	}

	// The right token: a cookie, and on to next (never off-site).
	res = b.login(t, url.Values{"token": {"tok"}, "next": {"/workers"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/workers" {
		t.Fatalf("login: got %d to %q, want 303 to /workers", res.StatusCode, res.Header.Get("Location"))
	}
	c := sessionCookie(t, res)
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure || c.MaxAge <= 0 || c.MaxAge > int(dashboard.DefaultSessionTTL.Seconds()) {
		t.Errorf("cookie over plain HTTP: got HttpOnly=%v SameSite=%v Path=%q Secure=%v MaxAge=%d, want HttpOnly, Strict, /, not Secure, 12h",
			c.HttpOnly, c.SameSite, c.Path, c.Secure, c.MaxAge)
	}
	if len(c.Value) < 40 || strings.Contains(c.Value, "tok") {
		t.Errorf("cookie value %q: want an opaque signed value", c.Value)
	}
	if res := b.login(t, url.Values{"token": {"tok"}, "next": {"//evil.example/x"}}); res.Header.Get("Location") != "/" {
		t.Errorf("login with an off-site next: went to %q, want /", res.Header.Get("Location"))
	}
	if res := b.login(t, url.Values{"token": {"tok"}}, "X-Forwarded-Proto", "https"); !sessionCookie(t, res).Secure {
		t.Error("cookie behind a TLS proxy (X-Forwarded-Proto: https): got not Secure, want Secure")
	}

	withCookie := []string{"Cookie", dashboard.SessionCookie + "=" + c.Value}
	for _, path := range []string{"/", "/dead-letters", "/workers", "/api/overview", "/metrics"} {
		if r := b.get(t, path, withCookie...); r.code != http.StatusOK {
			t.Errorf("GET %s with the session: got %d, want 200", path, r.code)
		}
	}
	if r := b.get(t, "/", withCookie...); !strings.Contains(r.body, `data-testid="logout"`) {
		t.Error("a page opened with a session offers no way to sign out")
	}
	// Signed in, the login page moves on.
	req, _ = http.NewRequestWithContext(t.Context(), http.MethodGet, b.http.URL+"/login?next=/workers", nil)
	req.Header.Set("Cookie", withCookie[1])
	if res := b.noRedirect(t, req); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/workers" {
		t.Errorf("login page when signed in: got %d to %q, want 303 to /workers", res.StatusCode, res.Header.Get("Location"))
	}

	// A session is a cookie browsers attach: mutations still need the
	// CSRF token. The bearer token does not.
	body := `{"spec":"@every 5s","subject":"tasks.ping"}`
	if r := b.do(t, http.MethodPut, "/api/schedules/ping", strings.NewReader(body), withCookie...); r.code != http.StatusForbidden || !strings.Contains(r.body, "CSRF") {
		t.Errorf("PUT with the session and no CSRF token: got %d %s, want 403 CSRF", r.code, r.body)
	}
	tok := csrfToken(t, b, withCookie...)
	if r := b.do(t, http.MethodPut, "/api/schedules/ping", strings.NewReader(body), append(withCookie, dashboard.CSRFHeader, tok)...); r.code != http.StatusOK {
		t.Errorf("PUT with the session and the CSRF token: got %d %s, want 200", r.code, r.body)
	}
	if r := b.do(t, http.MethodPut, "/api/schedules/ping", strings.NewReader(body), "Authorization", "Bearer tok"); r.code != http.StatusOK {
		t.Errorf("PUT with the bearer token: got %d %s, want 200", r.code, r.body)
	}

	// A tampered cookie is refused.
	tampered := []byte(c.Value)
	tampered[len(tampered)/2] ^= 1
	if r := b.get(t, "/api/overview", "Cookie", dashboard.SessionCookie+"="+string(tampered)); r.code != http.StatusUnauthorized {
		t.Errorf("tampered cookie: got %d, want 401", r.code)
	}

	// Signing out needs the CSRF token, clears the cookie and ends the
	// session for good.
	if r := b.do(t, http.MethodPost, "/logout", nil, withCookie...); r.code != http.StatusForbidden {
		t.Errorf("logout without the CSRF token: got %d, want 403", r.code)
	}
	req, _ = http.NewRequestWithContext(t.Context(), http.MethodPost, b.http.URL+"/logout", strings.NewReader(dashboard.CSRFField+"="+tok))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", withCookie[1])
	res = b.noRedirect(t, req)
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
		t.Errorf("logout: got %d to %q, want 303 to the login page", res.StatusCode, res.Header.Get("Location"))
	}
	if c := sessionCookie(t, res); c.MaxAge >= 0 || c.Value != "" {
		t.Errorf("logout cookie: got value %q MaxAge %d, want it cleared", c.Value, c.MaxAge)
	}
	if r := b.get(t, "/api/overview", withCookie...); r.code != http.StatusUnauthorized {
		t.Errorf("the signed-out session: got %d, want 401", r.code)
	}
}

func TestLoginWithPasswordAndExpiry(t *testing.T) {
	t.Parallel()
	var now atomic.Pointer[time.Time]
	start := time.Now()
	now.Store(&start)
	key := []byte(strings.Repeat("k", 32))
	cfg := dashboard.Config{BasicAuthUser: "admin", BasicAuthPassword: "s3cret", SessionKey: key, SessionTTL: time.Hour,
		NowFunc: func() time.Time { return *now.Load() }}
	b := setup(t, cfg)
	if r := b.get(t, "/login"); !strings.Contains(r.body, `name="password"`) || strings.Contains(r.body, `name="token"`) {
		t.Error("login page with basic auth only: want user and password fields and no token field")
	}
	if res := b.login(t, url.Values{"user": {"admin"}, "password": {"wrong"}}); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong password: got %d, want 401", res.StatusCode)
	}
	res := b.login(t, url.Values{"user": {"admin"}, "password": {"s3cret"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login with the password: got %d, want 303", res.StatusCode)
	}
	withCookie := []string{"Cookie", dashboard.SessionCookie + "=" + sessionCookie(t, res).Value}
	if r := b.get(t, "/api/overview", withCookie...); r.code != http.StatusOK {
		t.Errorf("with the session: got %d, want 200", r.code)
	}
	// Another replica with the same SessionKey accepts it.
	other, err := dashboard.New(b.js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "/api/csrf-token", nil)
	req.Header.Set("Cookie", withCookie[1])
	rec := httptest.NewRecorder()
	other.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("the session on a replica with the same SessionKey: got %d, want 200", rec.Code)
	}
	// After SessionTTL it has expired.
	later := start.Add(time.Hour + time.Second)
	now.Store(&later)
	if r := b.get(t, "/api/overview", withCookie...); r.code != http.StatusUnauthorized {
		t.Errorf("after SessionTTL: got %d, want 401", r.code)
	}
}

// TestLoginBounce: a navigation from another site arrives without the
// SameSite=Strict cookie; the login page reloads itself once (same-origin),
// which carries it.
func TestLoginBounce(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{BearerToken: "tok"})
	if r := b.get(t, "/login?next=/workers", "Sec-Fetch-Site", "cross-site"); !strings.Contains(r.body, `http-equiv="refresh"`) {
		t.Error("login page reached from another site: want a one-time reload")
	}
	if r := b.get(t, "/login?next=/workers", "Sec-Fetch-Site", "same-origin"); strings.Contains(r.body, `http-equiv="refresh"`) {
		t.Error("login page reached from this site: got a reload, want none (it would loop)")
	}
	// Without credentials configured, there is nothing to sign in to.
	open := setup(t, dashboard.Config{})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, open.http.URL+"/login", nil)
	if res := open.noRedirect(t, req); res.StatusCode != http.StatusSeeOther {
		t.Errorf("login page of an open dashboard: got %d, want 303 to /", res.StatusCode)
	}
}
