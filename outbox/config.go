package outbox

import (
	"cmp"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Defaults for [Config].
const (
	// DefaultSchema is the PostgreSQL schema of the outbox tables.
	DefaultSchema = "public"
	// DefaultTable is the outbox table; dead rows go to DefaultTable+"_dead".
	DefaultTable = "jetworker_outbox"
)

// maxNameLen bounds schema and table names so that every derived name
// (indexes, the dead table, the notification channel "schema.table") stays
// within PostgreSQL's 63-byte identifiers.
const maxNameLen = 30

// Config says where the outbox lives. Enqueueing, the relay, the migration
// and the dead-row tools of one outbox must use the same Schema and Table.
// The zero value is ready to use.
type Config struct {
	// Schema is the PostgreSQL schema holding the outbox tables: lowercase
	// letters, digits and '_', starting with a letter or '_', at most 30
	// bytes, not starting with "pg_". Defaults to "public".
	Schema string
	// Table is the outbox table's name, with Schema's rules; the table of
	// dead rows is Table+"_dead". Defaults to "jetworker_outbox".
	Table string
	// DisableNotify leaves the notification trigger out (Migrate drops an
	// existing one) and makes relays poll instead of listening. A
	// transaction that notifies takes a database-wide lock while it
	// commits, so many small concurrent enqueuing transactions commit one
	// after the other; without the trigger they commit in parallel, and
	// rows wait for the next poll (RelayConfig.PollInterval; lower it).
	// Migrate and every relay of the outbox should agree. Defaults to
	// false: the trigger wakes the relays at commit.
	DisableNotify bool
	// IDFunc makes the message ID (Nats-Msg-Id) of a row enqueued without
	// EnqueueOpts.ID. It must return IDs unique across every outbox that
	// feeds the same stream. Defaults to time-ordered UUIDv7 strings.
	IDFunc func() string
}

func (c Config) withDefaults() Config {
	c.Schema = cmp.Or(c.Schema, DefaultSchema)
	c.Table = cmp.Or(c.Table, DefaultTable)
	if c.IDFunc == nil {
		c.IDFunc = newID
	}
	return c
}

// Validate reports what is wrong with c (after defaults), as New would,
// without I/O. Errors wrap [ErrInvalidConfig].
func (c Config) Validate() error { return c.withDefaults().validate() }

func (c Config) validate() error {
	return errors.Join(validateName("Schema", c.Schema), validateName("Table", c.Table))
}

// validateName checks a schema or table name. Names are quoted wherever
// they are used as well; the rules keep them readable and short enough
// for the names derived from them.
func validateName(field, s string) error {
	if s == "" || len(s) > maxNameLen {
		return fmt.Errorf("%w: %s %q must be 1 to %d bytes", ErrInvalidConfig, field, s, maxNameLen)
	}
	for i, r := range s {
		ok := r == '_' || (r >= 'a' && r <= 'z') || (i > 0 && r >= '0' && r <= '9')
		if !ok {
			return fmt.Errorf("%w: %s %q: want lowercase letters, digits and '_', starting with a letter or '_'", ErrInvalidConfig, field, s)
		}
	}
	if strings.HasPrefix(s, "pg_") {
		return fmt.Errorf("%w: %s %q: names starting with pg_ are reserved by PostgreSQL", ErrInvalidConfig, field, s)
	}
	return nil
}

// newID returns a time-ordered unique ID (UUIDv7).
func newID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// names are the quoted SQL names of one outbox, built from a validated
// Config.
type names struct {
	table    string // "schema"."table"
	dead     string // "schema"."table_dead"
	channel  string // notification channel, unquoted: schema.table
	listen   string // the channel as a quoted identifier, for LISTEN
	lockKey  int32  // advisory lock class of this outbox's per-key locks
	cfg      Config
	replacer *strings.Replacer
}

func newNames(c Config) names {
	q := func(parts ...string) string { return pgx.Identifier(parts).Sanitize() }
	lit := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	n := names{
		table:   q(c.Schema, c.Table),
		dead:    q(c.Schema, c.Table+"_dead"),
		channel: c.Schema + "." + c.Table,
		cfg:     c,
	}
	n.listen = q(n.channel)
	h := fnv.New32a()
	h.Write([]byte("jetworker outbox " + n.channel))
	n.lockKey = int32(h.Sum32())
	n.replacer = strings.NewReplacer(
		"{{lock}}", fmt.Sprint(migrateLock),
		"{{schema}}", q(c.Schema),
		"{{table}}", n.table,
		"{{dead}}", n.dead,
		"{{due_idx}}", q(c.Table+"_due_idx"),
		"{{key_idx}}", q(c.Table+"_key_idx"),
		"{{key_due_idx}}", q(c.Table+"_key_due_idx"),
		"{{published_idx}}", q(c.Table+"_published_idx"),
		"{{dead_idx}}", q(c.Table+"_dead_failed_idx"),
		"{{notify_fn}}", q(c.Schema, c.Table+"_notify"),
		"{{channel}}", lit(n.channel),
		"{{table_literal}}", lit(n.table),
		"{{trigger}}", q(c.Table+"_notify"),
		"{{trigger_literal}}", lit(c.Table+"_notify"),
		"{{notify}}", fmt.Sprint(!c.DisableNotify),
	)
	return n
}

// sql expands the {{...}} names in a statement.
func (n names) sql(s string) string { return n.replacer.Replace(s) }
