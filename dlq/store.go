package dlq

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
	"github.com/jetworker/jetworker/internal/subject"
	"github.com/jetworker/jetworker/streams"
)

// Entry is one dead letter.
type Entry struct {
	// Sequence is the dead letter's sequence in the dead-letter stream; it
	// identifies it for Get, Replay and Delete.
	Sequence uint64 `json:"seq"`
	// Subject is the dead-letter subject (<prefix>.<stream>.<consumer>.<subject>).
	Subject string `json:"subject"`
	// TaskID is the original task's ID, "" when it had none.
	TaskID string `json:"task_id"`
	// OriginalSubject, OriginalStream and OriginalSequence locate the task as it
	// was before it died; OriginalRef is the same as a [jetworker.Ref].
	OriginalSubject  string `json:"original_subject"`
	OriginalStream   string `json:"original_stream"`
	OriginalSequence uint64 `json:"original_seq"`
	OriginalRef      string `json:"original_ref"`
	// Consumer is the durable that gave up on the task.
	Consumer string `json:"consumer"`
	// Error is the last error, as text.
	Error string `json:"error"`
	// Attempts is the number of deliveries the task had.
	Attempts uint64 `json:"attempts"`
	// FailedAt is when the task was dead-lettered.
	FailedAt time.Time `json:"failed_at"`
	// Truncated is the original payload's size when the stored payload
	// is only its leading part (it did not fit), and 0 otherwise.
	Truncated int `json:"truncated,omitempty"`
	// HeadersDropped is how many of the task's own headers were left out
	// of the copy (they did not fit), and 0 otherwise.
	HeadersDropped int `json:"headers_dropped,omitempty"`
	// Problem says why the entry cannot be replayed ("" when it can): it
	// could not have come from the dead-letter path, or its payload was
	// truncated. See the package documentation.
	Problem string `json:"problem,omitempty"`
	// Header holds the headers of the copy: the original ones and the
	// Jetworker-* ones above.
	Header nats.Header `json:"header"`
	// Data is the original payload.
	Data []byte `json:"data"`
}

// Config locates the dead-letter stream. The zero value is the default DLQ
// stream with prefix "dlq".
type Config struct {
	// Stream is the dead-letter stream. Defaults to "DLQ".
	Stream string
	// Prefix is the first token of dead-letter subjects. Defaults to
	// "dlq".
	Prefix string
	// RequestTimeout bounds each request to the server. Defaults to 5s.
	RequestTimeout time.Duration
}

// DefaultRequestTimeout is the default Config.RequestTimeout.
const DefaultRequestTimeout = 5 * time.Second

func (c Config) withDefaults() Config {
	c.Stream = cmp.Or(c.Stream, streams.DefaultDeadLetterStream)
	c.Prefix = cmp.Or(c.Prefix, streams.DefaultDeadLetterPrefix)
	c.RequestTimeout = cmp.Or(c.RequestTimeout, DefaultRequestTimeout)
	return c
}

// Validate reports every problem with c (after defaults), joined.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if err := subject.ValidateName("dlq: Stream", c.Stream); err != nil {
		errs = append(errs, err)
	}
	if err := subject.ValidateName("dlq: Prefix", c.Prefix); err != nil {
		errs = append(errs, err)
	}
	if c.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("dlq: RequestTimeout must be >= 0, got %s", c.RequestTimeout))
	}
	return errors.Join(errs...)
}

// Store lists, inspects, replays and deletes dead letters. It is safe for
// concurrent use and keeps no state between calls.
type Store struct {
	js  jetstream.JetStream
	cfg Config
}

