package task

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/jetworker/jetworker/internal/logkey"
	"github.com/jetworker/jetworker/internal/subject"
)

// Defaults for [Config].
const (
	// DefaultBucket is the KV bucket task records live in.
	DefaultBucket = "jetworker_status"
	// DefaultTTL is how long a record is kept after its last update.
	DefaultTTL = 24 * time.Hour
	// DefaultMaxResult is the largest result a task may set, in bytes.
	DefaultMaxResult = 64 << 10
	// DefaultHistoryLimit is how many transitions a record keeps.
	DefaultHistoryLimit = 50
	// DefaultRequestTimeout bounds each request to the server.
	DefaultRequestTimeout = 5 * time.Second
	// DefaultRetryFor is how long a worker retries a record write that
	// fails.
	DefaultRetryFor = 2 * time.Minute
)

// Config tunes a [Store]. The zero value is ready to use.
type Config struct {
	// Bucket is the KV bucket of task records, cancel requests and
	// uniqueness locks. Defaults to "jetworker_status".
	Bucket string
	// TTL is how long a record (and a cancel request) is kept after its
	// last update; it is the bucket's MaxAge. At least 1m. Defaults to
	// 24h.
	TTL time.Duration
	// Replicas is the number of copies when the bucket is created.
	// Defaults to 1; use 3 in a cluster.
	Replicas int
	// MaxBytes bounds the bucket's size. When it is full, record writes
	// fail: tracked publishes still store their tasks (the publisher's
	// record write fails, and is counted in [Store.Lost]), tasks run as
	// usual, and workers retry their record writes for RetryFor, then
	// count them lost; uniqueness locks cannot be taken, so unique
	// publishes fail. Defaults to -1, no limit.
	MaxBytes int64
	// MaxResult is the largest result a task may set, in bytes, below the
	// server's max payload. Defaults to 64 KiB.
	MaxResult int
	// HistoryLimit is how many transitions a record keeps, the latest.
	// Defaults to 50.
	HistoryLimit int
	// RequestTimeout bounds each request to the server. Defaults to 5s.
	RequestTimeout time.Duration
	// RetryFor is how long a worker keeps retrying a record write that
	// fails (the bucket unavailable or full), with a backoff from 100ms
	// to 5s, before it gives the write up and counts it in [Store.Lost]:
	// a terminal state written late still ends Wait and Follow. A
	// stopping worker tries once more, then gives up. Defaults to 2m.
	RetryFor time.Duration
	// NowFunc is the clock of the records' times. Defaults to time.Now.
	NowFunc func() time.Time
	// Logger receives the store's warnings (lost writes). Defaults to
	// slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	c.Bucket = cmp.Or(c.Bucket, DefaultBucket)
	c.TTL = cmp.Or(c.TTL, DefaultTTL)
	c.Replicas = cmp.Or(c.Replicas, 1)
	c.MaxBytes = cmp.Or(c.MaxBytes, -1)
	c.MaxResult = cmp.Or(c.MaxResult, DefaultMaxResult)
	c.HistoryLimit = cmp.Or(c.HistoryLimit, DefaultHistoryLimit)
	c.RequestTimeout = cmp.Or(c.RequestTimeout, DefaultRequestTimeout)
	c.RetryFor = cmp.Or(c.RetryFor, DefaultRetryFor)
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every problem with c, joined, as [New] would.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if err := subject.ValidateName("task: Bucket", c.Bucket); err != nil {
		errs = append(errs, err)
	}
	if c.TTL < time.Minute {
		errs = append(errs, fmt.Errorf("task: TTL must be >= 1m, got %s", c.TTL))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("task: Replicas must be 1 to 5, got %d", c.Replicas))
	}
	if c.MaxResult < 1 || c.MaxResult > 512<<10 {
		errs = append(errs, fmt.Errorf("task: MaxResult must be 1 byte to 512 KiB, got %d", c.MaxResult))
	}
	if c.RetryFor < 0 {
		errs = append(errs, fmt.Errorf("task: RetryFor must be >= 0, got %s", c.RetryFor))
	}
	if c.HistoryLimit < 1 {
		errs = append(errs, fmt.Errorf("task: HistoryLimit must be > 0, got %d", c.HistoryLimit))
	}
	return errors.Join(errs...)
}

