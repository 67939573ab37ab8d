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

// benchEnv configures "jetworker bench". It reads its own server URL,
// not JETWORKER_NATS_URL: a shell that points the other commands at
// production must not benchmark it by accident.
type benchEnv struct {
	URL string `envconfig:"JETWORKER_BENCH_URL" flag:"url" meta:"URL" secret:"url" group:"Connection" desc:"external NATS server or cluster to measure (default: an embedded server in a temporary directory)"`
	AuthEnv
	TLSEnv
	LogEnv
}

// benchOpts are the options of one benchmark.
type benchOpts struct {
	N           int           `flag:"n" desc:"tasks"`
	Size        int           `flag:"size" desc:"payload bytes (>= 8)"`
	Publishers  int           `flag:"publishers" desc:"publishing goroutines"`
	Concurrency int           `flag:"concurrency" desc:"handlers at once"`
	Mode        string        `flag:"mode" meta:"MODE" desc:"sequential (enqueue all, then drain) or mixed (produce and consume at once)"`
	Rate        int           `flag:"rate" desc:"mixed: target tasks/s (0: as fast as possible)"`
	Load        float64       `flag:"load" desc:"mixed: pace at this fraction (0-1] of jetworker's unpaced mixed rate, measured first (instead of --rate)"`
	Work        time.Duration `flag:"work" desc:"simulated work per task"`
	Replicas    int           `flag:"replicas" desc:"replicas of the benchmark streams"`
	Rounds      int           `flag:"rounds" desc:"run the three sides this many times, each round starting with the next side; report medians"`
	JSON        bool          `flag:"json" desc:"print the report as JSON"`
}

// benchConfig maps the options to the bench engine's Config.
func (o benchOpts) benchConfig() bench.Config {
	return bench.Config{
		N: o.N, Size: o.Size, Publishers: o.Publishers, Concurrency: o.Concurrency, Mode: o.Mode,
		Rate: o.Rate, Load: o.Load, Work: o.Work, Replicas: o.Replicas, Rounds: o.Rounds,
	}
}

const benchAbout = `
Enqueue N tasks of SIZE bytes with P publishers and process them with C
handlers, through raw nats.go (PublishAsync, Consume + Ack) and through
jetworker, on the same server in the same run, and print both with the
jetworker/raw ratios. Without --url it runs on an embedded server storing
in a temporary directory.`

func runBench(ctx context.Context, std *stdio, args []string) error {
	var e benchEnv
	opts := benchOpts{N: 100_000, Size: 256, Publishers: 1, Concurrency: 10, Mode: bench.Sequential, Replicas: 1, Rounds: 1}
	c := newCLI("bench", "", benchAbout).options("Benchmark", &opts).env(&e)
	if err := c.parseNoArgs(std, args); err != nil {
		return err
	}
	cfg := opts.benchConfig()
	asJSON := opts.JSON
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
	rep, err := bench.Run(ctx, conn.js, cfg)
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
