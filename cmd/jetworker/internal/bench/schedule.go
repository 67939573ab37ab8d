package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/jetworker/jetworker/streams"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/schedule"
)

// ScheduleSpec is the spec of every entry of the schedule benchmark.
const ScheduleSpec = "@every 1s"

// Sides of the schedule benchmark.
const (
	// SideScheduler is one schedule.Scheduler firing the entries of a
	// schedule.Store.
	SideScheduler = "jetworker"
	// SideRawLoop publishes the same messages (the fires' Nats-Msg-Id and
	// headers) with PublishAsync at each slot boundary: what a scheduler
	// without leases, state or heap would achieve on the same server.
	SideRawLoop = "raw"
)

// Defaults of [ScheduleConfig].
const (
	DefaultScheduleEntries = 10_000
	DefaultScheduleSeconds = 10
	DefaultScheduleWarmup  = 2
)

// ScheduleConfig describes a schedule benchmark: Entries entries at
// ScheduleSpec, fired for Warmup seconds, then measured for Seconds.
type ScheduleConfig struct {
	// Entries is the number of schedule entries. Defaults to 10,000.
	Entries int
	// Size is each fire's payload size in bytes. Defaults to 256.
	Size int
	// Seconds is how many slots (one a second) are measured per round.
	// Defaults to 10.
	Seconds int
	// Warmup is how many slots are fired, and not measured, before them:
	// the first slot after gaining the lease fires while the scheduler
	// settles. Defaults to 2.
	Warmup int
	// Rounds runs both sides this many times, alternating which goes
	// first. Defaults to 3.
	Rounds int
	// Replicas of the benchmark stream and of the buckets the benchmark
	// creates. Defaults to 1.
	Replicas int
	// Progress, when set, is called with a phase name and the work done.
	Progress func(phase string, done, total int)
}

func (c ScheduleConfig) withDefaults() ScheduleConfig {
	c.Entries = cmp.Or(c.Entries, DefaultScheduleEntries)
	c.Size = cmp.Or(c.Size, DefaultSize)
	c.Seconds = cmp.Or(c.Seconds, DefaultScheduleSeconds)
	c.Warmup = cmp.Or(c.Warmup, DefaultScheduleWarmup)
	c.Rounds = cmp.Or(c.Rounds, DefaultRounds)
	c.Replicas = cmp.Or(c.Replicas, 1)
	if c.Progress == nil {
		c.Progress = func(string, int, int) {}
	}
	return c
}

func (c ScheduleConfig) validate() error {
	var errs []error
	if c.Entries < 1 {
		errs = append(errs, fmt.Errorf("bench: Entries must be > 0, got %d", c.Entries))
	}
	if c.Size < 0 {
		errs = append(errs, fmt.Errorf("bench: Size must be >= 0, got %d", c.Size))
	}
	if c.Seconds < 1 || c.Warmup < 0 || c.Rounds < 1 {
		errs = append(errs, fmt.Errorf("bench: Seconds and Rounds must be > 0 and Warmup >= 0, got %d, %d and %d", c.Seconds, c.Rounds, c.Warmup))
	}
	return errors.Join(errs...)
}

