package publisher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	jsubject "github.com/jetworker/jetworker/internal/subject"
	"github.com/jetworker/jetworker/streams"
)

// message validates a publish and builds its message. It does I/O only
// for delayed tasks, to find the stream (once per subject). A task without
// an ID, delay, TTL or extra headers is built as bare as raw nats.go would
// send it: no headers at all.
func (p *Publisher) message(ctx context.Context, subject string, data []byte, opts *PublishOpts) (*nats.Msg, string, error) {
	var o PublishOpts
	if opts != nil {
		o = *opts
	}
	id := o.ID
	if id == "" && p.cfg.IDFunc != nil {
		id = p.cfg.IDFunc()
	}
	if err := jsubject.Validate(subject); err != nil {
		return nil, id, fmt.Errorf("publish: %w", err)
	}
	if err := o.validate(); err != nil {
		return nil, id, err
	}
	msg := &nats.Msg{Subject: subject, Data: data}
	delayed := o.Delay > 0 || !o.At.IsZero()
	n := len(o.Header)
	if id != "" {
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
		return msg, id, p.checkSize(subject, msg)
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
	if id != "" {
		set(jetworker.HeaderMsgID, id)
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
		info, err := p.delayStream(ctx, subject, o.ExpectStream)
		if err != nil {
			return nil, id, err
		}
		if id != "" {
			// The server strips Nats-Msg-Id from the released task: keep
			// the ID in a header of ours as well.
			set(jetworker.HeaderTaskID, id)
		}
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
	return msg, id, p.checkSize(subject, msg)
}

// checkSize refuses, before sending, a message larger than the server's
// max payload.
func (p *Publisher) checkSize(subject string, msg *nats.Msg) error {
	limit := p.js.Conn().MaxPayload()
	if limit <= 0 {
		return nil
	}
	hs := 0
	if msg.Header != nil {
		hs = headerSize(msg.Header)
	}
	if size := int64(len(msg.Data) + hs); size > limit {
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
	}
	for k := range o.Header {
		switch {
		case k == "" || strings.ContainsAny(k, " :\r\n\t"):
			return fmt.Errorf("%w: header name %q", ErrInvalidOptions, k)
		case jsubject.Directive(k):
			return fmt.Errorf("%w: header %q: Nats- headers are server directives (Nats-Rollup: all would purge the stream) and Jetworker- headers are jetworker's own; use ID, TTL, ExpectStream or Delay", ErrInvalidOptions, k)
		}
	}
	return nil
}

// headerSize is the encoded size of h on the wire (NATS/1.0 header block).
func headerSize(h nats.Header) int {
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(": ") + len(v) + len("\r\n")
		}
	}
	return n
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
