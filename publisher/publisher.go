package publisher

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/internal/logkey"
	"github.com/jetworker/jetworker/task"
)

// Defaults for [Config].
const (
	// DefaultMaxInFlight is the async window: unacknowledged async
	// publishes allowed at once. It is nats.go's own default, so that with
	// a server a round trip away jetworker keeps as many publishes in
	// flight as raw PublishAsync does (2048 measured 0.73x raw against a
	// nats-server process on loopback; 4000, 1.04x).
	DefaultMaxInFlight = 4000
	// DefaultAsyncAckTimeout is how long an async publish waits for its
	// PubAck before it fails with [ErrOutcomeUnknown].
	DefaultAsyncAckTimeout = 10 * time.Second
)

// Config tunes a [Publisher]. The zero value is ready to use.
type Config struct {
	// MaxInFlight bounds unacknowledged async publishes; PublishAsync
	// blocks while that many are outstanding. Defaults to 4000.
	MaxInFlight int
	// AsyncAckTimeout bounds the wait for an async publish's PubAck, and
	// for each ack of a batch. Defaults to 10s.
	AsyncAckTimeout time.Duration
	// BatchFlow is how many tasks of a [Publisher.PublishBatch] the server
	// acknowledges at once (it may ask for acks more often). At most
	// 65535. Defaults to 500.
	BatchFlow int
	// BatchOutstanding is how many batch acks may be outstanding before
	// PublishBatch waits. At most 65535. Defaults to 4.
	BatchOutstanding int
	// Hooks observe every publish's outcome (metrics, per-task async
	// results). Defaults to none.
	Hooks Hooks
	// HeaderFunc, when set, is called with the publish's context and the
	// headers of every message before it is sent, to add headers derived
	// from the context (W3C trace context, tenant IDs). Defaults to nil.
	HeaderFunc func(ctx context.Context, h nats.Header)
	// Tasks is the task store tracked and unique publishes write to.
	// Defaults to a store on the default bucket (jetworker_status), made
	// on first use.
	Tasks *task.Store
	// IDFunc, when set, gives every publish without PublishOpts.ID an ID,
	// and so a Nats-Msg-Id the server de-duplicates by: set it to
	// [NewID] for time-ordered UUIDv7s. It must return unique IDs.
	// Defaults to nil: a task without an ID carries no Nats-Msg-Id (and no
	// other header), and is known by its stream and sequence.
	IDFunc func() string
	// NowFunc is the clock that turns a Delay into a release time.
	// Defaults to time.Now.
	NowFunc func() time.Time
	// Logger receives the publisher's log lines. Defaults to
	// slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	c.MaxInFlight = cmp.Or(c.MaxInFlight, DefaultMaxInFlight)
	c.AsyncAckTimeout = cmp.Or(c.AsyncAckTimeout, DefaultAsyncAckTimeout)
	c.BatchFlow = cmp.Or(c.BatchFlow, DefaultBatchFlow)
	c.BatchOutstanding = cmp.Or(c.BatchOutstanding, DefaultBatchOutstanding)
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every problem with c, joined, as [New] would; zero
// fields are checked with their defaults. It does no I/O.
func (c Config) Validate() error { return c.withDefaults().validate() }

func (c Config) validate() error {
	var errs []error
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("publisher: MaxInFlight must be > 0, got %d", c.MaxInFlight))
	}
	if c.AsyncAckTimeout < 0 {
		errs = append(errs, fmt.Errorf("publisher: AsyncAckTimeout must be >= 0, got %s", c.AsyncAckTimeout))
	}
	if c.BatchFlow < 1 || c.BatchFlow > 65535 {
		errs = append(errs, fmt.Errorf("publisher: BatchFlow must be 1 to 65535, got %d", c.BatchFlow))
	}
	if c.BatchOutstanding < 1 || c.BatchOutstanding > 65535 {
		errs = append(errs, fmt.Errorf("publisher: BatchOutstanding must be 1 to 65535, got %d", c.BatchOutstanding))
	}
	return errors.Join(errs...)
}

