package publisher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jetworker/jetworker/internal/wire"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	jsubject "github.com/jetworker/jetworker/internal/subject"
	"github.com/jetworker/jetworker/streams"
	"github.com/jetworker/jetworker/task"
)

// prepared is a publish ready to send.
type prepared struct {
	msg     *nats.Msg
	id      string
	subject string
	tracked bool
	unique  string // the Jetworker-Unique value, "" without a lock
	lockTTL time.Duration
	lockRev uint64    // the lock this publish took, 0 if none
	stream  string    // the stream it goes to, when known before it is sent
	runAt   time.Time // a delayed task's due time
	maxAtt  int
}

// message validates a publish and builds its message. It does I/O only
// for delayed tasks, to find the stream (once per subject). A task without
// an ID, delay, TTL, task options or extra headers is built as bare as raw
// nats.go would send it: no headers at all.
func (p *Publisher) message(ctx context.Context, subject string, data []byte, opts *PublishOpts) (*prepared, error) {
	var o PublishOpts
	if opts != nil {
		o = *opts
	}
	id := o.ID
	if id == "" && p.cfg.IDFunc != nil {
		id = p.cfg.IDFunc()
	}
	pr := &prepared{id: id, subject: subject, tracked: o.Track, maxAtt: o.MaxAttempts, stream: o.ExpectStream}
	if err := jsubject.Validate(subject); err != nil {
		return pr, fmt.Errorf("publish: %w", err)
	}
	if err := o.validate(); err != nil {
		return pr, err
	}
	msgID := id // the de-duplication key: only an ID the caller chose
	if o.Track && id == "" {
		pr.id = NewID()
	}
	switch {
	case o.UniqueFor > 0:
		pr.unique, pr.lockTTL = task.UniqueFor(o.UniqueFor), o.UniqueFor
	case o.Unique != "":
		pr.unique = string(o.Unique)
	}
	if pr.unique != "" && id == "" {
		return pr, fmt.Errorf("%w: a unique task needs an ID (PublishOpts.ID or Config.IDFunc): uniqueness is by ID", ErrInvalidOptions)
	}
	if err := p.checkTTL(o, pr.unique != ""); err != nil {
		return pr, err
	}
	msg := &nats.Msg{Subject: subject, Data: data}
	delayed := o.Delay > 0 || !o.At.IsZero()
	n := len(o.Header)
	if msgID != "" {
		n++
	}
	if pr.id != msgID || delayed {
		n++ // Jetworker-Task-Id
	}
	if o.Track {
		n++
	}
	if pr.unique != "" {
		n++
	}
	if o.MaxAttempts > 0 {
		n++
	}
	if o.Timeout > 0 {
		n++
	}
	if o.ExpectStream != "" {
		n++
	}
	if o.TTL > 0 {
		n++
	}
	if delayed {
		n += 4
	}
	if n == 0 && p.cfg.HeaderFunc == nil {
		pr.msg = msg
		return pr, p.checkSize(subject, msg, 0)
	}

	// One allocation holds every header value.
	vals := make([]string, 0, n)
	h := make(nats.Header, n)
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	for k, vs := range o.Header {
		if len(vs) == 1 {
			set(k, vs[0])
		} else {
			h[k] = append([]string(nil), vs...)
		}
	}
	if msgID != "" {
		set(jetworker.HeaderMsgID, msgID)
	}
	if pr.id != msgID || (delayed && pr.id != "") {
		// The server strips Nats-Msg-Id from a released delayed task, and a
		// generated tracking ID is no de-duplication key: carry the ID in a
		// header of ours.
		set(jetworker.HeaderTaskID, pr.id)
	}
	if o.Track {
		set(jetworker.HeaderTrack, "1")
	}
	if pr.unique != "" {
		set(jetworker.HeaderUnique, pr.unique)
	}
	if o.MaxAttempts > 0 {
		set(jetworker.HeaderMaxAttempts, strconv.Itoa(o.MaxAttempts))
	}
	if o.Timeout > 0 {
		set(jetworker.HeaderTimeout, o.Timeout.String())
	}
	if o.ExpectStream != "" {
		set(jetstream.ExpectedStreamHeader, o.ExpectStream)
	}
	if p.cfg.HeaderFunc != nil {
		p.cfg.HeaderFunc(ctx, h)
	}
	if len(h) > 0 || delayed || o.TTL > 0 {
		msg.Header = h
	}
	if delayed {
		// Only delayed tasks need the clock: the server timestamps the
		// rest.
		due := o.At
		if o.Delay > 0 {
			due = p.cfg.NowFunc().Add(o.Delay)
		}
		pr.runAt = due
		info, err := p.delayStream(ctx, subject, o.ExpectStream)
		if err != nil {
			return pr, err
		}
		pr.stream = info.name
		// The released message is stored when the server gets to it;
		// keep the time it was due for latency metrics.
		set(jetworker.HeaderEnqueuedAt, due.UTC().Format(time.RFC3339Nano))
		set(jetstream.ScheduleHeader, "@at "+due.UTC().Format(time.RFC3339Nano))
		set(jetstream.ScheduleTargetHeader, subject)
		if o.TTL > 0 {
			set(jetstream.ScheduleTTLHeader, o.TTL.String())
		}
		msg.Subject = streams.DelaySubjectPrefix(info.name) + NewID()
	} else if o.TTL > 0 {
		set(jetstream.MsgTTLHeader, o.TTL.String())
	}
	pr.msg = msg
	return pr, p.checkSize(subject, msg, 0)
}

