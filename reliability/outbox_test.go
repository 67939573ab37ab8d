package reliability_test

// Outbox scenarios: a real PostgreSQL (internal/pgtest), a nats-server
// process and "jetworker outbox relay" processes; the test enqueues rows
// in transactions (some rolled back) and counts what the stream stored.
// Figures: lost = committed but not stored, stored_twice = an ID stored
// more than once, published_rolled_back = an ID of a rolled-back
// transaction stored, key_order_violations = keys whose stored order
// differs from their commit order.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/internal/pgtest"
	"github.com/jetworker/jetworker/outbox"
)

// outboxWorld is one scenario's processes and clients.
type outboxWorld struct {
	t    *testing.T
	pg   *pgtest.Server
	nats *natsServer
	js   jetstream.JetStream
	pool *pgxpool.Pool
	o    *outbox.Outbox
	dir  string
	n    atomic.Int64 // relay incarnations
}

func newOutboxWorld(t *testing.T) *outboxWorld {
	t.Helper()
	w := &outboxWorld{t: t, pg: pgtest.Start(t, pgtest.Options{}), dir: t.TempDir()}
	w.nats = newNATS(t, serverOpts{name: "n1"})
	_, w.js = connect(t, w.nats.url())
	if _, err := w.js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name: "TASKS", Subjects: []string{"tasks.>"}, Duplicates: 2 * time.Minute, Storage: jetstream.FileStorage,
	}); err != nil {
		t.Fatal(err)
	}
	mustJetworker(t, w.env(), "outbox", "migrate")
	pool, err := pgxpool.New(t.Context(), w.pg.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	w.pool = pool
	if w.o, err = outbox.New(outbox.Config{}); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *outboxWorld) env(kv ...string) []string {
	return append(jwEnv(w.nats.url(), "DATABASE_URL", w.pg.URL("postgres"), "OUTBOX_BATCH_SIZE", "100",
		"OUTBOX_ACK_TIMEOUT", "2s"), kvEnv(kv)...)
}

func kvEnv(kv []string) []string {
	var env []string
	for i := 0; i+1 < len(kv); i += 2 {
		env = append(env, "JETWORKER_"+kv[i]+"="+kv[i+1])
	}
	return env
}

// relay starts a relay process and waits for its start line.
func (w *outboxWorld) relay(kv ...string) *proc {
	w.t.Helper()
	name := fmt.Sprintf("relay%d", w.n.Add(1))
	p := startProc(w.t, name, w.dir, jetworkerBin, w.env(kv...), "outbox", "relay")
	eventually(w.t, 20*time.Second, name+" started", func() error {
		if p.exited() {
			w.t.Fatalf("%s exited: %v\n%s", name, p.err, tail(p.output(), 2000))
		}
		if !strings.Contains(p.output(), "outbox relay started") {
			return errors.New("no start line yet")
		}
		return nil
	})
	return p
}

// enqLog records what the test's enqueuers committed and rolled back.
type enqLog struct {
	mu         sync.Mutex
	committed  []string
	rolledBack []string
	retries    int
	lastErr    error
	seq        map[string]int            // key -> next position
	order      map[string]map[int]string // key -> position -> ID (committed only)
}

// enqueue commits n rows in transactions of txSize with g goroutines at
// about rate rows/s; every rollbackEvery-th transaction rolls back
// instead. With keys > 0 every row has one of that many keys. A failed
// transaction (PostgreSQL down) is retried with the same IDs until it
// commits: if an earlier attempt committed after all, the relay
// publishes both rows with one Nats-Msg-Id and the stream keeps one.
func (w *outboxWorld) enqueue(ctx context.Context, l *enqLog, prefix string, n, txSize, g int, rate float64, rollbackEvery, keys int) {
	l.mu.Lock()
	if l.seq == nil {
		l.seq, l.order = map[string]int{}, map[string]map[int]string{}
	}
	l.mu.Unlock()
	txs := make(chan int)
	var wg sync.WaitGroup
	for range g {
		wg.Go(func() {
			for tx := range txs {
				w.enqueueTx(ctx, l, prefix, tx, txSize, rollbackEvery > 0 && tx%rollbackEvery == rollbackEvery-1, keys)
			}
		})
	}
	start := time.Now()
	for tx := 0; tx*txSize < n; tx++ {
		if d := time.Until(start.Add(time.Duration(float64(tx*txSize) / rate * float64(time.Second)))); d > 0 {
			time.Sleep(d)
		}
		select {
		case txs <- tx:
		case <-ctx.Done():
		}
	}
	close(txs)
	wg.Wait()
}

