package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/internal/logkey"
	"github.com/jetworker/jetworker/internal/natsconn"
	"github.com/jetworker/jetworker/internal/wire"
	tasks "github.com/jetworker/jetworker/task"
)

// settleTimeout bounds the I/O of settling one message (dead-letter
// publish, double ack), independent of the handler's context.
const settleTimeout = 10 * time.Second

// Consumer runs a handler on the messages of one durable pull consumer
// with a bounded pool of workers. Create it with [New] and start it with
// [Consumer.Run]. Its methods are safe for concurrent use.
type Consumer struct {
	js  jetstream.JetStream
	h   jetworker.Handler
	cfg Config
	log *slog.Logger

	running  atomic.Bool
	ready    chan struct{}
	prefetch *prefetch
	stream   jetstream.Stream // set in Run before any worker starts

	inFlight  atomic.Int64
	processed atomic.Uint64
	waits     waitHistogram
	failed    atomic.Uint64

	workerID string // this worker's presence ID

	trackMu sync.Mutex
	tracker *tasks.Tracker              // nil until needed
	startBg func(func(context.Context)) // runs a background part under Run's wait group
}

// New returns a Consumer that runs h on the messages cfg selects. It
// validates cfg and does no network I/O.
func New(js jetstream.JetStream, h jetworker.Handler, cfg Config) (*Consumer, error) {
	if js == nil {
		return nil, errors.New("consumer: nil JetStream")
	}
	if h == nil {
		return nil, errors.New("consumer: nil Handler")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Consumer{
		js:  js,
		h:   h,
		cfg: cfg,
		log: cfg.Logger.With(
			slog.String(logkey.Component, "consumer"),
			slog.String(logkey.Stream, cfg.Stream),
			slog.String(logkey.Consumer, cfg.Durable),
		),
		ready: make(chan struct{}),
	}
	// Start shallow; the controller deepens it once handlers prove fast.
	c.prefetch = &prefetch{c: c, next: min(cfg.Concurrency, cfg.PullMaxMessages)}
	host, _ := os.Hostname()
	c.workerID = keyToken(host) + "-" + strconv.Itoa(os.Getpid()) + "-" + nuid.Next()[16:]
	return c, nil
}

// Config returns the effective configuration, defaults filled in.
func (c *Consumer) Config() Config { return c.cfg }

// Ready returns a channel that is closed once Run has provisioned the
// durable consumer and started pulling.
func (c *Consumer) Ready() <-chan struct{} { return c.ready }

// Run provisions the durable consumer (see [Provision]) and processes
// messages until ctx ends; then it shuts down gracefully: it stops pulling,
// Naks (without delay) messages received but not started, lets running
// handlers finish within ShutdownGrace, then cancels their contexts and
// Naks what is left, and returns nil. It returns only after every
// goroutine it started has ended, except handlers that ignore
// cancellation for HardStopTimeout, reported as [ErrHandlersStuck].
//
// It returns an error if it cannot start (provisioning, [ErrConsumerConflict])
// or if consuming stops for a reason other than ctx: one wrapping
// nats.ErrConnectionClosed when its connection is closed for good. A
// second call returns [ErrAlreadyRunning].
func (c *Consumer) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	cons, err := Provision(ctx, c.js, c.cfg)
	if err != nil {
		return err
	}
	stream, err := c.js.Stream(ctx, c.cfg.Stream)
	if err != nil {
		return fmt.Errorf("consumer: look up stream %q: %w", c.cfg.Stream, err)
	}
	c.stream = stream

	var bg sync.WaitGroup // advisory listener, presence, task tracker
	bgCtx, bgCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		bgCancel()
		bg.Wait()
	}()
	if err := c.listenMaxDeliveries(bgCtx, &bg); err != nil {
		return err
	}
	if !c.cfg.DisablePresence {
		bg.Go(func() { c.keepPresence(bgCtx) })
	}
	c.trackMu.Lock()
	c.startBg = func(f func(context.Context)) { bg.Go(func() { f(bgCtx) }) }
	c.trackMu.Unlock()
	defer func() {
		c.trackMu.Lock()
		c.startBg = nil
		c.trackMu.Unlock()
	}()
	if c.cfg.Tasks != nil || c.cfg.TrackAll {
		if tr := c.startTracker(); tr != nil {
			select {
			case <-tr.Ready():
			case <-ctx.Done():
			}
		}
	}

	// Handler contexts keep ctx's values but are cancelled only by us.
	hctx, hardCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hardCancel()
	var dl *deadlines
	if c.cfg.HandlerTimeout > 0 {
		dl = newDeadlines(hctx, c.cfg.HandlerTimeout)
	}
	work := make(chan jetstream.Msg)
	var workers sync.WaitGroup
	slots := make([]*slot, c.cfg.Concurrency)
	for i := range slots {
		slots[i] = newSlot(c.log)
		workers.Go(func() { c.work(hctx, dl, work, slots[i]) })
	}
	c.prefetch.slots = slots
	// Heartbeats go on while the workers finish, through the grace period.
	bctx, stopBeats := context.WithCancel(context.WithoutCancel(ctx))
	var beats sync.WaitGroup
	beats.Go(func() { c.heartbeats(bctx, slots) })

	// The prefetch controller retunes the pull depth while running, and
	// when ctx ends drains the current Consume: nats.go then hands out what is
	// already buffered, which dispatch Naks.
	pctx, stopPrefetch := context.WithCancel(ctx)
	var ctl sync.WaitGroup
	ctl.Go(func() { c.prefetch.run(pctx) })

	c.log.InfoContext(ctx, "consumer started",
		slog.Int("concurrency", c.cfg.Concurrency),
		slog.Duration("ack_wait", c.cfg.AckWait),
		slog.Int("max_deliver", c.cfg.MaxDeliver))
	close(c.ready)

	runErr := c.pull(ctx, cons, work)
	stopPrefetch()
	ctl.Wait()
	close(work)

	if err := c.waitWorkers(ctx, &workers, slots, hardCancel); err != nil {
		runErr = errors.Join(runErr, err)
	}
	stopBeats()
	beats.Wait()
	c.log.InfoContext(ctx, "consumer stopped", slog.Uint64("processed", c.processed.Load()), slog.Uint64("failed", c.failed.Load()))
	return runErr
}