// checkTTL refuses a tracked or unique task that would outlive its record
// or lock: the task bucket keeps each for task.Config.TTL, so a lock
// meant to last longer (UniqueFor), or a task released later than that
// (Delay, At), would find them expired.
func (p *Publisher) checkTTL(o PublishOpts, unique bool) error {
	if !o.Track && !unique {
		return nil
	}
	ttl := p.tasks().Config().TTL
	if o.UniqueFor > ttl {
		return fmt.Errorf("%w: UniqueFor %s is longer than the task bucket's TTL %s (task.Config.TTL), which would end the lock first",
			ErrInvalidOptions, o.UniqueFor, ttl)
	}
	delay := o.Delay
	if !o.At.IsZero() {
		delay = o.At.Sub(p.cfg.NowFunc())
	}
	if delay > ttl {
		return fmt.Errorf("%w: a tracked or unique task released in %s outlives its record and lock, kept for the task bucket's TTL %s (task.Config.TTL)",
			ErrInvalidOptions, delay.Round(time.Second), ttl)
	}
	return nil
}

// checkSize refuses, before sending, a message larger than the server's
// max payload, less reserve bytes kept for headers added later.
func (p *Publisher) checkSize(subject string, msg *nats.Msg, reserve int) error {
	limit := p.js.Conn().MaxPayload()
	if limit <= 0 {
		return nil
	}
	hs := 0
	if msg.Header != nil {
		hs = wire.HeaderSize(msg.Header)
	}
	if size := int64(len(msg.Data) + hs + reserve); size > limit {
		return fmt.Errorf("publish %q: %w: %d bytes (payload %d, headers %d) > max payload %d bytes",
			subject, ErrPayloadTooLarge, size, len(msg.Data), hs, limit)
	}
	return nil
}

func (o PublishOpts) validate() error {
	switch {
	case o.Delay < 0:
		return fmt.Errorf("%w: Delay %s is negative", ErrInvalidOptions, o.Delay)
	case o.Delay > 0 && !o.At.IsZero():
		return fmt.Errorf("%w: Delay and At are both set", ErrInvalidOptions)
	case o.TTL < 0:
		return fmt.Errorf("%w: TTL %s is negative", ErrInvalidOptions, o.TTL)
	case o.TTL > 0 && o.TTL < time.Second:
		return fmt.Errorf("%w: TTL %s is below the server's minimum of 1s", ErrInvalidOptions, o.TTL)
	case o.MaxAttempts < 0:
		return fmt.Errorf("%w: MaxAttempts %d is negative", ErrInvalidOptions, o.MaxAttempts)
	case o.Timeout < 0:
		return fmt.Errorf("%w: Timeout %s is negative", ErrInvalidOptions, o.Timeout)
	case o.UniqueFor < 0:
		return fmt.Errorf("%w: UniqueFor %s is negative", ErrInvalidOptions, o.UniqueFor)
	case o.Unique != "" && o.Unique != UniquePending && o.Unique != UniqueActive:
		return fmt.Errorf("%w: Unique %q: want UniquePending or UniqueActive", ErrInvalidOptions, o.Unique)
	}
	if err := wire.CheckHeader(o.Header); err != nil {
		return fmt.Errorf("%w: %w; use ID, TTL, ExpectStream or Delay", ErrInvalidOptions, err)
	}
	return nil
}

type streamInfo struct {
	name string
}

// delayStream finds the stream that stores subject and checks it can hold
// delayed tasks. Positive answers are cached per subject.
func (p *Publisher) delayStream(ctx context.Context, subject, expect string) (*streamInfo, error) {
	key := subject + "\x00" + expect
	if v, ok := p.streams.Load(key); ok {
		return v.(*streamInfo), nil
	}
	name := expect
	if name == "" {
		var err error
		name, err = p.js.StreamNameBySubject(ctx, subject)
		if err != nil {
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				return nil, fmt.Errorf("publish %q: %w", subject, ErrNoStream)
			}
			return nil, fmt.Errorf("publish %q: look up its stream: %w", subject, err)
		}
	}
	s, err := p.js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("publish %q: look up stream %q: %w", subject, name, err)
	}
	cfg := s.CachedInfo().Config
	if !cfg.AllowMsgSchedules {
		return nil, fmt.Errorf("publish %q: %w: stream %q does not allow message schedules", subject, ErrDelayNotSupported, name)
	}
	if !slices.Contains(cfg.Subjects, streams.DelaySubject(name)) {
		return nil, fmt.Errorf("publish %q: %w: stream %q does not capture %q", subject, ErrDelayNotSupported, name, streams.DelaySubject(name))
	}
	info := &streamInfo{name: name}
	p.streams.Store(key, info)
	return info, nil
}
