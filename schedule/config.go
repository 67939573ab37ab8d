package schedule

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/jetworker/jetworker/internal/subject"
)

// Defaults for [Config].
const (
	// LeaseBucket holds the leader leases; its TTL (MaxAge) is the lease TTL.
	LeaseBucket = "jetworker_leases"
	// DefaultLeaseKey is the lease key schedulers campaign for.
	DefaultLeaseKey = "scheduler"
	// DefaultLeaseTTL is how long a lease outlives its last renewal.
	DefaultLeaseTTL = 10 * time.Second
	// DefaultFireTimeout bounds one publish or state write.
	DefaultFireTimeout = 5 * time.Second
	// DefaultMaxConcurrentFires bounds the fires in flight at once.
	DefaultMaxConcurrentFires = 1024
)

// retryDelay is how long a fire that failed for a passing reason waits
// before it is tried again; maxRetryDelay caps the doubling delay of a fire
// that keeps failing because no stream captures its subject.
const (
	retryDelay    = time.Second
	maxRetryDelay = time.Minute
)

// maxWait caps the fire timer so a clock that jumps is noticed.
const maxWait = time.Second

// Config tunes a [Scheduler]. The zero value is ready to use.
type Config struct {
	// LeaseKey is the key in [LeaseBucket] the schedulers of one
	// deployment campaign for. Defaults to "scheduler".
	LeaseKey string
	// LeaseTTL is the lease lifetime: the leader renews every LeaseTTL/3,
	// and a crashed leader is replaced within about LeaseTTL. It is also
	// the lease bucket's MaxAge, so all schedulers sharing the bucket
	// should agree on it. At least 1s. Defaults to 10s.
	LeaseTTL time.Duration
	// LeaseMargin is subtracted from LeaseTTL to get the trust window: a
	// leader fires only until its last successful lease write's start +
	// LeaseTTL - LeaseMargin. It must be at least 0 and at most
	// LeaseTTL/2. Defaults to LeaseTTL/5.
	LeaseMargin time.Duration
	// Replicas is the number of copies of the buckets the scheduler
	// creates. Defaults to 1.
	Replicas int
	// FireTimeout bounds each publish and state write. Defaults to 5s.
	FireTimeout time.Duration
	// MaxConcurrentFires bounds the publishes awaiting their PubAck at
	// once when many slots are due together; more are sent as acks come
	// back. Defaults to 1024.
	MaxConcurrentFires int
	// InstanceID identifies this scheduler in the lease value and logs.
	// Defaults to "<hostname>-<pid>-<8 random hex digits>".
	InstanceID string
	// NowFunc is the clock for slots and the trust window. It should
	// return times with a monotonic reading, as time.Now does. Defaults to
	// time.Now.
	NowFunc func() time.Time
	// Hooks receive leadership changes, fires and lease trouble, for
	// metrics and health checks. Defaults to none.
	Hooks Hooks
	// Logger receives the scheduler's log lines. Defaults to
	// slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	c.LeaseKey = cmp.Or(c.LeaseKey, DefaultLeaseKey)
	c.LeaseTTL = cmp.Or(c.LeaseTTL, DefaultLeaseTTL)
	c.LeaseMargin = cmp.Or(c.LeaseMargin, c.LeaseTTL/5)
	c.Replicas = cmp.Or(c.Replicas, DefaultReplicas)
	c.FireTimeout = cmp.Or(c.FireTimeout, DefaultFireTimeout)
	c.MaxConcurrentFires = cmp.Or(c.MaxConcurrentFires, DefaultMaxConcurrentFires)
	if c.InstanceID == "" {
		host, _ := os.Hostname()
		c.InstanceID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), uuid.NewString()[:8])
	}
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
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
	if err := subject.ValidateName("schedule: LeaseKey", c.LeaseKey); err != nil {
		errs = append(errs, err)
	}
	if c.LeaseTTL < time.Second {
		errs = append(errs, fmt.Errorf("schedule: LeaseTTL must be >= 1s, got %s", c.LeaseTTL))
	}
	if c.LeaseMargin < 0 || c.LeaseMargin > c.LeaseTTL/2 {
		errs = append(errs, fmt.Errorf("schedule: LeaseMargin must be between 0 and LeaseTTL/2 (%s), got %s", c.LeaseTTL/2, c.LeaseMargin))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("schedule: Replicas must be 1 to 5, got %d", c.Replicas))
	}
	if c.FireTimeout <= 0 {
		errs = append(errs, fmt.Errorf("schedule: FireTimeout must be > 0, got %s", c.FireTimeout))
	}
	if c.MaxConcurrentFires < 1 {
		errs = append(errs, fmt.Errorf("schedule: MaxConcurrentFires must be > 0, got %d", c.MaxConcurrentFires))
	}
	return errors.Join(errs...)
}
