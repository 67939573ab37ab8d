package dashboard

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/jetworker/jetworker/internal/hostcheck"

	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/internal/subject"
	"github.com/jetworker/jetworker/metrics"
	"github.com/jetworker/jetworker/schedule"
	"github.com/jetworker/jetworker/streams"
	"github.com/jetworker/jetworker/task"
)

// Defaults for [Config].
const (
	DefaultAddr             = "127.0.0.1:8080"
	DefaultTaskStream       = streams.DefaultTaskStream
	DefaultDeadLetterStream = consumer.DefaultDeadLetterStream
	DefaultDeadLetterPrefix = consumer.DefaultDeadLetterPrefix
	DefaultPresenceBucket   = consumer.DefaultPresenceBucket
	DefaultLeaseKey         = schedule.DefaultLeaseKey
	DefaultTaskBucket       = task.DefaultBucket
	DefaultRefreshInterval  = 2 * time.Second
	DefaultCheckTimeout     = 2 * time.Second
	DefaultShutdownTimeout  = 5 * time.Second
	DefaultDeadLetterLimit  = 100
	DefaultSampleInterval   = 5 * time.Second
	DefaultSampleWindow     = time.Hour
	DefaultSessionTTL       = 12 * time.Hour
)

// Config tunes a [Server]. The zero value of every field means its default:
// an open, read-write dashboard on 127.0.0.1:8080 for the TASKS and DLQ
// streams.
type Config struct {
	// Addr is the TCP address Run listens on. Use "127.0.0.1:0" to pick a
	// free port ([Server.Addr] tells which). Without credentials it must
	// be a loopback address (see UnsafeNoAuth). Defaults to
	// "127.0.0.1:8080".
	Addr string

	// TaskStreams are the task streams the dashboard shows, checks in
	// /readyz and reports consumer state of in /metrics. Defaults to
	// ["TASKS"].
	TaskStreams []string
	// DeadLetterStream is the dead-letter stream. Defaults to "DLQ".
	DeadLetterStream string
	// DeadLetterPrefix is the first token of dead-letter subjects.
	// Defaults to "dlq".
	DeadLetterPrefix string
	// PresenceBucket is the KV bucket of worker presence records.
	// Defaults to "jetworker_workers".
	PresenceBucket string
	// DisableWorkers hides the workers page and API. Defaults to false.
	DisableWorkers bool
	// LeaseKey is the scheduler lease key shown as the leader. Defaults to
	// "scheduler".
	LeaseKey string
	// DisableSchedules hides the schedules page and API. Defaults to
	// false.
	DisableSchedules bool
	// TaskBucket is the KV bucket of tracked tasks' records (the task
	// package's). Defaults to "jetworker_status".
	TaskBucket string
	// DisableTasks hides the task browser and its API. Defaults to false.
	DisableTasks bool

	// Outbox, when set, adds a transactional outbox to the overview (rows
	// pending, relay lag, dead rows), to its charts and to /readyz (check
	// "outbox": its stats can be read). Pass the *outbox.Relay the process
	// runs; the dashboard needs no database connection of its own. Its
	// Stats is read at most once per SampleInterval. Defaults to nil.
	Outbox Outbox
	// OutboxDeadFunc, with Outbox, lets the outbox page list dead rows;
	// without it the page shows their count. Defaults to nil.
	OutboxDeadFunc OutboxDeadFunc

	// Metrics is the registry /metrics serves. The server makes it observe
	// the configured streams (metrics.Metrics.ObserveStreams), so a Metrics
	// can serve one Server. Pass the Metrics whose hooks your consumers and
	// schedulers use. Defaults to a new metrics.New.
	Metrics *metrics.Metrics

	// BasicAuthUser and BasicAuthPassword, when both set, protect every
	// endpoint except /healthz and /readyz with HTTP basic auth.
	BasicAuthUser     string
	BasicAuthPassword string
	// BearerToken, when set, protects every endpoint except /healthz and
	// /readyz with "Authorization: Bearer <token>". With basic auth also
	// set, either is accepted. Requests authenticated by the bearer token
	// need no CSRF token (browsers never send it on their own). Browsers
	// sign in on /login with the token (or the basic-auth user and
	// password) and get a session cookie instead.
	BearerToken string
	// SessionTTL is how long a browser stays signed in after the login
	// page turned its token or password into a session cookie. Defaults
	// to 12h.
	SessionTTL time.Duration
	// SessionKey signs session cookies, at least 32 bytes. Give every
	// replica serving one address the same key, and sessions survive
	// restarts and work across replicas. Defaults to nil: New makes a
	// random key, so sessions end with the process.
	SessionKey []byte
	// ReadOnly refuses every mutation (replay, delete, pause, resume,
	// trigger, edit) with 403 and hides their buttons. Defaults to false.
	ReadOnly bool
	// UnsafeNoAuth lets a dashboard without credentials listen beyond
	// loopback (Addr on 0.0.0.0 or a machine's address), which New refuses
	// otherwise, and answer requests from other machines, which its
	// handler refuses otherwise (also when mounted with [Server.Handler]):
	// anyone who can reach the port can then read every task and dead
	// letter. Such a dashboard is read-only. Defaults to false.
	UnsafeNoAuth bool

	// MetricsAddr, when set, is a second listener serving only /metrics,
	// /healthz and /readyz, without the dashboard's credentials (a
	// Prometheus scraper and a Kubernetes probe need none), so the
	// dashboard can stay on loopback. Without MetricsToken it answers only
	// requests whose Host is localhost or a loopback address, or any IP
	// address when MetricsAddr reaches beyond loopback (scrapers and
	// probes ask by address); other names get 421 (DNS rebinding).
	// Defaults to "", none.
	MetricsAddr string
	// MetricsToken, when set, protects /metrics on MetricsAddr with
	// "Authorization: Bearer <token>" (probes stay open), and the listener
	// then answers any Host. Defaults to "".
	MetricsToken string
	// DisableUI serves no dashboard listener (Addr is not used): only
	// MetricsAddr. Handler still works. Defaults to false.
	DisableUI bool

	// RefreshInterval is how often the live pages (overview, dead
	// letters, schedules, workers) refresh their tables. Defaults to 2s;
	// -1 disables auto-refresh.
	RefreshInterval time.Duration
	// SampleInterval is how often Run samples the streams, the consumers
	// and the workers for the overview's charts (throughput, backlog, the
	// oldest waiting task), which the dashboard keeps in memory, so they
	// need no Prometheus. Defaults to 5s; -1 disables the charts.
	SampleInterval time.Duration
	// SampleWindow is how much history the charts keep: SampleWindow /
	// SampleInterval points per series (720 with the defaults), at most
	// 100 000. Defaults to 1h.
	SampleWindow time.Duration
	// CheckTimeout bounds each readiness check and each scrape of server
	// state. Defaults to 2s.
	CheckTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown of the HTTP server when
	// Run's context ends; connections still open then are closed.
	// Defaults to 5s.
	ShutdownTimeout time.Duration
	// DeadLetterLimit caps the dead letters one list page or API call
	// returns. Defaults to 100.
	DeadLetterLimit int

	// Logger receives the server's logs. Defaults to slog.Default().
	Logger *slog.Logger
	// NowFunc is the clock for "next fire" and relative times. Defaults
	// to time.Now.
	NowFunc func() time.Time
}

