package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strings"

	"github.com/jetworker/jetworker/internal/hostcheck"
)

// routes builds the handler tree. /healthz, /readyz, /static/ and the
// login page are open; everything else goes through requireAuth. Pages
// and API reads get pageTimeout for their reads (read), except the
// live task events and the counts of "everything matching", which scan.
func (s *Server) routes() http.Handler {
	open := http.NewServeMux()
	open.HandleFunc("GET /healthz", s.handleHealthz)
	open.HandleFunc("GET /readyz", s.handleReadyz)
	static, _ := fs.Sub(assets, "static")
	open.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	open.HandleFunc("GET /login", s.handleLogin)
	open.HandleFunc("POST /login", s.handleLoginPost)

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())

	// JSON API.
	mux.Handle("GET /api/overview", s.read(s.apiOverview))
	mux.HandleFunc("GET /api/csrf-token", s.apiCSRFToken)
	mux.HandleFunc("GET /api/charts", s.apiCharts)
	mux.Handle("GET /api/dead-letters", s.read(s.api(s.apiDeadLetters)))
	mux.Handle("GET /api/dead-letters/count", s.api(s.apiCountDeadLetters))
	mux.Handle("POST /api/dead-letters/replay", s.mutation(s.api(s.apiBulk("replay"))))
	mux.Handle("POST /api/dead-letters/delete", s.mutation(s.api(s.apiBulk("delete"))))
	mux.Handle("GET /api/dead-letters/{seq}", s.read(s.api(s.apiDeadLetter)))
	mux.Handle("POST /api/dead-letters/{seq}/replay", s.mutation(s.api(s.apiReplay)))
	mux.Handle("DELETE /api/dead-letters/{seq}", s.mutation(s.api(s.apiDeleteDeadLetter)))
	mux.Handle("GET /api/workers", s.read(s.api(s.apiWorkers)))
	if s.cfg.Outbox != nil {
		mux.Handle("GET /api/outbox", s.read(s.apiOutbox))
		mux.Handle("GET /outbox", s.read(s.pageOutbox))
	}
	if !s.cfg.DisableTasks {
		mux.Handle("GET /api/tasks", s.read(s.api(s.apiTasks)))
		mux.Handle("GET /api/tasks/{id}", s.read(s.api(s.apiTask)))
		mux.HandleFunc("GET /api/tasks/{id}/events", s.apiTaskEvents)
		mux.Handle("POST /api/tasks/{id}/{action}", s.mutation(s.api(s.apiTaskAction)))
		mux.Handle("GET /api/tasks/ref/{stream}/{seq}", s.read(s.api(s.apiTaskRef)))
		mux.Handle("DELETE /api/tasks/ref/{stream}/{seq}", s.mutation(s.api(s.apiTaskRefAction)))
		mux.Handle("POST /api/tasks/ref/{stream}/{seq}/{action}", s.mutation(s.api(s.apiTaskRefAction)))
	}
	if !s.cfg.DisableSchedules {
		mux.Handle("GET /api/schedules", s.read(s.api(s.apiSchedules)))
		mux.Handle("GET /api/schedules/{name}", s.read(s.api(s.apiSchedule)))
		mux.Handle("PUT /api/schedules/{name}", s.mutation(s.api(s.apiPutSchedule)))
		mux.Handle("DELETE /api/schedules/{name}", s.mutation(s.api(s.apiDeleteSchedule)))
		mux.Handle("POST /api/schedules/{name}/{action}", s.mutation(s.api(s.apiScheduleAction)))
	}

	// Anything else under /api/ is a JSON 404, not net/http's text.
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such endpoint: " + r.Method + " " + r.URL.Path})
	})

	// Web pages. Forms post to the same paths as their pages plus an
	// action; every action redirects back (POST/redirect/GET).
	mux.Handle("POST /logout", s.mutation(s.handleLogout))
	mux.Handle("GET /{$}", s.read(s.pageOverview))
	mux.Handle("GET /dead-letters", s.read(s.pageDeadLetters))
	mux.HandleFunc("GET /dead-letters/confirm", s.pageConfirmMatching)
	mux.Handle("POST /dead-letters/matching", s.mutation(s.formMatching))
	mux.Handle("POST /dead-letters/bulk", s.mutation(s.formBulk))
	mux.Handle("GET /dead-letters/{seq}", s.read(s.pageDeadLetter))
	mux.Handle("POST /dead-letters/{seq}/replay", s.mutation(s.formReplay))
	mux.Handle("POST /dead-letters/{seq}/delete", s.mutation(s.formDeleteDeadLetter))
	mux.Handle("GET /workers", s.read(s.pageWorkers))
	if !s.cfg.DisableTasks {
		mux.Handle("GET /tasks", s.read(s.pageTasks))
		mux.Handle("GET /tasks/{id}", s.read(s.pageTask))
		mux.Handle("POST /tasks/{id}/{action}", s.mutation(s.formTaskAction))
		mux.Handle("GET /tasks/ref/{stream}/{seq}", s.read(s.pageTaskRef))
		mux.Handle("POST /tasks/ref/{stream}/{seq}/{action}", s.mutation(s.formTaskRefAction))
	}
	if !s.cfg.DisableSchedules {
		mux.Handle("GET /schedules", s.read(s.pageSchedules))
		mux.Handle("GET /schedules/+new", s.read(s.pageNewSchedule))
		mux.Handle("POST /schedules/+new", s.mutation(s.formSaveSchedule))
		mux.Handle("GET /schedules/{name}", s.read(s.pageSchedule))
		mux.Handle("POST /schedules/{name}/{action}", s.mutation(s.formScheduleAction))
	}
	open.Handle("/", s.requireAuth(mux))
	return securityHeaders(s.localGuard(open))
}