// Store reads and writes task records. It is safe for concurrent use.
// Create it with [New]; the bucket is created by [Store.Provision] or on
// first use.
type Store struct {
	js  jetstream.JetStream
	cfg Config
	log *slog.Logger

	mu sync.Mutex
	kv jetstream.KeyValue

	lost atomic.Uint64

	asyncOnce sync.Once
	async     *async
	asyncErr  error
}

// New returns a Store on js. It validates cfg and does no network I/O.
func New(js jetstream.JetStream, cfg Config) (*Store, error) {
	if js == nil {
		return nil, errors.New("task: nil JetStream")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Store{js: js, cfg: cfg, log: cfg.Logger.With(slog.String(logkey.Component, "task"))}, nil
}

// Config returns the effective configuration, defaults filled in.
func (s *Store) Config() Config { return s.cfg }

// Provision creates the bucket, or updates it to the Config. It is
// idempotent.
func (s *Store) Provision(ctx context.Context) error {
	_, err := s.bucket(ctx, true)
	return err
}

func (s *Store) kvConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      s.cfg.Bucket,
		Description: "jetworker task records, cancel requests and uniqueness locks",
		History:     1,
		TTL:         s.cfg.TTL,
		MaxBytes:    s.cfg.MaxBytes,
		Replicas:    s.cfg.Replicas,
		Storage:     jetstream.FileStorage,
		// Uniqueness locks expire with a TTL of their own.
		LimitMarkerTTL: time.Second,
	}
}

// bucket binds to the bucket, creating it when missing (or, with force,
// creating or updating it).
func (s *Store) bucket(ctx context.Context, force bool) (jetstream.KeyValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kv != nil && !force {
		return s.kv, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	var kv jetstream.KeyValue
	var err error
	if !force {
		kv, err = s.js.KeyValue(ctx, s.cfg.Bucket)
	}
	if force || errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = s.js.CreateOrUpdateKeyValue(ctx, s.kvConfig())
	}
	if err != nil {
		return nil, fmt.Errorf("task: bucket %q: %w", s.cfg.Bucket, err)
	}
	s.kv = kv
	return kv, nil
}

// key maps a task ID to one KV key token: the ID itself when it is made of
// letters, digits, '-' and '_' (and does not start with "_b"), otherwise
// "_b" and its unpadded base64url encoding.
func key(id string) string {
	if plainKey(id) {
		return id
	}
	return "_b" + base64.RawURLEncoding.EncodeToString([]byte(id))
}

// unkey maps a key token back to its task ID; it reports false for a
// token key would not make.
func unkey(k string) (string, bool) {
	b64, ok := strings.CutPrefix(k, "_b")
	if !ok {
		return k, plainKey(k)
	}
	id, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil || key(string(id)) != k {
		return "", false
	}
	return string(id), true
}