func (c Config) withDefaults() Config {
	c.Addr = cmp.Or(c.Addr, DefaultAddr)
	if len(c.TaskStreams) == 0 {
		c.TaskStreams = []string{DefaultTaskStream}
	} else {
		c.TaskStreams = append([]string(nil), c.TaskStreams...)
	}
	c.DeadLetterStream = cmp.Or(c.DeadLetterStream, DefaultDeadLetterStream)
	c.DeadLetterPrefix = cmp.Or(c.DeadLetterPrefix, DefaultDeadLetterPrefix)
	c.PresenceBucket = cmp.Or(c.PresenceBucket, DefaultPresenceBucket)
	c.LeaseKey = cmp.Or(c.LeaseKey, DefaultLeaseKey)
	c.TaskBucket = cmp.Or(c.TaskBucket, DefaultTaskBucket)
	c.RefreshInterval = cmp.Or(c.RefreshInterval, DefaultRefreshInterval)
	c.CheckTimeout = cmp.Or(c.CheckTimeout, DefaultCheckTimeout)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, DefaultShutdownTimeout)
	c.DeadLetterLimit = cmp.Or(c.DeadLetterLimit, DefaultDeadLetterLimit)
	c.SampleInterval = cmp.Or(c.SampleInterval, DefaultSampleInterval)
	c.SampleWindow = cmp.Or(c.SampleWindow, DefaultSampleWindow)
	c.SessionTTL = cmp.Or(c.SessionTTL, DefaultSessionTTL)
	if c.UnsafeNoAuth && !c.authEnabled() {
		c.ReadOnly = true
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	return c
}

