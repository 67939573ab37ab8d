package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jetworker/jetworker/internal/outboxdata"

	"github.com/nats-io/nats.go"
)

// DeadRow is a row the relay moved aside because the server refused it
// for good: ID (kept when retried), MsgID (the task ID, published as
// Nats-Msg-Id), Subject, Data, Header, Key (the ordering key, "" without
// one), AvailableAt, CreatedAt, Reason (why the server refused it) and
// FailedAt. (It is defined in a package without the PostgreSQL driver, so
// that the dashboard can show dead rows without linking it.)
type DeadRow = outboxdata.DeadRow

// Stats describes an outbox at one moment: Pending (rows not yet
// published, due or delayed), Due (pending rows due now), Lag (how long the
// oldest due row has been due, for an immediate row since its transaction
// started; 0 when none is due: the relay's lag, alert when it grows) and
// Dead (rows moved aside). (Defined without the PostgreSQL driver, as
// DeadRow.)
type Stats = outboxdata.Stats

// Stats counts the outbox's pending, due and dead rows and measures the
// lag, in one query whose cost grows with the pending and dead rows
// (scrape it every few seconds, not per request). Times are PostgreSQL's.
func (o *Outbox) Stats(ctx context.Context, db DB) (Stats, error) {
	var s Stats
	var lag float64
	q := "SELECT count(*), count(*) FILTER (WHERE available_at <= now())," +
		" COALESCE(extract(epoch FROM now() - min(available_at) FILTER (WHERE available_at <= now())), 0)::float8," +
		" (SELECT count(*) FROM " + o.n.dead + ")" +
		" FROM " + o.n.table + " WHERE published_at IS NULL"
	if err := db.QueryRow(ctx, q).Scan(&s.Pending, &s.Due, &lag, &s.Dead); err != nil {
		return Stats{}, fmt.Errorf("outbox: stats of %s: %w", o.n.channel, err)
	}
	s.Lag = time.Duration(lag * float64(time.Second))
	return s, nil
}

// DeadFilter selects dead rows for [Outbox.ListDead]; the zero value
// selects all: Subject (rows of this subject), AfterID (rows with a larger
// ID: pagination) and Limit (the most rows returned; defaults to 100).
type DeadFilter = outboxdata.DeadFilter

// ListDead returns dead rows in ID order.
func (o *Outbox) ListDead(ctx context.Context, db DB, f DeadFilter) ([]DeadRow, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	var subj any
	if f.Subject != "" {
		subj = f.Subject
	}
	rows, err := db.Query(ctx, "SELECT id, msg_id, subject, payload, headers, COALESCE(order_key, ''), available_at, created_at, reason, failed_at"+
		" FROM "+o.n.dead+" WHERE id > $1 AND ($2::text IS NULL OR subject = $2) ORDER BY id LIMIT $3", f.AfterID, subj, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: list dead rows: %w", err)
	}
	defer rows.Close()
	var out []DeadRow
	for rows.Next() {
		var d DeadRow
		var h []byte
		if err := rows.Scan(&d.ID, &d.MsgID, &d.Subject, &d.Data, &h, &d.Key, &d.AvailableAt, &d.CreatedAt, &d.Reason, &d.FailedAt); err != nil {
			return nil, fmt.Errorf("outbox: list dead rows: %w", err)
		}
		d.Header = decodeHeader(h)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: list dead rows: %w", err)
	}
	return out, nil
}

// RetryDead moves dead rows back into the outbox, due at once, with their
// ID, task ID and key: a retried row goes before the later rows of its
// key. Use it once the cause is fixed (the stream now captures the
// subject). It returns how many rows moved; IDs that are not dead rows
// make it return an error wrapping [ErrDeadNotFound] after moving the
// others.
func (o *Outbox) RetryDead(ctx context.Context, db DB, ids ...int64) (int, error) {
	q := "WITH d AS (DELETE FROM " + o.n.dead + " WHERE id = ANY($1)" +
		" RETURNING id, msg_id, subject, payload, headers, order_key, created_at)" +
		" INSERT INTO " + o.n.table + " (id, msg_id, subject, payload, headers, order_key, created_at)" +
		" OVERRIDING SYSTEM VALUE SELECT * FROM d RETURNING id"
	return o.byIDs(ctx, db, "retry", q, ids)
}

// DeleteDead deletes dead rows for good. It returns how many it deleted;
// IDs that are not dead rows make it return an error wrapping
// [ErrDeadNotFound] after deleting the others.
func (o *Outbox) DeleteDead(ctx context.Context, db DB, ids ...int64) (int, error) {
	return o.byIDs(ctx, db, "delete", "DELETE FROM "+o.n.dead+" WHERE id = ANY($1) RETURNING id", ids)
}

func (o *Outbox) byIDs(ctx context.Context, db DB, what, q string, ids []int64) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	rows, err := db.Query(ctx, q, ids)
	if err != nil {
		return 0, fmt.Errorf("outbox: %s dead rows: %w", what, err)
	}
	defer rows.Close()
	var done []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return 0, fmt.Errorf("outbox: %s dead rows: %w", what, err)
		}
		done = append(done, id)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("outbox: %s dead rows: %w", what, err)
	}
	var missing []int64
	for _, id := range ids {
		if !slices.Contains(done, id) && !slices.Contains(missing, id) {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return len(done), fmt.Errorf("%w: %v", ErrDeadNotFound, missing)
	}
	return len(done), nil
}

// PrunePublished deletes rows the relay marked published
// (RelayConfig.KeepPublished) before the given time, and returns how
// many. It does nothing for relays that delete rows.
func (o *Outbox) PrunePublished(ctx context.Context, db DB, before time.Time) (int64, error) {
	tag, err := db.Exec(ctx, "DELETE FROM "+o.n.table+" WHERE published_at IS NOT NULL AND published_at < $1", before)
	if err != nil {
		return 0, fmt.Errorf("outbox: prune published rows: %w", err)
	}
	return tag.RowsAffected(), nil
}

// decodeHeader decodes the headers column; malformed JSON (a row written
// by hand) gives nil.
func decodeHeader(b []byte) nats.Header {
	if len(b) == 0 {
		return nil
	}
	var h map[string][]string
	if json.Unmarshal(b, &h) != nil {
		return nil
	}
	return nats.Header(h)
}