func (w *outboxWorld) enqueueTx(ctx context.Context, l *enqLog, prefix string, tx, size int, rollback bool, keys int) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		var ids []string
		type pos struct {
			key string
			at  int
		}
		var held []pos
		err := func() error {
			actx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			t, err := w.pool.Begin(actx)
			if err != nil {
				return err
			}
			defer t.Rollback(context.WithoutCancel(actx))
			for i := range size {
				id := fmt.Sprintf("%s-%05d-%02d", prefix, tx, i)
				opts := &outbox.EnqueueOpts{ID: id}
				if keys > 0 {
					// Every transaction takes its keys in the same order
					// (k0, k1, ...): in different orders, two could
					// deadlock, and PostgreSQL would abort one.
					opts.Key = "k" + strconv.Itoa(i%keys)
				}
				if _, err := w.o.Enqueue(actx, t, "tasks.outbox", []byte(id), opts); err != nil {
					return err
				}
				ids = append(ids, id)
				if keys > 0 {
					// The key's lock is held until the end of the
					// transaction: positions taken now are commit order.
					l.mu.Lock()
					held = append(held, pos{opts.Key, l.seq[opts.Key]})
					l.seq[opts.Key]++
					l.mu.Unlock()
				}
			}
			if rollback {
				return t.Rollback(actx)
			}
			return t.Commit(actx)
		}()
		l.mu.Lock()
		if err == nil {
			if rollback {
				l.rolledBack = append(l.rolledBack, ids...)
			} else {
				l.committed = append(l.committed, ids...)
				for i, p := range held {
					if l.order[p.key] == nil {
						l.order[p.key] = map[int]string{}
					}
					l.order[p.key][p.at] = ids[i]
				}
			}
			l.mu.Unlock()
			return
		}
		l.retries++
		l.lastErr = err
		l.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// outboxResult is what the stream stored, compared with the log.
type outboxResult struct {
	stored, lost, twice, rolledBackStored, orderViolations int
	lostIDs, twiceIDs                                      []string
}