// Validate reports every problem with c, joined, as [New] would; zero
// fields are checked with their defaults. It does no I/O.
func (c Config) Validate() error { return c.withDefaults().validate() }

func (c Config) validate() error {
	var errs []error
	if !c.DisableUI {
		if host, _, err := net.SplitHostPort(c.Addr); err != nil {
			errs = append(errs, fmt.Errorf("dashboard: Addr %q: %w", c.Addr, err))
		} else if !c.authEnabled() && !c.UnsafeNoAuth && !hostcheck.Loopback(host) {
			errs = append(errs, fmt.Errorf("dashboard: Addr %q is reachable from other machines and no credentials are set: set BasicAuthUser/BasicAuthPassword or BearerToken, listen on 127.0.0.1, or set UnsafeNoAuth for a read-only dashboard anyone can read", c.Addr))
		}
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("dashboard: MetricsAddr %q: %w", c.MetricsAddr, err))
		}
	} else if c.DisableUI {
		errs = append(errs, errors.New("dashboard: DisableUI needs MetricsAddr: nothing would listen"))
	}
	for i, s := range c.TaskStreams {
		if err := subject.ValidateName(fmt.Sprintf("dashboard: TaskStreams[%d]", i), s); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range []struct{ field, v string }{
		{"DeadLetterStream", c.DeadLetterStream}, {"DeadLetterPrefix", c.DeadLetterPrefix},
		{"PresenceBucket", c.PresenceBucket}, {"LeaseKey", c.LeaseKey}, {"TaskBucket", c.TaskBucket},
	} {
		if err := subject.ValidateName("dashboard: "+n.field, n.v); err != nil {
			errs = append(errs, err)
		}
	}
	if (c.BasicAuthUser == "") != (c.BasicAuthPassword == "") {
		errs = append(errs, errors.New("dashboard: BasicAuthUser and BasicAuthPassword must be set together"))
	}
	if c.SessionTTL < time.Minute {
		errs = append(errs, fmt.Errorf("dashboard: SessionTTL must be at least 1m, got %s", c.SessionTTL))
	}
	if len(c.SessionKey) > 0 && len(c.SessionKey) < 32 {
		errs = append(errs, fmt.Errorf("dashboard: SessionKey must be at least 32 bytes, got %d", len(c.SessionKey)))
	}
	if c.RefreshInterval < 0 && c.RefreshInterval != -1 {
		errs = append(errs, fmt.Errorf("dashboard: RefreshInterval must be > 0 or -1, got %s", c.RefreshInterval))
	}
	if c.CheckTimeout < 0 {
		errs = append(errs, fmt.Errorf("dashboard: CheckTimeout must be > 0, got %s", c.CheckTimeout))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("dashboard: ShutdownTimeout must be > 0, got %s", c.ShutdownTimeout))
	}
	if c.SampleInterval < 0 && c.SampleInterval != -1 {
		errs = append(errs, fmt.Errorf("dashboard: SampleInterval must be > 0 or -1, got %s", c.SampleInterval))
	}
	if c.SampleWindow < 0 {
		errs = append(errs, fmt.Errorf("dashboard: SampleWindow must be > 0, got %s", c.SampleWindow))
	} else if c.SampleInterval > 0 && c.SampleWindow/c.SampleInterval > maxHistoryPoints {
		errs = append(errs, fmt.Errorf("dashboard: SampleWindow / SampleInterval must be at most %d points, got %d", maxHistoryPoints, c.SampleWindow/c.SampleInterval))
	} else if c.SampleInterval > 0 && c.SampleWindow < 2*c.SampleInterval {
		errs = append(errs, fmt.Errorf("dashboard: SampleWindow (%s) must hold at least two samples of SampleInterval (%s)", c.SampleWindow, c.SampleInterval))
	}
	if c.DeadLetterLimit < 0 {
		errs = append(errs, fmt.Errorf("dashboard: DeadLetterLimit must be > 0, got %d", c.DeadLetterLimit))
	}
	return errors.Join(errs...)
}

func (c Config) authEnabled() bool { return c.BasicAuthUser != "" || c.BearerToken != "" }
