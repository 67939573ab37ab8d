package main

import (
	"log/slog"
	"time"

	"github.com/jetworker/jetworker/dashboard"
	"github.com/jetworker/jetworker/streams"
	"github.com/jetworker/jetworker/task"
)

// envPrefix is the prefix of every environment variable the binary reads.
const envPrefix = "JETWORKER"

// The settings below are declared once each (see settings.go for the
// tags) and embedded by the commands they apply to.

// ConnEnv is how to reach NATS.
type ConnEnv struct {
	NATSURL string `envconfig:"JETWORKER_NATS_URL" flag:"url" default:"nats://127.0.0.1:4222" meta:"URL" secret:"url" group:"Connection" desc:"NATS server URL(s), comma-separated"`
	AuthEnv
	TLSEnv
	ConnectTimeout time.Duration `envconfig:"JETWORKER_CONNECT_TIMEOUT" flag:"connect-timeout" default:"5s" advanced:"true" group:"Connection" desc:"how long to try to connect before giving up"`
}

// AuthEnv is who to connect as: one of a .creds file, an nkey seed, a
// user and password, or a token.
type AuthEnv struct {
	Creds    string `envconfig:"JETWORKER_CREDS" flag:"creds" meta:"FILE" group:"Connection" desc:"JWT .creds file"`
	NkeySeed string `envconfig:"JETWORKER_NKEY_SEED" flag:"nkey" meta:"FILE" advanced:"true" group:"Connection" desc:"nkey seed file"`
	User     string `envconfig:"JETWORKER_USER" flag:"user" meta:"NAME" group:"Connection" desc:"user name"`
	Password string `envconfig:"JETWORKER_PASSWORD" flag:"password" meta:"SECRET" secret:"true" group:"Connection" desc:"password"`
	Token    string `envconfig:"JETWORKER_TOKEN" flag:"token" meta:"SECRET" secret:"true" group:"Connection" desc:"authentication token"`
}

// TLSEnv is the client side of TLS and mutual TLS.
type TLSEnv struct {
	TLSCA   string `envconfig:"JETWORKER_TLS_CA" flag:"tls-ca" meta:"FILE" advanced:"true" group:"TLS" desc:"PEM file of the CAs that sign the server certificate"`
	TLSCert string `envconfig:"JETWORKER_TLS_CERT" flag:"tls-cert" meta:"FILE" advanced:"true" group:"TLS" desc:"PEM client certificate (mutual TLS)"`
	TLSKey  string `envconfig:"JETWORKER_TLS_KEY" flag:"tls-key" meta:"FILE" advanced:"true" group:"TLS" desc:"PEM client key (mutual TLS)"`
}

// MonitorEnv points the durability guard at the server's monitoring
// endpoint.
type MonitorEnv struct {
	MonitorURL string `envconfig:"JETWORKER_NATS_MONITOR_URL" flag:"monitor-url" meta:"URL" secret:"url" advanced:"true" group:"Connection" desc:"nats-server monitoring endpoint (http://host:8222), to check its sync setting"`
}

// LogEnv is how to log.
type LogEnv struct {
	LogLevel  string `envconfig:"JETWORKER_LOG_LEVEL" flag:"log-level" default:"info" meta:"LEVEL" group:"Logging" desc:"debug, info, warn or error"`
	LogFormat string `envconfig:"JETWORKER_LOG_FORMAT" flag:"log-format" default:"auto" meta:"FORMAT" group:"Logging" desc:"auto (text on a terminal, JSON otherwise), text or json"`
}

// StreamEnv names the task stream.
type StreamEnv struct {
	Stream string `envconfig:"JETWORKER_STREAM" flag:"stream" default:"TASKS" meta:"NAME" group:"Streams" desc:"task stream"`
}

// DLQStreamEnv names the dead-letter stream.
type DLQStreamEnv struct {
	DLQStream string `envconfig:"JETWORKER_DLQ_STREAM" flag:"dlq-stream" default:"DLQ" meta:"NAME" group:"Streams" desc:"dead-letter stream"`
}

// ReplicasEnv is the size of what a command creates.
type ReplicasEnv struct {
	Replicas int `envconfig:"JETWORKER_REPLICAS" flag:"replicas" default:"1" group:"Streams" desc:"copies of the streams and buckets it creates (3 in a cluster)"`
}

// RoutesEnv is where the routes come from and how their durable consumers
// are named.
type RoutesEnv struct {
	Routes  string `envconfig:"JETWORKER_ROUTES" flag:"routes" meta:"FILE" group:"Routes" desc:"routes file (YAML or JSON): subject pattern -> stock handler"`
	Durable string `envconfig:"JETWORKER_DURABLE" flag:"durable" default:"worker" meta:"NAME" group:"Routes" desc:"durable consumer name prefix; each route's is <durable>-<route>"`
}

