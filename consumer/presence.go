package consumer

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/jetworker/jetworker/internal/logkey"
)

// WorkerInfo is a running consumer's presence record, kept in the
// jetworker_workers KV bucket and refreshed every PresenceTTL/3.
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
}

// ProvisionPresence creates or updates the presence bucket (bucket ""
// means jetworker_workers) with ttl as its MaxAge, so records of dead
// workers expire. Consumers create it when it is missing; provision it
// with an admin identity when workers run with consume-only permissions.
func ProvisionPresence(ctx context.Context, js jetstream.JetStream, bucket string, ttl time.Duration, replicas int) error {
	cfg := presenceConfig(bucket, ttl, replicas)
	if _, err := js.CreateOrUpdateKeyValue(ctx, cfg); err != nil {
		return fmt.Errorf("presence bucket %q: %w", cfg.Bucket, err)
	}
	return nil
}

func presenceConfig(bucket string, ttl time.Duration, replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      cmp.Or(bucket, DefaultPresenceBucket),
		Description: "jetworker worker presence",
		TTL:         cmp.Or(ttl, DefaultPresenceTTL),
		History:     1,
		Replicas:    cmp.Or(replicas, 1),
	}
}

// presenceBucket opens the presence bucket, creating it only when it is
// missing, so workers need no create permission once it is provisioned.
func presenceBucket(ctx context.Context, js jetstream.JetStream, bucket string, ttl time.Duration) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, presenceConfig(bucket, ttl, 1))
		if errors.Is(err, jetstream.ErrBucketExists) { // another worker won the race
			kv, err = js.KeyValue(ctx, bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("presence bucket %q: %w", bucket, err)
	}
	return kv, nil
}

// keepPresence writes this worker's record until ctx ends, then deletes it.
// Failures are logged, never fatal: presence is for tools, not for work.
func (c *Consumer) keepPresence(ctx context.Context) {
	kv, err := presenceBucket(ctx, c.js, c.cfg.PresenceBucket, c.cfg.PresenceTTL)
	if err != nil {
		c.log.WarnContext(ctx, "worker presence disabled", slog.Any(logkey.Err, err))
		return
	}
	host, _ := os.Hostname()
	info := WorkerInfo{
		ID:          keyToken(host) + "-" + fmt.Sprint(os.Getpid()) + "-" + nuid.Next()[16:],
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
		info.UpdatedAt = c.cfg.NowFunc().UTC()
		b, _ := json.Marshal(info)
		if _, err := kv.Put(ctx, key, b); err != nil && ctx.Err() == nil {
			c.log.WarnContext(ctx, "refresh worker presence", slog.Any(logkey.Err, err))
		}
	}
	put()
	t := time.NewTicker(c.cfg.PresenceTTL / 3)
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

// ListWorkers returns the presence records of live workers in bucket
// ("" means jetworker_workers). A missing bucket means no workers.
func ListWorkers(ctx context.Context, js jetstream.JetStream, bucket string) ([]WorkerInfo, error) {
	if bucket == "" {
		bucket = DefaultPresenceBucket
	}
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
	var out []WorkerInfo
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