// settle waits until the outbox is empty and every committed row is in
// the stream, then counts.
func (w *outboxWorld) settle(l *enqLog, within time.Duration) outboxResult {
	w.t.Helper()
	l.mu.Lock()
	committed := slices.Clone(l.committed)
	l.mu.Unlock()
	eventually(w.t, within, "outbox drained", func() error {
		s, err := w.o.Stats(w.t.Context(), w.pool)
		if err != nil {
			return err
		}
		if s.Pending != 0 {
			return fmt.Errorf("%d rows pending", s.Pending)
		}
		return nil
	})
	var msgs []*jetstream.RawStreamMsg
	eventually(w.t, 30*time.Second, "stream holds the committed rows", func() error {
		msgs = streamMsgs(w.t, w.js, "TASKS")
		if len(msgs) < len(committed) {
			return fmt.Errorf("%d of %d stored", len(msgs), len(committed))
		}
		return nil
	})
	count := map[string]int{}
	var order []string
	for _, m := range msgs {
		id := m.Header.Get(nats.MsgIdHdr)
		if count[id] == 0 {
			order = append(order, id)
		}
		count[id]++
	}
	var r outboxResult
	r.stored = len(msgs)
	for _, id := range committed {
		if count[id] == 0 {
			r.lost++
			r.lostIDs = append(r.lostIDs, id)
		}
	}
	for id, c := range count {
		if c > 1 {
			r.twice++
			r.twiceIDs = append(r.twiceIDs, id)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range l.rolledBack {
		if count[id] > 0 {
			r.rolledBackStored++
		}
	}
	// Per key: the stored order of its committed IDs against commit order.
	rank := map[string]int{}
	for i, id := range order {
		rank[id] = i
	}
	for _, byPos := range l.order {
		positions := slices.Sorted(mapKeys(byPos))
		last := -1
		for _, p := range positions {
			if rk, ok := rank[byPos[p]]; ok {
				if rk < last {
					r.orderViolations++
					break
				}
				last = rk
			}
		}
	}
	return r
}

// batchTotals sums the rows published and the duplicates the server
// acknowledged from the relays' debug lines.
func batchTotals(relays ...*proc) (published, duplicates int) {
	for _, p := range relays {
		for _, line := range logLines(p, `"msg":"outbox batch"`) {
			var b struct{ Published, Duplicates int }
			if json.Unmarshal([]byte(line), &b) == nil {
				published += b.Published
				duplicates += b.Duplicates
			}
		}
	}
	return published, duplicates
}

// publishedNotDeleted counts the outbox rows whose task ID the stream
// already holds: rows a killed relay published but had not deleted.
func (w *outboxWorld) publishedNotDeleted() int {
	w.t.Helper()
	inStream := map[string]bool{}
	for _, m := range streamMsgs(w.t, w.js, "TASKS") {
		inStream[m.Header.Get(nats.MsgIdHdr)] = true
	}
	rows, err := w.pool.Query(w.t.Context(), "SELECT msg_id FROM jetworker_outbox")
	if err != nil {
		w.t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		w.t.Fatal(err)
	}
	n := 0
	for _, id := range ids {
		if inStream[id] {
			n++
		}
	}
	return n
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (w *outboxWorld) assert(r outboxResult, l *enqLog, want int) {
	w.t.Helper()
	l.mu.Lock()
	committed := len(l.committed)
	l.mu.Unlock()
	if committed != want {
		w.t.Errorf("committed: got %d, want %d (last error %v)", committed, want, l.lastErr)
	}
	if r.lost != 0 {
		w.t.Errorf("lost: got %d (%v), want 0", r.lost, head(r.lostIDs))
	}
	if r.twice != 0 {
		w.t.Errorf("stored twice: got %d (%v), want 0", r.twice, head(r.twiceIDs))
	}
	if r.rolledBackStored != 0 {
		w.t.Errorf("rolled-back rows stored: got %d, want 0", r.rolledBackStored)
	}
	if r.orderViolations != 0 {
		w.t.Errorf("keys published out of commit order: got %d, want 0", r.orderViolations)
	}
}

// committedCount is the number of rows the scenario commits: n rows in
// transactions of txSize, every rollbackEvery-th rolled back.
func committedCount(n, txSize, rollbackEvery int) int {
	txs := (n + txSize - 1) / txSize
	return (txs - txs/rollbackEvery) * txSize
}

// TestOutboxRelayKill: a relay is SIGKILLed while it drains a backlog,
// mid-batch: rows it published but had not deleted yet are published
// again by the next relay with the same Nats-Msg-Id, and the stream keeps
// one copy (the relays' debug lines count the duplicates the server
// acknowledged).
func TestOutboxRelayKill(t *testing.T) {
	burst, kills := size(4000, 20000), size(2, 6)
	const txSize, rollbackEvery, keys, batchSize = 50, 5, 20, 100
	w := newOutboxWorld(t)
	s, err := w.js.Stream(t.Context(), "TASKS")
	if err != nil {
		t.Fatal(err)
	}
	stored := func() uint64 {
		info, err := s.Info(t.Context())
		if err != nil {
			return 0
		}
		return info.State.Msgs
	}
	var l enqLog
	var relays []*proc
	p := w.relay("LOG_LEVEL", "debug")
	relays = append(relays, p)
	midDrain, midBatch, inFlight := 0, 0, 0
	for k := range kills {
		// A backlog while no relay runs, then a relay that drains it and
		// is killed when it has stored a tenth.
		p.kill(t)
		w.enqueue(t.Context(), &l, fmt.Sprintf("rk%d", k), burst, txSize, 4, 1e9, rollbackEvery, keys)
		before := stored()
		p = w.relay("LOG_LEVEL", "debug")
		relays = append(relays, p)
		// Kill once a tenth is stored and the count is not a whole number
		// of batches: a batch is then between its publishes and its
		// commit.
		deadline := time.Now().Add(30 * time.Second)
		for {
			n := stored() - before
			if n >= uint64(burst/10) && n%batchSize != 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("relay stored %d of the burst in 30s", n)
			}
			time.Sleep(2 * time.Millisecond)
		}
		p.kill(t)
		if st, err := w.o.Stats(t.Context(), w.pool); err == nil && st.Pending > 0 {
			midDrain++
		}
		if n := w.publishedNotDeleted(); n > 0 {
			midBatch++
			inFlight += n
		}
		p = w.relay("LOG_LEVEL", "debug")
		relays = append(relays, p)
	}
	start := time.Now()
	r := w.settle(&l, 2*time.Minute)
	_, dups := batchTotals(relays...)
	figure(t, "scenario=outbox-relay-kill committed=%d rolled_back=%d stored=%d lost=%d stored_twice=%d published_rolled_back=%d key_order_violations=%d kills_mid_drain=%d/%d kills_mid_batch=%d/%d published_not_deleted_at_kills=%d republished_as_duplicates=%d drain=%s",
		len(l.committed), len(l.rolledBack), r.stored, r.lost, r.twice, r.rolledBackStored, r.orderViolations, midDrain, kills, midBatch, kills, inFlight, dups, secs(time.Since(start)))
	w.assert(r, &l, kills*committedCount(burst, txSize, rollbackEvery))
	if midDrain != kills {
		t.Errorf("kills while rows were left: got %d, want %d (every kill mid-drain)", midDrain, kills)
	}
	// The point of the scenario: rows published and not yet deleted when
	// a relay died, published again and stored once.
	if midBatch == 0 || dups == 0 {
		t.Errorf("no kill caught a batch between publish and commit (%d kills mid-batch, %d duplicates): the scenario proved nothing", midBatch, dups)
	}
}

// TestOutboxNATSKill: the nats-server (sync_interval always) is
// SIGKILLed while the relay publishes and started again on its store;
// the relay reconnects and publishes what was not acknowledged.
func TestOutboxNATSKill(t *testing.T) {
	n, crashes := size(3000, 30000), size(1, 3)
	const txSize, rollbackEvery, keys = 5, 5, 20
	duration := size(6*time.Second, 40*time.Second)
	w := newOutboxWorld(t)
	p := w.relay("LOG_LEVEL", "debug")
	var l enqLog
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.enqueue(ctx, &l, "nk", n, txSize, 4, float64(n)/duration.Seconds(), rollbackEvery, keys)
	}()
	for range crashes {
		time.Sleep(duration / time.Duration(crashes+1))
		w.nats.proc.kill(t)
		time.Sleep(time.Second)
		w.nats.start()
	}
	<-done
	start := time.Now()
	r := w.settle(&l, 2*time.Minute)
	reconnected := len(logLines(p, "nats reconnected"))
	_, dups := batchTotals(p)
	figure(t, "scenario=outbox-nats-kill committed=%d rolled_back=%d stored=%d lost=%d stored_twice=%d published_rolled_back=%d key_order_violations=%d crashes=%d relay_reconnects=%d republished_as_duplicates=%d drain=%s",
		len(l.committed), len(l.rolledBack), r.stored, r.lost, r.twice, r.rolledBackStored, r.orderViolations, crashes, reconnected, dups, secs(time.Since(start)))
	w.assert(r, &l, committedCount(n, txSize, rollbackEvery))
	if p.exited() {
		t.Errorf("relay exited: %v\n%s", p.err, tail(p.output(), 2000))
	}
}

// TestOutboxPostgresRestart: PostgreSQL stops as in a crash (immediate
// shutdown) while rows are enqueued and relayed, and starts again; the
// relay retries, the enqueuers retry their transactions.
func TestOutboxPostgresRestart(t *testing.T) {
	n, restarts := size(3000, 30000), size(1, 3)
	const txSize, rollbackEvery = 5, 5
	duration := size(6*time.Second, 40*time.Second)
	w := newOutboxWorld(t)
	p := w.relay()
	var l enqLog
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.enqueue(ctx, &l, "pg", n, txSize, 4, float64(n)/duration.Seconds(), rollbackEvery, 0)
	}()
	for range restarts {
		time.Sleep(duration / time.Duration(restarts+1))
		w.pg.Crash()
		time.Sleep(time.Second)
		w.pg.Restart(t)
	}
	<-done
	start := time.Now()
	r := w.settle(&l, 2*time.Minute)
	figure(t, "scenario=outbox-postgres-restart committed=%d rolled_back=%d stored=%d lost=%d stored_twice=%d published_rolled_back=%d restarts=%d enqueue_retries=%d drain=%s",
		len(l.committed), len(l.rolledBack), r.stored, r.lost, r.twice, r.rolledBackStored, restarts, l.retries, secs(time.Since(start)))
	w.assert(r, &l, committedCount(n, txSize, rollbackEvery))
	if p.exited() {
		t.Errorf("relay exited: %v\n%s", p.err, tail(p.output(), 2000))
	}
}