// PublishOpts are per-call settings; nil means all defaults.
type PublishOpts struct {
	// ID is the task's idempotency key, sent as Nats-Msg-Id: the server
	// stores a second publish with the same ID inside the stream's
	// duplicate window only once. Give one whenever you may publish the
	// same task again (a retry after [ErrOutcomeUnknown], a replayed
	// request). Defaults to Config.IDFunc's, or none.
	ID string
	// Header holds extra headers to send. They are copied; the map is
	// not modified. Nats- headers (server directives) and Jetworker-
	// headers (jetworker's own) are refused with [ErrInvalidOptions].
	Header nats.Header
	// Delay releases the task this long from now (server-side message
	// schedule). Cannot be combined with At.
	Delay time.Duration
	// At releases the task at this time. A time in the past releases it
	// at once. Cannot be combined with Delay.
	At time.Time
	// TTL makes the server remove the task if it is still stored this long
	// after it was released. The stream must allow per-message TTLs.
	TTL time.Duration
	// ExpectStream makes the server reject the publish unless the subject
	// is stored in this stream.
	ExpectStream string

	// Track records the task's lifecycle (state, attempts, progress,
	// result) in Config.Tasks; the task package documents it. A task
	// without an ID gets one ([NewID]), carried in Jetworker-Task-Id (not
	// as a de-duplication key). The record is written once the task is
	// stored (Publish returns after it is; for PublishAsync, Wait covers
	// it). A record that cannot be written does not undo the publish: the
	// worker writes it when it starts the task, and task.Store.Lost counts
	// the gap. A task ID names one task for as long as its record is kept
	// (task.Config.TTL after its last change, 24h by default): a second
	// task published with the same ID within that time shares the first
	// one's record, which a finished first task keeps showing (and a
	// redelivery of the second is then taken for a late duplicate and
	// not run). A tracked task delayed beyond the TTL is refused with
	// [ErrInvalidOptions].
	Track bool
	// Unique keeps a second task with the same ID out while the first is
	// pending (UniquePending) or pending and running (UniqueActive),
	// however long after the stream's duplicate window: the second
	// publish returns a Result with Duplicate set. It needs an ID. A
	// unique task delayed beyond task.Config.TTL is refused with
	// [ErrInvalidOptions]: its lock would expire before it runs.
	Unique Unique
	// UniqueFor makes the uniqueness lock last until the task ends or this
	// long has passed, whichever comes first (asynq's Unique(ttl)); it
	// needs an ID and implies Unique. It may not exceed task.Config.TTL
	// ([ErrInvalidOptions]): the bucket keeps no lock longer.
	UniqueFor time.Duration
	// MaxAttempts caps the deliveries of this task; the consumer uses the
	// lower of it and its own MaxDeliver. 0 means the consumer's.
	MaxAttempts int
	// Timeout caps this task's handler run time; the consumer uses the
	// lower of it and its own HandlerTimeout. 0 means the consumer's.
	Timeout time.Duration
}

// Unique is a uniqueness mode for [PublishOpts].Unique.
type Unique string

// Uniqueness modes.
const (
	// UniquePending holds the lock until a worker starts the task.
	UniquePending Unique = task.UniquePending
	// UniqueActive holds the lock until the task ends (succeeded, failed
	// or cancelled).
	UniqueActive Unique = task.UniqueActive
)

// Result describes a stored publish.
type Result struct {
	// ID is the task ID that was sent, "" for a task without one.
	ID string
	// Stream and Sequence locate the stored message. For a delayed task
	// they locate the schedule message, not the released task.
	Stream   string
	Sequence uint64
	// Duplicate is true when the server had already stored a message with
	// this ID inside the duplicate window and dropped this one. It is not
	// an error.
	Duplicate bool
}

// Ref returns the stored message's identity, "<stream>/<seq>"
// ([jetworker.Ref]); it is how a task without an ID is known.
func (r Result) Ref() string { return jetworker.Ref(r.Stream, r.Sequence) }

// Hooks observe a [Publisher]. Every field is optional.
type Hooks struct {
	// ResultFunc is called once for every publish whose message was
	// built (valid subject and options), with the subject, the result and
	// the error that failed it (wrapping [ErrOutcomeUnknown] when it may
	// be stored): after the PubAck of [Publisher.Publish], and on nats.go's
	// ack goroutine for [Publisher.PublishAsync]. It must not block.
	ResultFunc func(subject string, r Result, err error)
}

