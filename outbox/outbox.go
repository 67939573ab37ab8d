package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jetworker/jetworker/internal/wire"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"

	"github.com/jetworker/jetworker/internal/subject"
)

// DB is what the outbox's administrative calls ([Migrate], [Outbox.Stats],
// the dead-row tools) run their SQL on: *pgxpool.Pool, *pgx.Conn and
// pgx.Tx satisfy it.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// EnqueueOpts are per-row settings; nil means all defaults.
type EnqueueOpts struct {
	// ID is the task ID, published as Nats-Msg-Id: the server drops a
	// second message with the same ID inside the stream's duplicate
	// window. Give one derived from the business fact ("order-42-placed")
	// to de-duplicate across retries of the whole transaction too.
	// Defaults to Config.IDFunc (a new UUIDv7).
	ID string
	// Header holds extra headers to publish. Names starting with "Nats-"
	// or "Jetworker-" are refused with [ErrReservedHeader]. The map is not
	// modified.
	Header nats.Header
	// Delay makes the row due this long after the enqueuing transaction
	// started (PostgreSQL's now()); the relay publishes it then. Cannot
	// be combined with At.
	Delay time.Duration
	// At makes the row due at this time. A time in the past makes it due
	// at once. Cannot be combined with Delay.
	At time.Time
	// Key, when not empty, orders the row among the rows of the same key:
	// they are published one after the other in commit order, and a row
	// is not published before the earlier rows of its key are
	// acknowledged. Enqueue takes a per-key lock until the transaction
	// ends, so two transactions enqueuing the same key run one after the
	// other from that point on. Rows without a key are published in no
	// particular order.
	Key string
}

// Message is one row for [Outbox.EnqueueMany].
type Message struct {
	Subject string
	Data    []byte
	Opts    *EnqueueOpts
}

// Outbox writes task rows inside the caller's transactions, and lists,
// retries and deletes the rows the relay moved aside. It holds no
// connection and is safe for concurrent use.
type Outbox struct {
	cfg Config
	n   names

	insert  string // one row, available now + delay ($7 µs) or at $6
	lockKey string // per-key transaction lock
	lockAll string // per-key locks of many keys, in the array's order
	now     string
}

// New returns an Outbox for cfg. It does no I/O.
//
// Errors: [ErrInvalidConfig].
func New(cfg Config) (*Outbox, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := newNames(cfg)
	return &Outbox{
		cfg: cfg,
		n:   n,
		insert: "INSERT INTO " + n.table + " (msg_id, subject, payload, headers, order_key, available_at) " +
			"VALUES ($1, $2, $3, $4::jsonb, $5, COALESCE($6::timestamptz, now() + $7::bigint * interval '1 microsecond'))",
		lockKey: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d, hashtext($1))", n.lockKey),
		lockAll: fmt.Sprintf("SELECT count(pg_advisory_xact_lock(%d, hashtext(k))) FROM unnest($1::text[]) WITH ORDINALITY AS u(k, n)", n.lockKey),
		now:     "SELECT now()",
	}, nil
}

// Config returns the effective configuration, defaults applied.
func (o *Outbox) Config() Config { return o.cfg }

// row is a validated row ready to insert.
type row struct {
	id      string
	subject string
	data    []byte
	header  []byte // JSON, nil without headers
	key     string
	at      time.Time // zero: now() + delay
	delay   time.Duration
}

// prepare validates one enqueue and encodes its row; it does no I/O.
func (o *Outbox) prepare(subj string, data []byte, opts *EnqueueOpts) (row, error) {
	var op EnqueueOpts
	if opts != nil {
		op = *opts
	}
	r := row{id: op.ID, subject: subj, data: data, key: op.Key, at: op.At, delay: op.Delay}
	if r.id == "" {
		r.id = o.cfg.IDFunc()
	}
	if err := subject.Validate(subj); err != nil {
		return r, fmt.Errorf("outbox: enqueue: %w", err)
	}
	switch {
	case op.Delay < 0:
		return r, fmt.Errorf("%w: Delay %s is negative", ErrInvalidOptions, op.Delay)
	case op.Delay > 0 && !op.At.IsZero():
		return r, fmt.Errorf("%w: Delay and At are both set", ErrInvalidOptions)
	case strings.ContainsAny(r.id, "\r\n") || strings.TrimSpace(r.id) == "":
		return r, fmt.Errorf("%w: ID %q is blank or has a line break", ErrInvalidOptions, r.id)
	}
	if err := checkHeader(op.Header); err != nil {
		return r, err
	}
	if len(op.Header) > 0 {
		b, err := json.Marshal(op.Header)
		if err != nil {
			return r, fmt.Errorf("%w: encode headers: %v", ErrInvalidOptions, err)
		}
		r.header = b
	}
	if r.data == nil {
		r.data = []byte{} // the column is NOT NULL
	}
	return r, nil
}

