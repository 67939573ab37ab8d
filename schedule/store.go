package schedule

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/streams"
)

// Bucket names and defaults for [StoreConfig].
const (
	// SchedulesBucket holds the entries as JSON, key = entry name.
	SchedulesBucket = "jetworker_schedules"
	// StateBucket holds the last fired slot of each entry, key = entry
	// name, value = [State] as JSON.
	StateBucket = "jetworker_schedule_state"
	// DefaultReplicas is the number of copies of each bucket.
	DefaultReplicas = 1
)

// StoreConfig tunes a [Store]. The zero value is ready to use.
type StoreConfig struct {
	// Replicas is the number of copies of the schedules and state buckets
	// when the store creates them; use 3 in a cluster. Defaults to 1.
	Replicas int
	// NowFunc is the clock for [Store.Trigger]'s fire time. Defaults to
	// time.Now.
	NowFunc func() time.Time
}

func (c StoreConfig) withDefaults() StoreConfig {
	c.Replicas = cmp.Or(c.Replicas, DefaultReplicas)
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	return c
}

func (c StoreConfig) validate() error {
	if c.Replicas < 1 || c.Replicas > 5 {
		return fmt.Errorf("schedule: StoreConfig.Replicas must be 1 to 5, got %d", c.Replicas)
	}
	return nil
}

// State is what the scheduler records per entry in [StateBucket].
type State struct {
	// LastSlot is the last slot fired (or, after a skip, passed over) by
	// a leader; catch-up starts after it.
	LastSlot time.Time `json:"last_slot"`
	// Error is why the latest fire of the next slot failed, "" once a fire
	// succeeds (the first success after a recorded failure is recorded at
	// once): for example that no stream captures the entry's subject.
	// The scheduler keeps retrying (every second, or with a delay doubling
	// up to a minute while no stream captures the subject). Tools show it
	// with the entry ([Store.States] reads it for all entries at once).
	Error string `json:"error,omitempty"`
	// ErrorAt is when Error was recorded.
	ErrorAt time.Time `json:"error_at,omitzero"`
	// Failures counts the failed fires of that slot, at the time Error
	// was recorded (it is refreshed every tenth failure).
	Failures int `json:"failures,omitempty"`
}

// Store reads and edits schedule entries in the schedules bucket. It is
// safe for concurrent use. Edits take effect in a running [Scheduler]
// within a second, through its watch on the bucket.
type Store struct {
	js  jetstream.JetStream
	cfg StoreConfig

	mu      sync.Mutex
	entries jetstream.KeyValue
	state   jetstream.KeyValue
}

