package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/jetworker/jetworker/cmd/jetworker/internal/bench"
	"github.com/jetworker/jetworker/embedded"
)

const benchSynopsis = `

Enqueues N tasks of SIZE bytes with P publishers and processes them with C
handlers, through raw nats.go (PublishAsync, Consume + Ack) and through
jetworker, on the same server in the same run, and prints both with the
jetworker/raw ratios. Without --url it runs on an embedded server storing
in a temporary directory.`

func runBench(ctx context.Context, std *stdio, args []string) error {
	var e struct {
		ConnEnv
		LogEnv
	}
	fs := newFlagSet("bench", std, benchSynopsis, &e)
	if err := loadEnv(&e); err != nil {
		return err
	}
	url := ""
	f := flagEnv{fs}
	f.str(&e.Creds, "creds", "CREDS", "JWT .creds file")
	f.str(&e.User, "user", "USER", "user name")
	f.str(&e.Password, "password", "PASSWORD", "password")
	f.str(&e.Token, "token", "TOKEN", "token")
	fs.StringVar(&url, "url", "", "external NATS server or cluster (default: an embedded server)")
	var cfg bench.Config
	var asJSON bool
	fs.IntVar(&cfg.N, "n", 100_000, "tasks")
	fs.IntVar(&cfg.Size, "size", 256, "payload bytes (>= 8)")
	fs.IntVar(&cfg.Publishers, "publishers", 1, "publishing goroutines")
	fs.IntVar(&cfg.Concurrency, "concurrency", 10, "handlers at once")
	fs.StringVar(&cfg.Mode, "mode", bench.Sequential, "sequential (enqueue all, then drain) or mixed (produce and consume at once)")
	fs.IntVar(&cfg.Rate, "rate", 0, "mixed: target tasks/s (0: as fast as possible)")
	fs.Float64Var(&cfg.Load, "load", 0, "mixed: pace at this fraction (0-1] of jetworker's unpaced mixed rate, measured first (instead of --rate)")
	fs.DurationVar(&cfg.Work, "work", 0, "simulated work per task")
	fs.IntVar(&cfg.Replicas, "replicas", 1, "replicas of the benchmark streams")
	fs.IntVar(&cfg.Rounds, "rounds", 1, "run the three sides this many times, each round starting with the next side; report medians")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	log, err := newLogger(e.LogEnv, std.err, std.isTTY)
	if err != nil {
		return err
	}
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
	e.NATSURL = url
	e.ConnectTimeout = 5 * time.Second
	c, err := connect(ctx, e.ConnEnv, "bench", log)
	if err != nil {
		return err
	}
	defer c.Close()

	if std.isTTY && !asJSON {
		var mu sync.Mutex
		last := time.Time{}
		cfg.Progress = func(phase string, done, total int) {
			mu.Lock()
			defer mu.Unlock()
			if time.Since(last) < 100*time.Millisecond && done < total {
				return
			}
			last = time.Now()
			const width = 30
			filled := width * done / max(total, 1)
			fmt.Fprintf(std.err, "\r%-20s [%-*s] %d/%d", phase, width, bar(filled), done, total)
		}
	}
	rep, err := bench.Run(ctx, c.js, cfg)
	if std.isTTY && !asJSON {
		fmt.Fprint(std.err, "\r\033[K")
	}
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(std, rep)
	}
	fmt.Fprintf(std.out, "%d tasks x %d B, %d publisher(s), %d handlers, %s mode", rep.N, rep.Size, rep.Publishers, rep.Concurrency, rep.Mode)
	if rep.Rate > 0 {
		fmt.Fprintf(std.out, " at %d/s", rep.Rate)
	}
	if rep.Load > 0 {
		fmt.Fprintf(std.out, " (%.0f%% of jetworker's unpaced %.0f/s)", 100*rep.Load, rep.MaxRate)
	}
	fmt.Fprintf(std.out, ", work %s, nats-server %s, GOMAXPROCS %d, GOGC %s", rep.Work, rep.Server, rep.GoMaxProcs, rep.GOGC)
	if rep.Rounds > 1 {
		fmt.Fprintf(std.out, ", median of %d rounds", rep.Rounds)
	}
	fmt.Fprint(std.out, "\n\n")
	tw := tabwriter.NewWriter(std.out, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tenqueue/s\tprocess/s\tp50\tp95\tp99\tmax\tallocs/task\tB/task\tGCs\tpeak RSS MiB\t")
	for _, r := range []bench.Result{rep.Raw, rep.RawMsgID, rep.Jetworker} {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%.1f\t%.0f\t%d\t%.0f\t\n", r.Name, r.EnqueuePerSec, r.ProcessPerSec,
			r.P50.Round(time.Microsecond), r.P95.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Max.Round(time.Microsecond), r.AllocsPerTask,
			r.BytesPerTask, r.GCCycles, r.PeakRSSMiB)
	}
	fmt.Fprintf(tw, "jetworker/raw\t%.2f\t%.2f\t\t\t\t\t\t\t\t\t\n", rep.EnqueueRatio, rep.ProcessRatio)
	fmt.Fprintf(tw, "jetworker/raw_msgid\t%.2f\t%.2f\t\t\t\t\t\t\t\t\t\n", rep.EnqueueRatioMsgID, rep.ProcessRatioMsgID)
	_ = tw.Flush()
	return nil
}

func bar(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = '='
	}
	return string(b)
}
