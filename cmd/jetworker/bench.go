package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jetworker/jetworker/cmd/jetworker/internal/bench"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/outbox"
	"github.com/jetworker/jetworker/publisher"
)

// benchEnv configures "jetworker bench". It reads its own server URL,
// not JETWORKER_NATS_URL: a shell that points the other commands at
// production must not benchmark it by accident.
type benchEnv struct {
	URL string `envconfig:"JETWORKER_BENCH_URL" flag:"url" meta:"URL" secret:"url" group:"Connection" desc:"external NATS server or cluster to measure (default: an embedded server in a temporary directory)"`
	AuthEnv
	TLSEnv
	LogEnv
	// DatabaseURL is outbox mode's database: a variable of its own, not
	// JETWORKER_DATABASE_URL, for the same reason as URL.
	DatabaseURL string `envconfig:"JETWORKER_BENCH_DATABASE_URL" flag:"database-url" meta:"URL" secret:"url" group:"Outbox mode" desc:"PostgreSQL URL (or key=value string) for --mode outbox; the benchmark creates its own table there and drops it"`
}

// benchOpts are the options of one benchmark.
type benchOpts struct {
	Mode        string        `flag:"mode" meta:"MODE" desc:"sequential, mixed, schedule, outbox or backlog (see above)"`
	N           int           `flag:"n" desc:"tasks (outbox: rows; schedule: entries); 0: the mode's default, 100000 (schedule 10000, backlog 1000000)"`
	Size        int           `flag:"size" desc:"payload bytes (>= 8)"`
	Publishers  int           `flag:"publishers" desc:"publishing goroutines (outbox: enqueuing ones)"`
	Concurrency int           `flag:"concurrency" desc:"handlers at once"`
	Rate        int           `flag:"rate" desc:"mixed: target tasks/s (0: as fast as possible); outbox: rows/s of the latency phase (0: 1000)"`
	Rounds      int           `flag:"rounds" desc:"run the sides this many times, each round starting with the next side; report medians and the spread of the ratios"`
	Replicas    int           `flag:"replicas" desc:"replicas of the benchmark streams"`
	JSON        bool          `flag:"json" desc:"print the report as JSON"`
	Load        float64       `flag:"load" group:"Sequential and mixed modes" desc:"mixed: pace at this fraction (0-1] of jetworker's unpaced mixed rate, measured first (instead of --rate)"`
	Work        time.Duration `flag:"work" group:"Sequential and mixed modes" desc:"simulated work per task"`
	BatchSize   int           `flag:"batch-size" group:"Sequential and mixed modes" desc:"sequential: tasks per PublishBatch call of the bulk side"`
	BatchFlow   int           `flag:"batch-flow" group:"Sequential and mixed modes" desc:"sequential: the bulk side's publisher BatchFlow (an ack every N tasks)"`
	BatchOut    int           `flag:"batch-outstanding" group:"Sequential and mixed modes" desc:"sequential: the bulk side's publisher BatchOutstanding (acks in flight)"`
	Seconds     int           `flag:"seconds" group:"Schedule and outbox modes" desc:"schedule: slots measured per round, after a 2s warm-up; outbox: length of the paced latency phase"`
	TxRows      int           `flag:"tx-rows" group:"Schedule and outbox modes" desc:"outbox: rows per enqueuing transaction"`
	Schema      string        `flag:"schema" meta:"NAME" group:"Outbox mode" desc:"outbox: schema of the benchmark's table"`
	Table       string        `flag:"table" meta:"NAME" group:"Outbox mode" desc:"outbox: the benchmark's own table (it refuses one that exists, and drops it afterwards)"`
	Drain       string        `flag:"drain" meta:"STREAM" advanced:"true" group:"Benchmark" desc:"internal: drain --n tasks of STREAM as one worker and print its figures as JSON (backlog mode runs its worker so, in a process of its own)"`
}

// scheduleConfig maps the options to the schedule benchmark's Config.
func (o benchOpts) scheduleConfig() bench.ScheduleConfig {
	return bench.ScheduleConfig{Entries: o.N, Size: o.Size, Seconds: o.Seconds, Rounds: o.Rounds, Replicas: o.Replicas}
}

