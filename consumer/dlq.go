package consumer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/publisher"
)

// DeadLetter is one task stored in the dead-letter stream.
type DeadLetter struct {
	// Seq is the dead letter's sequence in the dead-letter stream; it
	// identifies it for Get, Replay and Delete.
	Seq uint64
	// Subject is the dead-letter subject (dlq.<stream>.<consumer>).
	Subject string
	// TaskID is the original task's ID.
	TaskID string
	// OriginalSubject, OriginalStream and OriginalSeq locate the task as
	// it was before it died.
	OriginalSubject string
	OriginalStream  string
	OriginalSeq     uint64
	// Consumer is the durable that gave up on the task.
	Consumer string
	// Error is the last error, as text.
	Error string
	// Attempts is the number of deliveries the task had.
	Attempts uint64
	// FailedAt is when the task was dead-lettered.
	FailedAt time.Time
	// Header holds every header of the copy: the original ones and the
	// Jetworker-* ones above.
	Header nats.Header
	// Data is the original payload.
	Data []byte
}

// Filter selects dead letters. Zero fields match everything.
type Filter struct {
	// Stream and Consumer select by origin.
	Stream   string
	Consumer string
	// Subject selects by original subject (exact match).
	Subject string
	// Since and Until bound FailedAt.
	Since, Until time.Time
	// Limit caps the number returned (List) or removed (Purge); 0 means
	// no limit.
	Limit int
}

func (f Filter) match(d *DeadLetter) bool {
	return (f.Subject == "" || d.OriginalSubject == f.Subject) &&
		(f.Since.IsZero() || !d.FailedAt.Before(f.Since)) &&
		(f.Until.IsZero() || d.FailedAt.Before(f.Until))
}

// DeadLetters lists, inspects, replays and purges dead letters. It is safe
// for concurrent use.
type DeadLetters struct {
	js     jetstream.JetStream
	pub    *publisher.Publisher
	stream string
	prefix string
}

// DeadLettersConfig locates the dead-letter stream.
type DeadLettersConfig struct {
	// Stream is the dead-letter stream. Defaults to "DLQ".
	Stream string
	// Prefix is the first token of dead-letter subjects. Defaults to
	// "dlq".
	Prefix string
}

// NewDeadLetters returns the dead-letter tools for the stream cfg names.
// It does no network I/O.
func NewDeadLetters(js jetstream.JetStream, cfg DeadLettersConfig) (*DeadLetters, error) {
	pub, err := publisher.New(js, publisher.Config{})
	if err != nil {
		return nil, err
	}
	return &DeadLetters{
		js:     js,
		pub:    pub,
		stream: cmp.Or(cfg.Stream, DefaultDeadLetterStream),
		prefix: cmp.Or(cfg.Prefix, DefaultDeadLetterPrefix),
	}, nil
}

func (d *DeadLetters) filterSubject(f Filter) string {
	switch {
	case f.Stream != "" && f.Consumer != "":
		return d.prefix + "." + f.Stream + "." + f.Consumer
	case f.Stream != "":
		return d.prefix + "." + f.Stream + ".*"
	case f.Consumer != "":
		return d.prefix + ".*." + f.Consumer
	}
	return d.prefix + ".>"
}

// List returns the dead letters f selects, oldest first. It blocks while it
// reads the stream.
func (d *DeadLetters) List(ctx context.Context, f Filter) ([]DeadLetter, error) {
	var out []DeadLetter
	err := d.scan(ctx, f, func(dl *DeadLetter) bool {
		out = append(out, *dl)
		return f.Limit == 0 || len(out) < f.Limit
	})
	return out, err
}

