package dashboard

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
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

// authenticate reports whether r carries valid credentials and whether they
// were the bearer token.
func (s *Server) authenticate(r *http.Request) (ok, bearer bool) {
	if !s.cfg.authEnabled() {
		return true, false
	}
	if s.cfg.BearerToken != "" {
		if tok, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found && equalSecret(tok, s.cfg.BearerToken) {
			return true, true
		}
	}
	if s.cfg.BasicAuthUser != "" {
		if u, p, found := r.BasicAuth(); found && equalSecret(u, s.cfg.BasicAuthUser) && equalSecret(p, s.cfg.BasicAuthPassword) {
			return true, false
		}
	}
	return false, false
}

type bearerKey struct{}

// requireAuth refuses requests without valid credentials with 401.
func (s *Server) requireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, bearer := s.authenticate(r)
		if !ok {
			if s.cfg.BasicAuthUser != "" {
				w.Header().Set("WWW-Authenticate", `Basic realm="jetworker", charset="UTF-8"`)
			} else {
				w.Header().Set("WWW-Authenticate", `Bearer realm="jetworker"`)
			}
			httpError(w, r, http.StatusUnauthorized, "authentication required")
			return
		}
		if bearer {
			r = r.WithContext(contextWithBearer(r))
		}
		next.ServeHTTP(w, r)
	})
}

// mutation guards a state-changing handler: read-only mode refuses it
// (403), cross-origin browser requests are refused (403, by
// http.CrossOriginProtection, which reads Sec-Fetch-Site and Origin), and
// the request must carry the server's CSRF token in the X-CSRF-Token header
// or the csrf_token form field (403), unless it was authenticated with the
// bearer token, which browsers never attach on their own.
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
		if !isBearer(r) {
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
