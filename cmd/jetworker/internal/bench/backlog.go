package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/publisher"
)

// DefaultBacklog is the backlog benchmark's number of tasks.
const DefaultBacklog = 1_000_000

// backlogStream is the backlog benchmark's stream.
const backlogStream = "BENCH_BACKLOG"

// BacklogConfig describes a backlog benchmark: fill a stream with N
// tasks, then drain it with one worker and report the worker's memory.
type BacklogConfig struct {
	// N is the backlog's size. Defaults to 1,000,000.
	N int
	// Size is the payload size in bytes. Defaults to 256.
	Size int
	// Concurrency is the worker's handlers at once. Defaults to 10.
	Concurrency int
	// Replicas of the stream. Defaults to 1.
	Replicas int
	// DrainFunc drains the filled backlog and reports what it measured;
	// [ProcessDrain] runs the worker in a process of its own. Defaults to
	// [Drain] in this process.
	DrainFunc func(ctx context.Context, d DrainConfig) (DrainResult, error)
	// Progress, when set, is called with a phase name and the tasks done.
	Progress func(phase string, done, total int)
}

func (c BacklogConfig) withDefaults() BacklogConfig {
	c.N = cmp.Or(c.N, DefaultBacklog)
	c.Size = cmp.Or(c.Size, DefaultSize)
	c.Concurrency = cmp.Or(c.Concurrency, 10)
	c.Replicas = cmp.Or(c.Replicas, 1)
	if c.Progress == nil {
		c.Progress = func(string, int, int) {}
	}
	return c
}

func (c BacklogConfig) validate() error {
	if c.N < 1 || c.Size < 8 || c.Concurrency < 1 {
		return fmt.Errorf("bench: N and Concurrency must be > 0 and Size >= 8, got %d, %d and %d", c.N, c.Concurrency, c.Size)
	}
	return nil
}

// DrainConfig says what a worker drains: N tasks from Stream with
// Concurrency handlers.
type DrainConfig struct {
	Stream      string `json:"stream"`
	N           int    `json:"n"`
	Concurrency int    `json:"concurrency"`
}

// DrainResult is what a draining worker measured of itself.
type DrainResult struct {
	Processed     int     `json:"processed"`
	ProcessPerSec float64 `json:"process_per_sec"`
	// StartRSSMiB is the process's RSS when the drain started, and
	// PeakRSSMiB its peak (VmHWM, reset at the start) while draining.
	StartRSSMiB float64 `json:"start_rss_mib"`
	PeakRSSMiB  float64 `json:"peak_rss_mib"`
	// Pid is the draining process.
	Pid int `json:"pid"`
	// Measured says whose memory PeakRSSMiB is.
	Measured string `json:"measured"`
}

// BacklogReport is a backlog benchmark's outcome.
type BacklogReport struct {
	Mode        string `json:"mode"`
	N           int    `json:"n"`
	Size        int    `json:"size"`
	Concurrency int    `json:"concurrency"`
	// FillPerSec is the rate the backlog was stored at (PublishBatch).
	FillPerSec float64     `json:"fill_per_sec"`
	Drain      DrainResult `json:"drain"`
	Server     string      `json:"server"`
	GoMaxProcs int         `json:"gomaxprocs"`
	GOGC       string      `json:"gogc"`
}

// InProcess is DrainResult.Measured for a drain in the benchmark's own
// process.
const InProcess = "this process (VmHWM): the worker, and the server too when it is embedded"

// RunBacklog fills a fresh stream with cfg.N tasks (PublishBatch, no
// IDs), then drains them with one consumer.Consumer through
// cfg.DrainFunc, and deletes the stream.
func RunBacklog(ctx context.Context, js jetstream.JetStream, cfg BacklogConfig) (BacklogReport, error) {
	inProcess := cfg.DrainFunc == nil
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return BacklogReport{}, err
	}
	if inProcess {
		cfg.DrainFunc = func(ctx context.Context, d DrainConfig) (DrainResult, error) {
			d.Concurrency = cfg.Concurrency
			r, err := Drain(ctx, js, d, cfg.Progress)
			r.Measured = InProcess
			return r, err
		}
	}
	rep := BacklogReport{
		Mode: Backlog, N: cfg.N, Size: cfg.Size, Concurrency: cfg.Concurrency,
		Server: js.Conn().ConnectedServerVersion(), GoMaxProcs: runtime.GOMAXPROCS(0), GOGC: cmp.Or(os.Getenv("GOGC"), "100"),
	}
	drop, err := createStream(ctx, js, backlogStream, []string{"bench.backlog.>"}, jetstream.WorkQueuePolicy, cfg.Replicas, benchDuplicates)
	if err != nil {
		return rep, err
	}
	defer drop()
	start := time.Now()
	if err := fill(ctx, js, cfg); err != nil {
		return rep, err
	}
	rep.FillPerSec = float64(cfg.N) / time.Since(start).Seconds()
	rep.Drain, err = cfg.DrainFunc(ctx, DrainConfig{Stream: backlogStream, N: cfg.N, Concurrency: cfg.Concurrency})
	if err != nil {
		return rep, fmt.Errorf("drain: %w", err)
	}
	if rep.Drain.Processed < cfg.N {
		return rep, fmt.Errorf("drain: processed %d of %d tasks", rep.Drain.Processed, cfg.N)
	}
	return rep, nil
}

