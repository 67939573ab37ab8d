// Package bench measures jetworker against raw nats.go on the same
// server in the same run, and prints nothing: "jetworker bench" prints
// its reports.
//
//   - [Run]: enqueue and process throughput, enqueue-to-start latency,
//     allocations per task and peak RSS of raw nats.go, raw with a
//     Nats-Msg-Id, jetworker without and with an ID, and jetworker's
//     bulk path (sequential and mixed modes).
//   - [RunSchedule]: the fire lag of one scheduler over many entries,
//     against a raw PublishAsync loop.
//   - [RunOutbox]: the transactional outbox's enqueue and relay
//     throughput and commit-to-receive latency, against raw PublishAsync.
//   - [RunBacklog]: a worker's peak RSS while it drains a large backlog.
//
// Every run with raw and jetworker sides reports each ratio's median over
// the rounds and its spread ([Ratio]).
package bench

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/publisher"
)

// Modes.
const (
	// Sequential enqueues every task, then drains them.
	Sequential = "sequential"
	// Mixed produces and consumes at once, at Config.Rate tasks/s.
	Mixed = "mixed"
	// Schedule measures fire lag ([RunSchedule]).
	Schedule = "schedule"
	// Outbox measures the transactional outbox ([RunOutbox]).
	Outbox = "outbox"
	// Backlog measures a worker's memory draining a backlog
	// ([RunBacklog]).
	Backlog = "backlog"
)

// Sides of the throughput modes, in the order a run's first round runs
// them.
const (
	// SideRaw is plain nats.go: PublishAsync without headers, Consume + Ack.
	SideRaw = "raw"
	// SideRawMsgID is SideRaw with a UUIDv7 Nats-Msg-Id on every publish.
	SideRawMsgID = "raw_msgid"
	// SideJetworker is publisher.PublishAsync without an ID (a task
	// without an ID carries no header) and consumer.Consumer.
	SideJetworker = "jetworker"
	// SideJetworkerID is SideJetworker with PublishOpts.ID set to a
	// UUIDv7, sent as Nats-Msg-Id: the counterpart of SideRawMsgID.
	SideJetworkerID = "jetworker_id"
	// SideBulk is publisher.PublishBatch (fast-ingest batches, no
	// headers) and consumer.Consumer; sequential mode only.
	SideBulk = "bulk"
	// SideRawFiltered is SideRaw consuming with the subject filter
	// jetworker's consumer has (a task stream also stores its delayed
	// tasks, on subjects the workers must not take, so jetworker always
	// filters; the server loads filtered messages more slowly): the
	// baseline of the same server work, sequential mode only.
	SideRawFiltered = "raw_filtered"
)

// Config describes one benchmark.
type Config struct {
	// N is the number of tasks. Defaults to 100,000.
	N int
	// Size is the payload size in bytes (at least 8). Defaults to 256.
	Size int
	// Publishers is the number of publishing goroutines. Defaults to 1.
	Publishers int
	// Concurrency is the number of handlers at once. Defaults to 10.
	Concurrency int
	// Mode is Sequential or Mixed. Defaults to Sequential.
	Mode string
	// Rate paces Mixed mode in tasks/s across all publishers; 0 means as
	// fast as possible.
	Rate int
	// Load, in (0, 1], paces Mixed mode at this fraction of jetworker's
	// maximum: the run first measures an unpaced mixed round of the
	// jetworker side, then runs every side at Load times its process
	// rate. It replaces Rate; 0 means Rate decides.
	Load float64
	// Work is the simulated work time of each handler. Defaults to 0.
	Work time.Duration
	// Replicas of the benchmark streams. Defaults to 1.
	Replicas int
	// Rounds runs the sides in turn this many times and reports each
	// side's median round and, for each ratio, the median and the spread
	// of the rounds' ratios, so that a noisy machine's drift weighs on
	// every side alike. Each round starts with the next side (raw,
	// raw_msgid, jetworker, ..., then raw_msgid, jetworker, ..., raw).
	// Defaults to 3.
	Rounds int
	// BatchSize is the number of tasks of each PublishBatch call of the
	// bulk side. Defaults to 10,000.
	BatchSize int
	// BatchFlow and BatchOutstanding are the bulk side's
	// publisher.Config.BatchFlow and BatchOutstanding. Default to the
	// publisher's defaults (500 and 4).
	BatchFlow, BatchOutstanding int
	// Progress, when set, is called with a phase name and the tasks done.
	// Producers and handlers call it concurrently.
	Progress func(phase string, done, total int)
}