// JoinHooks combines hooks into one whose functions call those of hooks in
// the order given.
func JoinHooks(hooks ...Hooks) Hooks {
	var fs []func(string, Result, error)
	for _, h := range hooks {
		if h.ResultFunc != nil {
			fs = append(fs, h.ResultFunc)
		}
	}
	if len(fs) == 0 {
		return Hooks{}
	}
	return Hooks{ResultFunc: func(subject string, r Result, err error) {
		for _, f := range fs {
			f(subject, r, err)
		}
	}}
}

// Publisher publishes tasks. It is safe for concurrent use.
type Publisher struct {
	js    jetstream.JetStream
	async jetstream.JetStream
	cfg   Config
	log   *slog.Logger

	streams sync.Map // subject or stream name -> *streamInfo (positive results only)

	slots chan struct{} // async window
	n     atomic.Int64  // async operations in flight (publishes, record writes)
	mu    sync.Mutex
	idle  chan struct{} // closed when n drops to 0 while Wait waits; nil otherwise
	errs  []error       // async failures not yet returned by Wait

	tasksOnce sync.Once
	taskStore *task.Store
	// locks holds the revision of the uniqueness lock an async publish
	// took, by its message, until its ack says whether the task was
	// stored; nlocks counts them, so that an ack looks only when any is
	// held.
	locks  sync.Map
	nlocks atomic.Int64
}

// New returns a Publisher on js. It does no network I/O.
func New(js jetstream.JetStream, cfg Config) (*Publisher, error) {
	if js == nil {
		return nil, errors.New("publisher: nil JetStream")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &Publisher{
		js:    js,
		cfg:   cfg,
		log:   cfg.Logger.With(slog.String(logkey.Component, "publisher")),
		slots: make(chan struct{}, cfg.MaxInFlight),
	}
	// Async publishes go through a context of our own on the same
	// connection, so the ack callbacks are ours. Publishing uses no API
	// prefix or domain, so nothing of the caller's context is lost.
	async, err := jetstream.New(js.Conn(),
		jetstream.WithPublishAsyncAckHandler(p.onAck),
		jetstream.WithPublishAsyncErrHandler(p.onErr),
		jetstream.WithPublishAsyncMaxPending(2*cfg.MaxInFlight),
		jetstream.WithPublishAsyncTimeout(cfg.AsyncAckTimeout),
	)
	if err != nil {
		return nil, fmt.Errorf("publisher: async jetstream context: %w", err)
	}
	p.async = async
	return p, nil
}

// Publish sends one task and waits for the server's PubAck. It blocks
// until the ack arrives or ctx ends.
//
// Errors: [jetworker.ErrInvalidSubject], [jetworker.ErrReservedSubject]
// (the server's $ and _INBOX spaces), [ErrPayloadTooLarge],
// [ErrInvalidOptions] and ctx's error before anything is sent; [ErrDelayNotSupported] and
// [ErrNoStream] when no suitable stream stores the subject; a
// *jetstream.APIError (wrapped) when the server rejects the message; and
// [ErrOutcomeUnknown] when the message was sent but no ack arrived. Only the
// last means the message may be stored.
func (p *Publisher) Publish(ctx context.Context, subject string, data []byte, opts *PublishOpts) (Result, error) {
	pr, err := p.message(ctx, subject, data, opts)
	if err != nil {
		return Result{ID: pr.id}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{ID: pr.id}, fmt.Errorf("publish %q: not sent: %w", subject, err)
	}
	if dup, err := p.before(ctx, pr); err != nil || dup {
		return Result{ID: pr.id, Duplicate: dup}, err
	}
	ack, err := p.js.PublishMsg(ctx, pr.msg)
	if err != nil {
		err = publishError(subject, err)
		p.failed(ctx, pr, err)
		p.result(subject, Result{ID: pr.id}, err)
		return Result{ID: pr.id}, err
	}
	res := Result{ID: pr.id, Stream: ack.Stream, Sequence: ack.Sequence, Duplicate: ack.Duplicate}
	if ack.Duplicate {
		p.release(ctx, pr.id, pr.lockRev)
	}
	if pr.tracked {
		p.track(ctx, p.stored(pr, ack))
	}
	p.result(subject, res, nil)
	return res, nil
}

// before takes a unique task's lock before the task is published. It
// reports true when another task with the ID holds it (a duplicate, not
// published).
func (p *Publisher) before(ctx context.Context, pr *prepared) (dup bool, err error) {
	if pr.unique == "" {
		return false, nil
	}
	window, err := p.retryWindow(ctx, pr)
	if err != nil {
		return false, err
	}
	pr.lockRev, err = p.tasks().Lock(ctx, pr.id, pr.lockTTL, window)
	if errors.Is(err, task.ErrLocked) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("publish %q: %w", pr.subject, err)
	}
	return false, nil
}

