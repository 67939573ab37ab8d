package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/outbox"
)

const outboxSynopsis = ` migrate|relay|dead [args]

  migrate              create or complete the outbox tables (idempotent)
  relay                move committed outbox rows into JetStream until stopped
  dead ls              list the rows the server refused for good, with the reason
  dead retry ID...     move dead rows back into the outbox
  dead rm ID...        delete dead rows`

// outboxEnv configures "jetworker outbox".
type outboxEnv struct {
	Base
	DatabaseURL   string        `envconfig:"DATABASE_URL" desc:"PostgreSQL URL of the outbox (a secret: never printed)"`
	Schema        string        `envconfig:"OUTBOX_SCHEMA" default:"public" desc:"schema of the outbox tables"`
	Table         string        `envconfig:"OUTBOX_TABLE" default:"jetworker_outbox" desc:"outbox table (dead rows in <table>_dead)"`
	BatchSize     int           `envconfig:"OUTBOX_BATCH_SIZE" default:"1000" desc:"relay: most rows per batch"`
	Concurrency   int           `envconfig:"OUTBOX_CONCURRENCY" default:"2" desc:"relay: batches in flight at once"`
	PollInterval  time.Duration `envconfig:"OUTBOX_POLL_INTERVAL" default:"1s" desc:"relay: how often to look for rows without a notification"`
	AckTimeout    time.Duration `envconfig:"OUTBOX_ACK_TIMEOUT" default:"5s" desc:"relay: wait for a PubAck this long before trying again"`
	KeepPublished bool          `envconfig:"OUTBOX_KEEP_PUBLISHED" desc:"relay: mark published rows instead of deleting them"`
	DisableNotify bool          `envconfig:"OUTBOX_DISABLE_NOTIFY" desc:"no notification trigger: relays poll (migrate drops the trigger)"`
}

func (e outboxEnv) config() outbox.Config {
	return outbox.Config{Schema: e.Schema, Table: e.Table, DisableNotify: e.DisableNotify}
}

func (e outboxEnv) relayConfig(log *slog.Logger) outbox.RelayConfig {
	return outbox.RelayConfig{
		Config:        e.config(),
		BatchSize:     e.BatchSize,
		Concurrency:   e.Concurrency,
		PollInterval:  e.PollInterval,
		AckTimeout:    e.AckTimeout,
		KeepPublished: e.KeepPublished,
		Logger:        log,
	}
}

func runOutbox(ctx context.Context, std *stdio, args []string) error {
	var e outboxEnv
	fs := newFlagSet("outbox", std, outboxSynopsis, &e)
	if err := e.Base.bind(fs, &e); err != nil {
		return err
	}
	f := flagEnv{fs}
	var dbURL string
	fs.StringVar(&dbURL, "database-url", "", "PostgreSQL URL (JETWORKER_DATABASE_URL; prefer the variable, flags show in ps)")
	f.str(&e.Schema, "schema", "OUTBOX_SCHEMA", "outbox schema")
	f.str(&e.Table, "table", "OUTBOX_TABLE", "outbox table")
	f.integer(&e.BatchSize, "batch-size", "OUTBOX_BATCH_SIZE", "rows per batch")
	f.integer(&e.Concurrency, "concurrency", "OUTBOX_CONCURRENCY", "batches in flight")
	f.dur(&e.PollInterval, "poll-interval", "OUTBOX_POLL_INTERVAL", "poll interval")
	f.dur(&e.AckTimeout, "ack-timeout", "OUTBOX_ACK_TIMEOUT", "PubAck timeout")
	f.boolean(&e.KeepPublished, "keep-published", "OUTBOX_KEEP_PUBLISHED", "mark instead of delete")
	f.boolean(&e.DisableNotify, "disable-notify", "OUTBOX_DISABLE_NOTIFY", "no notification trigger")
	var asJSON bool
	fs.BoolVar(&asJSON, "json", false, "dead ls: print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if dbURL != "" {
		e.DatabaseURL = dbURL
	}
	if len(pos) == 0 {
		fs.Usage()
		return usagef("missing subcommand: migrate, relay or dead")
	}
	if e.DatabaseURL == "" {
		return usagef("set JETWORKER_DATABASE_URL to the outbox's PostgreSQL URL")
	}
	sub := strings.Join(pos[:min(len(pos), 2)], " ")
	var ids []int64
	switch {
	case pos[0] == "migrate" && len(pos) == 1, pos[0] == "relay" && len(pos) == 1, sub == "dead ls" && len(pos) == 2:
	case sub == "dead retry" || sub == "dead rm":
		if ids, err = parseIDs(pos[2:]); err != nil {
			return err
		}
	default:
		return usagef("unknown outbox subcommand %q: want migrate, relay, dead ls, dead retry ID... or dead rm ID...", strings.Join(pos, " "))
	}
	if _, err := outbox.New(e.config()); err != nil {
		return usagef("%v", err)
	}
	log, err := newLogger(e.LogEnv, std.err, std.isTTY)
	if err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, e.DatabaseURL)
	if err != nil {
		return redactDB(fmt.Errorf("database: %w", err), e.DatabaseURL)
	}
	defer pool.Close()
	ob, _ := outbox.New(e.config())

	switch sub {
	case "migrate":
		if err := outbox.Migrate(ctx, pool, e.config()); err != nil {
			return redactDB(err, e.DatabaseURL)
		}
		fmt.Fprintf(std.out, "outbox %s.%s migrated on %s\n", e.Schema, e.Table, redactDBURL(e.DatabaseURL))
		return nil
	case "relay":
		return redactDB(runOutboxRelay(ctx, std, e, pool, log), e.DatabaseURL)
	case "dead ls":
		rows, err := ob.ListDead(ctx, pool, outbox.DeadFilter{Limit: 1000})
		if err != nil {
			return redactDB(err, e.DatabaseURL)
		}
		if asJSON {
			enc := json.NewEncoder(std.out)
			enc.SetIndent("", "  ")
			return enc.Encode(rows)
		}
		tw := tabwriter.NewWriter(std.out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tFAILED AT\tSUBJECT\tTASK ID\tREASON")
		for _, d := range rows {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", d.ID, d.FailedAt.Local().Format(time.DateTime), d.Subject, d.MsgID, oneLine(d.Reason, 80))
		}
		_ = tw.Flush()
		fmt.Fprintf(std.out, "%d dead rows\n", len(rows))
		return nil
	case "dead retry":
		n, err := ob.RetryDead(ctx, pool, ids...)
		fmt.Fprintf(std.out, "%d dead rows moved back into the outbox\n", n)
		return redactDB(err, e.DatabaseURL)
	default: // dead rm
		n, err := ob.DeleteDead(ctx, pool, ids...)
		fmt.Fprintf(std.out, "%d dead rows deleted\n", n)
		return redactDB(err, e.DatabaseURL)
	}
}