// trackerFor returns the tracker when the task with headers h needs one
// (tracked, unique, or every task with TrackAll), starting it on first
// use; nil otherwise.
func (c *Consumer) trackerFor(h nats.Header) *tasks.Tracker {
	if !c.cfg.TrackAll && c.cfg.Tasks == nil && (h == nil || (wire.Value(h, jetworker.HeaderTrack) == "" && wire.Value(h, jetworker.HeaderUnique) == "")) {
		return nil
	}
	c.trackMu.Lock()
	tr := c.tracker
	c.trackMu.Unlock()
	if tr != nil {
		return tr
	}
	return c.startTracker()
}

// startTracker makes the tracker and runs it under Run's wait group until
// Run's background context ends. It returns nil when Run is not running.
func (c *Consumer) startTracker() *tasks.Tracker {
	c.trackMu.Lock()
	defer c.trackMu.Unlock()
	if c.tracker != nil {
		return c.tracker
	}
	if c.startBg == nil {
		return nil
	}
	store := c.cfg.Tasks
	if store == nil {
		var err error
		if store, err = tasks.New(c.js, tasks.Config{Logger: c.cfg.Logger}); err != nil {
			c.log.Error("task store", slog.Any(logkey.Err, err))
			return nil
		}
	}
	tr := store.NewTracker(c.workerID, c.cfg.TrackAll)
	c.tracker = tr
	c.startBg(func(ctx context.Context) {
		// A closed connection stops the consumer too, which reports it.
		if err := tr.Run(ctx); err != nil {
			c.log.LogAttrs(ctx, slog.LevelWarn, "task tracker stopped", slog.Any(logkey.Err, err))
		}
	})
	return tr
}

// pull consumes and dispatches messages until ctx ends, consuming anew
// whenever the prefetch controller drained the last pull for a retune. It
// returns an error if consuming stopped for another reason while ctx was
// still live.
//
// It uses nats.go's Consume rather than its Messages iterator: the
// callback runs on the subscription's goroutine and may block until a
// worker is free (nats.go pauses its heartbeat check meanwhile and pulls
// more only once the callback returns), and it costs no timer per message.
func (c *Consumer) pull(ctx context.Context, cons jetstream.Consumer, work chan<- jetstream.Msg) error {
	// Consumes drained to deepen the prefetch, still handing out what
	// they buffered while the deeper one pulls.
	var retired sync.WaitGroup
	defer retired.Wait()
	for {
		d := &dispatcher{c: c, ctx: ctx, work: work}
		cc, deepened, err := c.prefetch.open(cons, d.handle, d.fail)
		if err != nil {
			return fmt.Errorf("consumer: start pulling: %w", err)
		}
		if cc == nil { // stopped before it could open
			return nil
		}
		select {
		case <-deepened:
			retired.Go(func() { d.finish(cc) })
			continue
		case <-cc.Closed():
		}
		d.finish(cc)
		rotating, _ := c.prefetch.state()
		switch err := d.error(); {
		case err != nil:
			return err
		case ctx.Err() != nil:
			return nil
		case !rotating:
			if natsconn.ClosedWithin(c.js.Conn(), time.Second) {
				return natsconn.Error("consumer")
			}
			return errors.New("consumer: pulling stopped")
		}
	}
}