// LeaseTTLEnv is the schedulers' lease TTL, which is the lease bucket's:
// the scheduler and provision create the bucket with it.
type LeaseTTLEnv struct {
	LeaseTTL time.Duration `envconfig:"JETWORKER_LEASE_TTL" flag:"lease-ttl" default:"10s" group:"Scheduler" desc:"leader lease TTL; a crashed leader is replaced within about this"`
}

// ConsumerEnv holds the route consumers' server-side settings, shared by
// the worker and provision (unless a route sets its own).
type ConsumerEnv struct {
	Concurrency int           `envconfig:"JETWORKER_CONCURRENCY" flag:"concurrency" default:"10" group:"Routes" desc:"handlers at once per route"`
	AckWait     time.Duration `envconfig:"JETWORKER_ACK_WAIT" flag:"ack-wait" default:"30s" group:"Routes" desc:"redelivery wait without an ack or a heartbeat"`
	MaxDeliver  int           `envconfig:"JETWORKER_MAX_DELIVER" flag:"max-deliver" default:"5" group:"Routes" desc:"deliveries before a task is dead-lettered"`
}

// WebhookEnv adds a webhook route.
type WebhookEnv struct {
	WebhookURL     string `envconfig:"JETWORKER_WEBHOOK_URL" flag:"webhook-url" meta:"URL" secret:"webhook" group:"Webhook route" desc:"add a webhook route posting to this URL"`
	WebhookSecret  string `envconfig:"JETWORKER_WEBHOOK_SECRET" flag:"webhook-secret" meta:"SECRET" secret:"true" group:"Webhook route" desc:"HMAC secret of the webhook route"`
	WebhookSubject string `envconfig:"JETWORKER_WEBHOOK_SUBJECT" flag:"webhook-subject" default:"tasks.webhook.>" meta:"FILTER" group:"Webhook route" desc:"subjects of the webhook route"`
}

// EmailEnv adds an email route.
type EmailEnv struct {
	SMTPHost     string `envconfig:"JETWORKER_SMTP_HOST" flag:"smtp-host" meta:"HOST" group:"Email route" desc:"add an email route sending through this SMTP server"`
	SMTPPort     int    `envconfig:"JETWORKER_SMTP_PORT" flag:"smtp-port" default:"587" group:"Email route" desc:"SMTP port"`
	SMTPUser     string `envconfig:"JETWORKER_SMTP_USER" flag:"smtp-user" meta:"NAME" group:"Email route" desc:"SMTP user"`
	SMTPPassword string `envconfig:"JETWORKER_SMTP_PASSWORD" flag:"smtp-password" meta:"SECRET" secret:"true" group:"Email route" desc:"SMTP password"`
	SMTPFrom     string `envconfig:"JETWORKER_SMTP_FROM" flag:"smtp-from" meta:"ADDRESS" group:"Email route" desc:"default From address"`
	SMTPTLS      string `envconfig:"JETWORKER_SMTP_TLS" flag:"smtp-tls" default:"starttls" meta:"MODE" group:"Email route" desc:"starttls, opportunistic, tls or none"`
	EmailSubject string `envconfig:"JETWORKER_EMAIL_SUBJECT" flag:"email-subject" default:"tasks.email.>" meta:"FILTER" group:"Email route" desc:"subjects of the email route"`
}

// TaskBucketEnv names the bucket of tracked tasks' records.
type TaskBucketEnv struct {
	TaskBucket string `envconfig:"JETWORKER_TASK_BUCKET" flag:"task-bucket" default:"jetworker_status" meta:"NAME" group:"Tracking" desc:"KV bucket of tracked tasks' records, cancel requests and uniqueness locks"`
}

// TaskStoreEnv is the task store: its bucket and how long it keeps a
// record. Provision, the worker and the commands that may be the first
// to use the bucket create it with these.
type TaskStoreEnv struct {
	TaskBucketEnv
	TaskTTL time.Duration `envconfig:"JETWORKER_TASK_TTL" flag:"task-ttl" default:"24h" group:"Tracking" desc:"how long a task record is kept after its last update (the bucket's max age, at least 1m)"`
}

// taskConfig maps the settings to the task package's Config.
func (e TaskStoreEnv) taskConfig(r ReplicasEnv, log *slog.Logger) task.Config {
	return task.Config{Bucket: e.TaskBucket, TTL: e.TaskTTL, Replicas: r.Replicas, Logger: log}
}

