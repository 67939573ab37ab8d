package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jetworker/jetworker/internal/wire"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/internal/logkey"
	"github.com/jetworker/jetworker/internal/subject"
)

// queries are the relay's statements for one outbox.
type queries struct {
	claim, claimKeyed, followers, del, mark, dead, nextDue string
}

// rowCols are the columns a batch reads; due says whether the row may be
// published now (claimed rows always are; followers may not be yet).
const rowCols = "id, msg_id, subject, payload, headers, order_key, available_at, created_at, available_at <= now()"

// keyWindow is how many of the oldest due keyed rows a keyed claim looks
// at, in batch sizes: the first rows of their keys among them are
// claimed. It bounds the claim's cost when keys have many rows waiting.
const keyWindow = 4

func newQueries(n names) queries {
	return queries{
		// Due rows without a key, oldest first. SKIP LOCKED lets relays
		// share rows.
		claim: "SELECT " + rowCols + " FROM " + n.table +
			" WHERE published_at IS NULL AND order_key IS NULL AND available_at <= now()" +
			" ORDER BY available_at, id LIMIT $1 FOR UPDATE SKIP LOCKED",
		// Among the oldest due keyed rows ($2 of them), those with no
		// earlier unpublished row of their key: not one claimed by another
		// relay, waiting for its PubAck, or still delayed.
		claimKeyed: "SELECT " + rowCols + " FROM " + n.table + " o" +
			" WHERE id IN (SELECT id FROM " + n.table +
			" WHERE published_at IS NULL AND order_key IS NOT NULL AND available_at <= now() ORDER BY available_at, id LIMIT $2)" +
			" AND NOT EXISTS (SELECT 1 FROM " + n.table + " p" +
			" WHERE p.order_key = o.order_key AND p.published_at IS NULL AND p.id < o.id)" +
			" ORDER BY available_at, id LIMIT $1 FOR UPDATE SKIP LOCKED",
		// Up to $3 rows after each claimed first row ($1 keys, $2 ids).
		// No other relay can take them while we hold their key's first
		// row, so they need no lock.
		followers: "SELECT f.* FROM unnest($1::text[], $2::bigint[]) AS h(k, id) CROSS JOIN LATERAL (" +
			"SELECT " + rowCols + " FROM " + n.table +
			" WHERE order_key = h.k AND published_at IS NULL AND id > h.id ORDER BY id LIMIT $3) AS f",
		del: "DELETE FROM " + n.table + " WHERE id = ANY($1)",
		mark: "UPDATE " + n.table + " t SET published_at = now(), stream = u.stream, stream_seq = u.seq" +
			" FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS u(id, stream, seq) WHERE t.id = u.id",
		dead: "WITH m AS (DELETE FROM " + n.table + " WHERE id = ANY($1)" +
			" RETURNING id, msg_id, subject, payload, headers, order_key, available_at, created_at)" +
			" INSERT INTO " + n.dead + " (id, msg_id, subject, payload, headers, order_key, available_at, created_at, reason)" +
			" SELECT m.id, m.msg_id, m.subject, m.payload, m.headers, m.order_key, m.available_at, m.created_at, r.reason" +
			" FROM m JOIN unnest($1::bigint[], $2::text[]) AS r(id, reason) ON r.id = m.id" +
			" ON CONFLICT (id) DO UPDATE SET reason = excluded.reason, failed_at = now()",
		nextDue: "SELECT extract(epoch FROM LEAST(" +
			"(SELECT min(available_at) FROM " + n.table + " WHERE published_at IS NULL AND order_key IS NULL AND available_at > now())," +
			"(SELECT min(available_at) FROM " + n.table + " WHERE published_at IS NULL AND order_key IS NOT NULL AND available_at > now()))" +
			" - now())::float8",
	}
}

// state is what became of a claimed row in this batch.
type state int

const (
	waiting   state = iota // not published in this batch (stays)
	published              // acknowledged: delete or mark
	dead                   // refused for good: move aside
	failed                 // transient failure: stays, retried
)