// Defaults of [Config].
const (
	DefaultN         = 100_000
	DefaultSize      = 256
	DefaultRounds    = 3
	DefaultBatchSize = 10_000
)

func (c Config) withDefaults() Config {
	c.N = cmp.Or(c.N, DefaultN)
	c.Size = cmp.Or(c.Size, DefaultSize)
	c.Publishers = cmp.Or(c.Publishers, 1)
	c.Concurrency = cmp.Or(c.Concurrency, 10)
	c.Mode = cmp.Or(c.Mode, Sequential)
	c.Replicas = cmp.Or(c.Replicas, 1)
	c.Rounds = cmp.Or(c.Rounds, DefaultRounds)
	c.BatchSize = cmp.Or(c.BatchSize, DefaultBatchSize)
	c.BatchFlow = cmp.Or(c.BatchFlow, publisher.DefaultBatchFlow)
	c.BatchOutstanding = cmp.Or(c.BatchOutstanding, publisher.DefaultBatchOutstanding)
	if c.Progress == nil {
		c.Progress = func(string, int, int) {}
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.N < 1 {
		errs = append(errs, fmt.Errorf("bench: N must be > 0, got %d", c.N))
	}
	if c.Size < 8 {
		errs = append(errs, fmt.Errorf("bench: Size must be >= 8 (the payload carries a timestamp), got %d", c.Size))
	}
	if c.Publishers < 1 || c.Concurrency < 1 {
		errs = append(errs, errors.New("bench: Publishers and Concurrency must be > 0"))
	}
	if c.Mode != Sequential && c.Mode != Mixed {
		errs = append(errs, fmt.Errorf("bench: Mode %q: want %s or %s", c.Mode, Sequential, Mixed))
	}
	if c.Rounds < 1 {
		errs = append(errs, fmt.Errorf("bench: Rounds must be > 0, got %d", c.Rounds))
	}
	if c.Rate < 0 || c.Work < 0 {
		errs = append(errs, errors.New("bench: Rate and Work must not be negative"))
	}
	if c.Load < 0 || c.Load > 1 {
		errs = append(errs, fmt.Errorf("bench: Load must be in (0, 1], got %g", c.Load))
	}
	if c.Load > 0 && (c.Mode != Mixed || c.Rate > 0) {
		errs = append(errs, errors.New("bench: Load applies to mixed mode without Rate"))
	}
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("bench: BatchSize must be > 0, got %d", c.BatchSize))
	}
	if err := (publisher.Config{BatchFlow: c.BatchFlow, BatchOutstanding: c.BatchOutstanding}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("bench: %w", err))
	}
	return errors.Join(errs...)
}

// Result is one side's figures.
type Result struct {
	Name          string        `json:"name"`
	EnqueuePerSec float64       `json:"enqueue_per_sec"`
	ProcessPerSec float64       `json:"process_per_sec"`
	P50           time.Duration `json:"p50_enqueue_to_start_ns"`
	P95           time.Duration `json:"p95_enqueue_to_start_ns"`
	P99           time.Duration `json:"p99_enqueue_to_start_ns"`
	// Max is the slowest task's enqueue-to-start latency: a stall that
	// hits a few hundred tasks shows here before it moves the p99.
	Max           time.Duration `json:"max_enqueue_to_start_ns"`
	AllocsPerTask float64       `json:"allocs_per_task"`
	// BytesPerTask is the bytes allocated during the side divided by N.
	BytesPerTask float64 `json:"bytes_per_task"`
	// GCCycles is how many garbage collections completed during the
	// side; with the embedded server, its garbage counts too.
	GCCycles int `json:"gc_cycles"`
	// PeakRSSMiB is this process's peak RSS (VmHWM) during the side:
	// the embedded server's memory included when there is one.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	Processed  int     `json:"processed"`
}