// TestOutboxTwoRelays: two relay processes share one outbox; no row is
// stored twice and every key keeps its commit order across them.
func TestOutboxTwoRelays(t *testing.T) {
	n := size(4000, 40000)
	const txSize, rollbackEvery, keys = 10, 4, 50
	w := newOutboxWorld(t)
	a, b := w.relay("LOG_LEVEL", "debug"), w.relay("LOG_LEVEL", "debug")
	var l enqLog
	w.enqueue(t.Context(), &l, "two", n, txSize, 8, size(2000.0, 5000.0), rollbackEvery, keys)
	start := time.Now()
	r := w.settle(&l, 2*time.Minute)
	pa, da := batchTotals(a)
	pb, db := batchTotals(b)
	figure(t, "scenario=outbox-two-relays committed=%d rolled_back=%d stored=%d lost=%d stored_twice=%d published_rolled_back=%d key_order_violations=%d keys=%d relay_a_published=%d relay_b_published=%d duplicates=%d drain=%s",
		len(l.committed), len(l.rolledBack), r.stored, r.lost, r.twice, r.rolledBackStored, r.orderViolations, keys, pa, pb, da+db, secs(time.Since(start)))
	w.assert(r, &l, committedCount(n, txSize, rollbackEvery))
	if da+db != 0 {
		t.Errorf("duplicates between two live relays: got %d, want 0 (a row is claimed by one relay at a time)", da+db)
	}
	for _, p := range []*proc{a, b} {
		if p.exited() {
			t.Errorf("%s exited: %v\n%s", p.name, p.err, tail(p.output(), 2000))
		}
	}
}