// outboxConfig maps the options to the outbox benchmark's Config.
func (o benchOpts) outboxConfig() bench.OutboxConfig {
	return bench.OutboxConfig{
		N: o.N, Size: o.Size, TxRows: o.TxRows, Publishers: o.Publishers, Rate: o.Rate, Seconds: o.Seconds,
		Rounds: o.Rounds, Replicas: o.Replicas, Outbox: outbox.Config{Schema: o.Schema, Table: o.Table},
	}
}

// benchConfig maps the options to the bench engine's Config.
func (o benchOpts) benchConfig() bench.Config {
	return bench.Config{
		N: o.N, Size: o.Size, Publishers: o.Publishers, Concurrency: o.Concurrency, Mode: o.Mode,
		Rate: o.Rate, Load: o.Load, Work: o.Work, Replicas: o.Replicas, Rounds: o.Rounds,
		BatchSize: o.BatchSize, BatchFlow: o.BatchFlow, BatchOutstanding: o.BatchOut,
	}
}

const benchAbout = `
Measure jetworker against raw nats.go on the same server in the same run,
and print both with the jetworker/raw ratios: the median over --rounds
and its spread (the lowest and highest round). Without --url it runs on
an embedded server storing in a temporary directory.

Modes:
  sequential  enqueue N tasks, then drain them with C handlers. Sides: raw
              (PublishAsync, Consume + Ack), raw_msgid (the same with a
              Nats-Msg-Id), jetworker (PublishAsync, no ID: no header),
              jetworker_id (PublishOpts.ID), bulk (PublishBatch), and
              raw_filtered (raw consuming with jetworker's subject filter,
              which a task stream holding delayed tasks needs: the same
              server work as jetworker's consumer).
  mixed       produce and consume at once, unpaced or at --rate/--load;
              adds the enqueue-to-start p50 and p99 ratios.
  schedule    N entries (default 10000) at @every 1s in the schedules
              bucket, one scheduler firing them: the fire lag (slot to
              PubAck) over --seconds, against a raw loop publishing the
              same messages with PublishAsync at each slot. It refuses a
              server that has schedule entries or a leading scheduler.
  outbox      on the PostgreSQL of --database-url: enqueue N rows
              (default 100000) in transactions of --tx-rows, relay them,
              and measure commit-to-receive latency at --rate rows/s for
              --seconds; against raw PublishAsync of the same messages.
              It creates its own outbox (--table, jetworker_bench unless
              set), refuses a table that exists, and drops it afterwards.
  backlog     fill N tasks (default 1000000) with PublishBatch, then drain
              them with one worker (consumer.Consumer) in a process of its
              own, and report that process's peak RSS while draining.`

