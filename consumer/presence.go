package consumer

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/internal/logkey"
	"github.com/jetworker/jetworker/internal/subject"
)

// WorkerInfo is a running consumer's presence record, kept in the
// presence bucket ([Presence]) and refreshed every TTL/3 (at most 2s):
// InFlight counts the handlers running now, not messages delivered and
// waiting.
type WorkerInfo struct {
	ID          string    `json:"id"`
	Host        string    `json:"host"`
	PID         int       `json:"pid"`
	Stream      string    `json:"stream"`
	Consumer    string    `json:"consumer"`
	Concurrency int       `json:"concurrency"`
	InFlight    int64     `json:"in_flight"`
	Processed   uint64    `json:"processed"`
	Failed      uint64    `json:"failed"`
	StartedAt   time.Time `json:"started_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Wait counts this worker's tasks by enqueue-to-start time
	// ([jetworker.Task.QueueWait]: first deliveries of original tasks
	// only), in [WaitBuckets] buckets: Wait[i] those that waited at most
	// [WaitBounds]()[i] seconds and more than the bound before, the last
	// entry those that waited longer than the last bound. The counts only
	// grow while the worker runs; the dashboard merges the workers' and
	// takes percentiles of what grew between two reads. Empty in records
	// of workers older than this field.
	Wait []uint64 `json:"wait,omitempty"`
}

// Presence locates the worker presence bucket: a KV bucket whose TTL
// (MaxAge) expires the records of workers that died without removing them.
// The zero value is the jetworker_workers bucket with a 30s TTL and one
// replica.
type Presence struct {
	// Bucket is the KV bucket. Defaults to "jetworker_workers".
	Bucket string
	// TTL is how long a record lives without a refresh; workers refresh
	// theirs every TTL/3 (at most every 2s). At least 1s. Defaults to
	// 30s.
	TTL time.Duration
	// Replicas is the number of copies when the bucket is created. Defaults
	// to 1; use 3 in a cluster.
	Replicas int
}

func (p Presence) withDefaults() Presence {
	p.Bucket = cmp.Or(p.Bucket, DefaultPresenceBucket)
	p.TTL = cmp.Or(p.TTL, DefaultPresenceTTL)
	p.Replicas = cmp.Or(p.Replicas, 1)
	return p
}

func (p Presence) validate() error {
	var errs []error
	if err := subject.ValidateName("presence: Bucket", p.Bucket); err != nil {
		errs = append(errs, err)
	}
	if p.TTL < time.Second {
		errs = append(errs, fmt.Errorf("presence: TTL must be >= 1s, got %s", p.TTL))
	}
	if p.Replicas < 1 || p.Replicas > 5 {
		errs = append(errs, fmt.Errorf("presence: Replicas must be 1 to 5, got %d", p.Replicas))
	}
	return errors.Join(errs...)
}

func (p Presence) kvConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      p.Bucket,
		Description: "jetworker worker presence",
		TTL:         p.TTL,
		History:     1,
		Replicas:    p.Replicas,
	}
}

// refresh is how often a worker rewrites its record: often enough that
// the dashboard's "running" figure is fresh.
func (p Presence) refresh() time.Duration { return min(p.TTL/3, 2*time.Second) }

// Provision creates or updates the presence bucket. Consumers create it
// when it is missing; provision it with an admin identity when workers run
// with consume-only permissions. It is idempotent.
func (p Presence) Provision(ctx context.Context, js jetstream.JetStream) error {
	p = p.withDefaults()
	if err := p.validate(); err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	if _, err := js.CreateOrUpdateKeyValue(ctx, p.kvConfig()); err != nil {
		return fmt.Errorf("presence bucket %q: %w", p.Bucket, err)
	}
	return nil
}

// open opens the presence bucket, creating it only when it is missing, so
// workers need no create permission once it is provisioned.
func (p Presence) open(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, p.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, p.kvConfig())
		if errors.Is(err, jetstream.ErrBucketExists) { // another worker won the race
			kv, err = js.KeyValue(ctx, p.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("presence bucket %q: %w", p.Bucket, err)
	}
	return kv, nil
}

// keepPresence writes this worker's record until ctx ends, then deletes it.
// Failures are logged, never fatal: presence is for tools, not for work.
func (c *Consumer) keepPresence(ctx context.Context) {
	kv, err := c.cfg.Presence.open(ctx, c.js)
	if err != nil {
		c.log.WarnContext(ctx, "worker presence disabled", slog.Any(logkey.Err, err))
		return
	}
	host, _ := os.Hostname()
	info := WorkerInfo{
		ID:          c.workerID,
		Host:        host,
		PID:         os.Getpid(),
		Stream:      c.cfg.Stream,
		Consumer:    c.cfg.Durable,
		Concurrency: c.cfg.Concurrency,
		StartedAt:   c.cfg.NowFunc().UTC(),
	}
	key := c.cfg.Stream + "." + c.cfg.Durable + "." + info.ID
	put := func() {
		info.InFlight = c.inFlight.Load()
		info.Processed = c.processed.Load()
		info.Failed = c.failed.Load()
		info.Wait = c.waits.counts(info.Wait)
		info.UpdatedAt = c.cfg.NowFunc().UTC()
		b, _ := json.Marshal(info)
		if _, err := kv.Put(ctx, key, b); err != nil && ctx.Err() == nil {
			c.log.WarnContext(ctx, "refresh worker presence", slog.Any(logkey.Err, err))
		}
	}
	put()
	t := time.NewTicker(c.cfg.Presence.refresh())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = kv.Delete(dctx, key)
			cancel()
			return
		case <-t.C:
			put()
		}
	}
}

// List returns the presence records of live workers, sorted by ID. A
// missing bucket means no workers.
func (p Presence) List(ctx context.Context, js jetstream.JetStream) ([]WorkerInfo, error) {
	bucket := p.withDefaults().Bucket
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("presence bucket %q: %w", bucket, err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	out := []WorkerInfo{}
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get worker %q: %w", k, err)
		}
		var w WorkerInfo
		if err := json.Unmarshal(e.Value(), &w); err != nil {
			return nil, fmt.Errorf("decode worker %q: %w", k, err)
		}
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b WorkerInfo) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// keyToken keeps the characters a KV key token may hold.
func keyToken(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}