// plainKey reports whether id is a KV key token as it is: not empty, made
// of ASCII letters, digits, '-' and '_', and not starting with "_b".
func plainKey(id string) bool {
	if id == "" || strings.HasPrefix(id, "_b") {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// Key prefixes in the bucket.
const (
	recordPrefix = "t."
	cancelPrefix = "c."
	lockPrefix   = "u."
)

// Get returns the record of the task with ID id, or an error wrapping
// [ErrNotFound].
func (s *Store) Get(ctx context.Context, id string) (Info, error) {
	info, _, err := s.get(ctx, id)
	return info, err
}

func (s *Store) get(ctx context.Context, id string) (Info, uint64, error) {
	if id == "" {
		return Info{}, 0, fmt.Errorf("%w: empty ID", ErrNotFound)
	}
	kv, err := s.bucket(ctx, false)
	if err != nil {
		return Info{}, 0, err
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	e, err := kv.Get(rctx, recordPrefix+key(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return Info{}, 0, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return Info{}, 0, fmt.Errorf("task: get %q: %w", id, err)
	}
	var info Info
	if err := json.Unmarshal(e.Value(), &info); err != nil {
		return Info{}, 0, fmt.Errorf("task: decode %q: %w", id, err)
	}
	return info, e.Revision(), nil
}

// readResult is one record [Store.readMany] read.
type readResult struct {
	info Info
	rev  uint64
	err  error // wraps ErrNotFound for a record that does not exist
}

// readMany reads the records of ids, several with one request (a batched
// direct get of the last message of each record's subject); a server
// without batched gets is asked for each.
func (s *Store) readMany(ctx context.Context, ids []string) map[string]readResult {
	out := make(map[string]readResult, len(ids))
	one := func() map[string]readResult {
		for _, id := range ids {
			info, rev, err := s.get(ctx, id)
			out[id] = readResult{info, rev, err}
		}
		return out
	}
	if len(ids) == 1 {
		return one()
	}
	if _, err := s.bucket(ctx, false); err != nil {
		for _, id := range ids {
			out[id] = readResult{err: err}
		}
		return out
	}
	prefix := "$KV." + s.cfg.Bucket + "." + recordPrefix
	subjects := make([]string, len(ids))
	bySubject := make(map[string]string, len(ids))
	for i, id := range ids {
		subjects[i] = prefix + key(id)
		bySubject[subjects[i]] = id
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	msgs, err := jetstreamext.GetLastMsgsFor(rctx, s.js, "KV_"+s.cfg.Bucket, subjects, jetstreamext.GetLastMsgsBatchSize(len(subjects)))
	if err == nil {
		for m, merr := range msgs {
			if merr != nil {
				err = merr
				break
			}
			id, ok := bySubject[m.Subject]
			if !ok {
				continue
			}
			if m.Header.Get("KV-Operation") != "" || m.Header.Get(jetstream.MarkerReasonHeader) != "" {
				continue // deleted, purged or expired
			}
			var info Info
			if derr := json.Unmarshal(m.Data, &info); derr != nil {
				out[id] = readResult{err: fmt.Errorf("task: decode %q: %w", id, derr)}
				continue
			}
			out[id] = readResult{info: info, rev: m.Sequence}
		}
	}
	switch {
	case errors.Is(err, jetstreamext.ErrBatchUnsupported):
		clear(out)
		return one()
	case err != nil && !errors.Is(err, jetstreamext.ErrNoMessages):
		for _, id := range ids {
			if _, ok := out[id]; !ok {
				out[id] = readResult{err: fmt.Errorf("task: read %q: %w", id, err)}
			}
		}
		return out
	}
	for _, id := range ids {
		if _, ok := out[id]; !ok {
			out[id] = readResult{err: fmt.Errorf("%w: %q", ErrNotFound, id)}
		}
	}
	return out
}

// record applies ev to the record of id with revision-checked writes,
// creating it when missing and create is set. It returns the record as
// stored (or as it was, when ev changed nothing).
func (s *Store) record(ctx context.Context, id string, create bool, seed Info, ev event) (Info, error) {
	info, _, err := s.write(ctx, id, writeOpts{create: create, seed: seed}, []event{ev})
	return info, err
}

// writeOpts say how [Store.write] finds the record.
type writeOpts struct {
	// create makes a missing record from seed; createFirst tries that
	// before reading (for a record that is most likely missing).
	create, createFirst bool
	seed                Info
	// hint is the record as this process last wrote it: the first write
	// is tried on top of it, without a read.
	hint *known
}

// write folds events, in order, into the record of id with
// revision-checked writes, and returns the record as stored (or as it
// was, when they changed nothing) and its revision.
func (s *Store) write(ctx context.Context, id string, o writeOpts, events []event) (Info, uint64, error) {
	kv, err := s.bucket(ctx, false)
	if err != nil {
		return Info{}, 0, err
	}
	k := recordPrefix + key(id)
	var (
		cur  Info
		rev  uint64
		have bool
	)
	if o.hint != nil {
		cur, rev, have = o.hint.info, o.hint.rev, true
	}
	missing := o.createFirst && o.create && !have
	for range 8 {
		if !have && !missing {
			cur, rev, err = s.get(ctx, id)
			missing = errors.Is(err, ErrNotFound)
			if err != nil && !missing {
				return Info{}, 0, err
			}
		}
		if missing {
			if !o.create {
				return Info{}, 0, err
			}
			seed := o.seed
			seed.ID = id
			if seed.Created.IsZero() {
				seed.Created = events[0].at
			}
			next, _ := fold(seed, events, s.cfg.HistoryLimit)
			data, err := json.Marshal(next)
			if err != nil {
				return Info{}, 0, fmt.Errorf("task: encode %q: %w", id, err)
			}
			rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
			r, err := kv.Create(rctx, k, data)
			cancel()
			if errors.Is(err, jetstream.ErrKeyExists) {
				missing = false // written meanwhile: apply on top of it
				continue
			}
			if err != nil {
				return Info{}, 0, fmt.Errorf("task: create %q: %w", id, err)
			}
			return next, r, nil
		}
		next, changed := fold(cur, events, s.cfg.HistoryLimit)
		if !changed {
			return cur, rev, nil
		}
		data, err := json.Marshal(next)
		if err != nil {
			return Info{}, 0, fmt.Errorf("task: encode %q: %w", id, err)
		}
		rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		r, err := kv.Update(rctx, k, data, rev)
		cancel()
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound) {
			have = false // somebody wrote in between, or the hint was stale: read again
			continue
		}
		if err != nil {
			return Info{}, 0, fmt.Errorf("task: update %q: %w", id, err)
		}
		return next, r, nil
	}
	return Info{}, 0, fmt.Errorf("task: update %q: too many concurrent writes", id)
}

// Wait blocks until the task with ID id is in a terminal state, or ctx
// ends, and returns its record. It watches the record; it does not poll.
// It returns an error wrapping [ErrNotFound] if there is no such task.
func (s *Store) Wait(ctx context.Context, id string) (Info, error) {
	var last Info
	for info, err := range s.Follow(ctx, id) {
		if err != nil {
			return last, err
		}
		last = info
	}
	if !last.State.Terminal() {
		if err := ctx.Err(); err != nil {
			return last, fmt.Errorf("task: wait for %q: %w", id, err)
		}
	}
	return last, nil
}

// Follow yields the record of the task with ID id as it is now, then each
// time it changes, and stops after a terminal state, when ctx ends (with no
// error) or when the watch fails (yielding the error). A task that does not
// exist yields an error wrapping [ErrNotFound]. Nothing is left running
// when the loop ends.
func (s *Store) Follow(ctx context.Context, id string) func(yield func(Info, error) bool) {
	return func(yield func(Info, error) bool) {
		// Read first, then watch from the next revision: a watch started
		// while the record is being replaced may report it missing.
		info, rev, err := s.get(ctx, id)
		if err != nil {
			yield(Info{}, err)
			return
		}
		if !yield(info, nil) || info.State.Terminal() {
			return
		}
		kv, err := s.bucket(ctx, false)
		if err != nil {
			yield(Info{}, err)
			return
		}
		w, err := kv.Watch(ctx, recordPrefix+key(id), jetstream.ResumeFromRevision(rev+1))
		if err != nil {
			yield(Info{}, fmt.Errorf("task: watch %q: %w", id, err))
			return
		}
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					if ctx.Err() == nil {
						yield(Info{}, fmt.Errorf("task: watch of %q ended", id))
					}
					return
				}
				if e == nil { // caught up: nothing newer yet
					continue
				}
				if e.Operation() != jetstream.KeyValuePut {
					yield(Info{}, fmt.Errorf("%w: %q (expired or deleted)", ErrNotFound, id))
					return
				}
				var info Info
				if err := json.Unmarshal(e.Value(), &info); err != nil {
					yield(Info{}, fmt.Errorf("task: decode %q: %w", id, err))
					return
				}
				if !yield(info, nil) || info.State.Terminal() {
					return
				}
			}
		}
	}
}