func runBench(ctx context.Context, std *stdio, args []string) error {
	var e benchEnv
	opts := benchOpts{Mode: bench.Sequential, Size: 256, Publishers: 1, Concurrency: 10, Replicas: 1, Rounds: bench.DefaultRounds,
		BatchSize: bench.DefaultBatchSize, BatchFlow: publisher.DefaultBatchFlow, BatchOut: publisher.DefaultBatchOutstanding,
		Schema: outbox.DefaultSchema, Table: bench.DefaultOutboxTable}
	c := newCLI("bench", "", benchAbout).options("Benchmark", &opts).env(&e)
	if err := c.parseNoArgs(std, args); err != nil {
		return err
	}
	if opts.Drain != "" {
		return runBenchDrain(ctx, std, e, opts)
	}
	switch opts.Mode {
	case bench.Sequential, bench.Mixed, bench.Schedule, bench.Backlog:
	case bench.Outbox:
		if e.DatabaseURL == "" {
			return usagef("--mode outbox: set JETWORKER_BENCH_DATABASE_URL (or --database-url) to a PostgreSQL URL (the benchmark creates its own table there and drops it)")
		}
	default:
		return usagef("--mode %q: want sequential, mixed, schedule, outbox or backlog", inert(opts.Mode))
	}
	log, err := std.logger(e.LogEnv)
	if err != nil {
		return err
	}
	url := e.URL
	if url == "" {
		dir, err := os.MkdirTemp("", "jetworker-bench-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		srv, err := embedded.Start(embedded.Config{Port: -1, StoreDir: dir, Logger: serverLogger(e.LogEnv, std.err, std.isTTY)})
		if err != nil {
			return err
		}
		defer srv.Shutdown()
		url = srv.URL()
	}
	conn, err := connect(ctx, ConnEnv{NATSURL: url, AuthEnv: e.AuthEnv, TLSEnv: e.TLSEnv, ConnectTimeout: 5 * time.Second}, "bench", log)
	if err != nil {
		return err
	}
	defer conn.Close()

	progress := benchProgress(std, opts.JSON)
	defer progress.clear()
	var (
		rep   any
		print func(io.Writer)
	)
	switch opts.Mode {
	case bench.Backlog:
		cfg := bench.BacklogConfig{N: opts.N, Size: opts.Size, Concurrency: opts.Concurrency, Replicas: opts.Replicas, Progress: progress.show}
		cfg.DrainFunc = bench.ProcessDrain(drainCommand(std, args, url, e.URL == ""))
		r, err := bench.RunBacklog(ctx, conn.js, cfg)
		if err != nil {
			return err
		}
		rep, print = r, func(w io.Writer) { printBacklog(w, r) }
	case bench.Outbox:
		pool, err := benchPool(ctx, e.DatabaseURL)
		if err != nil {
			return err
		}
		defer pool.Close()
		cfg := opts.outboxConfig()
		cfg.Progress = progress.show
		r, err := bench.RunOutbox(ctx, pool, conn.js, cfg)
		if err != nil {
			return err
		}
		rep, print = r, func(w io.Writer) { printOutbox(w, r) }
	case bench.Schedule:
		cfg := opts.scheduleConfig()
		cfg.Progress = progress.show
		r, err := bench.RunSchedule(ctx, conn.js, cfg)
		if err != nil {
			return err
		}
		rep, print = r, func(w io.Writer) { printSchedule(w, r) }
	default:
		cfg := opts.benchConfig()
		cfg.Progress = progress.show
		r, err := bench.Run(ctx, conn.js, cfg)
		if err != nil {
			return err
		}
		rep, print = r, func(w io.Writer) { printThroughput(w, r) }
	}
	progress.clear()
	if opts.JSON {
		return printJSON(std, rep)
	}
	print(std.out)
	return nil
}

// drainCommand returns the command of a backlog's worker process: this
// program, with the command line it was given, told to drain. An
// embedded server's URL goes in the environment (it holds no secret, but
// a --url given stays the child's as the parent's).
func drainCommand(std *stdio, args []string, url string, embedded bool) func(context.Context, bench.DrainConfig) *exec.Cmd {
	return func(ctx context.Context, d bench.DrainConfig) *exec.Cmd {
		self, err := os.Executable()
		if err != nil {
			self = os.Args[0]
		}
		child := append(slices.Clone(args), "--drain", d.Stream, "--n", strconv.Itoa(d.N), "--concurrency", strconv.Itoa(d.Concurrency), "--json")
		cmd := exec.CommandContext(ctx, self, append([]string{"bench"}, child...)...)
		cmd.Env = os.Environ()
		if embedded {
			cmd.Env = append(cmd.Env, "JETWORKER_BENCH_URL="+url)
		}
		cmd.Stderr = std.err
		return cmd
	}
}

// runBenchDrain is a backlog's worker process: it drains and prints its
// figures as JSON.
func runBenchDrain(ctx context.Context, std *stdio, e benchEnv, opts benchOpts) error {
	if e.URL == "" {
		return usagef("--drain needs the server's URL (--url or JETWORKER_BENCH_URL)")
	}
	log, err := std.logger(e.LogEnv)
	if err != nil {
		return err
	}
	conn, err := connect(ctx, ConnEnv{NATSURL: e.URL, AuthEnv: e.AuthEnv, TLSEnv: e.TLSEnv, ConnectTimeout: 5 * time.Second}, "bench", log)
	if err != nil {
		return err
	}
	defer conn.Close()
	r, err := bench.Drain(ctx, conn.js, bench.DrainConfig{Stream: opts.Drain, N: opts.N, Concurrency: opts.Concurrency}, nil)
	if err != nil {
		return err
	}
	return printJSON(std, r)
}

// benchPool opens the outbox benchmark's pool: 32 connections unless the
// URL says otherwise, enough for the latency phase's 16 senders and the
// relay. The URL is secret, and errors do not repeat it.
func benchPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, usagef("JETWORKER_BENCH_DATABASE_URL: not a PostgreSQL URL or key=value string")
	}
	if !strings.Contains(url, "pool_max_conns") {
		pcfg.MaxConns = 32
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database: %w", err)
	}
	return pool, nil
}