// retryWindow is how young a held uniqueness lock must be for a publish
// with its ID to go ahead as a retry of the publish that took it (after
// an unknown outcome): uniqueRetryWindow, and never more than the
// duplicate window of the stream the task goes to, which then
// de-duplicates the retry. Past that window the server would store the
// retry as a second task. The window is looked up once per stream.
func (p *Publisher) retryWindow(ctx context.Context, pr *prepared) (time.Duration, error) {
	name := pr.stream
	if name == "" {
		if v, ok := p.streams.Load("name\x00" + pr.subject); ok {
			name = v.(string)
		} else {
			var err error
			if name, err = p.js.StreamNameBySubject(ctx, pr.subject); err != nil {
				if errors.Is(err, jetstream.ErrStreamNotFound) {
					return 0, fmt.Errorf("publish %q: %w", pr.subject, ErrNoStream)
				}
				return 0, fmt.Errorf("publish %q: look up its stream: %w", pr.subject, err)
			}
			p.streams.Store("name\x00"+pr.subject, name)
		}
	}
	if v, ok := p.streams.Load("dup\x00" + name); ok {
		return v.(time.Duration), nil
	}
	st, err := p.js.Stream(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("publish %q: look up stream %q: %w", pr.subject, name, err)
	}
	window := min(uniqueRetryWindow, st.CachedInfo().Config.Duplicates)
	p.streams.Store("dup\x00"+name, window)
	return window, nil
}

// track writes a stored task's record, with its location (Cancel removes
// a pending or scheduled task's message by it). It is written once the
// task is stored, so no record claims a task that never was; a worker
// that starts the task first writes the record itself, and this write
// then changes nothing. A record that cannot be written does not undo the
// publish: the task is stored and runs, the worker writes its record when
// it starts it, and Store.Lost counts the gap.
func (p *Publisher) track(ctx context.Context, st task.Stored) {
	if err := p.tasks().Track(context.WithoutCancel(ctx), st); err != nil {
		p.log.LogAttrs(ctx, slog.LevelWarn, "write the stored task's record; its worker writes it when it starts the task",
			slog.String(logkey.TaskID, st.ID), slog.Any(logkey.Err, err))
	}
}

// failed gives back the lock a unique publish took when the task was
// certainly not stored. One whose outcome is unknown keeps it: the task
// may be stored, and a retry with the same ID is de-duplicated.
func (p *Publisher) failed(ctx context.Context, pr *prepared, err error) {
	if errors.Is(err, ErrOutcomeUnknown) {
		return
	}
	p.release(ctx, pr.id, pr.lockRev)
}

// release gives back the uniqueness lock this publish took at revision
// rev (0: it took none, as a retry inside the retry window): the task was
// not stored, or the server reports it a duplicate of one stored before
// (the same ID re-published inside the stream's duplicate window after
// the first ended and released its lock). A lock taken since by another
// publish is left alone.
func (p *Publisher) release(ctx context.Context, id string, rev uint64) {
	if rev == 0 {
		return
	}
	if err := p.tasks().Release(context.WithoutCancel(ctx), id, rev); err != nil {
		p.log.LogAttrs(ctx, slog.LevelWarn, "give back the uniqueness lock of a task not stored; it expires with its TTL",
			slog.String(logkey.TaskID, id), slog.Any(logkey.Err, err))
	}
}

// uniqueRetryWindow is the longest a held uniqueness lock lets a publish
// with its ID through as a retry (see retryWindow).
const uniqueRetryWindow = time.Minute

func (p *Publisher) stored(pr *prepared, ack *jetstream.PubAck) task.Stored {
	st := task.Stored{ID: pr.id, Subject: pr.subject, RunAt: pr.runAt, MaxAttempts: pr.maxAtt, Unique: pr.unique}
	if ack != nil {
		st.Stream, st.Sequence = ack.Stream, ack.Sequence
	}
	return st
}