// Report is a whole run: each side's median round, and the ratios of
// jetworker's sides to their raw baselines.
type Report struct {
	Config      Config `json:"-"`
	N           int    `json:"n"`
	Size        int    `json:"size"`
	Publishers  int    `json:"publishers"`
	Concurrency int    `json:"concurrency"`
	Mode        string `json:"mode"`
	Rate        int    `json:"rate"`
	// Load and MaxRate are set when Config.Load paced the run: Rate is
	// Load times MaxRate, jetworker's unpaced mixed process rate.
	Load    float64 `json:"load,omitempty"`
	MaxRate float64 `json:"max_rate,omitempty"`
	Work    string  `json:"work"`
	Rounds  int     `json:"rounds"`
	// BatchSize, BatchFlow and BatchOutstanding are the bulk side's
	// settings (sequential mode).
	BatchSize        int `json:"batch_size,omitempty"`
	BatchFlow        int `json:"batch_flow,omitempty"`
	BatchOutstanding int `json:"batch_outstanding,omitempty"`
	// Each side's median round.
	Raw         Result `json:"raw"`
	RawMsgID    Result `json:"raw_msgid"`
	Jetworker   Result `json:"jetworker"`
	JetworkerID Result `json:"jetworker_id"`
	// Bulk is the bulk side's; sequential mode only.
	Bulk *Result `json:"bulk,omitempty"`
	// RawFiltered is the raw_filtered side's; sequential mode only.
	RawFiltered *Result `json:"raw_filtered,omitempty"`
	// Ratios compares the sides: jetworker/raw and jetworker_id/raw_msgid
	// (enqueue and process rates unless the run is paced; in mixed mode
	// the p50 and p99 enqueue-to-start), bulk/raw (enqueue rate) and
	// jetworker/raw_filtered (process rate).
	Ratios []Ratio `json:"ratios"`
	// EnqueueRatio and ProcessRatio are the medians of the jetworker/raw
	// ratios, and the MsgID ones those of jetworker_id/raw_msgid: the
	// same figures as in Ratios, for scripts.
	EnqueueRatio      float64 `json:"enqueue_ratio"`
	ProcessRatio      float64 `json:"process_ratio"`
	EnqueueRatioMsgID float64 `json:"enqueue_ratio_msgid"`
	ProcessRatioMsgID float64 `json:"process_ratio_msgid"`
	Server            string  `json:"server"`
	GoMaxProcs        int     `json:"gomaxprocs"`
	// GOGC is the garbage collector's setting the run used: "100" unless
	// the GOGC environment variable says otherwise. With the embedded
	// server, its garbage shares this process's collector.
	GOGC string `json:"gogc"`
}

// Sides returns the results of the sides the run had, in the order of
// its first round.
func (r Report) Sides() []Result {
	out := []Result{r.Raw, r.RawMsgID, r.Jetworker, r.JetworkerID}
	if r.Bulk != nil {
		out = append(out, *r.Bulk)
	}
	if r.RawFiltered != nil {
		out = append(out, *r.RawFiltered)
	}
	return out
}

// Side returns the result of the side called name (zero if the run had
// none).
func (r Report) Side(name string) Result {
	for _, s := range r.Sides() {
		if s.Name == name {
			return s
		}
	}
	return Result{}
}

// Ratio returns the ratio of side over baseline for figure.
func (r Report) Ratio(figure, side, baseline string) (Ratio, bool) {
	return FindRatio(r.Ratios, figure, side, baseline)
}

// Figures of the throughput ratios.
const (
	FigureEnqueue = "enqueue/s"
	FigureProcess = "process/s"
	FigureP50     = "p50"
	FigureP99     = "p99"
)