// progressBar draws a progress bar on a terminal's standard error; on
// anything else it draws nothing.
type progressBar struct {
	w    io.Writer
	on   bool
	mu   sync.Mutex
	last time.Time
}

func benchProgress(std *stdio, asJSON bool) *progressBar {
	return &progressBar{w: std.err, on: std.isTTY && !asJSON}
}

// show draws phase's progress, at most every 100ms. It is safe for
// concurrent use.
func (p *progressBar) show(phase string, done, total int) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < 100*time.Millisecond && done < total {
		return
	}
	p.last = time.Now()
	const width = 30
	filled := min(width*done/max(total, 1), width)
	fmt.Fprintf(p.w, "\r%-20s [%-*s] %d/%d", phase, width, strings.Repeat("=", filled), done, total)
}

// clear removes the bar.
func (p *progressBar) clear() {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprint(p.w, "\r\033[K")
}

// benchHeader is the end of every report's first line.
func benchHeader(server string, gomaxprocs int, gogc string, rounds int) string {
	s := fmt.Sprintf("nats-server %s, GOMAXPROCS %d, GOGC %s", server, gomaxprocs, gogc)
	if rounds > 1 {
		s += fmt.Sprintf(", median of %d rounds", rounds)
	}
	return s
}

func printThroughput(w io.Writer, rep bench.Report) {
	fmt.Fprintf(w, "%d tasks x %d B, %d publisher(s), %d handlers, %s mode", rep.N, rep.Size, rep.Publishers, rep.Concurrency, rep.Mode)
	if rep.Rate > 0 {
		fmt.Fprintf(w, " at %d/s", rep.Rate)
	}
	if rep.Load > 0 {
		fmt.Fprintf(w, " (%.0f%% of jetworker's unpaced %.0f/s)", 100*rep.Load, rep.MaxRate)
	}
	fmt.Fprintf(w, ", work %s, %s\n", rep.Work, benchHeader(rep.Server, rep.GoMaxProcs, rep.GOGC, rep.Rounds))
	if rep.Bulk != nil {
		fmt.Fprintf(w, "bulk: PublishBatch of %d tasks, BatchFlow %d, BatchOutstanding %d\n", rep.BatchSize, rep.BatchFlow, rep.BatchOutstanding)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tenqueue/s\tprocess/s\tp50\tp95\tp99\tmax\tallocs/task\tB/task\tGCs\tpeak RSS MiB\t")
	for _, r := range rep.Sides() {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%.1f\t%.0f\t%d\t%.0f\t\n", r.Name, r.EnqueuePerSec, r.ProcessPerSec,
			r.P50.Round(time.Microsecond), r.P95.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Max.Round(time.Microsecond), r.AllocsPerTask,
			r.BytesPerTask, r.GCCycles, r.PeakRSSMiB)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "(latency is enqueue-to-start; peak RSS is this process's, the embedded server's included when there is one)")
	fmt.Fprintln(w)
	printRatios(w, rep.Ratios, rep.Rounds)
}

func printSchedule(w io.Writer, rep bench.ScheduleReport) {
	fmt.Fprintf(w, "%d schedule entries at %s, %d B payloads, %d slots measured after %d warm-up slots, %s\n",
		rep.Entries, rep.Spec, rep.Size, rep.Seconds, rep.Warmup, benchHeader(rep.Server, rep.GoMaxProcs, rep.GOGC, rep.Rounds))
	fmt.Fprintf(w, "entries stored with Store.Put at %.0f/s\n\n", rep.PutPerSec)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tlag p50\tp90\tp99\tmax\tfires/s\tfires\texpected\tfailed\tCPU/fire\tallocs/fire\tpeak RSS MiB\t")
	for _, r := range []bench.ScheduleResult{rep.Raw, rep.Jetworker} {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.0f\t%d\t%d\t%d\t%s\t%.1f\t%.0f\t\n", r.Name,
			r.Lag.P50.Round(time.Microsecond), r.Lag.P90.Round(time.Microsecond), r.Lag.P99.Round(time.Microsecond), r.Lag.Max.Round(time.Microsecond),
			r.FiresPerSec, r.Fires, r.Expected, r.Failed, r.CPUPerFire.Round(100*time.Nanosecond), r.AllocsPerFire, r.PeakRSSMiB)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "(lag: from the slot to the fire's PubAck; raw publishes the same messages at each slot with PublishAsync;")
	fmt.Fprintln(w, " CPU/fire and allocs/fire: this process over the measured slots, the embedded server's included when there is one)")
	fmt.Fprintln(w)
	printRatios(w, rep.Ratios, rep.Rounds)
}

