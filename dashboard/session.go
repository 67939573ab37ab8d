package dashboard

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"strings"
	"sync"
	"time"
)

// SessionCookie is the name of the cookie the login page sets.
const SessionCookie = "jetworker_session"

// Session cookie layout: expiry (Unix seconds, 8 bytes), a random nonce
// (16 bytes) and an HMAC-SHA256 of both under the session key (32 bytes),
// base64url-encoded. The value says nothing about the credentials; it is
// valid until it expires or its session is signed out.
const (
	sessionNonce = 16
	sessionMAC   = sha256.Size
	sessionLen   = 8 + sessionNonce + sessionMAC
)

// sessions issues and checks session cookies. Sessions signed out are
// remembered until they would have expired. Safe for concurrent use.
type sessions struct {
	key []byte
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	revoked map[[sessionNonce]byte]time.Time
}

func newSessions(key []byte, ttl time.Duration, now func() time.Time) *sessions {
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key) // never fails (crypto/rand)
	}
	return &sessions{key: bytes.Clone(key), ttl: ttl, now: now, revoked: map[[sessionNonce]byte]time.Time{}}
}

func (ss *sessions) mac(b []byte) []byte {
	m := hmac.New(sha256.New, ss.key)
	m.Write(b)
	return m.Sum(nil)
}

// issue makes a new session value and its expiry.
func (ss *sessions) issue() (string, time.Time) {
	exp := ss.now().Add(ss.ttl).Truncate(time.Second)
	b := make([]byte, 8+sessionNonce, sessionLen)
	binary.BigEndian.PutUint64(b, uint64(exp.Unix()))
	_, _ = rand.Read(b[8:]) // never fails (crypto/rand)
	b = append(b, ss.mac(b)...)
	return base64.RawURLEncoding.EncodeToString(b), exp
}

// parse checks a session value's signature and expiry and returns its
// nonce.
func (ss *sessions) parse(v string) (nonce [sessionNonce]byte, exp time.Time, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(b) != sessionLen {
		return nonce, exp, false
	}
	if !hmac.Equal(b[8+sessionNonce:], ss.mac(b[:8+sessionNonce])) {
		return nonce, exp, false
	}
	exp = time.Unix(int64(binary.BigEndian.Uint64(b)), 0)
	if !ss.now().Before(exp) {
		return nonce, exp, false
	}
	copy(nonce[:], b[8:])
	return nonce, exp, true
}

// valid reports whether v is a live session.
func (ss *sessions) valid(v string) bool {
	nonce, _, ok := ss.parse(v)
	if !ok {
		return false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	_, out := ss.revoked[nonce]
	return !out
}

// revoke signs the session v out.
func (ss *sessions) revoke(v string) {
	nonce, exp, ok := ss.parse(v)
	if !ok {
		return
	}
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for n, e := range ss.revoked {
		if !now.Before(e) {
			delete(ss.revoked, n)
		}
	}
	ss.revoked[nonce] = exp
}

// secureRequest reports whether the browser reached the dashboard over
// TLS, directly or through a proxy that says so: the cookie is then
// Secure. (A client that claims https without it only gets a cookie it
// cannot send back over plain HTTP.)
func secureRequest(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https")
}

func (s *Server) setSessionCookie(w http.ResponseWriter, r *http.Request, value string, exp time.Time) {
	c := &http.Cookie{
		Name: SessionCookie, Value: value, Path: "/",
		HttpOnly: true, Secure: secureRequest(r), SameSite: http.SameSiteStrictMode,
	}
	if value == "" {
		c.MaxAge = -1
	} else {
		c.Expires = exp
		c.MaxAge = int(exp.Sub(s.cfg.NowFunc()).Seconds())
		if c.MaxAge <= 0 {
			c.MaxAge = int(s.cfg.SessionTTL.Seconds())
		}
	}
	http.SetCookie(w, c)
}

// loginPage is the login template's data.
type loginPage struct {
	Next      string
	Error     string
	Token     bool // a bearer token is configured
	Password  bool // basic auth is configured
	User      string
	Bounce    bool // reload once: the cookie was held back from a cross-site navigation
	SignedOut bool
}

// handleLogin shows the login form. A browser already signed in goes on to
// next.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if !s.cfg.authEnabled() {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	if kind := s.authenticate(r); kind != authNone {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	lp := s.loginPage(next)
	// A SameSite=Strict cookie is not sent with a navigation from another
	// site (a link in a chat): this page then reloads itself once, a
	// same-origin navigation that carries it.
	lp.Bounce = r.Header.Get("Sec-Fetch-Site") == "cross-site"
	lp.SignedOut = r.URL.Query().Get("signed_out") != ""
	s.renderLogin(w, r, http.StatusOK, lp)
}

func (s *Server) loginPage(next string) loginPage {
	return loginPage{Next: next, Token: s.cfg.BearerToken != "", Password: s.cfg.BasicAuthUser != ""}
}

// handleLoginPost turns the bearer token, or the basic-auth user and
// password, into a session cookie.
func (s *Server) handleLoginPost(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	if !s.cfg.authEnabled() {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	if err := s.loginCOP.Check(r); err != nil {
		httpError(w, r, http.StatusForbidden, "cross-origin request refused")
		return
	}
	lp := s.loginPage(next)
	lp.User = r.PostFormValue("user")
	ok := false
	if tok := r.PostFormValue("token"); tok != "" && s.cfg.BearerToken != "" {
		ok = equalSecret(tok, s.cfg.BearerToken)
	} else if s.cfg.BasicAuthUser != "" && r.PostFormValue("password") != "" {
		ok = equalSecret(r.PostFormValue("user"), s.cfg.BasicAuthUser) && equalSecret(r.PostFormValue("password"), s.cfg.BasicAuthPassword)
	}
	if !ok {
		switch {
		case lp.Token && lp.Password:
			lp.Error = "Wrong token, user or password."
		case lp.Token:
			lp.Error = "Wrong token."
		default:
			lp.Error = "Wrong user or password."
		}
		s.renderLogin(w, r, http.StatusUnauthorized, lp)
		return
	}
	v, exp := s.sessions.issue()
	s.setSessionCookie(w, r, v, exp)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// handleLogout ends the session (it is a mutation: CSRF token required).
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		s.sessions.revoke(c.Value)
	}
	s.setSessionCookie(w, r, "", time.Time{})
	http.Redirect(w, r, "/login?signed_out=1", http.StatusSeeOther)
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, code int, lp loginPage) {
	s.writeHTML(w, r, s.login, "login", code, lp)
}

// safeNext returns next if it is a path on this site, else "/".
func safeNext(next string) string {
	if strings.HasPrefix(next, "/") && !strings.HasPrefix(next, "//") && !strings.Contains(next, `\`) &&
		!strings.HasPrefix(next, "/login") && !strings.HasPrefix(next, "/logout") {
		return next
	}
	return "/"
}