// TestOutboxRollback: half the transactions roll back; none of their
// rows is ever published, all of the others are.
func TestOutboxRollback(t *testing.T) {
	n := size(1000, 10000)
	const txSize, rollbackEvery = 4, 2
	w := newOutboxWorld(t)
	w.relay()
	var l enqLog
	w.enqueue(t.Context(), &l, "rb", n, txSize, 4, 2000, rollbackEvery, 0)
	r := w.settle(&l, time.Minute)
	figure(t, "scenario=outbox-rollback committed=%d rolled_back=%d stored=%d lost=%d stored_twice=%d published_rolled_back=%d",
		len(l.committed), len(l.rolledBack), r.stored, r.lost, r.twice, r.rolledBackStored)
	w.assert(r, &l, committedCount(n, txSize, rollbackEvery))
	if r.stored != len(l.committed) {
		t.Errorf("stored: got %d, want the %d committed", r.stored, len(l.committed))
	}
}

// TestOutboxPoison: rows the server refuses for good (a subject no stream
// captures, a payload above max_payload) are moved aside with the reason
// while the healthy rows flow; the CLI lists, retries and deletes them.
func TestOutboxPoison(t *testing.T) {
	healthy := size(2000, 20000)
	poison := healthy / 50
	w := newOutboxWorld(t)
	w.relay()
	ctx := t.Context()
	big := make([]byte, 1<<20+1)
	var wantIDs []string
	for i := range healthy {
		err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
			id := fmt.Sprintf("ok-%05d", i)
			wantIDs = append(wantIDs, id)
			if _, err := w.o.Enqueue(ctx, tx, "tasks.outbox", []byte(id), &outbox.EnqueueOpts{ID: id}); err != nil {
				return err
			}
			if i%50 != 25 {
				return nil
			}
			j := i / 50
			subj, data := "orders.placed", []byte("no stream")
			if j%2 == 1 {
				subj, data = "tasks.big", big
			}
			_, err := w.o.Enqueue(ctx, tx, subj, data, &outbox.EnqueueOpts{ID: fmt.Sprintf("poison-%03d", j)})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var l enqLog
	l.committed = wantIDs
	r := w.settle(&l, time.Minute)
	out := mustJetworker(t, w.env(), "outbox", "dead", "ls")
	dead := strings.Count(out, "poison-")
	noStream, tooBig := strings.Count(out, "no stream captures"), strings.Count(out, "max payload")
	// The operator adds the missing stream, retries one row and deletes one.
	if _, err := w.js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	rows, err := w.o.ListDead(ctx, w.pool, outbox.DeadFilter{Subject: "orders.placed", Limit: 1})
	if err != nil || len(rows) != 1 {
		t.Fatalf("dead orders.placed rows: %v %v", rows, err)
	}
	retry := mustJetworker(t, w.env(), "outbox", "dead", "retry", strconv.FormatInt(rows[0].ID, 10))
	big1, _ := w.o.ListDead(ctx, w.pool, outbox.DeadFilter{Subject: "tasks.big", Limit: 1})
	rm := mustJetworker(t, w.env(), "outbox", "dead", "rm", strconv.FormatInt(big1[0].ID, 10))
	eventually(t, 30*time.Second, "retried row published", func() error {
		if m := streamMsgs(t, w.js, "ORDERS"); len(m) != 1 {
			return fmt.Errorf("ORDERS holds %d", len(m))
		}
		return nil
	})
	s, err := w.o.Stats(ctx, w.pool)
	if err != nil {
		t.Fatal(err)
	}
	figure(t, "scenario=outbox-poison healthy=%d poison=%d stored=%d lost=%d stored_twice=%d dead=%d dead_no_stream=%d dead_too_large=%d retried_published=1 dead_after_retry_and_rm=%d",
		healthy, poison, r.stored, r.lost, r.twice, dead, noStream, tooBig, s.Dead)
	w.assert(r, &l, healthy)
	if dead != poison || noStream != poison/2 || tooBig != poison-poison/2 {
		t.Errorf("dead ls: got %d rows (%d no stream, %d too large), want %d\n%s", dead, noStream, tooBig, poison, tail(out, 2000))
	}
	if !strings.Contains(retry, "1 dead rows moved back") || !strings.Contains(rm, "1 dead rows deleted") {
		t.Errorf("retry said %q, rm said %q", retry, rm)
	}
	if s.Dead != int64(poison-2) {
		t.Errorf("dead rows after retry and rm: got %d, want %d", s.Dead, poison-2)
	}
}
