package dashboard

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
)

// CSRFHeader is the request header that carries the CSRF token on API
// mutations; HTML forms send it as the form field CSRFField.
const (
	CSRFHeader = "X-CSRF-Token"
	CSRFField  = "csrf_token"
)

func equalSecret(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// authKind is how a request proved who it is.
type authKind int

const (
	authNone    authKind = iota // no valid credentials
	authOpen                    // none needed: the dashboard has no credentials
	authBearer                  // Authorization: Bearer
	authBasic                   // HTTP basic auth
	authSession                 // the session cookie the login page set
)

type authKey struct{}

// authenticate says how r is authenticated, authNone when it is not.
func (s *Server) authenticate(r *http.Request) authKind {
	if !s.cfg.authEnabled() {
		return authOpen
	}
	if s.cfg.BearerToken != "" {
		if tok, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found && equalSecret(tok, s.cfg.BearerToken) {
			return authBearer
		}
	}
	if s.cfg.BasicAuthUser != "" {
		if u, p, found := r.BasicAuth(); found && equalSecret(u, s.cfg.BasicAuthUser) && equalSecret(p, s.cfg.BasicAuthPassword) {
			return authBasic
		}
	}
	if c, err := r.Cookie(SessionCookie); err == nil && s.sessions.valid(c.Value) {
		return authSession
	}
	return authNone
}

func authOf(r *http.Request) authKind {
	k, _ := r.Context().Value(authKey{}).(authKind)
	return k
}

// wantsPage reports whether r is a browser asking for a page: a GET of
// something other than the API or /metrics that accepts HTML. Such a
// request without credentials is sent to the login page; others get 401.
func wantsPage(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		strings.Contains(r.Header.Get("Accept"), "text/html") &&
		!strings.HasPrefix(r.URL.Path, "/api/") && r.URL.Path != "/metrics"
}

// requireAuth refuses requests without valid credentials: a browser asking
// for a page is redirected to the login page, anything else gets 401.
func (s *Server) requireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := s.authenticate(r)
		if kind == authNone {
			if wantsPage(r) {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			if s.cfg.BasicAuthUser != "" {
				w.Header().Set("WWW-Authenticate", `Basic realm="jetworker", charset="UTF-8"`)
			} else {
				w.Header().Set("WWW-Authenticate", `Bearer realm="jetworker"`)
			}
			httpError(w, r, http.StatusUnauthorized, "authentication required")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), authKey{}, kind)))
	})
}

// mutation guards a state-changing handler: read-only mode refuses it
// (403), cross-origin browser requests are refused (403, by
// http.CrossOriginProtection, which reads Sec-Fetch-Site and Origin), and
// the request must carry the server's CSRF token in the X-CSRF-Token header
// or the csrf_token form field (403), unless it was authenticated with the
// bearer token, which browsers never attach on their own. A session cookie
// is attached by browsers, as basic auth is: it needs the token.
func (s *Server) mutation(h http.HandlerFunc) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.ReadOnly {
			httpError(w, r, http.StatusForbidden, "the dashboard is read-only")
			return
		}
		if err := cop.Check(r); err != nil {
			httpError(w, r, http.StatusForbidden, "cross-origin request refused")
			return
		}
		if authOf(r) != authBearer {
			tok := r.Header.Get(CSRFHeader)
			if tok == "" {
				tok = r.PostFormValue(CSRFField)
			}
			if tok == "" || !equalSecret(tok, s.csrf) {
				httpError(w, r, http.StatusForbidden, "missing or invalid CSRF token")
				return
			}
		}
		h(w, r)
	})
}
