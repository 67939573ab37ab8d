// Package dashboard is jetworker's HTTP surface: health and readiness
// probes, Prometheus metrics, a JSON API and a server-rendered web dashboard
// for streams, consumers, dead letters, schedules and workers.
//
// New builds a [Server] on a jetstream.JetStream; [Server.Run] serves it on
// Config.Addr (default 127.0.0.1:8080) until its context ends, and
// [Server.Handler] mounts it in a server of your own.
//
// # Probes
//
// GET /healthz answers 200 while the process runs. GET /readyz runs every
// readiness check concurrently (each bounded by Config.CheckTimeout) and
// answers 200 when all pass, 503 otherwise, with a JSON body naming each
// check and the failing ones:
//
//	{"status": "not ready", "failed": ["stream:DLQ"], "checks": [{"name": "nats", "ok": true}, ...]}
//
// The server checks the NATS connection ("nats") and that the task streams
// and the dead-letter stream exist ("stream:TASKS", "stream:DLQ"). Programs
// add their own with [Server.AddReadyCheck]; [ChanCheck] turns a Ready
// channel (consumer.Consumer.Ready, schedule.Scheduler.Ready) into a check.
//
// # Metrics
//
// GET /metrics serves Config.Metrics, a metrics.Metrics (the metrics
// package documents every metric). The server makes it observe the
// configured streams, so stream and consumer state is read from the NATS
// server at scrape time. Workers that only want metrics import the metrics
// package, not this one.
//
// # Web dashboard and JSON API
//
//	/                        overview: streams, consumers (pending, processing, redelivered, waiting), totals
//	/dead-letters            list (filter by stream, consumer, subject), view, replay, delete
//	/schedules               spec, zone, last and next fire, leader; pause, resume, trigger, edit, delete
//	/workers                 live workers from their presence records
//
// The live pages refresh their tables every Config.RefreshInterval (2s) with
// a few lines of JavaScript; destructive actions ask for confirmation.
// Everything is embedded in the binary: no CDN, no external requests.
//
// The JSON API mirrors the pages:
//
//	GET    /api/overview
//	GET    /api/dead-letters?stream=&consumer=&subject=&limit=
//	GET    /api/dead-letters/{seq}
//	POST   /api/dead-letters/{seq}/replay
//	DELETE /api/dead-letters/{seq}
//	GET    /api/schedules
//	GET    /api/schedules/{name}            (a name with '/' is sent as %2F)
//	PUT    /api/schedules/{name}            body: a schedule.Entry as JSON
//	DELETE /api/schedules/{name}
//	POST   /api/schedules/{name}/pause|resume|trigger
//	GET    /api/workers
//	GET    /api/csrf-token
//
// # Security
//
// The server listens on loopback by default. Set Config.BasicAuthUser and
// BasicAuthPassword, or Config.BearerToken, to require credentials on every
// path except /healthz, /readyz and /static/ (401 without them).
// Config.ReadOnly refuses every mutation with 403 and hides its buttons.
//
// Without credentials, New refuses an Addr other machines can reach
// (0.0.0.0, a machine's address, a host name) unless Config.UnsafeNoAuth
// is set, and then the dashboard is read-only. It also answers only
// requests whose Host is this machine (localhost, *.localhost, 127.0.0.0/8,
// ::1; with UnsafeNoAuth, any address literal) with 421 otherwise: a web
// page whose domain name resolves to 127.0.0.1 (DNS rebinding) cannot read
// it or fetch its CSRF token.
//
// Config.MetricsAddr adds a second listener serving only /metrics (behind
// Config.MetricsToken when set), /healthz and /readyz, for scrapers and
// probes; Config.DisableUI serves that listener alone.
//
// Mutations need POST, PUT or DELETE and pass two CSRF defences:
//
//  1. http.CrossOriginProtection refuses cross-origin browser requests
//     (Sec-Fetch-Site, or Origin against Host);
//  2. the request carries the server's CSRF token: a random value made by
//     New, rendered into every form as the hidden field csrf_token, and
//     sent by API clients in the X-CSRF-Token header (GET /api/csrf-token
//     returns it). Another site cannot read it, so it cannot forge a form.
//
// Requests authenticated with the bearer token skip the token check, since
// browsers never attach an Authorization: Bearer header by themselves. Basic
// auth credentials are attached by browsers, so they do not.
package dashboard