// ScheduleResult is one side's fires over the measured slots.
type ScheduleResult struct {
	Name string `json:"name"`
	// Lag is the time from each slot to the PubAck of its fire, for the
	// fires of the measured slots.
	Lag Latency `json:"lag"`
	// Fires counts the measured slots' fires stored; Expected is
	// Entries x Seconds. Fewer fires than expected means slots fired
	// too late to be waited for (5s after the last slot) or not at all.
	Fires    int `json:"fires"`
	Expected int `json:"expected"`
	// FiresPerSec is Fires over the measured seconds.
	FiresPerSec float64 `json:"fires_per_sec"`
	// Failed counts fire attempts that failed (tried again later).
	Failed int `json:"failed"`
	// CPUPerFire is this process's CPU time (user and system) over the
	// measured slots, from just before the first to the last fire's
	// PubAck, per fire: the side's own cost, and the embedded server's too
	// when there is one. 0 where unknown.
	CPUPerFire time.Duration `json:"cpu_per_fire_ns"`
	// AllocsPerFire is the heap allocations of this process over the same
	// span, per fire.
	AllocsPerFire float64 `json:"allocs_per_fire"`
	// PeakRSSMiB is this process's peak RSS during the side, the embedded
	// server's included when there is one.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

// ScheduleReport is a schedule benchmark's outcome.
type ScheduleReport struct {
	Mode      string  `json:"mode"`
	Entries   int     `json:"entries"`
	Spec      string  `json:"spec"`
	Size      int     `json:"size"`
	Seconds   int     `json:"seconds"`
	Warmup    int     `json:"warmup"`
	Rounds    int     `json:"rounds"`
	PutPerSec float64 `json:"put_per_sec"`
	// Jetworker and Raw are each side's median round.
	Jetworker ScheduleResult `json:"jetworker"`
	Raw       ScheduleResult `json:"raw"`
	// Ratios compares jetworker with raw: the lag's p50, p99 and max
	// (lower is better) and fires/s.
	Ratios     []Ratio `json:"ratios"`
	Server     string  `json:"server"`
	GoMaxProcs int     `json:"gomaxprocs"`
	GOGC       string  `json:"gogc"`
}

// schedulePrefix starts the names of the benchmark's entries.
const schedulePrefix = "bench-"

// scheduleLeaseKey is the benchmark scheduler's lease key, so that it
// never takes the lease of a deployment's schedulers.
const scheduleLeaseKey = "bench"

// RunSchedule stores cfg.Entries entries at ScheduleSpec with
// schedule.Store.Put, then measures the fire lag of one
// schedule.Scheduler and of a raw PublishAsync loop, on a fresh stream of
// the server js is connected to. It refuses a server whose schedules
// bucket has entries or whose default lease is held: a benchmark
// scheduler would fire them, or fire alongside a deployment's. Afterwards
// it deletes its entries, and the buckets and stream it created.
func RunSchedule(ctx context.Context, js jetstream.JetStream, cfg ScheduleConfig) (ScheduleReport, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return ScheduleReport{}, err
	}
	rep := ScheduleReport{
		Mode: "schedule", Entries: cfg.Entries, Spec: ScheduleSpec, Size: cfg.Size, Seconds: cfg.Seconds,
		Warmup: cfg.Warmup, Rounds: cfg.Rounds,
		Server: js.Conn().ConnectedServerVersion(), GoMaxProcs: runtime.GOMAXPROCS(0),
		GOGC: cmp.Or(os.Getenv("GOGC"), "100"),
	}
	cleanup, err := claimScheduleBuckets(ctx, js)
	if err != nil {
		return rep, err
	}
	defer cleanup()
	// The default task stream's 2-minute duplicate window, which the
	// scheduler relies on (it records frequent entries' cursors less often
	// within it; see package schedule).
	drop, err := createStream(ctx, js, "BENCH_SCHEDULE", []string{"bench.schedule.>"}, jetstream.LimitsPolicy, cfg.Replicas, streams.DefaultDuplicates)
	if err != nil {
		return rep, err
	}
	defer drop()
	payload := make([]byte, cfg.Size)
	names := make([]string, cfg.Entries)
	for i := range names {
		names[i] = fmt.Sprintf("%s%06d", schedulePrefix, i)
	}
	store, err := schedule.NewStore(js, schedule.StoreConfig{Replicas: cfg.Replicas})
	if err != nil {
		return rep, err
	}
	start := time.Now()
	if err := putEntries(ctx, store, names, payload, cfg.Progress); err != nil {
		return rep, err
	}
	rep.PutPerSec = float64(cfg.Entries) / time.Since(start).Seconds()

	var jw, raw []ScheduleResult
	var rs ratios
	for round := range cfg.Rounds {
		sides := []func() (ScheduleResult, error){
			func() (ScheduleResult, error) { return runScheduler(ctx, js, cfg) },
			func() (ScheduleResult, error) { return runRawLoop(ctx, js, cfg, names, payload) },
		}
		if round%2 == 1 {
			sides[0], sides[1] = sides[1], sides[0]
		}
		got := map[string]ScheduleResult{}
		for _, run := range sides {
			// The fires are not needed once acknowledged: each side starts
			// on an empty stream.
			if st, err := js.Stream(ctx, "BENCH_SCHEDULE"); err == nil {
				_ = st.Purge(ctx)
			}
			r, err := run()
			if err != nil {
				return rep, fmt.Errorf("round %d: %s: %w", round+1, r.Name, err)
			}
			got[r.Name] = r
		}
		j, r := got[SideScheduler], got[SideRawLoop]
		jw, raw = append(jw, j), append(raw, r)
		rs.add("fire lag p50", SideScheduler, SideRawLoop, true, float64(j.Lag.P50), float64(r.Lag.P50))
		rs.add("fire lag p99", SideScheduler, SideRawLoop, true, float64(j.Lag.P99), float64(r.Lag.P99))
		rs.add("fire lag max", SideScheduler, SideRawLoop, true, float64(j.Lag.Max), float64(r.Lag.Max))
		rs.add("fires/s", SideScheduler, SideRawLoop, false, j.FiresPerSec, r.FiresPerSec)
		if j.CPUPerFire > 0 && r.CPUPerFire > 0 {
			rs.add("CPU/fire", SideScheduler, SideRawLoop, true, float64(j.CPUPerFire), float64(r.CPUPerFire))
		}
	}
	rep.Jetworker, rep.Raw = medianSchedule(jw), medianSchedule(raw)
	rep.Ratios = rs.summary()
	return rep, nil
}