// fill stores cfg.N tasks in batches of DefaultBatchSize, each payload
// stamped with its enqueue time as the other modes do.
func fill(ctx context.Context, js jetstream.JetStream, cfg BacklogConfig) error {
	pub, err := publisher.New(js, publisher.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	buf := make([]byte, DefaultBatchSize*cfg.Size)
	tasks := make([]publisher.BatchTask, 0, DefaultBatchSize)
	for done := 0; done < cfg.N; {
		tasks = tasks[:0]
		for i := range min(DefaultBatchSize, cfg.N-done) {
			p := buf[i*cfg.Size : (i+1)*cfg.Size : (i+1)*cfg.Size]
			binary.BigEndian.PutUint64(p, uint64(time.Now().UnixNano()))
			tasks = append(tasks, publisher.BatchTask{Subject: "bench.backlog.task", Data: p})
		}
		res, err := pub.PublishBatch(ctx, tasks)
		if err != nil {
			return fmt.Errorf("fill: %w", err)
		}
		done += res.Stored
		cfg.Progress("backlog fill", done, cfg.N)
	}
	return nil
}

// Drain runs one consumer.Consumer on d.Stream until it has processed
// d.N tasks, and reports its rate and this process's memory while it
// ran. It is what a backlog's worker process runs.
func Drain(ctx context.Context, js jetstream.JetStream, d DrainConfig, progress func(string, int, int)) (DrainResult, error) {
	if progress == nil {
		progress = func(string, int, int) {}
	}
	res := DrainResult{Pid: os.Getpid()}
	if d.N < 1 || d.Concurrency < 1 || d.Stream == "" {
		return res, fmt.Errorf("bench: drain needs a stream, N > 0 and Concurrency > 0, got %+v", d)
	}
	runtime.GC()
	resetPeakRSS()
	res.StartRSSMiB = rssMiB()
	var processed atomic.Int64
	all := make(chan struct{})
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- consumeJetworker(cctx, js, d.Stream, d.Concurrency, func([]byte) {
			n := processed.Add(1)
			if n%10_000 == 0 {
				progress("backlog drain", int(n), d.N)
			}
			if n == int64(d.N) {
				close(all)
			}
		})
	}()
	var err error
	select {
	case <-all:
		res.ProcessPerSec = float64(d.N) / time.Since(start).Seconds()
	case err = <-done:
		done <- err
		err = fmt.Errorf("consumer stopped: %w", err)
	case <-ctx.Done():
		err = ctx.Err()
	}
	res.PeakRSSMiB = peakRSSMiB()
	cancel()
	if cerr := <-done; err == nil && cerr != nil {
		err = fmt.Errorf("consumer: %w", cerr)
	}
	res.Processed = int(processed.Load())
	return res, err
}

// rssMiB reads VmRSS from /proc/self/status; 0 where unavailable.
func rssMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	return statusMiB(string(b), "VmRSS:")
}

// ProcessDrain returns a DrainFunc that runs the drain in a process of
// its own: command(d) must start a program that drains d and prints its
// DrainResult as JSON on standard output (jetworker bench --drain). The
// result's Measured says so.
func ProcessDrain(command func(ctx context.Context, d DrainConfig) *exec.Cmd) func(context.Context, DrainConfig) (DrainResult, error) {
	return func(ctx context.Context, d DrainConfig) (DrainResult, error) {
		cmd := command(ctx, d)
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Run(); err != nil {
			return DrainResult{}, fmt.Errorf("worker process: %w", err)
		}
		var r DrainResult
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			return DrainResult{}, fmt.Errorf("worker process output %q: %w", strings.TrimSpace(out.String()), err)
		}
		r.Measured = fmt.Sprintf("a worker process of its own (pid %d, VmHWM): the worker alone", r.Pid)
		return r, nil
	}
}
