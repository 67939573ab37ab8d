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
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
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
}

// Change is one update seen by [Store.Watch].
type Change struct {
	// Name is the entry's name.
	Name string
	// Entry is the new entry; the zero Entry when Deleted.
	Entry Entry
	// Deleted is true when the entry was deleted.
	Deleted bool
	// Revision is the KV revision of the change.
	Revision uint64
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
// [ErrInvalidEntry] without any I/O.
func (s *Store) Put(ctx context.Context, e Entry) (uint64, error) {
	if err := e.Validate(); err != nil {
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
	_, rev, err := s.get(ctx, name)
	if err != nil {
		return err
	}
	kv, state, err := s.buckets(ctx, false)
	if err != nil {
		return err
	}
	if err := kv.Delete(ctx, name, jetstream.LastRevision(rev)); err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return s.Delete(ctx, name) // edited meanwhile: delete the new version
		}
		return fmt.Errorf("delete entry %q: %w", name, err)
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
// no such entry. Trigger does not move the entry's slots or state.
func (s *Store) Trigger(ctx context.Context, name string) (string, error) {
	e, _, err := s.get(ctx, name)
	if err != nil {
		return "", err
	}
	id := name + "@trigger-" + uuid.NewString()
	msg := fireMsg(e, id, s.cfg.NowFunc())
	if _, err := s.js.PublishMsg(ctx, msg); err != nil {
		return "", fmt.Errorf("trigger %q: publish to %q: %w", name, e.Subject, err)
	}
	return id, nil
}

// LastFired returns the last slot a scheduler recorded as fired for the
// entry called name, or the zero time if none is recorded.
func (s *Store) LastFired(ctx context.Context, name string) (time.Time, error) {
	_, state, err := s.buckets(ctx, false)
	if err != nil {
		return time.Time{}, err
	}
	kve, err := state.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("get state of %q: %w", name, err)
	}
	var st State
	if err := json.Unmarshal(kve.Value(), &st); err != nil {
		return time.Time{}, fmt.Errorf("decode state of %q: %w", name, err)
	}
	return st.LastSlot, nil
}

// Watch streams changes to the entries: first one [Change] per existing
// entry, then every put and delete as they happen. The channel is closed
// when ctx ends. The caller must keep reading until then.
func (s *Store) Watch(ctx context.Context) (<-chan Change, error) {
	kv, _, err := s.buckets(ctx, false)
	if err != nil {
		return nil, err
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch entries: %w", err)
	}
	out := make(chan Change)
	go func() {
		defer close(out)
		defer w.Stop()
		for {
			var kve jetstream.KeyValueEntry
			select {
			case kve = <-w.Updates():
			case <-ctx.Done():
				return
			}
			if kve == nil {
				continue
			}
			c, ok := toChange(kve)
			if !ok {
				continue
			}
			select {
			case out <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// toChange converts a KV entry; undecodable values are reported as
// deletions, since a scheduler can not fire them.
func toChange(kve jetstream.KeyValueEntry) (Change, bool) {
	c := Change{Name: kve.Key(), Revision: kve.Revision()}
	if kve.Operation() != jetstream.KeyValuePut {
		c.Deleted = true
		return c, true
	}
	e, err := decodeEntry(kve.Value())
	if err != nil {
		c.Deleted = true
		return c, true
	}
	c.Entry = e
	return c, true
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

// fireMsg builds the message of one fire of e.
func fireMsg(e Entry, id string, slot time.Time) *nats.Msg {
	msg := nats.NewMsg(e.Subject)
	msg.Data = e.Payload
	for k, vs := range e.Header {
		for _, v := range vs {
			msg.Header.Add(k, v)
		}
	}
	msg.Header.Set(jetworker.HeaderMsgID, id)
	msg.Header.Set(jetworker.HeaderSchedule, e.Name)
	msg.Header.Set(jetworker.HeaderFireTime, slot.UTC().Format(time.RFC3339))
	return msg
}