// tasks returns the task store, making the default one on first use.
func (p *Publisher) tasks() *task.Store {
	p.tasksOnce.Do(func() {
		if p.cfg.Tasks != nil {
			p.taskStore = p.cfg.Tasks
			return
		}
		p.taskStore, _ = task.New(p.js, task.Config{Logger: p.cfg.Logger}) // the zero Config is valid
	})
	return p.taskStore
}

func (p *Publisher) result(subject string, r Result, err error) {
	if p.cfg.Hooks.ResultFunc != nil {
		p.cfg.Hooks.ResultFunc(subject, r, err)
	}
}

// PublishAsync sends one task without waiting for its PubAck and returns
// its task ID. It blocks while Config.MaxInFlight publishes are
// unacknowledged, until one is or ctx ends. The outcome goes to
// Hooks.ResultFunc and, for failures, to the next [Publisher.Wait].
//
// It returns the same errors as [Publisher.Publish] for problems found
// before sending.
func (p *Publisher) PublishAsync(ctx context.Context, subject string, data []byte, opts *PublishOpts) (string, error) {
	pr, err := p.message(ctx, subject, data, opts)
	if err != nil {
		return pr.id, err
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return pr.id, fmt.Errorf("publish %q: not sent, waiting for the async window: %w", subject, ctx.Err())
	}
	if dup, err := p.before(ctx, pr); err != nil || dup {
		<-p.slots
		if dup {
			p.result(subject, Result{ID: pr.id, Duplicate: true}, nil)
		}
		return pr.id, err
	}
	p.begin()
	if pr.lockRev > 0 {
		p.nlocks.Add(1)
		p.locks.Store(pr.msg, pr.lockRev)
	}
	if _, err := p.async.PublishMsgAsync(pr.msg); err != nil {
		p.takeLock(pr.msg)
		err = publishError(subject, err)
		p.failed(ctx, pr, err)
		p.result(subject, Result{ID: pr.id}, err)
		p.done(nil)
		return pr.id, err
	}
	return pr.id, nil
}

// Wait blocks until every async publish sent before it was called has been
// acknowledged or has failed, or ctx ends. It returns the async failures
// since the previous Wait, joined; each wraps the publish error (and
// [ErrOutcomeUnknown] where the message may be stored) and names the
// subject and task ID.
func (p *Publisher) Wait(ctx context.Context) error {
	p.mu.Lock()
	var idle chan struct{}
	if p.n.Load() > 0 {
		if p.idle == nil {
			p.idle = make(chan struct{})
		}
		idle = p.idle
	}
	p.mu.Unlock()
	if idle != nil {
		select {
		case <-idle:
		case <-ctx.Done():
			return fmt.Errorf("publisher: wait for %d async acks: %w", p.InFlight(), ctx.Err())
		}
	}
	p.mu.Lock()
	errs := p.errs
	p.errs = nil
	p.mu.Unlock()
	return errors.Join(errs...)
}

// InFlight returns the number of async publishes not yet acknowledged,
// and of tracked tasks' record writes not yet done.
func (p *Publisher) InFlight() int { return int(p.n.Load()) }

func (p *Publisher) onAck(_ jetstream.JetStream, m *nats.Msg, ack *jetstream.PubAck) {
	res := Result{ID: jetworker.TaskID(m.Header), Stream: ack.Stream, Sequence: ack.Sequence, Duplicate: ack.Duplicate}
	if v, ok := p.takeLock(m); ok && ack.Duplicate {
		// Given back off the ack handler (a request); the window slot is
		// held until then, so Wait covers it and MaxInFlight bounds these
		// goroutines.
		go func() {
			p.release(context.Background(), res.ID, v.(uint64))
			p.acked(m, res)
		}()
		return
	}
	p.acked(m, res)
}

// acked finishes an async publish the server stored: a tracked task's
// record is written with an async publish of its own, which Wait covers
// but which does not hold the task's window slot.
func (p *Publisher) acked(m *nats.Msg, res Result) {
	if v := m.Header[jetworker.HeaderTrack]; len(v) > 0 && v[0] != "" {
		p.begin()
		st := storedFromMsg(m, &jetstream.PubAck{Stream: res.Stream, Sequence: res.Sequence})
		p.tasks().TrackAsync(st, func(err error) {
			if err != nil {
				p.log.LogAttrs(context.Background(), slog.LevelWarn, "write the stored task's record; its worker writes it when it starts the task",
					slog.String(logkey.TaskID, st.ID), slog.Any(logkey.Err, err))
			}
			p.end(nil)
		})
	}
	p.result(target(m), res, nil)
	p.done(nil)
}