// Run measures every side (raw, raw_msgid, jetworker, jetworker_id and,
// in sequential mode, bulk), each on a fresh stream of the server js is
// connected to, and deletes the streams afterwards; Config.Rounds times
// over, each round starting with the next side.
func Run(ctx context.Context, js jetstream.JetStream, cfg Config) (Report, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return Report{}, err
	}
	rep := Report{
		Config: cfg, N: cfg.N, Size: cfg.Size, Publishers: cfg.Publishers, Concurrency: cfg.Concurrency,
		Mode: cfg.Mode, Rate: cfg.Rate, Work: cfg.Work.String(), Rounds: cfg.Rounds,
		Server: js.Conn().ConnectedServerVersion(), GoMaxProcs: runtime.GOMAXPROCS(0),
		GOGC: cmp.Or(os.Getenv("GOGC"), "100"),
	}
	if cfg.Load > 0 {
		unpaced := cfg
		unpaced.Load = 0
		top, err := runSide(ctx, js, unpaced, jwSide{})
		if err != nil {
			return rep, fmt.Errorf("measure jetworker's maximum for Load: %w", err)
		}
		cfg.Rate = max(int(cfg.Load*top.ProcessPerSec+0.5), 1)
		rep.Load, rep.MaxRate, rep.Rate = cfg.Load, top.ProcessPerSec, cfg.Rate
	}
	sides := []side{rawSide{}, rawSide{msgID: true}, jwSide{}, jwSide{withID: true}}
	if cfg.Mode == Sequential {
		sides = append(sides, bulkSide{batch: cfg.BatchSize, flow: cfg.BatchFlow, outstanding: cfg.BatchOutstanding}, rawSide{filter: true})
		rep.BatchSize, rep.BatchFlow, rep.BatchOutstanding = cfg.BatchSize, cfg.BatchFlow, cfg.BatchOutstanding
	}
	results := make([][]Result, len(sides))
	var rs ratios
	for round := range cfg.Rounds {
		// Each round starts one side later, so that over as many rounds
		// as sides every side runs once in each position: what a side
		// leaves behind (a deleted stream's files, garbage for the
		// collector) does not always weigh on the same neighbour.
		got := map[string]Result{}
		for k := range sides {
			i := (round + k) % len(sides)
			r, err := runSide(ctx, js, cfg, sides[i])
			if err != nil {
				return rep, fmt.Errorf("round %d: %s: %w", round+1, sides[i].name(), err)
			}
			got[r.Name] = r
			results[i] = append(results[i], r)
		}
		addRatios(&rs, cfg.Mode, cfg.Rate > 0, got)
	}
	rep.Raw, rep.RawMsgID = medianResult(results[0]), medianResult(results[1])
	rep.Jetworker, rep.JetworkerID = medianResult(results[2]), medianResult(results[3])
	if len(results) > 5 {
		b, f := medianResult(results[4]), medianResult(results[5])
		rep.Bulk, rep.RawFiltered = &b, &f
	}
	rep.Ratios = rs.summary()
	med := func(figure, side, baseline string) float64 {
		r, _ := rep.Ratio(figure, side, baseline)
		return r.Median
	}
	rep.EnqueueRatio = med(FigureEnqueue, SideJetworker, SideRaw)
	rep.ProcessRatio = med(FigureProcess, SideJetworker, SideRaw)
	rep.EnqueueRatioMsgID = med(FigureEnqueue, SideJetworkerID, SideRawMsgID)
	rep.ProcessRatioMsgID = med(FigureProcess, SideJetworkerID, SideRawMsgID)
	return rep, nil
}