// scan calls fn for each dead letter f selects until fn returns false.
func (d *DeadLetters) scan(ctx context.Context, f Filter, fn func(*DeadLetter) bool) error {
	s, err := d.js.Stream(ctx, d.stream)
	if err != nil {
		return fmt.Errorf("dead letters: stream %q: %w", d.stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("dead letters: stream %q info: %w", d.stream, err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	last := info.State.LastSeq
	occ := jetstream.OrderedConsumerConfig{FilterSubjects: []string{d.filterSubject(f)}}
	if !f.Since.IsZero() {
		since := f.Since
		occ.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		occ.OptStartTime = &since
	}
	cons, err := d.js.OrderedConsumer(ctx, d.stream, occ)
	if err != nil {
		return fmt.Errorf("dead letters: read %q: %w", d.stream, err)
	}
	for {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return fmt.Errorf("dead letters: fetch: %w", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("dead letters: metadata: %w", err)
			}
			dl := fromHeaders(meta.Sequence.Stream, m.Subject(), m.Headers(), m.Data())
			if f.match(dl) && !fn(dl) {
				return nil
			}
			if meta.Sequence.Stream >= last || meta.NumPending == 0 {
				return nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("dead letters: fetch: %w", err)
		}
		if n == 0 || ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// Get returns the dead letter with sequence seq, or an error wrapping
// [ErrDeadLetterNotFound].
func (d *DeadLetters) Get(ctx context.Context, seq uint64) (*DeadLetter, error) {
	s, err := d.js.Stream(ctx, d.stream)
	if err != nil {
		return nil, fmt.Errorf("dead letters: stream %q: %w", d.stream, err)
	}
	m, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w: seq %d in %q", ErrDeadLetterNotFound, seq, d.stream)
	}
	if err != nil {
		return nil, fmt.Errorf("dead letters: get seq %d: %w", seq, err)
	}
	if !strings.HasPrefix(m.Subject, d.prefix+".") {
		return nil, fmt.Errorf("%w: seq %d in %q is on %q, not a dead-letter subject", ErrDeadLetterNotFound, seq, d.stream, m.Subject)
	}
	return fromHeaders(m.Sequence, m.Subject, m.Header, m.Data), nil
}

// Replay publishes the dead letter seq again on its original subject, with
// its original data and headers, a new task ID derived from the dead
// letter (replay-<stream>-<seq>) and a Jetworker-Replayed-From header, then
// deletes it from the dead-letter stream. Replaying an entry twice does not
// run the task twice: the second call finds it gone (an error wrapping
// [ErrDeadLetterNotFound]), and two concurrent calls publish the same task
// ID, which the task stream stores once.
func (d *DeadLetters) Replay(ctx context.Context, seq uint64) (publisher.Result, error) {
	dl, err := d.Get(ctx, seq)
	if err != nil {
		return publisher.Result{}, err
	}
	h := make(nats.Header, len(dl.Header))
	for k, vs := range dl.Header {
		if !strings.HasPrefix(k, "Jetworker-") && k != jetworker.HeaderMsgID {
			h[k] = vs
		}
	}
	from := d.stream + ":" + strconv.FormatUint(seq, 10)
	h.Set(jetworker.HeaderReplayedFrom, from)
	res, err := d.pub.Publish(ctx, dl.OriginalSubject, dl.Data, &publisher.PublishOpts{
		ID:     "replay-" + d.stream + "-" + strconv.FormatUint(seq, 10),
		Header: h,
	})
	if err != nil {
		return res, fmt.Errorf("dead letters: replay seq %d: %w", seq, err)
	}
	if err := d.Delete(ctx, seq); err != nil && !errors.Is(err, ErrDeadLetterNotFound) {
		return res, fmt.Errorf("dead letters: replayed seq %d as task %s but could not remove it: %w", seq, res.ID, err)
	}
	return res, nil
}

// Delete removes the dead letter seq.
func (d *DeadLetters) Delete(ctx context.Context, seq uint64) error {
	s, err := d.js.Stream(ctx, d.stream)
	if err != nil {
		return fmt.Errorf("dead letters: stream %q: %w", d.stream, err)
	}
	if err := s.DeleteMsg(ctx, seq); err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("%w: seq %d in %q", ErrDeadLetterNotFound, seq, d.stream)
		}
		return fmt.Errorf("dead letters: delete seq %d: %w", seq, err)
	}
	return nil
}

// Purge removes the dead letters f selects and returns how many. A filter
// by stream and consumer only is one server-side purge; other filters
// delete entries one by one.
func (d *DeadLetters) Purge(ctx context.Context, f Filter) (int, error) {
	if f.Subject == "" && f.Since.IsZero() && f.Until.IsZero() && f.Limit == 0 {
		s, err := d.js.Stream(ctx, d.stream)
		if err != nil {
			return 0, fmt.Errorf("dead letters: stream %q: %w", d.stream, err)
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(d.filterSubject(f)))
		if err != nil {
			return 0, fmt.Errorf("dead letters: stream %q info: %w", d.stream, err)
		}
		var n uint64
		for _, c := range info.State.Subjects {
			n += c
		}
		if err := s.Purge(ctx, jetstream.WithPurgeSubject(d.filterSubject(f))); err != nil {
			return 0, fmt.Errorf("dead letters: purge %q: %w", d.filterSubject(f), err)
		}
		return int(n), nil
	}
	var seqs []uint64
	if err := d.scan(ctx, f, func(dl *DeadLetter) bool {
		seqs = append(seqs, dl.Seq)
		return f.Limit == 0 || len(seqs) < f.Limit
	}); err != nil {
		return 0, err
	}
	n := 0
	for _, seq := range seqs {
		if err := d.Delete(ctx, seq); err != nil {
			if errors.Is(err, ErrDeadLetterNotFound) {
				continue
			}
			return n, err
		}
		n++
	}
	return n, nil
}

func fromHeaders(seq uint64, subject string, h nats.Header, data []byte) *DeadLetter {
	dl := &DeadLetter{
		Seq:             seq,
		Subject:         subject,
		TaskID:          h.Get(jetworker.HeaderTaskID),
		OriginalSubject: h.Get(jetworker.HeaderOriginalSubject),
		OriginalStream:  h.Get(jetworker.HeaderOriginalStream),
		Consumer:        h.Get(jetworker.HeaderConsumer),
		Error:           h.Get(jetworker.HeaderError),
		Header:          h,
		Data:            data,
	}
	dl.OriginalSeq, _ = strconv.ParseUint(h.Get(jetworker.HeaderOriginalSeq), 10, 64)
	dl.Attempts, _ = strconv.ParseUint(h.Get(jetworker.HeaderAttempts), 10, 64)
	dl.FailedAt, _ = time.Parse(time.RFC3339Nano, h.Get(jetworker.HeaderFailedAt))
	return dl
}
