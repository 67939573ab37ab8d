package dlq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/internal/subject"
	"github.com/jetworker/jetworker/streams"
)

// staticProblem checks what an entry says about itself: the subject and
// the headers the dead-letter path writes must agree, and the original
// subject must be a task subject. It returns "" when nothing is wrong.
func staticProblem(prefix string, e *Entry) string {
	rest, ok := strings.CutPrefix(e.Subject, prefix+".")
	if !ok {
		return fmt.Sprintf("subject %q is not under %s.>", e.Subject, prefix)
	}
	toks := strings.SplitN(rest, ".", 3)
	if len(toks) < 2 {
		return fmt.Sprintf("subject %q does not name a stream and a consumer", e.Subject)
	}
	stream, cons := toks[0], toks[1]
	switch {
	case e.OriginalStream != stream:
		return fmt.Sprintf("header %s %q disagrees with the subject's stream %q", jetworker.HeaderOriginalStream, e.OriginalStream, stream)
	case e.Consumer != cons:
		return fmt.Sprintf("header %s %q disagrees with the subject's consumer %q", jetworker.HeaderConsumer, e.Consumer, cons)
	case len(toks) == 3 && e.OriginalSubject != toks[2]:
		return fmt.Sprintf("header %s %q disagrees with the subject's %q", jetworker.HeaderOriginalSubject, e.OriginalSubject, toks[2])
	case e.OriginalSequence == 0:
		return fmt.Sprintf("header %s is missing or not a sequence", jetworker.HeaderOriginalSeq)
	case e.Header.Get(jetworker.HeaderMsgID) != msgID(stream, cons, e.OriginalSequence):
		return fmt.Sprintf("its %s is not the one the dead-letter path writes (%s)", jetworker.HeaderMsgID, msgID(stream, cons, e.OriginalSequence))
	case e.Truncated > 0:
		return fmt.Sprintf("its payload was cut to %d of %d bytes to fit the server's max payload", len(e.Data), e.Truncated)
	case e.HeadersDropped > 0:
		return fmt.Sprintf("%d of the task's headers were left out to fit the server's max payload", e.HeadersDropped)
	}
	if err := subject.Validate(e.OriginalSubject); err != nil {
		return fmt.Sprintf("original subject: %v", err)
	}
	if strings.HasPrefix(e.OriginalSubject, streams.DelaySubjectPrefix(stream)) {
		return fmt.Sprintf("original subject %q is the stream's delay subject, not a task subject", e.OriginalSubject)
	}
	return ""
}

// checker completes the checks with what the server knows: the original
// stream must exist, hold tasks and capture the subject, and the consumer,
// if it still exists, must select it. It remembers stream and consumer
// configurations for one operation.
type checker struct {
	js      jetstream.JetStream
	timeout time.Duration
	streams map[string]*jetstream.StreamConfig // nil value: not found
	filters map[string][]string                // stream/consumer -> filters; nil: not found
}

func newChecker(js jetstream.JetStream, timeout time.Duration) *checker {
	return &checker{js: js, timeout: timeout, streams: map[string]*jetstream.StreamConfig{}, filters: map[string][]string{}}
}

// check sets e.Problem when the server-side checks fail and the static
// ones passed. A server error leaves Problem saying the checks could not
// be made, so the entry is not replayed on a guess.
func (c *checker) check(ctx context.Context, e *Entry) {
	if e.Problem != "" {
		return
	}
	cfg, err := c.stream(ctx, e.OriginalStream)
	switch {
	case err != nil:
		e.Problem = fmt.Sprintf("cannot check stream %q: %v", e.OriginalStream, err)
		return
	case cfg == nil:
		e.Problem = fmt.Sprintf("stream %q does not exist", e.OriginalStream)
		return
	case streams.Kind(*cfg) == streams.KindDeadLetters:
		e.Problem = fmt.Sprintf("stream %q is a dead-letter stream, not a task stream", e.OriginalStream)
		return
	}
	if !slices.ContainsFunc(cfg.Subjects, func(f string) bool { return subject.Match(f, e.OriginalSubject) }) {
		e.Problem = fmt.Sprintf("stream %q does not capture subject %q", e.OriginalStream, e.OriginalSubject)
		return
	}
	filters, err := c.consumer(ctx, e.OriginalStream, e.Consumer)
	if err != nil {
		e.Problem = fmt.Sprintf("cannot check consumer %q: %v", e.Consumer, err)
		return
	}
	if len(filters) > 0 && !slices.ContainsFunc(filters, func(f string) bool { return subject.Match(f, e.OriginalSubject) }) {
		e.Problem = fmt.Sprintf("consumer %q does not take subject %q (its filters: %s)", e.Consumer, e.OriginalSubject, strings.Join(filters, ", "))
	}
}

func (c *checker) stream(ctx context.Context, name string) (*jetstream.StreamConfig, error) {
	if cfg, ok := c.streams[name]; ok {
		return cfg, nil
	}
	if subject.ValidateName("stream", name) != nil {
		c.streams[name] = nil
		return nil, nil
	}
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	st, err := c.js.Stream(rctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		c.streams[name] = nil
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	cfg := st.CachedInfo().Config
	c.streams[name] = &cfg
	return &cfg, nil
}

// consumer returns the consumer's filters: an empty, non-nil slice when it
// has none (it takes the whole stream), nil when it does not exist.
func (c *checker) consumer(ctx context.Context, stream, name string) ([]string, error) {
	key := stream + "/" + name
	if f, ok := c.filters[key]; ok {
		return f, nil
	}
	if subject.ValidateName("consumer", name) != nil {
		c.filters[key] = nil
		return nil, nil
	}
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cons, err := c.js.Consumer(rctx, stream, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		c.filters[key] = nil
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	cfg := cons.CachedInfo().Config
	f := []string{}
	if cfg.FilterSubject != "" {
		f = append(f, cfg.FilterSubject)
	}
	f = append(f, cfg.FilterSubjects...)
	c.filters[key] = f
	return f, nil
}