// checkHeader refuses header names the server would reject or obey. The
// relay runs it on every row again, for rows inserted by hand.
func checkHeader(h nats.Header) error {
	var he *wire.HeaderError
	if err := wire.CheckHeader(h); errors.As(err, &he) {
		if he.Directive {
			return fmt.Errorf("%w: %w; give the message ID as EnqueueOpts.ID", ErrReservedHeader, err)
		}
		return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	return nil
}

// args returns the insert statement's arguments.
func (r row) args() []any {
	var header, key, at any
	if r.header != nil {
		header = string(r.header)
	}
	if r.key != "" {
		key = r.key
	}
	if !r.at.IsZero() {
		at = r.at
	}
	return []any{r.id, r.subject, r.data, header, key, at, r.delay.Microseconds()}
}

// Enqueue writes a task row in tx, the caller's transaction: if tx
// commits, the relay publishes the task on subject (the task type) with
// data as its payload; if tx rolls back, nothing is ever published. It
// returns the task ID (the Nats-Msg-Id it will be published with). It
// blocks for one round trip, and with EnqueueOpts.Key until no other
// open transaction holds the key.
//
// Errors, before any SQL: a subject error wrapping
// [jetworker.ErrInvalidSubject] or [jetworker.ErrReservedSubject],
// [ErrReservedHeader] and [ErrInvalidOptions]. After that, PostgreSQL's
// error (wrapped); the transaction is then aborted, as always in
// PostgreSQL.
func (o *Outbox) Enqueue(ctx context.Context, tx pgx.Tx, subject string, data []byte, opts *EnqueueOpts) (string, error) {
	r, err := o.prepare(subject, data, opts)
	if err != nil {
		return r.id, err
	}
	if r.key == "" {
		if _, err := tx.Exec(ctx, o.insert, r.args()...); err != nil {
			return r.id, fmt.Errorf("outbox: enqueue %q: %w", subject, err)
		}
		return r.id, nil
	}
	// The key's lock first, then the row, in one round trip: the row's id
	// is drawn after the lock, so ids of one key follow commit order.
	b := &pgx.Batch{}
	b.Queue(o.lockKey, r.key)
	b.Queue(o.insert, r.args()...)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return r.id, fmt.Errorf("outbox: enqueue %q with key %q: %w", subject, r.key, err)
	}
	return r.id, nil
}

// EnqueueSQL is [Outbox.Enqueue] for database/sql: tx may come from any
// PostgreSQL driver (pgx's stdlib, lib/pq) or an ORM that exposes its
// *sql.Tx. With EnqueueOpts.Key it takes two round trips.
func (o *Outbox) EnqueueSQL(ctx context.Context, tx *sql.Tx, subject string, data []byte, opts *EnqueueOpts) (string, error) {
	r, err := o.prepare(subject, data, opts)
	if err != nil {
		return r.id, err
	}
	if r.key != "" {
		if _, err := tx.ExecContext(ctx, o.lockKey, r.key); err != nil {
			return r.id, fmt.Errorf("outbox: enqueue %q: lock key %q: %w", subject, r.key, err)
		}
	}
	if _, err := tx.ExecContext(ctx, o.insert, r.args()...); err != nil {
		return r.id, fmt.Errorf("outbox: enqueue %q: %w", subject, err)
	}
	return r.id, nil
}

// EnqueueMany writes many task rows in tx with one COPY, which is much
// faster than one Enqueue per row. It returns their task IDs in order.
// Rows of one key keep their order in msgs. The keys' locks are taken in
// sorted order before the rows are written. Nothing is written if any
// message is invalid.
//
// Errors: those of [Outbox.Enqueue], naming the message's index.
func (o *Outbox) EnqueueMany(ctx context.Context, tx pgx.Tx, msgs []Message) ([]string, error) {
	rows := make([]row, len(msgs))
	ids := make([]string, len(msgs))
	var keys []string
	timed := false
	for i, m := range msgs {
		r, err := o.prepare(m.Subject, m.Data, m.Opts)
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
		rows[i], ids[i] = r, r.id
		if r.key != "" {
			keys = append(keys, r.key)
		}
		timed = timed || r.delay > 0 || !r.at.IsZero()
	}
	if len(rows) == 0 {
		return ids, nil
	}
	if len(keys) > 0 {
		slices.Sort(keys)
		keys = slices.Compact(keys)
		if _, err := tx.Exec(ctx, o.lockAll, keys); err != nil {
			return nil, fmt.Errorf("outbox: enqueue: lock %d keys: %w", len(keys), err)
		}
	}
	cols := []string{"msg_id", "subject", "payload", "headers", "order_key"}
	var now time.Time
	if timed {
		// COPY takes values, not expressions: delays count from the
		// transaction's start, as in Enqueue.
		if err := tx.QueryRow(ctx, o.now).Scan(&now); err != nil {
			return nil, fmt.Errorf("outbox: enqueue: read the transaction time: %w", err)
		}
		cols = append(cols, "available_at")
	}
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i == len(rows) {
			return nil, nil
		}
		r := rows[i]
		i++
		vals := r.args()[:5]
		if timed {
			at := r.at
			if at.IsZero() {
				at = now.Add(r.delay)
			}
			vals = append(vals, at)
		}
		return vals, nil
	})
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{o.cfg.Schema, o.cfg.Table}, cols, src); err != nil {
		return nil, fmt.Errorf("outbox: enqueue %d rows: %w", len(rows), err)
	}
	return ids, nil
}

// EnqueueJSON encodes v as JSON and enqueues it like [Outbox.Enqueue]. An
// encoding failure is returned before any SQL.
func EnqueueJSON[T any](ctx context.Context, o *Outbox, tx pgx.Tx, subject string, v T, opts *EnqueueOpts) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("outbox: enqueue %q: encode %T: %w", subject, v, err)
	}
	return o.Enqueue(ctx, tx, subject, data, opts)
}

// EnqueueSQLJSON encodes v as JSON and enqueues it like
// [Outbox.EnqueueSQL]. An encoding failure is returned before any SQL.
func EnqueueSQLJSON[T any](ctx context.Context, o *Outbox, tx *sql.Tx, subject string, v T, opts *EnqueueOpts) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("outbox: enqueue %q: encode %T: %w", subject, v, err)
	}
	return o.EnqueueSQL(ctx, tx, subject, data, opts)
}