// storedFromMsg describes a stored task from its message and ack.
func storedFromMsg(m *nats.Msg, ack *jetstream.PubAck) task.Stored {
	st := task.Stored{
		ID: jetworker.TaskID(m.Header), Subject: target(m), Stream: ack.Stream, Sequence: ack.Sequence,
		Unique: m.Header.Get(jetworker.HeaderUnique),
	}
	st.MaxAttempts, _ = strconv.Atoi(m.Header.Get(jetworker.HeaderMaxAttempts))
	if m.Header.Get(jetstream.ScheduleHeader) != "" {
		st.RunAt, _ = time.Parse(time.RFC3339Nano, m.Header.Get(jetworker.HeaderEnqueuedAt))
	}
	return st
}

func (p *Publisher) onErr(_ jetstream.JetStream, m *nats.Msg, err error) {
	id := jetworker.TaskID(m.Header)
	subject := target(m)
	err = publishError(subject, err)
	if v, ok := p.takeLock(m); ok {
		p.failed(context.Background(), &prepared{id: id, subject: subject, lockRev: v.(uint64)}, err)
	}
	if id != "" {
		err = fmt.Errorf("task %s: %w", id, err)
	}
	p.result(subject, Result{ID: id}, err)
	p.done(err)
}

// target is the task subject of a message: for a delayed task the
// schedule's target, not the delay subject it is stored on.
func target(m *nats.Msg) string {
	if t := m.Header[jetstream.ScheduleTargetHeader]; len(t) > 0 && t[0] != "" {
		return t[0]
	}
	return m.Subject
}

// done ends one async publish: it records err and frees its window slot.
func (p *Publisher) done(err error) {
	p.end(err)
	<-p.slots
}

// takeLock removes and returns the lock revision an async publish of m
// took, if any.
func (p *Publisher) takeLock(m *nats.Msg) (any, bool) {
	if p.nlocks.Load() == 0 {
		return nil, false
	}
	v, ok := p.locks.LoadAndDelete(m)
	if ok {
		p.nlocks.Add(-1)
	}
	return v, ok
}

// begin counts one more async operation Wait waits for. It takes no
// lock: a publish costs an atomic add here and one in end.
func (p *Publisher) begin() { p.n.Add(1) }

// end finishes an async operation, recording err for Wait, and wakes a
// waiting Wait when none is left. The count is checked again under the
// lock, so an operation begun meanwhile keeps Wait waiting.
func (p *Publisher) end(err error) {
	if err != nil {
		p.mu.Lock()
		p.errs = append(p.errs, err)
		p.mu.Unlock()
	}
	if p.n.Add(-1) != 0 {
		return
	}
	p.mu.Lock()
	if p.idle != nil && p.n.Load() == 0 {
		close(p.idle)
		p.idle = nil
	}
	p.mu.Unlock()
}

// publishError classifies an error from a publish call.
func publishError(subject string, err error) error {
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("publish %q: %w (or its stream has no leader)", subject, ErrNoStream)
	case errors.Is(err, jetstream.ErrMessageSchedulesDisabled):
		return fmt.Errorf("publish %q: %w: %w", subject, ErrDelayNotSupported, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, nats.ErrTimeout), errors.Is(err, jetstream.ErrAsyncPublishTimeout),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, jetstream.ErrConnectionClosed),
		errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrConnectionReconnecting):
		return fmt.Errorf("publish %q: %w: %w", subject, ErrOutcomeUnknown, err)
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return fmt.Errorf("publish %q: rejected by the server: %w", subject, err)
	}
	return fmt.Errorf("publish %q: %w: %w", subject, ErrOutcomeUnknown, err)
}

// NewID returns a time-ordered unique ID (a UUIDv7 string), for
// Config.IDFunc or PublishOpts.ID.
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// PublishJSON encodes v as JSON and publishes it like [Publisher.Publish].
// An encoding failure is returned before any I/O.
func PublishJSON[T any](ctx context.Context, p *Publisher, subject string, v T, opts *PublishOpts) (Result, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return Result{}, fmt.Errorf("publish %q: encode %T: %w", subject, v, err)
	}
	return p.Publish(ctx, subject, data, opts)
}
