// Package dashboard is jetworker's HTTP surface: health and readiness
// probes, Prometheus metrics, a JSON API and a server-rendered web dashboard
// for streams, consumers, tasks, dead letters, schedules, workers and a
// transactional outbox.
//
// New builds a [Server] on a jetstream.JetStream; [Server.Run] serves it on
// Config.Addr (default 127.0.0.1:8080) until its context ends, and
// [Server.Handler] mounts it in a server of your own (without the charts'
// sampler, which Run owns).
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
// The server checks the NATS connection ("nats"), that the task streams
// and the dead-letter stream exist ("stream:TASKS", "stream:DLQ") and, with
// Config.Outbox, that the outbox's stats can be read ("outbox"). Programs
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
// # Pages
//
//	/                        overview: charts first, then totals, consumers and streams (and the outbox)
//	/tasks                   task browser: a tab per state, by subject wildcard and ID
//	/tasks/{id}              a tracked task, live: state, progress, history, result, payload; cancel, run now
//	/tasks/ref/{stream}/{seq}  a task known by its place in the stream, tracked or not; delete, cancel, run now
//	/dead-letters            newest first with cursor paging; stream, consumer, subject wildcard, task ID and
//	                         time-range filters; replay or delete one, a selection, or everything matching
//	/dead-letters/{seq}      one dead letter, with why it cannot be replayed if it cannot
//	/schedules               spec, zone, last and next fire, fires failing (the scheduler's error), leader;
//	                         pause, resume, trigger, edit, delete
//	/workers                 live workers from their presence records
//	/outbox                  with Config.Outbox: rows pending, relay lag, dead rows
//	/login                   sign-in for browsers (with credentials configured)
//
// The pending and delayed tabs of the task browser read the task stream
// itself (task.Store.Queued), so they show untracked tasks too, each with
// its status: pending (no consumer that selects it has delivered it),
// delivered (with a worker), delayed, or unrouted (no consumer selects its
// subject). The other tabs read tracked tasks' records (task.Store.List).
// A tracked task's page follows it through GET /api/tasks/{id}/events, an
// event stream fed by task.Store.Follow (a KV watch, not polling): the
// record as it is, then every change, until a terminal state; the handler
// and its watch end when the browser leaves.
//
// "Replay all…" and "Delete all…" on the dead-letter list ask first, naming
// the count (dlq.Store.Count): "Replay 412 dead letters matching subject
// tasks.load.*.broken?". The confirmation carries the filter, the count and
// the dead-letter stream's last sequence; the action acts on exactly the
// entries the filter matches up to that sequence, and only if there are
// still as many, otherwise it asks again. Entries that cannot be replayed
// (dlq.Entry.Problem) are marked and never replayed.
//
// Every page and API read gets one second for its reads, the overview
// included (counting what "everything matching" covers gets 30s after a
// first read within that second, since it may scan every dead letter).
// With NATS down the pages answer at once; with NATS up but JetStream not
// answering (disabled for the account, a stalled stream, an overloaded
// server) they answer after that second; either way they say the state
// is unknown, never that there is nothing, and the API answers 503.
//
// The live pages refresh their content every Config.RefreshInterval (2s)
// with a few lines of JavaScript; the reader can pause it and choose the
// interval (kept in the browser's localStorage). Pages follow the system's
// light or dark setting, work at phone width, and say what an empty table
// means and what to do. Everything is embedded in the binary: no CDN, no
// external requests, no inline script or style (the CSP is default-src
// 'self').
//
// # Charts
//
// The overview leads with charts of the last hour (or 15 minutes), kept by
// the dashboard process itself, so they need no Prometheus: Run samples
// every Config.SampleInterval (5s) into a ring buffer of
// Config.SampleWindow (1h: 720 points per series; at most 64 series and 16
// consumers). They are inline SVG drawn on the server: no chart library,
// no script, restyled by the stylesheet for dark mode.
//
//   - Throughput, per second: published (the task streams' last sequence;
//     a delayed task counts when enqueued and again when released),
//     processed and failed (handler runs the workers' presence records
//     count; unknown, not 0, while consumers acknowledge tasks and no
//     worker has a record), dead-lettered (the dead-letter stream's last
//     sequence).
//     Counters that restart from zero (a worker restarted, a stream was
//     recreated) count with their new value; a worker first seen counts
//     only if it started since the previous sample.
//   - Enqueue-to-start latency, p50 and p99: from when a task was stored
//     (or, delayed, became due) to its handler's start, first deliveries
//     only (jetworker.Task.QueueWait). Each worker counts its tasks in
//     buckets of consumer.WaitBounds (1ms to 5m) in its presence record
//     (consumer.WorkerInfo.Wait); the sampler merges the live workers'
//     buckets, takes what grew since the previous sample and interpolates
//     the percentiles within a bucket, as Prometheus's histogram_quantile
//     does (jetworker_task_wait_seconds is the same measure). A point
//     exists only when tasks started between two samples: an idle period
//     is a gap, not a zero.
//   - Oldest waiting task, per consumer: the age of the oldest task not yet
//     delivered (overview.Consumer.OldestPending), an upper bound on the
//     latency of what is still queued; with an outbox, the relay lag.
//   - Backlog: each consumer's pending count.
//   - Outbox (with Config.Outbox): rows pending and dead.
//
// A part that cannot be read leaves a gap, never zeros. GET /api/charts
// serves the same history.
//
// # JSON API
//
// The API mirrors the pages; docs/dashboard.md documents each endpoint
// with an example. Keys are snake_case, empty lists are [], errors are
// {"error": "..."}.
//
//	GET    /api/overview
//	GET    /api/charts?window=
//	GET    /api/dead-letters?stream=&consumer=&subject=&task_id=&since=&until=&before=&limit=
//	GET    /api/dead-letters/count?…
//	POST   /api/dead-letters/replay          body: {"seqs": [...]} or {"filter": {...}, "expect": n, "upto": seq}
//	POST   /api/dead-letters/delete          same body
//	GET    /api/dead-letters/{seq}
//	POST   /api/dead-letters/{seq}/replay
//	DELETE /api/dead-letters/{seq}
//	GET    /api/tasks?state=&subject=&id=&stream=&before=&limit=
//	GET    /api/tasks/{id}
//	GET    /api/tasks/{id}/events            text/event-stream
//	POST   /api/tasks/{id}/cancel|run-now
//	GET    /api/tasks/ref/{stream}/{seq}
//	DELETE /api/tasks/ref/{stream}/{seq}
//	POST   /api/tasks/ref/{stream}/{seq}/cancel|run-now
//	GET    /api/schedules
//	GET    /api/schedules/{name}            (a name with '/' is sent as %2F)
//	PUT    /api/schedules/{name}            body: a schedule.Entry as JSON
//	DELETE /api/schedules/{name}
//	POST   /api/schedules/{name}/pause|resume|trigger
//	GET    /api/workers
//	GET    /api/outbox
//	GET    /api/csrf-token
//
// # Security
//
// The server listens on loopback by default. Set Config.BasicAuthUser and
// BasicAuthPassword, or Config.BearerToken, to require credentials on every
// path except /healthz, /readyz, /static/ and /login. Config.ReadOnly
// refuses every mutation with 403 and hides its buttons.
//
// Machines send the bearer token (or basic auth) with each request; without
// valid credentials they get 401. A browser asking for a page is sent to
// /login instead, where the token, or the basic-auth user and password,
// become a session cookie, jetworker_session: HttpOnly, SameSite=Strict,
// Secure when the request came over TLS or through a proxy that says
// X-Forwarded-Proto: https, valid for Config.SessionTTL (12h). Its value
// is an expiry and a random nonce signed with HMAC-SHA256 under
// Config.SessionKey (random per process unless set: give replicas the same
// key). POST /logout ends the session for good. The login form is refused
// cross-origin and only sends the browser on to local paths. Failed
// sign-ins are not throttled: use a long random token, or a proxy that
// limits attempts.
//
// Without credentials, New refuses an Addr other machines can reach
// (0.0.0.0, a machine's address, a host name) unless Config.UnsafeNoAuth
// is set, and then the dashboard is read-only. Its handler, on every path
// and also when mounted with [Server.Handler] in a server of your own,
// then answers only
//
//   - requests from this machine, with 403 otherwise: the peer
//     (RemoteAddr) must be a loopback address, unless UnsafeNoAuth is set,
//     so a server of your own listening on every address does not serve
//     the dashboard, reads or changes, to whoever sends "Host: localhost";
//   - requests whose Host is this machine (localhost, *.localhost,
//     127.0.0.0/8, ::1; with UnsafeNoAuth, any address literal), with 421
//     otherwise: a web page whose domain name resolves to 127.0.0.1 (DNS
//     rebinding) cannot read it or fetch its CSRF token.
//
// Behind a reverse proxy on the same machine the peer is the proxy: give
// such a dashboard credentials.
//
// Config.MetricsAddr adds a second listener serving only /metrics (behind
// Config.MetricsToken when set), /healthz and /readyz, for scrapers and
// probes; Config.DisableUI serves that listener alone. Without
// MetricsToken it applies the same Host rule: localhost and loopback
// addresses, and any IP address when it listens beyond loopback (scrapers
// and probes ask by address), 421 for other names.
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
// browsers never attach an Authorization: Bearer header by themselves.
// Basic auth credentials and the session cookie are attached by browsers,
// so they do not.
package dashboard
