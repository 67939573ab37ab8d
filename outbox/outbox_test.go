package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/internal/pgtest"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/outbox"
)

func TestOutbox(t *testing.T) {
	t.Parallel()
	runCases(t, pgtest.Options{}, map[string]func(*testing.T, *bundle){
		"MigrateIsIdempotentAndConcurrent":     testMigrate,
		"CommittedRowIsPublishedWithItsID":     testCommitted,
		"RolledBackRowIsNeverPublished":        testRolledBack,
		"DatabaseSQLTransaction":               testDatabaseSQL,
		"EnqueueManyCopiesRows":                testEnqueueMany,
		"DelayedRowWaitsInPostgres":            testDelay,
		"PlainInsertByAnotherServiceIsRelayed": testPlainInsert,
		"SameIDIsStoredOnce":                   testSameID,
		"KeyOrderIsCommitOrderAcrossRelays":    testKeyOrder,
		"KeyLockSerialisesTransactions":        testKeyLock,
		"DisableNotifyDropsTriggerAndPolls":    testDisableNotify,
		"TwoRelaysShareTheRows":                testTwoRelays,
		"PoisonRowsMoveAsideTheRestFlows":      testPoison,
		"FullStreamIsRetriedNotMovedAside":     testFullStream,
		"KeepPublishedMarksAndPrunes":          testKeepPublished,
		"StatsReportPendingDueLagDead":         testStats,
		"RunLifecycle":                         testLifecycle,
		"CheckReflectsPostgresAndNATS":         testCheck,
	})
}