// addRatios records one round's ratios of the sides in got. A paced run
// has no rate ratios: every side runs at the pace.
func addRatios(rs *ratios, mode string, paced bool, got map[string]Result) {
	pairs := [][2]string{{SideJetworker, SideRaw}, {SideJetworkerID, SideRawMsgID}}
	for _, p := range pairs {
		if paced {
			break
		}
		a, b := got[p[0]], got[p[1]]
		rs.add(FigureEnqueue, p[0], p[1], false, a.EnqueuePerSec, b.EnqueuePerSec)
		rs.add(FigureProcess, p[0], p[1], false, a.ProcessPerSec, b.ProcessPerSec)
	}
	if bulk, ok := got[SideBulk]; ok {
		rs.add(FigureEnqueue, SideBulk, SideRaw, false, bulk.EnqueuePerSec, got[SideRaw].EnqueuePerSec)
	}
	if rf, ok := got[SideRawFiltered]; ok {
		rs.add(FigureProcess, SideJetworker, SideRawFiltered, false, got[SideJetworker].ProcessPerSec, rf.ProcessPerSec)
	}
	if mode == Mixed {
		// In sequential mode enqueue-to-start is mostly the time a task
		// waits behind the whole backlog: no figure to compare.
		for _, p := range pairs {
			a, b := got[p[0]], got[p[1]]
			rs.add(FigureP50, p[0], p[1], true, float64(a.P50), float64(b.P50))
			rs.add(FigureP99, p[0], p[1], true, float64(a.P99), float64(b.P99))
		}
	}
}

