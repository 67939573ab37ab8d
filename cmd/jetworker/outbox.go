package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/dashboard"
	"github.com/jetworker/jetworker/metrics/outboxmetrics"
	"github.com/jetworker/jetworker/outbox"
)

const outboxSynopsis = ` migrate|relay|dead [args]`

const outboxAbout = `
The transactional outbox on PostgreSQL: services write task rows in their
own transactions (package outbox), and the relay publishes committed rows
to JetStream.

  migrate              create or complete the outbox tables (idempotent)
  relay                publish committed outbox rows until stopped; with
                       --http-addr it serves the dashboard, the outbox page
                       listing the dead rows
  dead ls              list the rows the server refused for good, with the reason
  dead retry ID...     move dead rows back into the outbox
  dead rm ID...        delete dead rows`

// OutboxEnv says where the outbox is.
type OutboxEnv struct {
	DatabaseURL   string `envconfig:"JETWORKER_DATABASE_URL" flag:"database-url" meta:"URL" secret:"url" group:"Outbox" desc:"PostgreSQL URL (or key=value string) of the outbox; prefer the variable, flags show in ps"`
	Schema        string `envconfig:"JETWORKER_OUTBOX_SCHEMA" flag:"schema" meta:"NAME" default:"public" group:"Outbox" desc:"schema of the outbox tables"`
	Table         string `envconfig:"JETWORKER_OUTBOX_TABLE" flag:"table" meta:"NAME" default:"jetworker_outbox" group:"Outbox" desc:"outbox table (dead rows in <table>_dead)"`
	DisableNotify bool   `envconfig:"JETWORKER_OUTBOX_DISABLE_NOTIFY" flag:"disable-notify" group:"Outbox" advanced:"true" desc:"no notification trigger: relays poll (migrate drops the trigger)"`
}

// RelayEnv tunes the relay.
type RelayEnv struct {
	BatchSize     int           `envconfig:"JETWORKER_OUTBOX_BATCH_SIZE" flag:"batch-size" default:"1000" group:"Relay" desc:"most rows per batch"`
	Concurrency   int           `envconfig:"JETWORKER_OUTBOX_CONCURRENCY" flag:"concurrency" default:"2" group:"Relay" desc:"batches in flight at once"`
	PollInterval  time.Duration `envconfig:"JETWORKER_OUTBOX_POLL_INTERVAL" flag:"poll-interval" default:"1s" group:"Relay" desc:"how often to look for rows without a notification"`
	AckTimeout    time.Duration `envconfig:"JETWORKER_OUTBOX_ACK_TIMEOUT" flag:"ack-timeout" default:"5s" group:"Relay" desc:"wait this long for a PubAck before trying a row again"`
	KeepPublished bool          `envconfig:"JETWORKER_OUTBOX_KEEP_PUBLISHED" flag:"keep-published" group:"Relay" advanced:"true" desc:"mark published rows instead of deleting them (prune them yourself)"`
}

// outboxEnv configures "jetworker outbox".
type outboxEnv struct {
	OutboxEnv
	RelayEnv
	Base
	StreamEnv
	DLQStreamEnv
	HTTPEnv
	TaskBucketEnv
	MetricsEnv
}

// dashboardConfig maps the HTTP and metrics settings of the relay.
func (e outboxEnv) dashboardConfig(log *slog.Logger) (dashboard.Config, bool) {
	cfg, ok := dashboardConfig(e.HTTPEnv, e.MetricsEnv, e.Stream, e.DLQStream, log)
	cfg.TaskBucket = e.TaskBucket
	return cfg, ok
}

// outboxOpts are the options of one "jetworker outbox" call.
type outboxOpts struct {
	JSON bool `flag:"json" desc:"dead ls: print JSON"`
}

// config maps the settings to the outbox package's Config.
func (e OutboxEnv) config() outbox.Config {
	return outbox.Config{Schema: e.Schema, Table: e.Table, DisableNotify: e.DisableNotify}
}

// relayConfig maps the settings to the relay's Config.
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
	var (
		e    outboxEnv
		opts outboxOpts
	)
	c := newCLI("outbox", outboxSynopsis, outboxAbout).options("Dead rows", &opts).env(&e)
	pos, err := c.parse(std, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("missing subcommand: migrate, relay or dead")
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
		return usagef("unknown outbox subcommand %q: want migrate, relay, dead ls, dead retry ID... or dead rm ID...", inert(strings.Join(pos, " ")))
	}
	if e.DatabaseURL == "" {
		return usagef("set JETWORKER_DATABASE_URL to the outbox's PostgreSQL URL")
	}
	ob, err := outbox.New(e.config())
	if err != nil {
		return inTermsOf(err, "outbox", "", outboxFields)
	}
	if pos[0] == "relay" {
		if err := e.relayConfig(nil).Validate(); err != nil {
			return inTermsOf(err, "outbox", "", outboxFields)
		}
		if dcfg, serve := e.dashboardConfig(nil); serve {
			if err := dcfg.Validate(); err != nil {
				return inTermsOf(err, "dashboard", "http: ", dashboardFields)
			}
		}
	}
	log, err := std.logger(e.LogEnv)
	if err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, e.DatabaseURL)
	if err != nil {
		return fmt.Errorf("database %s: %w", redactURL(e.DatabaseURL), err)
	}
	defer pool.Close()
	return databaseError(runOutboxSub(ctx, std, c, e, opts, sub, ids, ob, pool, log))
}