// probeRoutes is the MetricsAddr listener's handler: /metrics (behind
// MetricsToken when set), /healthz and /readyz. Without MetricsToken it
// answers, as a dashboard without credentials does, only requests whose
// Host is this machine or, when MetricsAddr reaches beyond loopback (for
// scrapers and probes, which ask by address), an IP address: 421 for any
// other name, so that a page whose domain name resolves to the listener
// (DNS rebinding) cannot read it.
func (s *Server) probeRoutes() http.Handler {
	mux := s.probeMux()
	if s.cfg.MetricsToken != "" {
		return mux
	}
	host, _, _ := net.SplitHostPort(s.cfg.MetricsAddr)
	exposed := !hostcheck.Loopback(host)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hostcheck.RequestHost(r.Host, exposed) {
			msg := fmt.Sprintf("refused: Host %q is not this machine; the metrics listener without MetricsToken answers only to localhost and loopback addresses", r.Host)
			if exposed {
				msg = fmt.Sprintf("refused: Host %q is a name; the metrics listener without MetricsToken answers only to IP addresses and localhost: scrape it by address, or set MetricsToken", r.Host)
			}
			httpError(w, r, http.StatusMisdirectedRequest, msg)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// probeMux routes the MetricsAddr listener's paths.
func (s *Server) probeMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	metrics := s.metrics.Handler()
	mux.Handle("GET /metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := s.cfg.MetricsToken; tok != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || !equalSecret(got, tok) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="jetworker metrics"`)
				httpError(w, r, http.StatusUnauthorized, "authentication required")
				return
			}
		}
		metrics.ServeHTTP(w, r)
	}))
	return mux
}

// localGuard guards a dashboard without credentials, on every path, the
// probes included:
//
//   - unless UnsafeNoAuth is set, the request must come from this machine
//     (its RemoteAddr is a loopback address), 403 otherwise: Run listens
//     on loopback, but a program that mounts Handler in a server of its
//     own may listen on every address, and then anyone who can reach it
//     could otherwise read and change everything by sending a
//     "Host: localhost" header;
//   - its Host must be this machine (421 otherwise): a web page a
//     developer visits could otherwise point its own domain name at
//     127.0.0.1 (DNS rebinding) and read the dashboard as a same-origin
//     page. With UnsafeNoAuth, any address literal is accepted too (a
//     rebinding attack always carries a domain name).
func (s *Server) localGuard(next http.Handler) http.Handler {
	if s.cfg.authEnabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.cfg.UnsafeNoAuth && !hostcheck.LoopbackPeer(r.RemoteAddr) {
			httpError(w, r, http.StatusForbidden,
				fmt.Sprintf("refused: the request came from %s, not from this machine; a dashboard without credentials answers only to this machine: set BasicAuthUser/BasicAuthPassword or BearerToken, or UnsafeNoAuth for a read-only dashboard anyone can read", r.RemoteAddr))
			return
		}
		if !hostcheck.RequestHost(r.Host, s.cfg.UnsafeNoAuth) {
			httpError(w, r, http.StatusMisdirectedRequest,
				fmt.Sprintf("refused: Host %q is not this machine; a dashboard without credentials answers only to localhost and loopback addresses", r.Host))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// read bounds the reads behind a page or an API read with pageTimeout, the
// budget the overview has: when NATS is up but JetStream does not answer
// (disabled for the account, a stalled stream, an overloaded server),
// the page says what is unknown after a second instead of waiting for
// each request's own timeout (5s, several in a row).
func (s *Server) read(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
		defer cancel()
		h(w, r.WithContext(ctx))
	})
}

// securityHeaders sets headers that keep the pages from being framed or
// loading anything from elsewhere.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // "tasks.>", not "tasks.\u003e": JSON with nosniff is never read as HTML
	_ = enc.Encode(v)
}

// httpError answers with a JSON error for API and probe paths and plain
// text otherwise.
func httpError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if strings.HasPrefix(r.URL.Path, "/api/") || r.Header.Get("Accept") == "application/json" {
		writeJSON(w, code, map[string]string{"error": msg})
		return
	}
	http.Error(w, msg, code)
}