// TestEnqueueRefusesBeforeSQL passes a nil transaction: every refusal
// must come before the first statement.
func TestEnqueueRefusesBeforeSQL(t *testing.T) {
	t.Parallel()
	o, err := outbox.New(outbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		subject string
		opts    *outbox.EnqueueOpts
		want    error
	}{
		{"empty subject", "", nil, jetworker.ErrInvalidSubject},
		{"wildcard subject", "tasks.*", nil, jetworker.ErrInvalidSubject},
		{"white space in subject", "tasks.a b", nil, jetworker.ErrInvalidSubject},
		{"JetStream API subject", "$JS.API.STREAM.PURGE.TASKS", nil, jetworker.ErrReservedSubject},
		{"inbox subject", "_INBOX.abc", nil, jetworker.ErrReservedSubject},
		{"Nats-Rollup header", "tasks.a", &outbox.EnqueueOpts{Header: nats.Header{"Nats-Rollup": {"all"}}}, outbox.ErrReservedHeader},
		{"lowercase nats- header", "tasks.a", &outbox.EnqueueOpts{Header: nats.Header{"nats-msg-id": {"x"}}}, outbox.ErrReservedHeader},
		{"header name with colon", "tasks.a", &outbox.EnqueueOpts{Header: nats.Header{"a:b": {"x"}}}, outbox.ErrInvalidOptions},
		{"header value with line break", "tasks.a", &outbox.EnqueueOpts{Header: nats.Header{"A": {"x\r\nNats-Rollup: all"}}}, outbox.ErrInvalidOptions},
		{"ID with line break", "tasks.a", &outbox.EnqueueOpts{ID: "a\nb"}, outbox.ErrInvalidOptions},
		{"negative delay", "tasks.a", &outbox.EnqueueOpts{Delay: -time.Second}, outbox.ErrInvalidOptions},
		{"delay and at", "tasks.a", &outbox.EnqueueOpts{Delay: time.Second, At: time.Now()}, outbox.ErrInvalidOptions},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := o.Enqueue(t.Context(), nil, tc.subject, nil, tc.opts); !errors.Is(err, tc.want) {
				t.Errorf("Enqueue: got %v, want %v", err, tc.want)
			}
			if _, err := o.EnqueueSQL(t.Context(), nil, tc.subject, nil, tc.opts); !errors.Is(err, tc.want) {
				t.Errorf("EnqueueSQL: got %v, want %v", err, tc.want)
			}
			if _, err := o.EnqueueMany(t.Context(), nil, []outbox.Message{{Subject: "tasks.ok"}, {Subject: tc.subject, Opts: tc.opts}}); !errors.Is(err, tc.want) {
				t.Errorf("EnqueueMany: got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := outbox.EnqueueJSON(t.Context(), o, nil, "tasks.a", func() {}, nil); err == nil {
		t.Error("EnqueueJSON of a func: got nil, want an encoding error")
	}
}

func TestConfigNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg outbox.Config
		ok  bool
	}{
		{outbox.Config{}, true},
		{outbox.Config{Schema: "billing", Table: "outbox_v2"}, true},
		{outbox.Config{Schema: "_x", Table: "t"}, true},
		{outbox.Config{Schema: "Billing"}, false},
		{outbox.Config{Table: `x"; DROP TABLE users; --`}, false},
		{outbox.Config{Table: "1abc"}, false},
		{outbox.Config{Schema: "pg_catalog"}, false},
		{outbox.Config{Table: strings.Repeat("a", 31)}, false},
		{outbox.Config{Table: "a.b"}, false},
	} {
		_, err := outbox.New(tc.cfg)
		_, serr := outbox.MigrationSQL(tc.cfg)
		if tc.ok && (err != nil || serr != nil) {
			t.Errorf("%+v: got %v, %v, want valid", tc.cfg, err, serr)
		}
		if !tc.ok && (!errors.Is(err, outbox.ErrInvalidConfig) || !errors.Is(serr, outbox.ErrInvalidConfig)) {
			t.Errorf("%+v: got %v, %v, want ErrInvalidConfig", tc.cfg, err, serr)
		}
	}
	s, err := outbox.MigrationSQL(outbox.Config{Schema: "billing", Table: "box"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"billing"."box"`, `"billing"."box_dead"`, `'billing.box'`} {
		if !strings.Contains(s, want) {
			t.Errorf("MigrationSQL lacks %s", want)
		}
	}
	if strings.Contains(s, "{{") {
		t.Error("MigrationSQL has an unexpanded {{name}}")
	}
}

func TestRelayConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []outbox.RelayConfig{
		{BatchSize: -1}, {Concurrency: 100}, {PollInterval: time.Microsecond},
		{AckTimeout: time.Nanosecond}, {RetryMin: time.Second, RetryMax: time.Millisecond},
		{Config: outbox.Config{Table: "X"}},
	} {
		// NewRelay validates before it looks at the connection.
		if _, err := outbox.NewRelay(nil, nil, cfg); err == nil {
			t.Errorf("%+v: got nil error, want one", cfg)
		}
	}
}

func testMigrate(t *testing.T, b *bundle) {
	ctx := t.Context()
	cfg := outbox.Config{Schema: "billing", Table: "box"}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = outbox.Migrate(ctx, b.pool, cfg) })
	}
	wg.Wait()
	for _, err := range append(errs, outbox.Migrate(ctx, b.pool, cfg), outbox.Migrate(ctx, b.pool, outbox.Config{})) {
		if err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	var triggers int
	if err := b.pool.QueryRow(ctx, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'billing.box'::regclass AND NOT tgisinternal").Scan(&triggers); err != nil || triggers != 1 {
		t.Fatalf("triggers on billing.box: got %d (%v), want 1", triggers, err)
	}
	// The custom outbox works end to end.
	o, err := outbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.inTx(t, func(tx pgx.Tx) error {
		_, err := o.Enqueue(ctx, tx, "tasks.billing", []byte("x"), nil)
		return err
	})
	b.relay(t, outbox.RelayConfig{Config: cfg})
	if m := b.msgs(t, "TASKS", 1); m[0].Subject != "tasks.billing" {
		t.Fatalf("got subject %q, want tasks.billing", m[0].Subject)
	}
}

func testCommitted(t *testing.T, b *bundle) {
	b.relay(t, outbox.RelayConfig{})
	id := b.enqueue(t, "tasks.order.placed", `{"order":42}`, &outbox.EnqueueOpts{Header: nats.Header{"Tenant": {"acme"}}})
	given := b.enqueue(t, "tasks.order.placed", `{"order":43}`, &outbox.EnqueueOpts{ID: "order-43-placed"})
	var typed string
	b.inTx(t, func(tx pgx.Tx) error {
		var err error
		typed, err = outbox.EnqueueJSON(t.Context(), b.o, tx, "tasks.order.placed", map[string]int{"order": 44}, nil)
		return err
	})
	got := map[string]*jetstream.RawStreamMsg{}
	for _, m := range b.msgs(t, "TASKS", 3) {
		got[m.Header.Get(jetworker.HeaderMsgID)] = m
	}
	if given != "order-43-placed" {
		t.Errorf("Enqueue returned %q, want the given ID", given)
	}
	if _, err := time.Parse(time.RFC3339Nano, got[id].Header.Get(jetworker.HeaderEnqueuedAt)); err != nil {
		t.Errorf("Enqueued-At header: %v", err)
	}
	for id, want := range map[string]string{id: `{"order":42}`, given: `{"order":43}`, typed: `{"order":44}`} {
		m := got[id]
		if m == nil {
			t.Fatalf("no message with Nats-Msg-Id %q among %v", id, slices.Collect(mapsKeys(got)))
		}
		if string(m.Data) != want || m.Subject != "tasks.order.placed" {
			t.Errorf("message %s: got %s on %s, want %s on tasks.order.placed", id, m.Data, m.Subject, want)
		}
	}
	if v := got[id].Header.Get("Tenant"); v != "acme" {
		t.Errorf("header Tenant: got %q, want acme", v)
	}
	b.drained(t)
}

func mapsKeys[M ~map[K]V, K comparable, V any](m M) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func testRolledBack(t *testing.T, b *bundle) {
	ctx := t.Context()
	b.relay(t, outbox.RelayConfig{})
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.o.Enqueue(ctx, tx, "tasks.never", []byte("x"), &outbox.EnqueueOpts{Key: "k"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.o.EnqueueMany(ctx, tx, []outbox.Message{{Subject: "tasks.never"}, {Subject: "tasks.never"}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// A row committed after the rolled-back ones is relayed; by then the
	// relay has seen everything before it.
	b.enqueue(t, "tasks.after", "y", &outbox.EnqueueOpts{Key: "k"})
	b.drained(t)
	msgs := b.msgs(t, "TASKS", 1)
	if len(msgs) != 1 || msgs[0].Subject != "tasks.after" {
		t.Fatalf("stream holds %d messages (first on %s), want only tasks.after", len(msgs), msgs[0].Subject)
	}
}

func testDatabaseSQL(t *testing.T, b *bundle) {
	ctx := t.Context()
	db, err := sql.Open("pgx", b.url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b.relay(t, outbox.RelayConfig{})
	for _, commit := range []bool{false, true} {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		subj := "tasks.sql." + strconv.FormatBool(commit)
		if _, err := b.o.EnqueueSQL(ctx, tx, subj, []byte("a"), &outbox.EnqueueOpts{Key: "k", Header: nats.Header{"A": {"1"}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := outbox.EnqueueSQLJSON(ctx, b.o, tx, subj, []int{1, 2}, &outbox.EnqueueOpts{Delay: time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	b.drained(t)
	msgs := b.msgs(t, "TASKS", 2)
	if len(msgs) != 2 {
		t.Fatalf("got %d messages, want the 2 committed", len(msgs))
	}
	for _, m := range msgs {
		if m.Subject != "tasks.sql.true" {
			t.Errorf("got a message on %s, want only tasks.sql.true", m.Subject)
		}
	}
	byData := map[string]*jetstream.RawStreamMsg{}
	for _, m := range msgs {
		byData[string(m.Data)] = m
	}
	if byData["a"] == nil || byData["[1,2]"] == nil || byData["a"].Header.Get("A") != "1" {
		t.Errorf("got %v, want a (with header A=1) and [1,2]", slices.Collect(mapsKeys(byData)))
	}
}

func testEnqueueMany(t *testing.T, b *bundle) {
	const n = 500
	msgs := make([]outbox.Message, n)
	for i := range msgs {
		msgs[i] = outbox.Message{Subject: "tasks.many", Data: []byte(strconv.Itoa(i)), Opts: &outbox.EnqueueOpts{Key: "k" + strconv.Itoa(i%3)}}
	}
	msgs[7].Opts = &outbox.EnqueueOpts{Header: nats.Header{"H": {"v"}}, At: time.Now().Add(-time.Hour)}
	var ids []string
	b.inTx(t, func(tx pgx.Tx) error {
		var err error
		ids, err = b.o.EnqueueMany(t.Context(), tx, msgs)
		return err
	})
	if len(ids) != n || ids[0] == ids[1] {
		t.Fatalf("got %d IDs, want %d distinct", len(ids), n)
	}
	b.relay(t, outbox.RelayConfig{BatchSize: 100})
	got := b.msgs(t, "TASKS", n)
	last := map[string]int{}
	for _, m := range got {
		i, _ := strconv.Atoi(string(m.Data))
		if m.Header.Get(jetworker.HeaderMsgID) != ids[i] {
			t.Fatalf("message %d: ID %q, want %q", i, m.Header.Get(jetworker.HeaderMsgID), ids[i])
		}
		if i == 7 {
			if m.Header.Get("H") != "v" {
				t.Errorf("message 7 lost its header")
			}
			continue
		}
		k := "k" + strconv.Itoa(i%3)
		if p, ok := last[k]; ok && p > i {
			t.Fatalf("key %s: %d published after %d", k, i, p)
		}
		last[k] = i
	}
}

func testDelay(t *testing.T, b *bundle) {
	const delay = 700 * time.Millisecond
	b.relay(t, outbox.RelayConfig{PollInterval: 5 * time.Second})
	var txStart time.Time
	b.inTx(t, func(tx pgx.Tx) error {
		if err := tx.QueryRow(t.Context(), "SELECT now()").Scan(&txStart); err != nil {
			return err
		}
		if _, err := b.o.Enqueue(t.Context(), tx, "tasks.later", []byte("d"), &outbox.EnqueueOpts{Delay: delay}); err != nil {
			return err
		}
		_, err := b.o.Enqueue(t.Context(), tx, "tasks.at", []byte("a"), &outbox.EnqueueOpts{At: txStart.Add(delay / 2)})
		return err
	})
	b.enqueue(t, "tasks.now", "n", nil)
	got := b.msgs(t, "TASKS", 3)
	// Published in due order, each not before it was due (the relay
	// respects available_at; same machine, one clock).
	want := []string{"tasks.now", "tasks.at", "tasks.later"}
	for i, m := range got {
		if m.Subject != want[i] {
			t.Fatalf("message %d on %s, want %s", i, m.Subject, want[i])
		}
	}
	if d := got[2].Time.Sub(txStart); d < delay {
		t.Errorf("delayed row stored %s after its transaction began, want >= %s", d, delay)
	}
	if s := b.stats(t); s.Pending != 0 {
		t.Errorf("pending: got %d, want 0", s.Pending)
	}
}

func testPlainInsert(t *testing.T, b *bundle) {
	b.relay(t, outbox.RelayConfig{PollInterval: 10 * time.Second}) // the trigger's notification wakes it
	if _, err := b.pool.Exec(t.Context(), "INSERT INTO jetworker_outbox (subject, payload) VALUES ('tasks.plain', 'p')"); err != nil {
		t.Fatal(err)
	}
	m := b.msgs(t, "TASKS", 1)[0]
	if m.Subject != "tasks.plain" || len(m.Header.Get(jetworker.HeaderMsgID)) != 36 {
		t.Fatalf("got %s with ID %q, want tasks.plain with a UUID", m.Subject, m.Header.Get(jetworker.HeaderMsgID))
	}
}

func testSameID(t *testing.T, b *bundle) {
	var dups int
	var mu sync.Mutex
	b.relay(t, outbox.RelayConfig{Hooks: outbox.Hooks{BatchFunc: func(x outbox.Batch) {
		mu.Lock()
		dups += x.Duplicates
		mu.Unlock()
	}}})
	b.enqueue(t, "tasks.once", "1", &outbox.EnqueueOpts{ID: "same"})
	b.drained(t)
	b.enqueue(t, "tasks.once", "2", &outbox.EnqueueOpts{ID: "same"})
	b.drained(t)
	if m := b.msgs(t, "TASKS", 1); len(m) != 1 || string(m[0].Data) != "1" {
		t.Fatalf("got %d messages, want 1 (the first)", len(m))
	}
	mu.Lock()
	defer mu.Unlock()
	if dups != 1 {
		t.Errorf("duplicates reported: got %d, want 1", dups)
	}
}

// testKeyOrder runs transactions that enqueue rows of a few keys at once
// (with unkeyed rows between), each holding its key for a random while
// before it commits. Enqueue holds the key's lock until commit, so the
// order in which Enqueue returned for a key is its commit order; three
// relays with two loops each must publish every key in that order.
func testKeyOrder(t *testing.T, b *bundle) {
	const workers, perWorker, keys = 8, 60, 3
	for range 3 {
		b.relay(t, outbox.RelayConfig{BatchSize: 7, Concurrency: 2})
	}
	var mu sync.Mutex
	order := map[string][]string{} // key -> IDs in commit order
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				k := "key-" + strconv.Itoa(rand.IntN(keys))
				id := fmt.Sprintf("w%d-%d", w, i)
				err := pgx.BeginFunc(t.Context(), b.pool, func(tx pgx.Tx) error {
					if _, err := b.o.Enqueue(t.Context(), tx, "tasks.unkeyed", nil, nil); err != nil {
						return err
					}
					if _, err := b.o.Enqueue(t.Context(), tx, "tasks.keyed", []byte(k), &outbox.EnqueueOpts{ID: id, Key: k}); err != nil {
						return err
					}
					mu.Lock()
					order[k] = append(order[k], id)
					mu.Unlock()
					time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond) // hold the key
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	got := map[string][]string{}
	for _, m := range b.msgs(t, "TASKS", 2*workers*perWorker) {
		if m.Subject == "tasks.keyed" {
			got[string(m.Data)] = append(got[string(m.Data)], m.Header.Get(jetworker.HeaderMsgID))
		}
	}
	for k, want := range order {
		if !slices.Equal(got[k], want) {
			t.Errorf("key %s: published %d rows out of commit order:\n got %v\nwant %v", k, len(want), got[k], want)
		}
	}
}

func testTwoRelays(t *testing.T, b *bundle) {
	const n = 5000
	var mu sync.Mutex
	published := map[int]int{}
	for i := range 2 {
		b.relay(t, outbox.RelayConfig{BatchSize: 200, Hooks: outbox.Hooks{BatchFunc: func(x outbox.Batch) {
			mu.Lock()
			published[i] += x.Published - x.Duplicates
			mu.Unlock()
		}}})
	}
	msgs := make([]outbox.Message, n)
	for i := range msgs {
		msgs[i] = outbox.Message{Subject: "tasks.shared", Data: []byte(strconv.Itoa(i))}
	}
	for i := 0; i < n; i += 500 {
		b.inTx(t, func(tx pgx.Tx) error {
			_, err := b.o.EnqueueMany(t.Context(), tx, msgs[i:i+500])
			return err
		})
	}
	b.drained(t)
	got := b.msgs(t, "TASKS", n)
	seen := map[string]bool{}
	for _, m := range got {
		seen[m.Header.Get(jetworker.HeaderMsgID)] = true
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != n || len(seen) != n || published[0]+published[1] != n {
		t.Fatalf("stored %d messages, %d distinct IDs, relays published %v; want %d each", len(got), len(seen), published, n)
	}
	t.Logf("relay 0 published %d, relay 1 %d", published[0], published[1])
}

func testPoison(t *testing.T, b *bundle) {
	ctx := t.Context()
	var mu sync.Mutex
	var hooked []outbox.DeadRow
	b.relay(t, outbox.RelayConfig{Hooks: outbox.Hooks{DeadFunc: func(d outbox.DeadRow) {
		mu.Lock()
		hooked = append(hooked, d)
		mu.Unlock()
	}}})
	big := strings.Repeat("x", int(b.js.Conn().MaxPayload()))
	b.enqueue(t, "orders.placed", "no stream", &outbox.EnqueueOpts{ID: "nostream", Key: "k"})
	b.enqueue(t, "tasks.big", big, &outbox.EnqueueOpts{ID: "big"})
	b.enqueue(t, "tasks.ok", "after the poison row", &outbox.EnqueueOpts{Key: "k"})
	for _, q := range []string{
		`INSERT INTO jetworker_outbox (msg_id, subject, headers) VALUES ('rollup', 'tasks.x', '{"Nats-Rollup": ["all"]}')`,
		`INSERT INTO jetworker_outbox (msg_id, subject) VALUES ('purge', '$JS.API.STREAM.PURGE.TASKS')`,
		`INSERT INTO jetworker_outbox (msg_id, subject, headers) VALUES ('badjson', 'tasks.x', '[1]')`,
	} {
		if _, err := b.pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		b.enqueue(t, "tasks.ok", strconv.Itoa(i), nil)
	}
	b.drained(t)
	if m := b.msgs(t, "TASKS", 21); len(m) != 21 {
		t.Fatalf("stream holds %d, want the 21 healthy rows", len(m))
	}
	dead, err := b.o.ListDead(ctx, b.pool, outbox.DeadFilter{})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, d := range dead {
		reasons[d.MsgID] = d.Reason
	}
	for id, want := range map[string]string{
		"nostream": "no stream captures", "big": "max payload", "rollup": "Nats-",
		"purge": "reserved subject", "badjson": "headers",
	} {
		if !strings.Contains(reasons[id], want) {
			t.Errorf("dead row %s: reason %q, want it to mention %q", id, reasons[id], want)
		}
	}
	if len(dead) != 5 || b.stats(t).Dead != 5 {
		t.Fatalf("got %d dead rows, want 5: %v", len(dead), reasons)
	}
	mu.Lock()
	if len(hooked) != 5 {
		t.Errorf("DeadFunc called %d times, want 5", len(hooked))
	}
	mu.Unlock()
	if d, _ := b.o.ListDead(ctx, b.pool, outbox.DeadFilter{Subject: "orders.placed"}); len(d) != 1 || d[0].Key != "k" || string(d[0].Data) != "no stream" {
		t.Errorf("filter by subject: got %+v, want the orders.placed row", d)
	}

	// Once a stream captures the subject, a retry publishes the row with
	// its original ID.
	if _, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	var noStream, other []int64
	for _, d := range dead {
		if d.MsgID == "nostream" {
			noStream = append(noStream, d.ID)
		} else {
			other = append(other, d.ID)
		}
	}
	if n, err := b.o.RetryDead(ctx, b.pool, noStream[0], 999999); n != 1 || !errors.Is(err, outbox.ErrDeadNotFound) || !strings.Contains(err.Error(), "999999") {
		t.Fatalf("RetryDead: got %d, %v; want 1 and ErrDeadNotFound naming 999999", n, err)
	}
	if m := b.msgs(t, "ORDERS", 1); m[0].Header.Get(jetworker.HeaderMsgID) != "nostream" {
		t.Errorf("retried row published with ID %q, want nostream", m[0].Header.Get(jetworker.HeaderMsgID))
	}
	if n, err := b.o.DeleteDead(ctx, b.pool, other...); n != 4 || err != nil {
		t.Fatalf("DeleteDead: got %d, %v; want 4", n, err)
	}
	b.drained(t)
	if s := b.stats(t); s.Dead != 0 {
		t.Errorf("dead rows after retry and delete: got %d, want 0", s.Dead)
	}
}

// testFullStream fills a stream that discards new messages: the server
// refuses the rest with 503, which passes once consumers make room, so
// the rows stay and are published later.
func testFullStream(t *testing.T, b *bundle) {
	ctx := t.Context()
	s, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "SMALL", Subjects: []string{"small.>"}, MaxMsgs: 2, Discard: jetstream.DiscardNew})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	failed := 0
	b.relay(t, outbox.RelayConfig{RetryMin: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond, Hooks: outbox.Hooks{BatchFunc: func(x outbox.Batch) {
		mu.Lock()
		failed += x.Failed
		mu.Unlock()
	}}})
	for i := range 4 {
		b.enqueue(t, "small.x", strconv.Itoa(i), nil)
	}
	testutil.Eventually(t, 20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if failed < 4 {
			return fmt.Errorf("%d failed publishes, want retries", failed)
		}
		return nil
	})
	if st := b.stats(t); st.Pending != 2 || st.Dead != 0 {
		t.Fatalf("got %d pending and %d dead, want 2 pending and none dead", st.Pending, st.Dead)
	}
	if err := s.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	b.drained(t)
	if m := b.msgs(t, "SMALL", 2); len(m) != 2 {
		t.Fatalf("got %d, want the 2 retried rows", len(m))
	}
}

func testKeepPublished(t *testing.T, b *bundle) {
	ctx := t.Context()
	b.relay(t, outbox.RelayConfig{KeepPublished: true})
	b.enqueue(t, "tasks.kept", "k", &outbox.EnqueueOpts{ID: "kept"})
	b.drained(t)
	var stream string
	var seq int64
	if err := b.pool.QueryRow(ctx, "SELECT stream, stream_seq FROM jetworker_outbox WHERE msg_id = 'kept' AND published_at IS NOT NULL").Scan(&stream, &seq); err != nil {
		t.Fatal(err)
	}
	if stream != "TASKS" || seq != 1 {
		t.Errorf("marked row: got %s/%d, want TASKS/1", stream, seq)
	}
	if n, err := b.o.PrunePublished(ctx, b.pool, time.Now().Add(time.Hour)); n != 1 || err != nil {
		t.Errorf("PrunePublished: got %d, %v; want 1", n, err)
	}
}

func testStats(t *testing.T, b *bundle) {
	if s := b.stats(t); s != (outbox.Stats{}) {
		t.Fatalf("empty outbox: got %+v, want zeros", s)
	}
	b.inTx(t, func(tx pgx.Tx) error {
		for _, o := range []*outbox.EnqueueOpts{{At: time.Now().Add(-time.Minute)}, nil, {Delay: time.Hour}} {
			if _, err := b.o.Enqueue(t.Context(), tx, "tasks.s", nil, o); err != nil {
				return err
			}
		}
		return nil
	})
	s := b.stats(t)
	if s.Pending != 3 || s.Due != 2 || s.Lag < 59*time.Second || s.Lag > 5*time.Minute {
		t.Fatalf("got %+v, want 3 pending, 2 due and a lag of about a minute", s)
	}
	rr := b.relay(t, outbox.RelayConfig{})
	testutil.Eventually(t, 20*time.Second, func() error {
		s, err := rr.r.Stats(t.Context())
		if err != nil {
			return err
		}
		if s.Pending != 1 || s.Due != 0 || s.Lag != 0 {
			return fmt.Errorf("got %+v, want the delayed row only", s)
		}
		return nil
	})
}

func testLifecycle(t *testing.T, b *bundle) {
	ctx := t.Context()
	missing, err := outbox.NewRelay(b.pool, b.js, outbox.RelayConfig{Config: outbox.Config{Table: "nope"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := missing.Run(ctx); !errors.Is(err, outbox.ErrNotMigrated) {
		t.Fatalf("Run on a missing table: got %v, want ErrNotMigrated", err)
	}

	rr := b.relay(t, outbox.RelayConfig{})
	if err := rr.r.Run(ctx); !errors.Is(err, outbox.ErrAlreadyRunning) {
		t.Fatalf("second Run: got %v, want ErrAlreadyRunning", err)
	}
	if err := rr.halt(); err != nil {
		t.Fatalf("Run after cancel: got %v, want nil", err)
	}

	// A relay whose NATS connection is closed for good stops with an error.
	nc, js := embeddedtest.Connect(t, b.nats)
	r, err := outbox.NewRelay(b.pool, js, outbox.RelayConfig{Logger: testutil.Logger(t, slog.LevelInfo)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	<-r.Ready()
	nc.Close()
	select {
	case err := <-done:
		if !errors.Is(err, nats.ErrConnectionClosed) {
			t.Fatalf("Run after the connection closed: got %v, want ErrConnectionClosed", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after the NATS connection closed")
	}
}

func testCheck(t *testing.T, b *bundle) {
	ctx := t.Context()
	_, js := embeddedtest.Connect(t, b.nats, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	r, err := outbox.NewRelay(b.pool, js, outbox.RelayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check(ctx); err != nil {
		t.Fatalf("Check with both up: %v", err)
	}
	b.nats.Shutdown()
	testutil.Eventually(t, 10*time.Second, func() error {
		if err := r.Check(ctx); err == nil || !strings.Contains(err.Error(), "nats") {
			return fmt.Errorf("got %v, want a nats error", err)
		}
		return nil
	})
	b.pool.Close()
	if err := r.Check(ctx); err == nil || !strings.Contains(err.Error(), "postgres") {
		t.Fatalf("Check with both down: got %v, want a postgres error too", err)
	}
}

// testKeyLock holds a transaction that enqueued key k open: a second
// transaction enqueuing k waits for it (PostgreSQL shows it waiting on a
// lock), one enqueuing another key does not, and once the first commits
// the second's row is published after the first's although it began
// first.
func testKeyLock(t *testing.T, b *bundle) {
	ctx := t.Context()
	second, err := b.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Rollback(ctx)
	var pid int
	if err := second.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	first, err := b.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Rollback(ctx)
	if _, err := b.o.Enqueue(ctx, first, "tasks.k", []byte("first"), &outbox.EnqueueOpts{Key: "k"}); err != nil {
		t.Fatal(err)
	}
	b.enqueue(t, "tasks.other", "other key", &outbox.EnqueueOpts{Key: "other"})
	done := make(chan error, 1)
	go func() {
		_, err := b.o.Enqueue(ctx, second, "tasks.k", []byte("second"), &outbox.EnqueueOpts{Key: "k"})
		if err == nil {
			err = second.Commit(ctx)
		}
		done <- err
	}()
	testutil.Eventually(t, 10*time.Second, func() error {
		var wait *string
		if err := b.pool.QueryRow(ctx, "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid).Scan(&wait); err != nil {
			return err
		}
		if wait == nil || *wait != "Lock" {
			return fmt.Errorf("second transaction waits for %v, want a lock", wait)
		}
		return nil
	})
	select {
	case err := <-done:
		t.Fatalf("second Enqueue of the key returned (%v) while the first transaction holds it", err)
	default:
	}
	if err := first.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b.relay(t, outbox.RelayConfig{})
	var got []string
	for _, m := range b.msgs(t, "TASKS", 3) {
		if m.Subject == "tasks.k" {
			got = append(got, string(m.Data))
		}
	}
	if !slices.Equal(got, []string{"first", "second"}) {
		t.Fatalf("key k published as %v, want [first second]", got)
	}
}

func testDisableNotify(t *testing.T, b *bundle) {
	ctx := t.Context()
	cfg := outbox.Config{DisableNotify: true}
	if err := outbox.Migrate(ctx, b.pool, cfg); err != nil {
		t.Fatal(err)
	}
	var triggers int
	if err := b.pool.QueryRow(ctx, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'jetworker_outbox'::regclass AND NOT tgisinternal").Scan(&triggers); err != nil || triggers != 0 {
		t.Fatalf("triggers after Migrate with DisableNotify: got %d (%v), want 0", triggers, err)
	}
	b.relay(t, outbox.RelayConfig{Config: cfg, PollInterval: 50 * time.Millisecond})
	b.enqueue(t, "tasks.polled", "p", nil)
	b.drained(t)
	b.msgs(t, "TASKS", 1)
}