// claimScheduleBuckets checks that no schedule entries and no leading
// scheduler are on the server, and returns the clean-up: delete the
// buckets this run creates, or the benchmark's entries and lease key in
// buckets that existed.
func claimScheduleBuckets(ctx context.Context, js jetstream.JetStream) (func(), error) {
	existed := map[string]bool{}
	for _, b := range []string{schedule.SchedulesBucket, schedule.StateBucket, schedule.LeaseBucket} {
		_, err := js.KeyValue(ctx, b)
		switch {
		case errors.Is(err, jetstream.ErrBucketNotFound):
		case err != nil:
			return nil, fmt.Errorf("look up bucket %q: %w", b, err)
		default:
			existed[b] = true
		}
	}
	if existed[schedule.SchedulesBucket] {
		kv, err := js.KeyValue(ctx, schedule.SchedulesBucket)
		if err != nil {
			return nil, err
		}
		keys, err := kv.ListKeys(ctx)
		if err != nil {
			return nil, fmt.Errorf("list bucket %q: %w", schedule.SchedulesBucket, err)
		}
		for k := range keys.Keys() {
			_ = keys.Stop()
			return nil, fmt.Errorf("bench: the server has schedule entries (%q in bucket %q): a benchmark scheduler would fire them; use an embedded or an empty server", k, schedule.SchedulesBucket)
		}
	}
	if leader, err := schedule.Leader(ctx, js, ""); err != nil {
		return nil, err
	} else if leader != "" {
		return nil, fmt.Errorf("bench: scheduler %q leads on this server: it would fire the benchmark's entries too; use an embedded or an idle server", leader)
	}
	return func() {
		ctx := context.WithoutCancel(ctx)
		for _, b := range []string{schedule.SchedulesBucket, schedule.StateBucket} {
			if !existed[b] {
				_ = js.DeleteKeyValue(ctx, b)
				continue
			}
			if kv, err := js.KeyValue(ctx, b); err == nil {
				if keys, err := kv.ListKeys(ctx); err == nil {
					for k := range keys.Keys() {
						if len(k) > len(schedulePrefix) && k[:len(schedulePrefix)] == schedulePrefix {
							_ = kv.Purge(ctx, k)
						}
					}
				}
			}
		}
		if !existed[schedule.LeaseBucket] {
			_ = js.DeleteKeyValue(ctx, schedule.LeaseBucket)
		} else if kv, err := js.KeyValue(ctx, schedule.LeaseBucket); err == nil {
			_ = kv.Purge(ctx, scheduleLeaseKey)
		}
	}, nil
}