// medianResult takes each figure's median over rounds; peak RSS is the
// highest seen.
func medianResult(rs []Result) Result {
	pick := func(f func(Result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		return median(v)
	}
	out := rs[0]
	out.EnqueuePerSec = pick(func(r Result) float64 { return r.EnqueuePerSec })
	out.ProcessPerSec = pick(func(r Result) float64 { return r.ProcessPerSec })
	out.P50 = time.Duration(pick(func(r Result) float64 { return float64(r.P50) }))
	out.P95 = time.Duration(pick(func(r Result) float64 { return float64(r.P95) }))
	out.P99 = time.Duration(pick(func(r Result) float64 { return float64(r.P99) }))
	out.Max = time.Duration(pick(func(r Result) float64 { return float64(r.Max) }))
	out.AllocsPerTask = pick(func(r Result) float64 { return r.AllocsPerTask })
	out.BytesPerTask = pick(func(r Result) float64 { return r.BytesPerTask })
	out.GCCycles = int(pick(func(r Result) float64 { return float64(r.GCCycles) }))
	for _, r := range rs {
		out.PeakRSSMiB = max(out.PeakRSSMiB, r.PeakRSSMiB)
		out.Processed = min(out.Processed, r.Processed)
	}
	return out
}

// side is one implementation under test.
type side interface {
	name() string
	// producer returns open, which each publishing goroutine calls once
	// for its send (one payload, which send may not keep) and its flush
	// (called after its last send), and a wait that blocks until every
	// enqueue is acknowledged.
	producer(ctx context.Context, js jetstream.JetStream, subject string) (open func() (send func([]byte) error, flush func() error), wait func() error, err error)
	// consume runs handle on every task until ctx ends.
	consume(ctx context.Context, js jetstream.JetStream, stream string, concurrency int, handle func(payload []byte)) error
}

// benchDuplicates is the duplicate window of the throughput benchmarks
// streams: short, so the server's de-duplication index stays small during
// long runs, alike for every side.
const benchDuplicates = 10 * time.Second

// createStream (re)creates a benchmark stream. Every stream of a run has
// the same settings, those of a task stream that matter here: file
// storage, the duplicate window dup, and batch publishing allowed (as
// streams.Tasks does), so that the sides differ only in the client.
func createStream(ctx context.Context, js jetstream.JetStream, name string, subjects []string, retention jetstream.RetentionPolicy, replicas int, dup time.Duration) (func(), error) {
	_ = js.DeleteStream(ctx, name)
	scfg := jetstream.StreamConfig{
		Name: name, Subjects: subjects, Retention: retention,
		Storage: jetstream.FileStorage, Replicas: replicas, Duplicates: dup,
		AllowBatchPublish: true,
	}
	// Once, under a loaded CI machine, the server answered "error creating
	// store for stream" right after the previous side's stream was
	// deleted; a benchmark may simply try again.
	var err error
	for attempt := range 3 {
		if _, err = js.CreateStream(ctx, scfg); err == nil {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", name, err)
	}
	return func() { _ = js.DeleteStream(context.WithoutCancel(ctx), name) }, nil
}

// runSide runs one side on its own stream.
func runSide(ctx context.Context, js jetstream.JetStream, cfg Config, s side) (Result, error) {
	stream := "BENCH_" + strings.ToUpper(s.name())
	subject := "bench." + s.name() + ".task"
	drop, err := createStream(ctx, js, stream, []string{"bench." + s.name() + ".>"}, jetstream.WorkQueuePolicy, cfg.Replicas, benchDuplicates)
	if err != nil {
		return Result{}, err
	}
	defer drop()

	res := Result{Name: s.name()}
	lat := make([]time.Duration, 0, cfg.N)
	var latMu sync.Mutex
	var processed atomic.Int64
	all := make(chan struct{})
	handle := func(payload []byte) {
		start := time.Now()
		enq := time.Unix(0, int64(binary.BigEndian.Uint64(payload)))
		latMu.Lock()
		lat = append(lat, start.Sub(enq))
		latMu.Unlock()
		if cfg.Work > 0 {
			time.Sleep(cfg.Work)
		}
		n := processed.Add(1)
		if n%1000 == 0 {
			cfg.Progress(s.name()+" process", int(n), cfg.N)
		}
		if n == int64(cfg.N) {
			close(all)
		}
	}

	resetPeakRSS()
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)

	cctx, cancel := context.WithCancel(ctx)
	consumeErr := make(chan error, 1)
	started := false
	startConsumer := func() {
		started = true
		go func() { consumeErr <- s.consume(cctx, js, stream, cfg.Concurrency, handle) }()
	}
	// Every return waits for the consumer it started: nothing of this
	// side runs on into the next one.
	defer func() {
		cancel()
		if started {
			<-consumeErr
		}
	}()
	var processStart time.Time
	if cfg.Mode == Mixed {
		processStart = time.Now()
		startConsumer()
	}

	open, wait, err := s.producer(ctx, js, subject)
	if err != nil {
		return res, err
	}
	enqStart := time.Now()
	if err := produce(ctx, cfg, open, s.name()); err != nil {
		return res, err
	}
	if err := wait(); err != nil {
		return res, fmt.Errorf("wait for acks: %w", err)
	}
	res.EnqueuePerSec = float64(cfg.N) / time.Since(enqStart).Seconds()

	if cfg.Mode == Sequential {
		processStart = time.Now()
		startConsumer()
	}
	select {
	case <-all:
	case err := <-consumeErr:
		started = false // it has returned
		return res, fmt.Errorf("consumer stopped: %w", err)
	case <-ctx.Done():
		return res, ctx.Err()
	}
	res.ProcessPerSec = float64(cfg.N) / time.Since(processStart).Seconds()
	runtime.ReadMemStats(&m1)
	cancel()
	started = false
	if err := <-consumeErr; err != nil {
		return res, fmt.Errorf("consumer: %w", err)
	}
	res.AllocsPerTask = float64(m1.Mallocs-m0.Mallocs) / float64(cfg.N)
	res.BytesPerTask = float64(m1.TotalAlloc-m0.TotalAlloc) / float64(cfg.N)
	res.GCCycles = int(m1.NumGC - m0.NumGC)
	res.PeakRSSMiB = peakRSSMiB()
	res.Processed = int(processed.Load())
	slices.Sort(lat)
	res.P50, res.P95, res.P99, res.Max = pct(lat, 50), pct(lat, 95), pct(lat, 99), pct(lat, 100)
	return res, nil
}

// produce sends cfg.N payloads from cfg.Publishers goroutines, each with
// its own sender from open, paced by a pacer when cfg.Rate is set.
func produce(ctx context.Context, cfg Config, open func() (func([]byte) error, func() error), name string) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, cfg.Publishers)
	p := pacer{start: time.Now(), rate: cfg.Rate}
	for range cfg.Publishers {
		wg.Go(func() {
			send, flush := open()
			payload := make([]byte, cfg.Size)
			var sleep *time.Timer
			if cfg.Rate > 0 {
				sleep = time.NewTimer(time.Hour)
				defer sleep.Stop()
			}
			for {
				i := next.Add(1)
				if i > int64(cfg.N) {
					if err := flush(); err != nil {
						errs <- err
					}
					return
				}
				if sleep != nil {
					if d := p.wait(i-1, time.Now()); d > 0 {
						sleep.Reset(d)
						select {
						case <-sleep.C:
						case <-ctx.Done():
							errs <- ctx.Err()
							return
						}
					}
				}
				binary.BigEndian.PutUint64(payload, uint64(time.Now().UnixNano()))
				if err := send(payload); err != nil {
					errs <- err
					return
				}
				if i%1000 == 0 {
					cfg.Progress(name+" enqueue", int(i), cfg.N)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// minSleep is the shortest pause a pacer asks for: sleeps of a few
// microseconds would cost more than they pace.
const minSleep = time.Millisecond

// pacer paces tasks at rate per second from start: task i (0-based,
// counted across publishers) is due i/rate seconds after start. A
// publisher ahead of the schedule waits, for at least minSleep; one behind
// sends at once, so the rate holds on average and bursts stay within
// about minSleep's worth of tasks.
type pacer struct {
	start time.Time
	rate  int // tasks per second; 0: unpaced
}

// due returns when task i is due.
func (p pacer) due(i int64) time.Time {
	if p.rate <= 0 {
		return p.start
	}
	return p.start.Add(time.Duration(float64(i) * float64(time.Second) / float64(p.rate)))
}

// wait returns how long to wait at now before sending task i: 0 when it
// is due, else at least minSleep.
func (p pacer) wait(i int64, now time.Time) time.Duration {
	d := p.due(i).Sub(now)
	if d <= 0 {
		return 0
	}
	return max(d, minSleep)
}

// noFlush is the flush of a sender that keeps nothing back.
func noFlush() error { return nil }

// rawSide is plain nats.go with its default options: PublishAsync (with a
// UUIDv7 Nats-Msg-Id when msgID is set), and Consume + Ack feeding a pool
// of goroutines of the same size as jetworker's; with filter, its
// consumer has jetworker's subject filter.
type rawSide struct{ msgID, filter bool }

func (r rawSide) name() string {
	switch {
	case r.msgID:
		return SideRawMsgID
	case r.filter:
		return SideRawFiltered
	}
	return SideRaw
}

func (r rawSide) producer(_ context.Context, js jetstream.JetStream, subject string) (func() (func([]byte) error, func() error), func() error, error) {
	send := func(p []byte) error {
		if r.msgID {
			_, err := js.PublishAsync(subject, p, jetstream.WithMsgID(uuid.Must(uuid.NewV7()).String()))
			return err
		}
		_, err := js.PublishAsync(subject, p)
		return err
	}
	wait := func() error {
		select {
		case <-js.PublishAsyncComplete():
			return nil
		case <-time.After(time.Minute):
			return errors.New("acks did not arrive within a minute")
		}
	}
	return func() (func([]byte) error, func() error) { return send, noFlush }, wait, nil
}

func (r rawSide) consume(ctx context.Context, js jetstream.JetStream, stream string, concurrency int, handle func([]byte)) error {
	cc0 := jetstream.ConsumerConfig{Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy}
	if r.filter {
		cc0.FilterSubjects = []string{jetworkerFilter}
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, stream, cc0)
	if err != nil {
		return err
	}
	work := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for m := range work {
				handle(m.Data())
				_ = m.Ack()
			}
		})
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case work <- m:
		case <-ctx.Done():
		}
	}) // plain Consume: nats.go's defaults
	if err != nil {
		close(work)
		wg.Wait()
		return err
	}
	<-ctx.Done()
	cc.Stop()
	<-cc.Closed()
	close(work)
	wg.Wait()
	return nil
}

