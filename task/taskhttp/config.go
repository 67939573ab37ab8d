package taskhttp

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/jetworker/jetworker/internal/subject"
	"github.com/jetworker/jetworker/publisher"
)

// Defaults for [Config].
const (
	// DefaultPrefix is the path the handler serves under.
	DefaultPrefix = "/tasks"
	// DefaultMaxBody is the largest POST body accepted, in bytes.
	DefaultMaxBody = 1 << 20
	// DefaultHeartbeat is the interval of the comments that keep an idle
	// event stream open through proxies.
	DefaultHeartbeat = 15 * time.Second
	// DefaultRetryAfter is the polling interval suggested with
	// Retry-After on a 202 and on the status of an unfinished task.
	DefaultRetryAfter = time.Second
	// DefaultRequestTimeout bounds the NATS calls of one request.
	DefaultRequestTimeout = 10 * time.Second
	// MaxIDLength is the longest task ID the handler looks up or
	// publishes, in bytes; a longer one in a path is answered 404.
	MaxIDLength = 256
)

// Config tunes a [Handler]. Subject is required; every other zero field
// means its default.
type Config struct {
	// Subject is the task subject a POST publishes to. Required.
	Subject string
	// Prefix is the path the handler serves, without a trailing slash:
	// POST {Prefix}, GET and DELETE {Prefix}/{id}, GET
	// {Prefix}/{id}/events. Defaults to "/tasks".
	Prefix string
	// MaxBody is the largest POST body accepted, in bytes; a larger one is
	// answered 413. Defaults to 1 MiB.
	MaxBody int64
	// DecodeFunc turns a POST request and its body (read in full, at most
	// MaxBody bytes) into the task's payload: decode, validate, reshape.
	// Its error is answered 400 Bad Request with the error's text, so it
	// should say what is wrong with the request. It is called
	// concurrently. Defaults to the body as it is, which must be one JSON
	// value (an object, an array, a string...).
	DecodeFunc func(r *http.Request, body []byte) (payload []byte, err error)
	// IDFunc gives the task a POST enqueues its ID, from the request and
	// the decoded payload; its error is answered 400 with its text. An ID
	// names one task: a POST whose ID already has a record is answered
	// 303 See Other with that task's Location and publishes nothing, so
	// IDs derived from the request (an Idempotency-Key header, a hash of
	// the payload) make POSTs idempotent. IDs longer than [MaxIDLength]
	// are refused. It is called concurrently. Defaults to
	// publisher.NewID, a fresh UUIDv7 per POST.
	IDFunc func(r *http.Request, payload []byte) (string, error)
	// Publish holds the options every POST publishes with (Unique,
	// UniqueFor, MaxAttempts, Timeout, Delay, TTL, ExpectStream, Header).
	// Track is always on, and ID comes from IDFunc: setting
	// Publish.ID, or Publish.At (one fixed moment for every task), is an
	// error. Defaults to none.
	Publish publisher.PublishOpts
	// Heartbeat is how often an event stream sends a comment line while
	// nothing changes, so proxies keep it open. A client must take each
	// write within twice this long, or its stream ends. Defaults to 15s.
	Heartbeat time.Duration
	// RetryAfter is the polling interval suggested in a Retry-After header
	// on 202 Accepted and on the status of an unfinished task, rounded up
	// to whole seconds. Defaults to 1s; -1 sends none.
	RetryAfter time.Duration
	// RequestTimeout bounds the NATS calls one request makes. A POST's
	// publish runs to completion (or this timeout) even when the client
	// goes away, so no task is left half enqueued. Defaults to 10s.
	RequestTimeout time.Duration
	// Logger receives the handler's errors (5xx answers). Defaults to
	// slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	c.Prefix = strings.TrimSuffix(c.Prefix, "/")
	c.MaxBody = cmp.Or(c.MaxBody, DefaultMaxBody)
	if c.DecodeFunc == nil {
		c.DecodeFunc = decodeJSON
	}
	if c.IDFunc == nil {
		c.IDFunc = func(*http.Request, []byte) (string, error) { return publisher.NewID(), nil }
	}
	c.Heartbeat = cmp.Or(c.Heartbeat, DefaultHeartbeat)
	c.RetryAfter = cmp.Or(c.RetryAfter, DefaultRetryAfter)
	c.RequestTimeout = cmp.Or(c.RequestTimeout, DefaultRequestTimeout)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every problem with c, joined, as [New] would; zero
// fields are checked with their defaults. It does no I/O.
func (c Config) Validate() error { return c.withDefaults().validate() }

func (c Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("taskhttp: "+format, args...)) }
	if c.Subject == "" {
		bad("Subject is required")
	} else if err := subject.Validate(c.Subject); err != nil {
		bad("Subject: %v", err)
	}
	if !strings.HasPrefix(c.Prefix, "/") || len(c.Prefix) < 2 || path.Clean(c.Prefix) != c.Prefix || strings.ContainsAny(c.Prefix, "{}?# \t\r\n") {
		bad("Prefix %q: want a path like /reports (a leading slash, no trailing one, no wildcards)", c.Prefix)
	}
	if c.MaxBody < 1 {
		bad("MaxBody must be > 0, got %d", c.MaxBody)
	}
	if c.Publish.ID != "" {
		bad("Publish.ID is set: every task would have the same ID; use IDFunc")
	}
	if !c.Publish.At.IsZero() {
		bad("Publish.At is set: every task would run at one moment; use Publish.Delay")
	}
	if c.Heartbeat < 100*time.Millisecond {
		bad("Heartbeat must be >= 100ms, got %s", c.Heartbeat)
	}
	if c.RetryAfter < -1 || c.RetryAfter == 0 {
		bad("RetryAfter must be > 0 or -1, got %s", c.RetryAfter)
	}
	if c.RequestTimeout <= 0 {
		bad("RequestTimeout must be > 0, got %s", c.RequestTimeout)
	}
	return errors.Join(errs...)
}