// item is one claimed row and its fate.
type item struct {
	id          int64
	msgID       string
	subject     string
	payload     []byte
	header      []byte
	key         *string
	availableAt time.Time
	createdAt   time.Time
	due         bool

	state  state
	reason string // dead
	err    error  // failed
	stream string
	seq    uint64
	dup    bool
	paf    jetstream.PubAckFuture
}

func scanItems(rows pgx.Rows) ([]*item, error) {
	var out []*item
	for rows.Next() {
		it := &item{}
		if err := rows.Scan(&it.id, &it.msgID, &it.subject, &it.payload, &it.header, &it.key, &it.availableAt, &it.createdAt, &it.due); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// batchResult is what the loop needs to know of a batch.
type batchResult struct {
	claimed int
	err     error
}

// batch claims, publishes and settles one batch in one transaction. The
// claim's row locks keep other relays off the rows until the deletes
// commit; if the relay dies first, the transaction rolls back and another
// relay publishes the rows again, with the same Nats-Msg-Id.
func (r *Relay) batch(ctx context.Context, wake chan<- struct{}) batchResult {
	if st := r.nc.Status(); st != nats.CONNECTED {
		return batchResult{err: fmt.Errorf("nats connection %s", st)}
	}
	// A batch that has started finishes even when the relay is stopping:
	// its publishes are out, and deleting what was acknowledged saves
	// publishing it again.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.AckTimeout+dbTimeout)
	defer cancel()
	b := Batch{start: time.Now()}
	res := r.run(bctx, wake, &b)
	b.Duration = time.Since(b.start)
	if res.err != nil && b.Err == nil {
		b.Err = res.err
	}
	if b.Claimed > 0 || b.Err != nil {
		if f := r.cfg.Hooks.BatchFunc; f != nil {
			f(b)
		}
	}
	return res
}

func (r *Relay) run(ctx context.Context, wake chan<- struct{}, b *Batch) batchResult {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return batchResult{err: fmt.Errorf("begin: %w", err)}
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	items, err := r.claim(ctx, tx)
	if err != nil {
		return batchResult{err: fmt.Errorf("claim: %w", err)}
	}
	if len(items) == 0 {
		return batchResult{}
	}
	if len(items) == r.cfg.BatchSize {
		signal(wake) // a backlog: another loop claims the next batch meanwhile
	}
	chains, err := r.followers(ctx, tx, items)
	if err != nil {
		return batchResult{claimed: len(items), err: fmt.Errorf("claim followers: %w", err)}
	}
	claimed := len(items)
	for _, c := range chains {
		claimed += len(c) - 1
	}
	b.Claimed = claimed

	claimedAt := time.Now()
	r.publish(ctx, items, chains)
	publishedAt := time.Now()

	var ok, gone []*item
	var firstErr error
	for _, it := range all(items, chains) {
		switch it.state {
		case published:
			ok = append(ok, it)
			b.Published++
			if it.dup {
				b.Duplicates++
			}
		case dead:
			gone = append(gone, it)
			b.Dead++
		case failed:
			b.Failed++
			if firstErr == nil {
				firstErr = it.err
			}
		}
	}
	if err := r.settle(ctx, tx, ok, gone); err != nil {
		return batchResult{claimed: claimed, err: err}
	}
	if err := tx.Commit(ctx); err != nil {
		return batchResult{claimed: claimed, err: fmt.Errorf("commit: %w", err)}
	}
	b.Err = firstErr
	r.log.LogAttrs(ctx, slog.LevelDebug, "outbox batch", slog.Int("rows", claimed),
		slog.Duration("claim", claimedAt.Sub(b.start)), slog.Duration("publish", publishedAt.Sub(claimedAt)), slog.Duration("settle", time.Since(publishedAt)),
		slog.Int("published", b.Published), slog.Int("duplicates", b.Duplicates), slog.Int("dead", b.Dead), slog.Int("failed", b.Failed))
	for _, it := range gone {
		d := it.deadRow()
		r.log.LogAttrs(ctx, slog.LevelError, "outbox row moved aside: the server refused it for good",
			slog.Int64("row", it.id), slog.String(logkey.TaskID, it.msgID), slog.String(logkey.Subject, it.subject),
			slog.String("reason", it.reason))
		if f := r.cfg.Hooks.DeadFunc; f != nil {
			f(d)
		}
	}
	if firstErr != nil {
		return batchResult{claimed: claimed, err: fmt.Errorf("%d of %d rows not published: %w", b.Failed, claimed, firstErr)}
	}
	return batchResult{claimed: claimed}
}

// claim claims up to BatchSize due rows, with and without keys; every
// other batch claims the keyed rows first, so neither kind waits for a
// backlog of the other.
func (r *Relay) claim(ctx context.Context, tx pgx.Tx) ([]*item, error) {
	keyedFirst := r.turn.Add(1)%2 == 0
	var items []*item
	for i := range 2 {
		room := r.cfg.BatchSize - len(items)
		if room == 0 {
			break
		}
		var rows pgx.Rows
		var err error
		if (i == 0) == keyedFirst {
			rows, err = tx.Query(ctx, r.q.claimKeyed, room, keyWindow*r.cfg.BatchSize)
		} else {
			rows, err = tx.Query(ctx, r.q.claim, room)
		}
		if err != nil {
			return nil, err
		}
		more, err := scanItems(rows)
		if err != nil {
			return nil, err
		}
		items = append(items, more...)
	}
	return items, nil
}

// followers reads the rows after the claimed heads of their keys, an
// equal share of the batch's room for each key, and returns each key's
// chain, head first.
func (r *Relay) followers(ctx context.Context, tx pgx.Tx, heads []*item) (map[string][]*item, error) {
	room := r.cfg.BatchSize - len(heads)
	var keys []string
	var ids []int64
	chains := map[string][]*item{}
	for _, it := range heads {
		if it.key != nil {
			keys = append(keys, *it.key)
			ids = append(ids, it.id)
			chains[*it.key] = []*item{it}
		}
	}
	if len(keys) == 0 || room <= 0 {
		return chains, nil
	}
	share := (room + len(keys) - 1) / len(keys)
	rows, err := tx.Query(ctx, r.q.followers, keys, ids, share)
	if err != nil {
		return nil, err
	}
	more, err := scanItems(rows)
	if err != nil {
		return nil, err
	}
	for _, it := range more {
		if room == 0 {
			break
		}
		chains[*it.key] = append(chains[*it.key], it)
		room--
	}
	return chains, nil
}

// all returns every item of the batch once: the claimed rows and the
// followers of the chains.
func all(items []*item, chains map[string][]*item) []*item {
	out := items[:len(items):len(items)]
	for _, c := range chains {
		out = append(out, c[1:]...)
	}
	return out
}

// publish sends the batch in waves: the unkeyed rows and the head of each
// key first, all at once; then the next row of every key whose previous
// row is settled (acknowledged or moved aside), and so on. A key never
// has two publishes unacknowledged, so a failure cannot reorder it; a
// failed or delayed row ends its key's chain for this batch.
func (r *Relay) publish(ctx context.Context, items []*item, chains map[string][]*item) {
	wave := items
	pos := map[string]int{}
	lookups := map[string]error{} // subject -> result of the no-stream check
	for len(wave) > 0 {
		for _, it := range wave {
			r.send(it)
		}
		for _, it := range wave {
			r.await(ctx, it, lookups)
		}
		var next []*item
		for _, it := range wave {
			if it.key == nil || (it.state != published && it.state != dead) {
				continue
			}
			k := *it.key
			pos[k]++
			if c := chains[k]; pos[k] < len(c) && c[pos[k]].due {
				next = append(next, c[pos[k]])
			}
		}
		wave = next
	}
}

// send validates the row again (rows may be inserted by hand) and starts
// its publish; a row that can never be published is marked dead.
func (r *Relay) send(it *item) {
	msg, reason := r.message(it)
	if msg == nil {
		it.state, it.reason = dead, reason
		return
	}
	paf, err := r.js.PublishMsgAsync(msg)
	if err != nil {
		it.state, it.err = failed, fmt.Errorf("publish %q: %w", it.subject, err)
		return
	}
	it.paf = paf
}

// message builds the row's message, or returns the reason it is refused.
func (r *Relay) message(it *item) (*nats.Msg, string) {
	if err := subject.Validate(it.subject); err != nil {
		return nil, err.Error()
	}
	h := nats.Header{}
	if len(it.header) > 0 {
		if err := json.Unmarshal(it.header, (*map[string][]string)(&h)); err != nil {
			return nil, fmt.Sprintf("headers are not a JSON object of string arrays: %v", err)
		}
		if err := checkHeader(h); err != nil {
			return nil, err.Error()
		}
	}
	h[jetworker.HeaderMsgID] = []string{it.msgID}
	h[jetworker.HeaderEnqueuedAt] = []string{it.availableAt.UTC().Format(time.RFC3339Nano)}
	if limit := r.nc.MaxPayload(); limit > 0 {
		if size := int64(len(it.payload) + wire.HeaderSize(h)); size > limit {
			return nil, fmt.Sprintf("message of %d bytes (payload %d) exceeds the server's max payload of %d bytes", size, len(it.payload), limit)
		}
	}
	return &nats.Msg{Subject: it.subject, Data: it.payload, Header: h}, ""
}

// await waits for the row's PubAck and classifies a failure.
func (r *Relay) await(ctx context.Context, it *item, lookups map[string]error) {
	if it.paf == nil {
		return
	}
	var err error
	select {
	case ack := <-it.paf.Ok():
		it.state, it.stream, it.seq, it.dup = published, ack.Stream, ack.Sequence, ack.Duplicate
		return
	case err = <-it.paf.Err():
	case <-ctx.Done():
		err = ctx.Err()
	}
	if reason, permanent := r.refused(ctx, it.subject, err, lookups); permanent {
		it.state, it.reason = dead, reason
		return
	}
	it.state, it.err = failed, fmt.Errorf("publish %q: %w", it.subject, err)
}

// refused reports whether a publish error means the server refuses the
// row for good, and why. No responders means no stream captures the
// subject only if the stream lookup agrees (a stream without a leader
// does not answer either); an API error is permanent unless the server
// says it is unavailable (503: stream full with discard new, no
// resources, no leader). Everything else (timeouts, disconnects) passes.
func (r *Relay) refused(ctx context.Context, subj string, err error, lookups map[string]error) (string, bool) {
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		lerr, ok := lookups[subj]
		if !ok {
			lctx, cancel := context.WithTimeout(ctx, r.cfg.AckTimeout)
			_, lerr = r.api.StreamNameBySubject(lctx, subj)
			cancel()
			lookups[subj] = lerr
		}
		if errors.Is(lerr, jetstream.ErrStreamNotFound) {
			return fmt.Sprintf("no stream captures the subject %q", subj), true
		}
		return "", false
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.Code != 503 {
		return fmt.Sprintf("refused by the server: %s (code %d, err_code %d)", apiErr.Description, apiErr.Code, apiErr.ErrorCode), true
	}
	return "", false
}

// settle deletes (or marks) the published rows and moves the dead ones
// aside, in one round trip.
func (r *Relay) settle(ctx context.Context, tx pgx.Tx, ok, gone []*item) error {
	if len(ok) == 0 && len(gone) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	if len(ok) > 0 {
		ids := make([]int64, len(ok))
		for i, it := range ok {
			ids[i] = it.id
		}
		if r.cfg.KeepPublished {
			streams := make([]string, len(ok))
			seqs := make([]int64, len(ok))
			for i, it := range ok {
				streams[i], seqs[i] = it.stream, int64(it.seq)
			}
			b.Queue(r.q.mark, ids, streams, seqs)
		} else {
			b.Queue(r.q.del, ids)
		}
	}
	if len(gone) > 0 {
		ids := make([]int64, len(gone))
		reasons := make([]string, len(gone))
		for i, it := range gone {
			ids[i], reasons[i] = it.id, it.reason
		}
		b.Queue(r.q.dead, ids, reasons)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("settle %d published and %d dead rows: %w", len(ok), len(gone), err)
	}
	return nil
}

func (it *item) deadRow() DeadRow {
	d := DeadRow{
		ID: it.id, MsgID: it.msgID, Subject: it.subject, Data: it.payload,
		AvailableAt: it.availableAt, CreatedAt: it.createdAt, Reason: it.reason, FailedAt: time.Now(),
	}
	if it.key != nil {
		d.Key = *it.key
	}
	d.Header = decodeHeader(it.header)
	return d
}