// jwSide is jetworker: publisher.PublishAsync and consumer.Consumer. With
// withID every task has PublishOpts.ID, a UUIDv7 (publisher.NewID);
// without, the publisher's defaults: no ID, and so no header at all.
type jwSide struct{ withID bool }

func (j jwSide) name() string {
	if j.withID {
		return SideJetworkerID
	}
	return SideJetworker
}

func (j jwSide) producer(ctx context.Context, js jetstream.JetStream, subject string) (func() (func([]byte) error, func() error), func() error, error) {
	pub, err := publisher.New(js, publisher.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, nil, err
	}
	send := func(p []byte) error {
		var opts *publisher.PublishOpts
		if j.withID {
			opts = &publisher.PublishOpts{ID: publisher.NewID()}
		}
		_, err := pub.PublishAsync(ctx, subject, p, opts)
		return err
	}
	wait := func() error {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return pub.Wait(wctx)
	}
	return func() (func([]byte) error, func() error) { return send, noFlush }, wait, nil
}

func (jwSide) consume(ctx context.Context, js jetstream.JetStream, stream string, concurrency int, handle func([]byte)) error {
	return consumeJetworker(ctx, js, stream, concurrency, handle)
}

// jetworkerFilter is the subject filter of the sides' consumers that
// filter.
const jetworkerFilter = "bench.>"