// NewStore returns a Store on js. It does no network I/O; the buckets are
// created by [Store.Provision] or on first use.
func NewStore(js jetstream.JetStream, cfg StoreConfig) (*Store, error) {
	if js == nil {
		return nil, errors.New("schedule: nil JetStream")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Store{js: js, cfg: cfg}, nil
}

// Provision creates the schedules and state buckets, or updates them when
// they exist. It is idempotent. Other methods call it on first use.
func (s *Store) Provision(ctx context.Context) error {
	_, _, err := s.buckets(ctx, true)
	return err
}

// buckets returns the two buckets, binding to (or, if they are missing or
// force is set, creating) them once.
func (s *Store) buckets(ctx context.Context, force bool) (jetstream.KeyValue, jetstream.KeyValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries != nil && !force {
		return s.entries, s.state, nil
	}
	entries, err := ensureBucket(ctx, s.js, jetstream.KeyValueConfig{
		Bucket:      SchedulesBucket,
		Description: "jetworker schedule entries",
		History:     1,
		Replicas:    s.cfg.Replicas,
		Storage:     jetstream.FileStorage,
	}, force)
	if err != nil {
		return nil, nil, err
	}
	state, err := ensureBucket(ctx, s.js, jetstream.KeyValueConfig{
		Bucket:      StateBucket,
		Description: "jetworker schedule state: last fired slot per entry",
		History:     1,
		Replicas:    s.cfg.Replicas,
		Storage:     jetstream.FileStorage,
	}, force)
	if err != nil {
		return nil, nil, err
	}
	s.entries, s.state = entries, state
	return entries, state, nil
}

// ensureBucket binds to a bucket, creating it when missing; with force it
// creates or updates it to cfg.
func ensureBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig, force bool) (jetstream.KeyValue, error) {
	if !force {
		kv, err := js.KeyValue(ctx, cfg.Bucket)
		if err == nil {
			return kv, nil
		}
		if !errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, fmt.Errorf("bind bucket %q: %w", cfg.Bucket, err)
		}
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("provision bucket %q: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// Put creates e or replaces the entry of the same name, and returns the
// new revision. It validates e first and returns errors wrapping
// [ErrInvalidEntry] without any I/O; then it checks that a task stream
// captures e.Subject, and returns an error wrapping [ErrNoStream] when none
// does (or only a dead-letter stream does), so an entry that could never
// fire is refused when saved rather than retried forever.
func (s *Store) Put(ctx context.Context, e Entry) (uint64, error) {
	if err := e.Validate(); err != nil {
		return 0, err
	}
	if err := s.checkStream(ctx, e.Subject); err != nil {
		return 0, err
	}
	data, err := json.Marshal(e)
	if err != nil {
		return 0, fmt.Errorf("encode entry %q: %w", e.Name, err)
	}
	kv, _, err := s.buckets(ctx, false)
	if err != nil {
		return 0, err
	}
	rev, err := kv.Put(ctx, e.Name, data)
	if err != nil {
		return 0, fmt.Errorf("put entry %q: %w", e.Name, err)
	}
	return rev, nil
}

// Get returns the entry called name, or an error wrapping [ErrNotFound].
func (s *Store) Get(ctx context.Context, name string) (Entry, error) {
	e, _, err := s.get(ctx, name)
	return e, err
}

func (s *Store) get(ctx context.Context, name string) (Entry, uint64, error) {
	if err := validateName(name); err != nil {
		return Entry{}, 0, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	kv, _, err := s.buckets(ctx, false)
	if err != nil {
		return Entry{}, 0, err
	}
	kve, err := kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Entry{}, 0, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if err != nil {
		return Entry{}, 0, fmt.Errorf("get entry %q: %w", name, err)
	}
	e, err := decodeEntry(kve.Value())
	if err != nil {
		return Entry{}, 0, fmt.Errorf("entry %q: %w", name, err)
	}
	return e, kve.Revision(), nil
}

// List returns every entry, sorted by name.
func (s *Store) List(ctx context.Context) ([]Entry, error) {
	kv, _, err := s.buckets(ctx, false)
	if err != nil {
		return nil, err
	}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list entries: %w", err)
	}
	defer w.Stop()
	var out []Entry
	for {
		select {
		case kve := <-w.Updates():
			if kve == nil {
				sortEntries(out)
				return out, nil
			}
			e, err := decodeEntry(kve.Value())
			if err != nil {
				return nil, fmt.Errorf("entry %q: %w", kve.Key(), err)
			}
			out = append(out, e)
		case <-ctx.Done():
			return nil, fmt.Errorf("list entries: %w", ctx.Err())
		}
	}
}

// Delete removes the entry called name; it fires no more. It returns an
// error wrapping [ErrNotFound] if there is no such entry.
func (s *Store) Delete(ctx context.Context, name string) error {
	kv, state, err := s.buckets(ctx, false)
	if err != nil {
		return err
	}
	for {
		_, rev, err := s.get(ctx, name)
		if err != nil {
			return err
		}
		err = kv.Delete(ctx, name, jetstream.LastRevision(rev))
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // edited meanwhile: delete the new version
		}
		if err != nil {
			return fmt.Errorf("delete entry %q: %w", name, err)
		}
		break
	}
	if err := state.Purge(ctx, name); err != nil {
		return fmt.Errorf("delete state of %q: %w", name, err)
	}
	return nil
}

// Pause stops the entry called name from firing until [Store.Resume].
// Slots passing while paused are never fired. It returns an error wrapping
// [ErrNotFound] if there is no such entry.
func (s *Store) Pause(ctx context.Context, name string) error {
	return s.setPaused(ctx, name, true)
}

// Resume undoes [Store.Pause]; the entry fires from its next slot on.
func (s *Store) Resume(ctx context.Context, name string) error {
	return s.setPaused(ctx, name, false)
}

func (s *Store) setPaused(ctx context.Context, name string, paused bool) error {
	for {
		e, rev, err := s.get(ctx, name)
		if err != nil {
			return err
		}
		if e.Paused == paused {
			return nil
		}
		e.Paused = paused
		data, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode entry %q: %w", name, err)
		}
		kv, _, err := s.buckets(ctx, false)
		if err != nil {
			return err
		}
		_, err = kv.Update(ctx, name, data, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // edited meanwhile: apply to the new version
		}
		if err != nil {
			return fmt.Errorf("update entry %q: %w", name, err)
		}
		return nil
	}
}