// putEntries stores an entry for each name from a few goroutines: each
// Put checks the subject's stream and writes one key.
func putEntries(ctx context.Context, store *schedule.Store, names []string, payload []byte, progress func(string, int, int)) error {
	if err := store.Provision(ctx); err != nil {
		return err
	}
	work := make(chan string)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for range 8 {
		wg.Go(func() {
			for name := range work {
				_, err := store.Put(ctx, schedule.Entry{
					Name: name, Spec: ScheduleSpec, Subject: "bench.schedule.jetworker", Payload: payload,
					CatchUp: schedule.CatchUpSkip,
				})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				done++
				if done%500 == 0 || done == len(names) {
					progress("schedule put", done, len(names))
				}
				mu.Unlock()
			}
		})
	}
	var err error
feed:
	for _, name := range names {
		select {
		case work <- name:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	if err != nil {
		return fmt.Errorf("put entries: %w", err)
	}
	return nil
}

// window is the measured slots of a round: [from, to).
type window struct{ from, to time.Time }

// newWindow starts warmup slots after the next whole second after now.
func newWindow(now time.Time, warmup, seconds int) window {
	from := now.Truncate(time.Second).Add(time.Duration(1+warmup) * time.Second)
	return window{from: from, to: from.Add(time.Duration(seconds) * time.Second)}
}

func (w window) has(slot time.Time) bool { return !slot.Before(w.from) && slot.Before(w.to) }

// fireLog collects the fires of the measured slots.
type fireLog struct {
	mu     sync.Mutex
	w      window
	lags   []time.Duration
	failed int
	all    chan struct{} // closed once every expected fire is in
	want   int

	// The process's CPU time and allocations from just before the window
	// (see snapshot) to the end of wait.
	start       *time.Timer
	cpu0, cpu1  time.Duration
	mem0, mem1  runtime.MemStats
	snapshotted chan struct{}
}

// snapshotLead is how long before the first measured slot the CPU and
// allocation counters are read: after the warm-up's fires, before the
// measured ones (reading them stops the world for a moment).
const snapshotLead = 200 * time.Millisecond

func newFireLog(w window, want int) *fireLog {
	l := &fireLog{w: w, want: want, all: make(chan struct{}), lags: make([]time.Duration, 0, want), snapshotted: make(chan struct{})}
	l.start = time.AfterFunc(time.Until(w.from.Add(-snapshotLead)), func() {
		runtime.ReadMemStats(&l.mem0)
		l.cpu0 = processCPU()
		close(l.snapshotted)
	})
	return l
}

func (l *fireLog) add(slot time.Time, lag time.Duration, err error) {
	if !l.w.has(slot) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed++
		return
	}
	l.lags = append(l.lags, lag)
	if len(l.lags) == l.want {
		close(l.all)
	}
}

// wait returns once every expected fire is in, or 5s after the window's
// last slot, and reads the CPU and allocation counters then.
func (l *fireLog) wait(ctx context.Context) error {
	t := time.NewTimer(time.Until(l.w.to.Add(5 * time.Second)))
	defer t.Stop()
	select {
	case <-l.all:
	case <-t.C:
	case <-ctx.Done():
		l.start.Stop()
		return ctx.Err()
	}
	<-l.snapshotted // long since: the window's first slot has passed
	l.cpu1 = processCPU()
	runtime.ReadMemStats(&l.mem1)
	return nil
}

func (l *fireLog) result(name string, seconds, want int) ScheduleResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	lags := append([]time.Duration(nil), l.lags...)
	r := ScheduleResult{
		Name: name, Lag: summarize(lags), Fires: len(lags), Expected: want,
		FiresPerSec: float64(len(lags)) / float64(seconds), Failed: l.failed, PeakRSSMiB: peakRSSMiB(),
	}
	if n := len(lags); n > 0 {
		if l.cpu0 > 0 {
			r.CPUPerFire = (l.cpu1 - l.cpu0) / time.Duration(n)
		}
		r.AllocsPerFire = float64(l.mem1.Mallocs-l.mem0.Mallocs) / float64(n)
	}
	return r
}