// runOutboxSub runs one outbox subcommand on the pool.
func runOutboxSub(ctx context.Context, std *stdio, c *cli, e outboxEnv, opts outboxOpts, sub string, ids []int64,
	ob *outbox.Outbox, pool *pgxpool.Pool, log *slog.Logger) error {
	switch sub {
	case "migrate":
		if err := outbox.Migrate(ctx, pool, e.config()); err != nil {
			return err
		}
		fmt.Fprintf(std.out, "outbox %s migrated on %s\n", inert(e.Schema+"."+e.Table), inert(redactURL(e.DatabaseURL)))
		return nil
	case "relay":
		return runOutboxRelay(ctx, c, e, pool, log)
	case "dead ls":
		rows, err := ob.ListDead(ctx, pool, outbox.DeadFilter{Limit: 1000})
		if err != nil {
			return err
		}
		if opts.JSON {
			if rows == nil {
				rows = []outbox.DeadRow{}
			}
			return printJSON(std, rows)
		}
		tw := tabwriter.NewWriter(std.out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tFAILED AT\tSUBJECT\tTASK ID\tREASON")
		for _, d := range rows {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", d.ID, formatLocal(d.FailedAt), inert(d.Subject), inert(d.MsgID), excerpt(d.Reason, 80))
		}
		_ = tw.Flush()
		fmt.Fprintf(std.out, "%d dead rows\n", len(rows))
		return nil
	case "dead retry":
		n, err := ob.RetryDead(ctx, pool, ids...)
		fmt.Fprintf(std.out, "%d dead rows moved back into the outbox\n", n)
		return err
	default: // dead rm
		n, err := ob.DeleteDead(ctx, pool, ids...)
		fmt.Fprintf(std.out, "%d dead rows deleted\n", n)
		return err
	}
}

// databaseError says in the user's words why PostgreSQL could not be
// reached (pgx's own text lists every address tried, over several lines);
// other errors pass unchanged.
func databaseError(err error) error {
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) || ce.Config == nil {
		return err
	}
	// Not the user: in a URL's user info it may be a token.
	where := fmt.Sprintf("PostgreSQL at %s (database %s)",
		net.JoinHostPort(ce.Config.Host, strconv.Itoa(int(ce.Config.Port))), inert(ce.Config.Database))
	var (
		pgErr *pgconn.PgError
		dns   *net.DNSError
		nerr  net.Error
	)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("connect to %s: connection refused: is PostgreSQL running and listening there?", where)
	case errors.As(err, &dns):
		return fmt.Errorf("connect to %s: unknown host %q", where, dns.Name)
	case errors.As(err, &nerr) && nerr.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("connect to %s: no answer in time", where)
	case errors.As(err, &pgErr):
		return fmt.Errorf("connect to %s: %s (SQLSTATE %s)", where, pgErr.Message, pgErr.Code)
	}
	return fmt.Errorf("connect to %s: %w", where, errors.Unwrap(ce))
}

// runOutboxRelay runs the relay, with the dashboard on the HTTP address
// (its outbox page, the relay's rows) and /metrics, /healthz and /readyz on
// the metrics address, when they are set.
func runOutboxRelay(ctx context.Context, c *cli, e outboxEnv, pool *pgxpool.Pool, log *slog.Logger) error {
	conn, err := connect(ctx, e.ConnEnv, "outbox relay", log)
	if err != nil {
		return err
	}
	defer conn.Close()
	logConfig(ctx, log, c, slog.String("auth", e.authKind()))
	cfg := e.relayConfig(log)
	dcfg, serve := e.dashboardConfig(log)
	var om *outboxmetrics.Outbox
	if serve {
		// The relay reports to the metrics the dashboard serves: make
		// them first.
		if dcfg.Metrics, err = newMetrics(); err != nil {
			return err
		}
		if om, err = outboxmetrics.New(dcfg.Metrics); err != nil {
			return err
		}
		cfg.Hooks = om.Hooks()
	}
	r, err := outbox.NewRelay(pool, conn.js, cfg)
	if err != nil {
		return err
	}
	parts := []jetworker.Runner{jetworker.RunnerFunc(conn.watch), r}
	if serve {
		if !dcfg.DisableUI {
			dcfg.Outbox = r
			dcfg.OutboxDeadFunc = func(ctx context.Context, f outbox.DeadFilter) ([]outbox.DeadRow, error) {
				return r.Outbox().ListDead(ctx, pool, f)
			}
		}
		w, err := newWeb(conn, dcfg)
		if err != nil {
			return err
		}
		if err := om.ObserveBacklog(r.Stats, 0, log); err != nil {
			return err
		}
		// Ready once started, and while PostgreSQL and NATS both answer.
		started := dashboard.ChanCheck(r.Ready())
		w.srv.AddReadyCheck("outbox relay", func(ctx context.Context) error {
			if err := started(ctx); err != nil {
				return err
			}
			return r.Check(ctx)
		})
		parts = append(parts, w)
	}
	return runAll(ctx, parts...)
}

func parseIDs(args []string) ([]int64, error) {
	if len(args) == 0 {
		return nil, usagef("give the IDs of the dead rows (jetworker outbox dead ls lists them)")
	}
	ids := make([]int64, len(args))
	for i, a := range args {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id <= 0 {
			return nil, usagef("dead row ID %q: want a positive integer", inert(a))
		}
		ids[i] = id
	}
	return ids, nil
}
