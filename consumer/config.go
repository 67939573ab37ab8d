package consumer

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jetworker/jetworker/internal/backoff"
	"github.com/jetworker/jetworker/internal/subject"
	"github.com/jetworker/jetworker/streams"
	tasks "github.com/jetworker/jetworker/task"
)

// Defaults for [Config].
const (
	DefaultStream           = streams.DefaultTaskStream
	DefaultDurable          = "jetworker"
	DefaultFilterSubject    = streams.DefaultTaskSubjects
	DefaultConcurrency      = 10
	DefaultMaxAckPending    = 1000
	DefaultPullExpiry       = 5 * time.Second
	DefaultPullMaxMessages  = 500
	DefaultAckWait          = 30 * time.Second
	DefaultMaxDeliver       = 5
	DefaultHandlerTimeout   = 5 * time.Minute
	DefaultShutdownGrace    = 10 * time.Second
	DefaultHardStopTimeout  = 5 * time.Second
	DefaultBackoffBase      = time.Second
	DefaultBackoffMax       = 5 * time.Minute
	DefaultBackoffJitter    = 0.2
	DefaultDeadLetterStream = streams.DefaultDeadLetterStream
	DefaultDeadLetterPrefix = streams.DefaultDeadLetterPrefix
	DefaultPresenceBucket   = "jetworker_workers"
	DefaultPresenceTTL      = 30 * time.Second
)

// BackoffFunc returns how long to wait before redelivering a task whose
// delivery number attempt (1-based) failed with err.
type BackoffFunc func(attempt int, err error) time.Duration

// Config tunes a [Consumer]. The zero value of every field means its
// default.
type Config struct {
	// Stream is the stream to consume. Defaults to "TASKS".
	Stream string
	// Durable is the durable consumer's name; workers with the same
	// Durable share the work. Defaults to "jetworker".
	Durable string
	// FilterSubjects are the subjects to consume. Defaults to "tasks.>".
	FilterSubjects []string

	// Concurrency is the number of handlers running at once. Defaults
	// to 10.
	Concurrency int
	// MaxAckPending bounds the messages delivered and not yet acknowledged
	// across every worker on the durable (a server-side setting, shared by
	// the whole fleet: size it for the sum of the workers' Concurrency).
	// Must be >= Concurrency. Defaults to 1000 (the server's default), or
	// Concurrency if that is larger. A worker never holds more than
	// Concurrency + PullMaxMessages of them itself.
	MaxAckPending int
	// PullMaxMessages bounds how many messages the worker requests ahead
	// of free handlers. The depth adapts within [1, PullMaxMessages] to the
	// measured handler duration, so that a buffered message starts within
	// AckWait/4: deep for fast handlers, shallow for slow ones. Defaults
	// to 500 (nats.go's default).
	PullMaxMessages int
	// PullExpiry is how long one pull request waits on the server. A
	// request that went unanswered (seen with a tight MaxAckPending) costs
	// at most this long a pause. Defaults to 5s.
	PullExpiry time.Duration
	// AckWait is how long the server waits for an acknowledgement (or a
	// heartbeat) before it redelivers a message. Defaults to 30s.
	AckWait time.Duration
	// HeartbeatInterval is how often a running handler's message is
	// marked in progress. Must be < AckWait. Defaults to AckWait/3.
	HeartbeatInterval time.Duration
	// MaxDeliver is how many times a message is delivered before it is
	// dead-lettered. Defaults to 5; it must be finite.
	MaxDeliver int
	// Backoff gives the redelivery delay after a failed attempt. Defaults
	// to exponential from 1s, doubling, capped at 5m, each delay spread
	// evenly by up to 20% either way (so 1s means 0.8s to 1.2s).
	Backoff BackoffFunc
	// HandlerTimeout bounds one handler call; the handler's context is
	// cancelled at the deadline and the attempt counts as failed. The
	// deadline is rounded up by at most a tenth of it (at most 100ms), so
	// tasks starting together share one timer. Defaults to 5m; -1
	// disables it.
	HandlerTimeout time.Duration
	// ShutdownGrace is how long in-flight handlers may run after Run's
	// context ends before their contexts are cancelled. Defaults to 10s.
	ShutdownGrace time.Duration
	// HardStopTimeout is how long Run waits, after cancelling handler
	// contexts, for handlers that ignore cancellation. Their messages are
	// Nak'ed at once either way. Defaults to 5s.
	HardStopTimeout time.Duration
	// DoubleAck waits for the server to confirm each ack (AckSync).
	// Defaults to false.
	DoubleAck bool

	// DeadLetterStream is the stream dead letters are stored in; it must
	// capture DeadLetterPrefix.>. Defaults to "DLQ".
	DeadLetterStream string
	// DeadLetterPrefix is the first token of dead-letter subjects: a dead
	// task is stored on <prefix>.<stream>.<durable>. Defaults to "dlq".
	DeadLetterPrefix string

	// Presence is where the worker keeps its presence record (a KV bucket
	// with a TTL, read by [Presence.List], the dashboard and "jetworker
	// status"). Defaults to the jetworker_workers bucket with a 30s TTL.
	Presence Presence
	// DisablePresence turns the presence record off. Defaults to false.
	DisablePresence bool

	// Tasks is the task store the consumer records tracked tasks in,
	// releases uniqueness locks in and watches for cancel requests (the
	// task package). Defaults to a store on the default bucket, made when
	// the first tracked or unique task arrives; set it (or TrackAll) to
	// watch cancel requests from the start, for untracked tasks too.
	Tasks *tasks.Store
	// TrackAll records every task this consumer runs, not only those
	// published with tracking. Defaults to false.
	TrackAll bool

	// Hooks receive events for metrics and tracing. Defaults to none.
	Hooks Hooks
	// Logger receives the consumer's logs. Defaults to slog.Default().
	Logger *slog.Logger
	// NowFunc is the clock for presence and dead-letter times. Defaults
	// to time.Now.
	NowFunc func() time.Time
}