func runOutboxRelay(ctx context.Context, std *stdio, e outboxEnv, pool *pgxpool.Pool, log *slog.Logger) error {
	_, c, err := e.open(ctx, std, "outbox relay")
	if err != nil {
		return err
	}
	defer c.Close()
	logConfig(log, "outbox relay", e.Base, slog.String("database_url", redactDBURL(e.DatabaseURL)),
		slog.String("outbox", e.Schema+"."+e.Table), slog.Int("batch_size", e.BatchSize), slog.Int("concurrency", e.Concurrency))
	r, err := outbox.NewRelay(pool, c.js, e.relayConfig(log))
	if err != nil {
		return err
	}
	return jetworker.RunAll(ctx, jetworker.RunnerFunc(c.watch), r)
}

func parseIDs(args []string) ([]int64, error) {
	if len(args) == 0 {
		return nil, usagef("give the IDs of the dead rows (jetworker outbox dead ls lists them)")
	}
	ids := make([]int64, len(args))
	for i, a := range args {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id <= 0 {
			return nil, usagef("dead row ID %q: want a positive integer", a)
		}
		ids[i] = id
	}
	return ids, nil
}

// oneLine shortens s to n runes on one line.
func oneLine(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// dsnPassword finds the password of a key=value connection string.
var dsnPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// redactDBURL hides the password of a PostgreSQL URL or key=value
// connection string (in the user info and in the query).
func redactDBURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme != "" {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "REDACTED")
			u.RawQuery = q.Encode()
		}
		return strings.ReplaceAll(u.String(), "REDACTED", "[REDACTED]")
	}
	return dsnPassword.ReplaceAllString(s, "${1}[REDACTED]")
}

// redactDB removes the database password from err's text, in case a
// driver error quotes the connection string.
func redactDB(err error, dbURL string) error {
	if err == nil {
		return nil
	}
	var pw []string
	if u, perr := url.Parse(dbURL); perr == nil && u.Scheme != "" {
		if p, ok := u.User.Password(); ok {
			pw = append(pw, p, url.QueryEscape(p), url.PathEscape(p))
		}
		if p := u.Query().Get("password"); p != "" {
			pw = append(pw, p)
		}
	} else if m := dsnPassword.FindStringSubmatch(dbURL); m != nil {
		pw = append(pw, strings.Trim(m[2], "'"))
	}
	msg := err.Error()
	for _, p := range pw {
		if len(p) >= 3 {
			msg = strings.ReplaceAll(msg, p, "[REDACTED]")
		}
	}
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}