// Trigger fires the entry called name once now, outside its slots, even
// when it is paused. It publishes directly (no scheduler needs to run)
// with message ID "<name>@trigger-<uuid>", the entry's payload and
// headers, Jetworker-Schedule and a Jetworker-Fire-Time of now, and
// returns that ID. It returns an error wrapping [ErrNotFound] if there is
// no such entry, [ErrInvalidEntry] if the stored entry is invalid (written
// to the bucket by something other than [Store.Put]), and [ErrNoStream]
// if no task stream captures its subject. Trigger does not move the
// entry's slots or state.
func (s *Store) Trigger(ctx context.Context, name string) (string, error) {
	e, _, err := s.get(ctx, name)
	if err != nil {
		return "", err
	}
	if err := e.Validate(); err != nil {
		return "", fmt.Errorf("trigger %q: %w", name, err)
	}
	if err := s.checkStream(ctx, e.Subject); err != nil {
		return "", fmt.Errorf("trigger %q: %w", name, err)
	}
	id := name + "@trigger-" + uuid.NewString()
	msg := fireMsg(e, fireHeader(e), id, []string{s.cfg.NowFunc().UTC().Format(time.RFC3339)})
	if _, err := s.js.PublishMsg(ctx, msg); err != nil {
		return "", fmt.Errorf("trigger %q: publish to %q: %w", name, e.Subject, err)
	}
	return id, nil
}

// checkStream returns an error wrapping [ErrNoStream] unless a task stream
// captures subject.
func (s *Store) checkStream(ctx context.Context, subject string) error {
	name, err := s.js.StreamNameBySubject(ctx, subject)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("%w: %q", ErrNoStream, subject)
	}
	if err != nil {
		return fmt.Errorf("find the stream of %q: %w", subject, err)
	}
	st, err := s.js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("stream %q of %q: %w", name, subject, err)
	}
	if streams.Kind(st.CachedInfo().Config) == streams.KindDeadLetters {
		return fmt.Errorf("%w: %q is captured by the dead-letter stream %q, not a task stream", ErrNoStream, subject, name)
	}
	return nil
}

// LastFired returns the last slot a scheduler recorded as fired for the
// entry called name, or the zero time if none is recorded.
func (s *Store) LastFired(ctx context.Context, name string) (time.Time, error) {
	st, err := s.State(ctx, name)
	return st.LastSlot, err
}

// State returns what the schedulers recorded for the entry called name:
// its last fired slot and the error of a fire that keeps failing. It
// returns the zero State if nothing is recorded. For many entries use
// [Store.States], one read for all of them.
func (s *Store) State(ctx context.Context, name string) (State, error) {
	_, state, err := s.buckets(ctx, false)
	if err != nil {
		return State{}, err
	}
	kve, err := state.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("get state of %q: %w", name, err)
	}
	var st State
	if err := json.Unmarshal(kve.Value(), &st); err != nil {
		return State{}, fmt.Errorf("decode state of %q: %w", name, err)
	}
	return st, nil
}

// States returns what the schedulers recorded for every entry, by entry
// name: the last fired slot and, for an entry whose fires keep failing,
// the error, when it was recorded and how many fires failed (see
// [State]). It reads the whole state bucket in one pass (one watch,
// however many entries there are), so a list of schedules costs two
// requests with [Store.List], not one per entry. An entry with nothing
// recorded, or with a record that cannot be decoded, is absent from the
// map: its State is the zero State.
func (s *Store) States(ctx context.Context) (map[string]State, error) {
	_, state, err := s.buckets(ctx, false)
	if err != nil {
		return nil, err
	}
	w, err := state.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list states: %w", err)
	}
	defer func() { _ = w.Stop() }()
	out := map[string]State{}
	for {
		select {
		case kve := <-w.Updates():
			if kve == nil {
				return out, nil
			}
			var st State
			if json.Unmarshal(kve.Value(), &st) == nil {
				out[kve.Key()] = st
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("list states: %w", ctx.Err())
		}
	}
}

func decodeEntry(data []byte) (Entry, error) {
	var e Entry
	if err := json.Unmarshal(data, &e); err != nil {
		return Entry{}, fmt.Errorf("decode entry: %w", err)
	}
	return e, nil
}

func sortEntries(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
}