// dispatcher hands one Consume's messages to free workers. Its handle
// runs on nats.go's subscription goroutine, one message at a time, so
// held needs no lock; err is set from nats.go's error callback.
type dispatcher struct {
	c    *Consumer
	ctx  context.Context
	work chan<- jetstream.Msg
	held []jetstream.Msg // drained while shrinking, waiting for workers

	finished atomic.Bool // its Consume has closed

	mu  sync.Mutex
	err error
}

// finish waits until cc, the Consume d serves, has closed, then hands the
// messages it held to workers.
func (d *dispatcher) finish(cc jetstream.ConsumeContext) {
	<-cc.Closed()
	d.finished.Store(true)
	d.c.deliverHeld(d.ctx, d.held, d.work)
}

func (d *dispatcher) handle(msg jetstream.Msg) {
	if d.ctx.Err() != nil {
		d.c.requeue(msg)
		return
	}
	if _, shrinking := d.c.prefetch.state(); shrinking {
		// The buffer was deep for slow handlers: keep what it held
		// alive ourselves rather than let it wait unattended.
		if err := msg.InProgress(); err != nil {
			d.c.log.WarnContext(d.ctx, "heartbeat held message", slog.Any(logkey.Err, err))
		}
		d.held = append(d.held, msg)
		return
	}
	if len(d.held) > 0 {
		d.c.deliverHeld(d.ctx, d.held, d.work)
		d.held = d.held[:0]
	}
	select {
	case d.work <- msg:
	case <-d.ctx.Done():
		d.c.requeue(msg)
	}
}

// fail receives nats.go's consume errors: a deleted consumer ends
// consuming with an error; missed heartbeats and the like are transient,
// nats.go keeps pulling after reconnecting.
func (d *dispatcher) fail(cc jetstream.ConsumeContext, err error) {
	if d.finished.Load() {
		// nats.go may still report a missed heartbeat of a drained
		// Consume, whose timer a last buffered message re-armed.
		return
	}
	if errors.Is(err, jetstream.ErrConsumerDeleted) {
		d.mu.Lock()
		d.err = fmt.Errorf("consumer: durable %q deleted while running: %w", d.c.cfg.Durable, err)
		d.mu.Unlock()
		cc.Stop()
		return
	}
	d.c.log.WarnContext(d.ctx, "pull", slog.Any(logkey.Err, err))
}

func (d *dispatcher) error() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// deliverHeld hands held messages to workers in order, marking the ones
// still waiting in progress every HeartbeatInterval. On shutdown it Naks
// the rest.
func (c *Consumer) deliverHeld(ctx context.Context, held []jetstream.Msg, work chan<- jetstream.Msg) {
	hb := time.NewTicker(c.cfg.HeartbeatInterval)
	defer hb.Stop()
	for len(held) > 0 {
		select {
		case work <- held[0]:
			held = held[1:]
		case <-hb.C:
			for _, m := range held {
				_ = m.InProgress()
			}
		case <-ctx.Done():
			for _, m := range held {
				c.requeue(m)
			}
			return
		}
	}
}

// requeue Naks a message without delay so another worker takes it now.
func (c *Consumer) requeue(msg jetstream.Msg) {
	if err := msg.Nak(); err != nil {
		c.log.Warn("nak on shutdown", slog.String(logkey.Subject, msg.Subject()), slog.Any(logkey.Err, err))
	}
}

// waitWorkers waits for the workers: first for ShutdownGrace, then it
// cancels handler contexts and waits HardStopTimeout more.
func (c *Consumer) waitWorkers(ctx context.Context, workers *sync.WaitGroup, slots []*slot, hardCancel context.CancelFunc) error {
	done := make(chan struct{})
	go func() { // owned: it ends when the workers do
		workers.Wait()
		close(done)
	}()
	grace := time.NewTimer(c.cfg.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-done:
		return nil
	case <-grace.C:
	}
	n := c.inFlight.Load()
	c.log.WarnContext(ctx, "shutdown grace over, cancelling handlers", slog.Int64("in_flight", n), slog.Duration(logkey.Duration, c.cfg.ShutdownGrace))
	hardCancel()
	hard := time.NewTimer(c.cfg.HardStopTimeout)
	defer hard.Stop()
	select {
	case <-done:
		return nil
	case <-hard.C:
		for _, s := range slots {
			s.abandon()
		}
		return fmt.Errorf("%w: %d still running %s after cancellation", ErrHandlersStuck, c.inFlight.Load(), c.cfg.HardStopTimeout)
	}
}