// New returns a Store for the dead-letter stream cfg names. It does no
// network I/O.
func New(js jetstream.JetStream, cfg Config) (*Store, error) {
	if js == nil {
		return nil, errors.New("dlq: nil JetStream")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Store{js: js, cfg: cfg.withDefaults()}, nil
}

// Config returns the effective configuration, defaults filled in.
func (s *Store) Config() Config { return s.cfg }

// Get returns the dead letter with sequence seq, its Problem filled in, or
// an error wrapping [ErrNotFound].
func (s *Store) Get(ctx context.Context, seq uint64) (*Entry, error) {
	st, err := s.stream(ctx)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	m, err := st.GetMsg(rctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, jetworker.Ref(s.cfg.Stream, seq))
	}
	if err != nil {
		return nil, fmt.Errorf("dlq: get %s: %w", jetworker.Ref(s.cfg.Stream, seq), err)
	}
	if !strings.HasPrefix(m.Subject, s.cfg.Prefix+".") {
		return nil, fmt.Errorf("%w: %s is on %q, not a dead-letter subject", ErrNotFound, jetworker.Ref(s.cfg.Stream, seq), m.Subject)
	}
	e := s.entry(m)
	newChecker(s.js, s.cfg.RequestTimeout).check(ctx, e)
	return e, nil
}

// Delete removes the dead letter seq. It returns an error wrapping
// [ErrNotFound] when there is none (also when another caller removed it
// first).
func (s *Store) Delete(ctx context.Context, seq uint64) error {
	st, err := s.stream(ctx)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	if err := st.DeleteMsg(rctx, seq); err != nil {
		// A concurrent delete of the same message reports a delete failure
		// rather than not-found: look before deciding.
		if _, gerr := st.GetMsg(rctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("%w: %s", ErrNotFound, jetworker.Ref(s.cfg.Stream, seq))
		}
		return fmt.Errorf("dlq: delete %s: %w", jetworker.Ref(s.cfg.Stream, seq), err)
	}
	return nil
}

func (s *Store) stream(ctx context.Context) (jetstream.Stream, error) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	st, err := s.js.Stream(rctx, s.cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("dlq: stream %q: %w", s.cfg.Stream, err)
	}
	return st, nil
}

// serverHeaders are added by the server to messages read with a direct
// get; they describe the read, not the dead letter.
var serverHeaders = []string{
	jetstream.StreamHeader, jetstream.SequenceHeader, jetstream.TimeStampHeaer, jetstream.SubjectHeader,
	"Nats-Num-Pending", "Nats-Last-Sequence", "Nats-UpTo-Sequence",
}

// entry reads a stored dead letter.
func (s *Store) entry(m *jetstream.RawStreamMsg) *Entry {
	h := m.Header
	if h == nil {
		h = nats.Header{}
	}
	for _, k := range serverHeaders {
		delete(h, k)
	}
	e := &Entry{
		Sequence:        m.Sequence,
		Subject:         m.Subject,
		TaskID:          h.Get(jetworker.HeaderTaskID),
		OriginalSubject: h.Get(jetworker.HeaderOriginalSubject),
		OriginalStream:  h.Get(jetworker.HeaderOriginalStream),
		Consumer:        h.Get(jetworker.HeaderConsumer),
		Error:           h.Get(jetworker.HeaderError),
		Header:          h,
		Data:            m.Data,
	}
	e.OriginalSequence, _ = strconv.ParseUint(h.Get(jetworker.HeaderOriginalSeq), 10, 64)
	if e.OriginalStream != "" && e.OriginalSequence != 0 {
		e.OriginalRef = jetworker.Ref(e.OriginalStream, e.OriginalSequence)
	}
	e.Attempts, _ = strconv.ParseUint(h.Get(jetworker.HeaderAttempts), 10, 64)
	if at, err := time.Parse(time.RFC3339Nano, h.Get(jetworker.HeaderFailedAt)); err == nil {
		e.FailedAt = at
	} else {
		e.FailedAt = m.Time
	}
	e.Truncated, _ = strconv.Atoi(h.Get(jetworker.HeaderPayloadTruncated))
	e.HeadersDropped, _ = strconv.Atoi(h.Get(jetworker.HeaderHeadersDropped))
	e.Problem = staticProblem(s.cfg.Prefix, e)
	return e
}