// consumeJetworker runs a consumer.Consumer on stream until ctx ends.
func consumeJetworker(ctx context.Context, js jetstream.JetStream, stream string, concurrency int, handle func([]byte)) error {
	c, err := consumer.New(js, jetworker.HandlerFunc(func(_ context.Context, t *jetworker.Task) error {
		handle(t.Data)
		return nil
	}), consumer.Config{
		Stream: stream, Durable: "bench", FilterSubjects: []string{jetworkerFilter}, Concurrency: concurrency,
		DisablePresence: true, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

// bulkSide is jetworker's bulk path: each publishing goroutine collects
// batch tasks and stores them with one publisher.PublishBatch call
// (fast-ingest batch, acknowledged every flow tasks, at most outstanding
// acks in flight). Its tasks carry no ID, as the protocol does not
// de-duplicate. Consumption is jetworker's consumer, as for jwSide.
type bulkSide struct{ batch, flow, outstanding int }

func (bulkSide) name() string { return SideBulk }

func (b bulkSide) producer(ctx context.Context, js jetstream.JetStream, subject string) (func() (func([]byte) error, func() error), func() error, error) {
	pub, err := publisher.New(js, publisher.Config{
		BatchFlow: b.flow, BatchOutstanding: b.outstanding, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, nil, err
	}
	open := func() (func([]byte) error, func() error) {
		// PublishBatch returns once the batch is committed, so the
		// payloads of one batch live in one buffer reused for the next.
		var (
			tasks []publisher.BatchTask
			buf   []byte
		)
		flush := func() error {
			if len(tasks) == 0 {
				return nil
			}
			res, err := pub.PublishBatch(ctx, tasks)
			if err != nil {
				return err
			}
			if res.Stored != len(tasks) {
				return fmt.Errorf("batch stored %d of %d tasks", res.Stored, len(tasks))
			}
			tasks, buf = tasks[:0], buf[:0]
			return nil
		}
		send := func(p []byte) error {
			if buf == nil {
				buf = make([]byte, 0, b.batch*len(p))
				tasks = make([]publisher.BatchTask, 0, b.batch)
			}
			if len(buf)+len(p) > cap(buf) {
				// Payload sizes are fixed, so this happens only if the
				// caller changes them: start a buffer of its own.
				buf = make([]byte, 0, b.batch*len(p))
			}
			start := len(buf)
			buf = append(buf, p...)
			tasks = append(tasks, publisher.BatchTask{Subject: subject, Data: buf[start:len(buf):len(buf)]})
			if len(tasks) == b.batch {
				return flush()
			}
			return nil
		}
		return send, flush
	}
	return open, noFlush, nil
}

func (bulkSide) consume(ctx context.Context, js jetstream.JetStream, stream string, concurrency int, handle func([]byte)) error {
	return consumeJetworker(ctx, js, stream, concurrency, handle)
}