// HTTPEnv is the dashboard of a long-running command.
type HTTPEnv struct {
	HTTPAddr           string        `envconfig:"JETWORKER_HTTP_ADDR" flag:"http-addr" meta:"ADDR" group:"HTTP" desc:"serve the dashboard, health and metrics on this address (empty: off)"`
	HTTPUser           string        `envconfig:"JETWORKER_HTTP_USER" flag:"http-user" meta:"NAME" group:"HTTP" desc:"basic-auth user protecting the dashboard"`
	HTTPPassword       string        `envconfig:"JETWORKER_HTTP_PASSWORD" flag:"http-password" meta:"SECRET" secret:"true" group:"HTTP" desc:"basic-auth password"`
	HTTPToken          string        `envconfig:"JETWORKER_HTTP_TOKEN" flag:"http-token" meta:"SECRET" secret:"true" group:"HTTP" desc:"bearer token protecting the dashboard"`
	HTTPSessionKey     string        `envconfig:"JETWORKER_HTTP_SESSION_KEY" flag:"http-session-key" meta:"SECRET" secret:"true" group:"HTTP" desc:"key signing the dashboard's login cookies, at least 32 bytes (openssl rand -hex 32); give every replica the same key, so sessions work across replicas and survive restarts (unset: a random key, sessions end with the process)"`
	HTTPSessionTTL     time.Duration `envconfig:"JETWORKER_HTTP_SESSION_TTL" flag:"http-session-ttl" default:"12h" group:"HTTP" desc:"how long a browser stays signed in after the login page (at least 1m)"`
	HTTPReadOnly       bool          `envconfig:"JETWORKER_HTTP_READ_ONLY" flag:"http-read-only" group:"HTTP" desc:"refuse replay, delete, pause, resume, trigger, edit, cancel and run-now"`
	HTTPUnsafeNoAuth   bool          `envconfig:"JETWORKER_HTTP_UNSAFE_NO_AUTH" flag:"http-unsafe-no-auth" group:"HTTP" desc:"allow a dashboard without credentials beyond loopback (read-only; anyone who reaches it reads every task)"`
	HTTPSampleInterval time.Duration `envconfig:"JETWORKER_HTTP_SAMPLE_INTERVAL" flag:"http-sample-interval" default:"5s" advanced:"true" group:"HTTP" desc:"how often the dashboard samples streams and workers for its charts (a negative duration like -1s: no charts)"`
	HTTPSampleWindow   time.Duration `envconfig:"JETWORKER_HTTP_SAMPLE_WINDOW" flag:"http-sample-window" default:"1h" advanced:"true" group:"HTTP" desc:"how much history the charts keep in memory (at most 100000 samples)"`
}

// MetricsAddrEnv is the address of the metrics listener.
type MetricsAddrEnv struct {
	MetricsAddr string `envconfig:"JETWORKER_METRICS_ADDR" flag:"metrics-addr" meta:"ADDR" group:"Metrics" desc:"address of the metrics listener: /metrics, /healthz and /readyz only, no dashboard (empty: off)"`
}

// MetricsEnv is the metrics listener of a long-running command.
type MetricsEnv struct {
	MetricsAddrEnv
	MetricsToken string `envconfig:"JETWORKER_METRICS_TOKEN" flag:"metrics-token" meta:"SECRET" secret:"true" group:"Metrics" desc:"bearer token protecting /metrics on the metrics address (probes stay open)"`
}

// dashboardConfig maps the HTTP and metrics settings to the dashboard's
// Config, for the given streams. It returns false when neither address is
// set: no HTTP at all. With only the metrics address, the dashboard
// itself is off.
func dashboardConfig(h HTTPEnv, m MetricsEnv, taskStream, dlqStream string, log *slog.Logger) (dashboard.Config, bool) {
	if h.HTTPAddr == "" && m.MetricsAddr == "" {
		return dashboard.Config{}, false
	}
	cfg := dashboard.Config{
		Addr:              h.HTTPAddr,
		DisableUI:         h.HTTPAddr == "",
		MetricsAddr:       m.MetricsAddr,
		MetricsToken:      m.MetricsToken,
		BasicAuthUser:     h.HTTPUser,
		BasicAuthPassword: h.HTTPPassword,
		BearerToken:       h.HTTPToken,
		SessionTTL:        h.HTTPSessionTTL,
		ReadOnly:          h.HTTPReadOnly,
		UnsafeNoAuth:      h.HTTPUnsafeNoAuth,
		SampleInterval:    h.HTTPSampleInterval,
		SampleWindow:      h.HTTPSampleWindow,
		Logger:            log,
	}
	if h.HTTPSessionKey != "" {
		cfg.SessionKey = []byte(h.HTTPSessionKey)
	}
	if cfg.SampleInterval < 0 {
		cfg.SampleInterval = -1 // the dashboard's "no charts"
	}
	if taskStream != "" {
		cfg.TaskStreams = []string{taskStream}
	}
	cfg.DeadLetterStream = dlqStream
	return cfg, true
}

// streamsConfig maps the stream settings to the streams package's Config.
func streamsConfig(s StreamEnv, d DLQStreamEnv, r ReplicasEnv) streams.Config {
	return streams.Config{Tasks: streams.Tasks{Name: s.Stream}, DeadLetters: streams.DeadLetters{Name: d.DLQStream}, Replicas: r.Replicas}
}
