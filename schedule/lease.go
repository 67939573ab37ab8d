package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/internal/logkey"
)

// lease is one scheduler's view of the leader lease. Only the campaign
// goroutine writes it; the fire workers read trusted() before every fire.
type lease struct {
	kv     jetstream.KeyValue
	key    string
	value  []byte
	ttl    time.Duration
	margin time.Duration
	now    func() time.Time

	mu           sync.Mutex
	rev          uint64    // revision of our last successful write; 0 when we hold nothing
	trustedUntil time.Time // zero when not leading
	term         uint64    // incremented on every gain
}

// trusted reports whether this instance may fire now: it leads and its
// trust window, measured from the start of its last successful
// Create/Update, has not run out.
func (l *lease) trusted() bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.trustedUntil.IsZero() && now.Before(l.trustedUntil)
}

// leading returns whether the lease is believed held and the current term.
func (l *lease) leading() (bool, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.trustedUntil.IsZero(), l.term
}

// attempt makes one campaign step: renew with Update on our revision, or
// acquire with Create. It returns whether we lead afterwards, and the
// error of a failed write that was not a plain conflict.
func (l *lease) attempt(ctx context.Context) (bool, error) {
	l.mu.Lock()
	rev := l.rev
	l.mu.Unlock()

	start := l.now() // the window starts before the write, never after
	ctx, cancel := context.WithTimeout(ctx, l.ttl/3)
	defer cancel()
	var (
		newRev uint64
		err    error
	)
	if rev != 0 {
		newRev, err = l.kv.Update(ctx, l.key, l.value, rev)
	} else {
		newRev, err = l.kv.Create(ctx, l.key, l.value)
	}

	after := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err == nil:
		if l.trustedUntil.IsZero() {
			l.term++
		}
		l.rev = newRev
		l.trustedUntil = start.Add(l.ttl - l.margin)
		return true, nil
	case rev != 0 && errors.Is(err, jetstream.ErrKeyRevisionMismatch),
		rev == 0 && errors.Is(err, jetstream.ErrKeyExists):
		// Someone else holds the lease (or took it over after ours
		// expired). Stop at once.
		l.rev = 0
		l.trustedUntil = time.Time{}
		return false, nil
	default:
		// Unknown outcome: keep our revision (a later Update proves
		// whether we still hold it) and trust only the remaining window.
		if !l.trustedUntil.IsZero() && !after.Before(l.trustedUntil) {
			l.trustedUntil = time.Time{}
		}
		op := "create"
		if rev != 0 {
			op = "renew"
		}
		return !l.trustedUntil.IsZero(), fmt.Errorf("%s lease %q: %w", op, l.key, err)
	}
}

// expire drops trust once the window has run out without a renewal; it
// reports whether that changed anything.
func (l *lease) expire() bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.trustedUntil.IsZero() && !now.Before(l.trustedUntil) {
		l.trustedUntil = time.Time{}
		return true
	}
	return false
}

// release deletes the lease key if we still hold it (revision-checked),
// so a follower can take over at once.
func (l *lease) release(ctx context.Context, log *slog.Logger) {
	l.mu.Lock()
	rev := l.rev
	l.rev = 0
	l.trustedUntil = time.Time{}
	l.mu.Unlock()
	if rev == 0 {
		return
	}
	err := l.kv.Delete(ctx, l.key, jetstream.LastRevision(rev))
	switch {
	case err == nil:
		log.LogAttrs(ctx, slog.LevelInfo, "lease released")
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		// Someone else holds it now; nothing to release.
	default:
		log.LogAttrs(ctx, slog.LevelWarn, "release lease; it expires after its TTL",
			slog.Any(logkey.Err, err))
	}
}

// Leader returns the instance ID of the scheduler holding the lease key
// (DefaultLeaseKey when key is empty), or "" when no scheduler leads. The
// answer comes from a KV read, which may be stale: use it for display,
// never to decide leadership.
func Leader(ctx context.Context, js jetstream.JetStream, key string) (string, error) {
	if key == "" {
		key = DefaultLeaseKey
	}
	kv, err := js.KeyValue(ctx, LeaseBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("schedule: lease bucket %q: %w", LeaseBucket, err)
	}
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("schedule: read lease %q: %w", key, err)
	}
	return string(e.Value()), nil
}
