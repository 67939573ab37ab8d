package outbox

import (
	"context"
	_ "embed"
	"fmt"
)

//go:embed schema.sql
var schemaSQL string

// migrateLock is the advisory lock that serialises migrations ("jetwork").
const migrateLock int64 = 0x6a6574776f726b

// MigrationSQL returns the SQL script that creates the outbox of cfg: its
// schema, the outbox and dead-row tables, their indexes and the trigger
// that notifies the relays. It is what [Migrate] runs; tools that manage
// migrations themselves (goose, Atlas, Flyway) can ship it instead. The
// script is idempotent and takes an advisory lock for its transaction.
func MigrationSQL(cfg Config) (string, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return "", err
	}
	return newNames(cfg).sql(schemaSQL), nil
}

// Migrate creates or completes the outbox of cfg in db (a *pgxpool.Pool,
// *pgx.Conn or pgx.Tx). It is idempotent, and safe to run from several
// processes at once: the script runs as one transaction under an advisory
// lock. It changes nothing that exists already. Users of database/sql run
// [MigrationSQL] with db.ExecContext.
//
// Errors: [ErrInvalidConfig] before any SQL; PostgreSQL's error (wrapped)
// otherwise, for example when the role may not create the schema.
func Migrate(ctx context.Context, db DB, cfg Config) error {
	script, err := MigrationSQL(cfg)
	if err != nil {
		return err
	}
	// Without arguments the script goes over the simple protocol: all of
	// its statements in one implicit transaction.
	if _, err := db.Exec(ctx, script); err != nil {
		cfg = cfg.withDefaults()
		return fmt.Errorf("outbox: migrate %s.%s: %w", cfg.Schema, cfg.Table, err)
	}
	return nil
}