func printOutbox(w io.Writer, rep bench.OutboxReport) {
	notify := "notification trigger"
	if !rep.Notify {
		notify = "no trigger, polling"
	}
	fmt.Fprintf(w, "outbox: %d rows x %d B in transactions of %d, %d enqueuing goroutine(s); relay batches of %d, %d at once, %s; latency at %d rows/s for %ds; PostgreSQL %s, %s\n\n",
		rep.N, rep.Size, rep.TxRows, rep.Publishers, rep.RelayBatchSize, rep.RelayConcurrency, notify, rep.Rate, rep.Seconds, rep.Postgres,
		benchHeader(rep.Server, rep.GoMaxProcs, rep.GOGC, rep.Rounds))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tenqueue rows/s\tpublish/s\tlatency p50\tp90\tp99\tmax\tlost\t")
	for _, r := range []bench.OutboxResult{rep.Raw, rep.Outbox} {
		enq := "-"
		if r.EnqueuePerSec > 0 {
			enq = fmt.Sprintf("%.0f", r.EnqueuePerSec)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%d\t\n", r.Name, enq, r.PublishPerSec,
			r.Latency.P50.Round(time.Microsecond), r.Latency.P90.Round(time.Microsecond), r.Latency.P99.Round(time.Microsecond),
			r.Latency.Max.Round(time.Microsecond), r.Lost)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "(publish/s: the relay from its start to the last row's PubAck and delete, raw PublishAsync of the same messages with a Nats-Msg-Id;")
	fmt.Fprintln(w, " latency: from Commit (raw: the publish call) to a stream consumer's receipt, one row per transaction)")
	fmt.Fprintln(w)
	printRatios(w, rep.Ratios, rep.Rounds)
}

func printBacklog(w io.Writer, rep bench.BacklogReport) {
	d := rep.Drain
	fmt.Fprintf(w, "backlog: %d tasks x %d B, drained by one worker with %d handlers, nats-server %s, GOMAXPROCS %d, GOGC %s\n\n",
		rep.N, rep.Size, rep.Concurrency, rep.Server, rep.GoMaxProcs, rep.GOGC)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tfill/s\tprocess/s\tprocessed\tRSS at start MiB\tpeak RSS MiB\t")
	fmt.Fprintf(tw, "jetworker\t%.0f\t%.0f\t%d\t%.0f\t%.0f\t\n", rep.FillPerSec, d.ProcessPerSec, d.Processed, d.StartRSSMiB, d.PeakRSSMiB)
	_ = tw.Flush()
	fmt.Fprintf(w, "(peak RSS: %s)\n", d.Measured)
}

// printRatios prints each ratio's median and, over several rounds, its
// spread.
func printRatios(w io.Writer, rs []bench.Ratio, rounds int) {
	var b strings.Builder
	defer func() { writeTrimmed(w, b.String()) }()
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	if rounds > 1 {
		fmt.Fprintf(tw, "ratio\tmedian\tspread (%d rounds)\n", rounds)
	} else {
		fmt.Fprintln(tw, "ratio\tvalue")
	}
	for _, r := range rs {
		note := ""
		if r.LowerIsBetter {
			note = "lower is better"
		}
		spread := ""
		if rounds > 1 {
			spread = fmt.Sprintf("%.2f–%.2f", r.Min, r.Max)
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%s\t%s\n", r.Name(), r.Median, spread, note)
	}
	_ = tw.Flush()
}

// writeTrimmed writes s without the spaces a tabwriter leaves at the ends
// of lines.
func writeTrimmed(w io.Writer, s string) {
	for line := range strings.Lines(s) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
}