func (c Config) withDefaults() Config {
	c.Stream = cmp.Or(c.Stream, DefaultStream)
	c.Durable = cmp.Or(c.Durable, DefaultDurable)
	if len(c.FilterSubjects) == 0 {
		c.FilterSubjects = []string{DefaultFilterSubject}
	}
	c.Concurrency = cmp.Or(c.Concurrency, DefaultConcurrency)
	c.MaxAckPending = cmp.Or(c.MaxAckPending, max(DefaultMaxAckPending, c.Concurrency))
	c.PullMaxMessages = cmp.Or(c.PullMaxMessages, DefaultPullMaxMessages)
	c.PullExpiry = cmp.Or(c.PullExpiry, DefaultPullExpiry)
	c.AckWait = cmp.Or(c.AckWait, DefaultAckWait)
	c.HeartbeatInterval = cmp.Or(c.HeartbeatInterval, c.AckWait/3)
	c.MaxDeliver = cmp.Or(c.MaxDeliver, DefaultMaxDeliver)
	if c.Backoff == nil {
		e := backoff.Exponential{Base: DefaultBackoffBase, Max: DefaultBackoffMax, Jitter: DefaultBackoffJitter}
		c.Backoff = func(attempt int, _ error) time.Duration { return e.Delay(attempt) }
	}
	c.HandlerTimeout = cmp.Or(c.HandlerTimeout, DefaultHandlerTimeout)
	c.ShutdownGrace = cmp.Or(c.ShutdownGrace, DefaultShutdownGrace)
	c.HardStopTimeout = cmp.Or(c.HardStopTimeout, DefaultHardStopTimeout)
	c.DeadLetterStream = cmp.Or(c.DeadLetterStream, DefaultDeadLetterStream)
	c.DeadLetterPrefix = cmp.Or(c.DeadLetterPrefix, DefaultDeadLetterPrefix)
	c.Presence = c.Presence.withDefaults()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	return c
}

// Validate reports every problem with c, joined, as [New] would: each
// message names the field. Zero fields are checked with their defaults.
// It does no I/O.
func (c Config) Validate() error { return c.withDefaults().validate() }

func (c Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("consumer: "+format, args...)) }
	for _, name := range []struct{ field, v string }{
		{"Durable", c.Durable}, {"Stream", c.Stream}, {"DeadLetterStream", c.DeadLetterStream}, {"DeadLetterPrefix", c.DeadLetterPrefix},
	} {
		if err := subject.ValidateName(name.field, name.v); err != nil {
			bad("%v", err)
		}
	}
	for i, s := range c.FilterSubjects {
		if err := subject.ValidateFilter(s); err != nil {
			bad("FilterSubjects[%d]: %v", i, err)
		}
		for _, o := range c.FilterSubjects[:i] {
			if subject.Overlap(s, o) {
				bad("FilterSubjects %q and %q overlap; the server refuses overlapping filters", o, s)
			}
		}
	}
	if c.Concurrency < 1 {
		bad("Concurrency must be > 0, got %d", c.Concurrency)
	}
	if c.MaxAckPending < c.Concurrency {
		bad("MaxAckPending (%d) must be >= Concurrency (%d)", c.MaxAckPending, c.Concurrency)
	}
	if c.PullMaxMessages < 1 {
		bad("PullMaxMessages must be > 0, got %d", c.PullMaxMessages)
	}
	if c.PullExpiry < time.Second {
		bad("PullExpiry must be >= 1s, got %s", c.PullExpiry)
	}
	if c.AckWait < time.Millisecond {
		bad("AckWait must be >= 1ms, got %s", c.AckWait)
	}
	if c.HeartbeatInterval <= 0 || c.HeartbeatInterval >= c.AckWait {
		bad("HeartbeatInterval (%s) must be > 0 and < AckWait (%s)", c.HeartbeatInterval, c.AckWait)
	}
	if c.MaxDeliver < 1 {
		bad("MaxDeliver must be > 0 (finite), got %d", c.MaxDeliver)
	}
	if c.HandlerTimeout < -1 || c.HandlerTimeout == 0 {
		bad("HandlerTimeout must be > 0 or -1, got %s", c.HandlerTimeout)
	}
	if c.ShutdownGrace < 0 {
		bad("ShutdownGrace must be >= 0, got %s", c.ShutdownGrace)
	}
	if c.HardStopTimeout < 0 {
		bad("HardStopTimeout must be >= 0, got %s", c.HardStopTimeout)
	}
	if !c.DisablePresence {
		if err := c.Presence.validate(); err != nil {
			bad("%v", err)
		}
	}
	return errors.Join(errs...)
}