// runScheduler runs one scheduler until the measured slots have fired.
func runScheduler(ctx context.Context, js jetstream.JetStream, cfg ScheduleConfig) (ScheduleResult, error) {
	res := ScheduleResult{Name: SideScheduler}
	resetPeakRSS()
	var log *fireLog
	var logMu sync.Mutex
	leading := make(chan struct{})
	var once sync.Once
	s, err := schedule.New(js, schedule.Config{
		LeaseKey: scheduleLeaseKey, Replicas: cfg.Replicas, Logger: slog.New(slog.DiscardHandler),
		Hooks: schedule.Hooks{
			LeaderFunc: func(l bool) {
				if l {
					once.Do(func() { close(leading) })
				}
			},
			FiredFunc: func(f schedule.Fire) {
				logMu.Lock()
				l := log
				logMu.Unlock()
				if l != nil {
					l.add(f.Slot, f.Lag, f.Err)
				}
			},
		},
	})
	if err != nil {
		return res, err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	defer func() {
		stop()
		<-done
	}()
	select {
	case <-leading:
	case err := <-done:
		done <- err
		return res, fmt.Errorf("scheduler stopped: %w", err)
	case <-time.After(30 * time.Second):
		return res, errors.New("scheduler did not lead within 30s")
	case <-ctx.Done():
		return res, ctx.Err()
	}
	want := cfg.Entries * cfg.Seconds
	l := newFireLog(newWindow(time.Now(), cfg.Warmup, cfg.Seconds), want)
	logMu.Lock()
	log = l
	logMu.Unlock()
	if err := waitProgress(ctx, l, SideScheduler+" fire", cfg.Progress); err != nil {
		return res, err
	}
	return l.result(SideScheduler, cfg.Seconds, want), nil
}

// waitProgress waits for the fire log, reporting the seconds passed.
func waitProgress(ctx context.Context, l *fireLog, phase string, progress func(string, int, int)) error {
	total := int(time.Until(l.w.to).Seconds() + 0.5)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	done := make(chan error, 1)
	go func() { done <- l.wait(ctx) }()
	for i := 1; ; i++ {
		select {
		case err := <-done:
			progress(phase, total, total)
			return err
		case <-tick.C:
			progress(phase, min(i, total), total)
		}
	}
}

// runRawLoop publishes a fire of every entry at each slot, from the
// first slot of the warm-up to the last measured one.
func runRawLoop(ctx context.Context, js jetstream.JetStream, cfg ScheduleConfig, names []string, payload []byte) (ScheduleResult, error) {
	res := ScheduleResult{Name: SideRawLoop}
	resetPeakRSS()
	want := cfg.Entries * cfg.Seconds
	w := newWindow(time.Now(), cfg.Warmup, cfg.Seconds)
	l := newFireLog(w, want)
	raw, err := jetstream.New(js.Conn(),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) {
			now := time.Now()
			slot, err := time.Parse(time.RFC3339, m.Header.Get(jetworker.HeaderFireTime))
			if err == nil {
				l.add(slot, now.Sub(slot), nil)
			}
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			if slot, perr := time.Parse(time.RFC3339, m.Header.Get(jetworker.HeaderFireTime)); perr == nil {
				l.add(slot, 0, err)
			}
		}))
	if err != nil {
		return res, err
	}
	loopErr := make(chan error, 1)
	go func() {
		loopErr <- func() error {
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for slot := w.from.Add(-time.Duration(cfg.Warmup) * time.Second); slot.Before(w.to); slot = slot.Add(time.Second) {
				timer.Reset(time.Until(slot))
				select {
				case <-timer.C:
				case <-ctx.Done():
					return ctx.Err()
				}
				at := slot.UTC().Format(time.RFC3339)
				for _, name := range names {
					// The message a fire of the entry would send, with an
					// ID of its own: the same work for the server.
					msg := nats.NewMsg("bench.schedule.raw")
					msg.Data = payload
					msg.Header.Set(jetworker.HeaderMsgID, "raw-"+name+"@"+at)
					msg.Header.Set(jetworker.HeaderSchedule, name)
					msg.Header.Set(jetworker.HeaderFireTime, at)
					if _, err := raw.PublishMsgAsync(msg, jetstream.WithStallWait(5*time.Second)); err != nil {
						l.add(slot, 0, err)
					}
				}
			}
			return nil
		}()
	}()
	if err := waitProgress(ctx, l, SideRawLoop+" fire", cfg.Progress); err != nil {
		return res, err
	}
	if err := <-loopErr; err != nil {
		return res, err
	}
	select {
	case <-raw.PublishAsyncComplete():
	case <-time.After(10 * time.Second):
	}
	return l.result(SideRawLoop, cfg.Seconds, want), nil
}

// medianSchedule takes each figure's median over rounds (the highest max
// and peak RSS, the lowest fire count, the most failures).
func medianSchedule(rs []ScheduleResult) ScheduleResult {
	out := rs[0]
	lags := make([]Latency, len(rs))
	fps := make([]float64, len(rs))
	cpus := make([]float64, len(rs))
	allocs := make([]float64, len(rs))
	for i, r := range rs {
		lags[i], fps[i], cpus[i], allocs[i] = r.Lag, r.FiresPerSec, float64(r.CPUPerFire), r.AllocsPerFire
		out.Fires, out.Failed = min(out.Fires, r.Fires), max(out.Failed, r.Failed)
		out.PeakRSSMiB = max(out.PeakRSSMiB, r.PeakRSSMiB)
	}
	out.Lag, out.FiresPerSec = medianLatency(lags), median(fps)
	out.CPUPerFire, out.AllocsPerFire = time.Duration(median(cpus)), median(allocs)
	return out
}
