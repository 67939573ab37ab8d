package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/internal/pgtest"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/outbox"
)

// bundle is one test's world: a database of its own on the package's
// shared PostgreSQL server, an embedded nats-server with a TASKS stream
// (tasks.>), and the migrated outbox.
type bundle struct {
	pg   *pgtest.Server
	url  string
	pool *pgxpool.Pool
	nats *embedded.Server
	js   jetstream.JetStream
	o    *outbox.Outbox
}

// runCases starts one PostgreSQL server and runs every case as a parallel
// subtest with a fresh bundle on it.
func runCases(t *testing.T, opts pgtest.Options, cases map[string]func(t *testing.T, b *bundle)) {
	t.Helper()
	pg := pgtest.Start(t, opts)
	for name, fn := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, setup(t, pg))
		})
	}
}

func setup(t *testing.T, pg *pgtest.Server) *bundle {
	t.Helper()
	b := &bundle{pg: pg, url: pg.NewDatabase(t)}
	pool, err := pgxpool.New(t.Context(), b.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	b.pool = pool
	if err := outbox.Migrate(t.Context(), pool, outbox.Config{}); err != nil {
		t.Fatal(err)
	}
	b.nats = embeddedtest.Start(t, embedded.Config{})
	_, b.js = embeddedtest.Connect(t, b.nats)
	if _, err := b.js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "TASKS", Subjects: []string{"tasks.>"}, Duplicates: 2 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	if b.o, err = outbox.New(outbox.Config{}); err != nil {
		t.Fatal(err)
	}
	return b
}

// running is a relay started by a test.
type running struct {
	r    *outbox.Relay
	stop context.CancelFunc
	done chan error
}

// relay starts a relay on b and waits until it is ready; cleanup stops it
// and fails the test if Run returned an error.
func (b *bundle) relay(t *testing.T, cfg outbox.RelayConfig) *running {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testutil.Logger(t, slog.LevelInfo)
	}
	r, err := outbox.NewRelay(b.pool, b.js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return start(t, r)
}

func start(t *testing.T, r *outbox.Relay) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rr := &running{r: r, stop: cancel, done: make(chan error, 1)}
	go func() { rr.done <- r.Run(ctx) }()
	select {
	case <-r.Ready():
	case err := <-rr.done:
		t.Fatalf("relay stopped before ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("relay not ready within 20s")
	}
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			if err := rr.halt(); err != nil {
				t.Errorf("relay Run: %v", err)
			}
		})
	})
	return rr
}

// halt stops the relay and returns Run's result.
func (rr *running) halt() error {
	rr.stop()
	select {
	case err := <-rr.done:
		rr.done <- err // for a second halt
		return err
	case <-time.After(30 * time.Second):
		return errors.New("relay did not stop within 30s")
	}
}

// inTx runs fn in a transaction and commits it.
func (b *bundle) inTx(t *testing.T, fn func(tx pgx.Tx) error) {
	t.Helper()
	if err := pgx.BeginFunc(t.Context(), b.pool, fn); err != nil {
		t.Fatal(err)
	}
}

// enqueue enqueues one row in its own transaction and returns its ID.
func (b *bundle) enqueue(t *testing.T, subject string, data string, opts *outbox.EnqueueOpts) string {
	t.Helper()
	var id string
	b.inTx(t, func(tx pgx.Tx) error {
		var err error
		id, err = b.o.Enqueue(t.Context(), tx, subject, []byte(data), opts)
		return err
	})
	return id
}

// msgs waits until stream holds at least n messages and returns them all.
func (b *bundle) msgs(t *testing.T, stream string, n int) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := t.Context()
	s, err := b.js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	var info *jetstream.StreamInfo
	testutil.Eventually(t, 30*time.Second, func() error {
		if info, err = s.Info(ctx); err != nil {
			return err
		}
		if int(info.State.Msgs) < n {
			return fmt.Errorf("%s holds %d messages, want %d", stream, info.State.Msgs, n)
		}
		return nil
	})
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// stats returns the outbox's stats.
func (b *bundle) stats(t *testing.T) outbox.Stats {
	t.Helper()
	s, err := b.o.Stats(t.Context(), b.pool)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// drained waits until the outbox has no pending rows.
func (b *bundle) drained(t *testing.T) {
	t.Helper()
	testutil.Eventually(t, 60*time.Second, func() error {
		if s := b.stats(t); s.Pending != 0 {
			return fmt.Errorf("%d rows pending", s.Pending)
		}
		return nil
	})
}
