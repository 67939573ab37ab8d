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
	"github.com/jetworker/jetworker/streams"
)

// message validates a publish and builds its message. It does I/O only
// for delayed tasks, to find the stream (once per subject).
func (p *Publisher) message(ctx context.Context, subject string, data []byte, opts *PublishOpts) (*nats.Msg, string, error) {
	var o PublishOpts
	if opts != nil {
		o = *opts
	}
	id := o.ID
	if id == "" {
		id = p.cfg.IDFunc()
	}
	if err := ValidateSubject(subject); err != nil {
		return nil, id, err
	}
	if err := o.validate(); err != nil {
		return nil, id, err
	}

	// Only delayed tasks need the clock: the server timestamps the rest.
	var due time.Time
	delayed := o.Delay > 0 || !o.At.IsZero()
	switch {
	case o.Delay > 0:
		due = p.cfg.NowFunc().Add(o.Delay)
	case !o.At.IsZero():
		due = o.At
	}

	// One allocation holds every header value.
	n := 1 + len(o.Header)
	if delayed {
		n += 4
	}
	if o.TTL > 0 {
		n++
	}
	if o.ExpectStream != "" {
		n++
	}
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
	set(jetworker.HeaderMsgID, id)
	if o.ExpectStream != "" {
		set(jetstream.ExpectedStreamHeader, o.ExpectStream)
	}

	if p.cfg.HeaderFunc != nil {
		p.cfg.HeaderFunc(ctx, h)
	}
	msg := &nats.Msg{Subject: subject, Data: data, Header: h}
	if delayed {
		info, err := p.delayStream(ctx, subject, o.ExpectStream)
		if err != nil {
			return nil, id, err
		}
		// The server strips Nats-Msg-Id from the released task: keep the
		// ID in a header of ours as well.
		set(jetworker.HeaderTaskID, id)
		// The released message is stored when the server gets to it;
		// keep the time it was due for latency metrics.
		set(jetworker.HeaderEnqueuedAt, due.UTC().Format(time.RFC3339Nano))
		set(jetstream.ScheduleHeader, "@at "+due.UTC().Format(time.RFC3339Nano))
		set(jetstream.ScheduleTargetHeader, subject)
		if o.TTL > 0 {
			set(jetstream.ScheduleTTLHeader, o.TTL.String())
		}
		msg.Subject = streams.DelaySubjectPrefix(info.name) + newID()
	} else if o.TTL > 0 {
		set(jetstream.MsgTTLHeader, o.TTL.String())
	}

	if limit := p.js.Conn().MaxPayload(); limit > 0 {
		if size := int64(len(data) + headerSize(h)); size > limit {
			return nil, id, fmt.Errorf("publish %q: %w: %d bytes (payload %d, headers %d) > max payload %d bytes",
				subject, ErrPayloadTooLarge, size, len(data), size-int64(len(data)), limit)
		}
	}
	return msg, id, nil
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
		if k == "" || strings.ContainsAny(k, " :\r\n") {
			return fmt.Errorf("%w: header name %q", ErrInvalidOptions, k)
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
