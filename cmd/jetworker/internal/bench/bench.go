// Package bench measures jetworker against raw nats.go on the same
// server in the same run: enqueue and process throughput, enqueue-to-start
// latency, allocations per task and peak RSS. "jetworker bench" prints its
// reports.
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
	"strconv"
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
	// Rounds runs the three sides in turn this many times and reports
	// each side's median round and the median of the rounds' ratios, so
	// that a noisy machine's drift weighs on every side alike. Each round
	// starts with the next side (raw, raw_msgid, jetworker, then
	// raw_msgid, jetworker, raw, ...). Defaults to 1.
	Rounds int
	// Progress, when set, is called with a phase name and the tasks done.
	// Producers and handlers call it concurrently.
	Progress func(phase string, done, total int)
}

func (c Config) withDefaults() Config {
	c.N = cmp.Or(c.N, 100_000)
	c.Size = cmp.Or(c.Size, 256)
	c.Publishers = cmp.Or(c.Publishers, 1)
	c.Concurrency = cmp.Or(c.Concurrency, 10)
	c.Mode = cmp.Or(c.Mode, Sequential)
	c.Replicas = cmp.Or(c.Replicas, 1)
	c.Rounds = cmp.Or(c.Rounds, 1)
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
	GCCycles   int     `json:"gc_cycles"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	Processed  int     `json:"processed"`
}

// Report is a whole run: the raw baseline, jetworker, and their ratios.
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
	Load         float64 `json:"load,omitempty"`
	MaxRate      float64 `json:"max_rate,omitempty"`
	Work         string  `json:"work"`
	Rounds       int     `json:"rounds"`
	Raw          Result  `json:"raw"`
	RawMsgID     Result  `json:"raw_msgid"`
	Jetworker    Result  `json:"jetworker"`
	EnqueueRatio float64 `json:"enqueue_ratio"`
	ProcessRatio float64 `json:"process_ratio"`
	// EnqueueRatioMsgID compares jetworker with raw nats.go publishing
	// with a Nats-Msg-Id header, as jetworker always does: the server's
	// de-duplication is most of the gap to plain PublishAsync.
	EnqueueRatioMsgID float64 `json:"enqueue_ratio_msgid"`
	// ProcessRatioMsgID compares jetworker's processing with raw nats.go
	// consuming the raw_msgid side's tasks, which carry a header as
	// jetworker's do.
	ProcessRatioMsgID float64 `json:"process_ratio_msgid"`
	Server            string  `json:"server"`
	GoMaxProcs        int     `json:"gomaxprocs"`
	// GOGC is the garbage collector's setting the run used: "100" unless
	// the GOGC environment variable says otherwise. With the embedded
	// server, its garbage shares this process's collector.
	GOGC string `json:"gogc"`
}

// Run measures the raw baseline, the baseline with message IDs, then
// jetworker, each on a fresh stream of the server js is connected to, and
// deletes the streams afterwards; Config.Rounds times over, each round
// starting with the next side.
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
	var raw, rawID, jw []Result
	var enq, proc, enqID, procID []float64
	sides := []side{rawSide{}, rawSide{msgID: true}, jwSide{}}
	for round := range cfg.Rounds {
		// Each round starts one side later, so that over three rounds
		// every side runs once first, once second and once last: what a
		// side leaves behind (a deleted stream's files, garbage for the
		// collector) does not always weigh on the same neighbour.
		got := make([]Result, len(sides))
		for k := range sides {
			i := (round + k) % len(sides)
			r, err := runSide(ctx, js, cfg, sides[i])
			if err != nil {
				return rep, fmt.Errorf("round %d: %s: %w", round+1, sides[i].name(), err)
			}
			got[i] = r
		}
		r, ri, j := got[0], got[1], got[2]
		raw, rawID, jw = append(raw, r), append(rawID, ri), append(jw, j)
		enq = append(enq, ratio(j.EnqueuePerSec, r.EnqueuePerSec))
		proc = append(proc, ratio(j.ProcessPerSec, r.ProcessPerSec))
		enqID = append(enqID, ratio(j.EnqueuePerSec, ri.EnqueuePerSec))
		procID = append(procID, ratio(j.ProcessPerSec, ri.ProcessPerSec))
	}
	rep.Raw, rep.RawMsgID, rep.Jetworker = medianResult(raw), medianResult(rawID), medianResult(jw)
	rep.EnqueueRatio, rep.ProcessRatio = median(enq), median(proc)
	rep.EnqueueRatioMsgID, rep.ProcessRatioMsgID = median(enqID), median(procID)
	return rep, nil
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

// median returns the middle value (the mean of the two middle ones for an
// even count); v is sorted in place.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	m := len(v) / 2
	if len(v)%2 == 0 {
		return (v[m-1] + v[m]) / 2
	}
	return v[m]
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// side is one implementation under test.
type side interface {
	name() string
	// producer returns a function that enqueues one payload, and a wait
	// that blocks until every enqueue is acknowledged.
	producer(ctx context.Context, js jetstream.JetStream, subject string) (send func([]byte) error, wait func() error, err error)
	// consume runs handle on every task until ctx ends.
	consume(ctx context.Context, js jetstream.JetStream, stream string, concurrency int, handle func(payload []byte)) error
}

// runSide runs one side on its own stream.
func runSide(ctx context.Context, js jetstream.JetStream, cfg Config, s side) (Result, error) {
	stream := "BENCH_" + strings.ToUpper(s.name())
	subject := "bench." + s.name() + ".task"
	_ = js.DeleteStream(ctx, stream)
	scfg := jetstream.StreamConfig{
		Name: stream, Subjects: []string{"bench." + s.name() + ".>"}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Replicas: cfg.Replicas, Duplicates: 10 * time.Second,
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
		return Result{}, fmt.Errorf("create stream %s: %w", stream, err)
	}
	defer func() { _ = js.DeleteStream(context.WithoutCancel(ctx), stream) }()

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

	send, wait, err := s.producer(ctx, js, subject)
	if err != nil {
		return res, err
	}
	enqStart := time.Now()
	if err := produce(ctx, cfg, send, s.name()); err != nil {
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

// produce sends cfg.N payloads from cfg.Publishers goroutines, paced by a
// pacer when cfg.Rate is set.
func produce(ctx context.Context, cfg Config, send func([]byte) error, name string) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, cfg.Publishers)
	p := pacer{start: time.Now(), rate: cfg.Rate}
	for range cfg.Publishers {
		wg.Go(func() {
			payload := make([]byte, cfg.Size)
			var sleep *time.Timer
			if cfg.Rate > 0 {
				sleep = time.NewTimer(time.Hour)
				defer sleep.Stop()
			}
			for {
				i := next.Add(1)
				if i > int64(cfg.N) {
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

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

// resetPeakRSS resets the kernel's peak RSS (VmHWM) of this process.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSSMiB reads VmHWM from /proc/self/status; 0 where unavailable.
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// rawSide is plain nats.go with its default options: PublishAsync (with a
// UUIDv7 Nats-Msg-Id when msgID is set), and Consume + Ack feeding a pool
// of goroutines of the same size as jetworker's.
type rawSide struct{ msgID bool }

func (r rawSide) name() string {
	if r.msgID {
		return "raw_msgid"
	}
	return "raw"
}

func (r rawSide) producer(_ context.Context, js jetstream.JetStream, subject string) (func([]byte) error, func() error, error) {
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
	return send, wait, nil
}

func (rawSide) consume(ctx context.Context, js jetstream.JetStream, stream string, concurrency int, handle func([]byte)) error {
	cons, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy,
	})
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

// jwSide is jetworker: publisher.PublishAsync and consumer.Consumer.
type jwSide struct{}

func (jwSide) name() string { return "jetworker" }

func (jwSide) producer(ctx context.Context, js jetstream.JetStream, subject string) (func([]byte) error, func() error, error) {
	pub, err := publisher.New(js, publisher.Config{})
	if err != nil {
		return nil, nil, err
	}
	send := func(p []byte) error {
		_, err := pub.PublishAsync(ctx, subject, p, nil)
		return err
	}
	wait := func() error {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return pub.Wait(wctx)
	}
	return send, wait, nil
}

func (jwSide) consume(ctx context.Context, js jetstream.JetStream, stream string, concurrency int, handle func([]byte)) error {
	c, err := consumer.New(js, jetworker.HandlerFunc(func(_ context.Context, t *jetworker.Task) error {
		handle(t.Data)
		return nil
	}), consumer.Config{
		Stream: stream, Durable: "bench", FilterSubjects: []string{"bench.>"}, Concurrency: concurrency,
		DisablePresence: true, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	return c.Run(ctx)
}
