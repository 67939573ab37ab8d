package publisher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	jsubject "github.com/jetworker/jetworker/internal/subject"
)

// Defaults of the bulk path's flow control (Config.BatchFlow and
// Config.BatchOutstanding): an ack every 500 tasks, 4 acks outstanding.
// Measured on the project's 2-core machine against orbit.go's defaults of
// 100 and 2, they bring the fast-ingest batch from about raw PublishAsync's
// rate to about 1.3x it; see docs/performance.md.
const (
	DefaultBatchFlow        = 500
	DefaultBatchOutstanding = 4
)

// batchHeaderReserve is room for the headers the batch protocol adds to a
// message (batch ID, sequence, flow, commit).
const batchHeaderReserve = 160

// BatchTask is one task of [Publisher.PublishBatch].
type BatchTask struct {
	// Subject is the task's subject; all tasks of a batch must be stored
	// in the same stream.
	Subject string
	// Data is the payload.
	Data []byte
	// Header holds extra headers (no Nats- or Jetworker- headers, as for
	// PublishOpts.Header).
	Header nats.Header
}

// BatchResult says what [Publisher.PublishBatch] stored. Tasks are stored
// in order, so it is a cut of the slice given:
//
//	tasks[:Stored]      stored (acknowledged by the server)
//	tasks[Stored:Sent]  sent, outcome unknown: stored or not (the ack did not come)
//	tasks[Sent:]        not sent
type BatchResult struct {
	Stored int
	Sent   int
	// Stream is the stream the tasks were stored in, and LastSeq the
	// stream sequence of the last one stored (known once the whole batch
	// is).
	Stream  string
	LastSeq uint64
}

// PublishBatch stores many tasks through the server's fast-ingest batch
// protocol (orbit.go's jetstreamext.FastPublisher: messages are persisted
// as they arrive and acknowledged every Config.BatchFlow of them), which
// is faster than PublishAsync for bulk loads. The stream must allow batch
// publishing (streams.Tasks does; Provision turns it on).
//
// On a failure the server abandons the batch at the first task it could
// not store: the error wraps [ErrOutcomeUnknown] and the result says which
// tasks are stored for sure and which may or may not be. The unknown part
// is at most BatchFlow × BatchOutstanding tasks (2,000 with the
// defaults): that is what the larger flow costs on a failure. Tasks of a
// batch carry no ID, since the protocol does not de-duplicate; a caller
// that retries tasks[Stored:Sent] may store some twice, so handlers of
// bulk-loaded tasks should be idempotent.
//
// Before anything is sent it checks every subject, header and size as
// Publish does, and that one stream stores every task and allows batch
// publishing ([ErrBatchNotSupported] otherwise): a refused batch stores
// nothing. It blocks until the batch is committed or fails.
func (p *Publisher) PublishBatch(ctx context.Context, tasks []BatchTask) (BatchResult, error) {
	var res BatchResult
	if len(tasks) == 0 {
		return res, nil
	}
	for i, t := range tasks {
		if err := jsubject.Validate(t.Subject); err != nil {
			return res, fmt.Errorf("publish batch: task %d: %w", i, err)
		}
		if err := (PublishOpts{Header: t.Header}).validate(); err != nil {
			return res, fmt.Errorf("publish batch: task %d: %w", i, err)
		}
		// The batch protocol adds its own headers to every message.
		padded := &nats.Msg{Data: t.Data, Header: t.Header}
		if err := p.checkSize(t.Subject, padded, batchHeaderReserve); err != nil {
			return res, fmt.Errorf("publish batch: task %d: %w", i, err)
		}
	}
	stream, err := p.batchStream(ctx, tasks)
	if err != nil {
		return res, err
	}
	fp, err := jetstreamext.NewFastPublisher(p.js, jetstreamext.FastPublishFlowControl{
		Flow: uint16(p.cfg.BatchFlow), MaxOutstandingAcks: uint16(p.cfg.BatchOutstanding), AckTimeout: p.cfg.AsyncAckTimeout,
	})
	if err != nil {
		return res, fmt.Errorf("publish batch: %w", err)
	}
	msg := func(t BatchTask) *nats.Msg {
		m := &nats.Msg{Subject: t.Subject, Data: t.Data}
		if len(t.Header) > 0 {
			m.Header = make(nats.Header, len(t.Header))
			for k, vs := range t.Header {
				m.Header[k] = append([]string(nil), vs...)
			}
		}
		return m
	}
	last := len(tasks) - 1
	for i, t := range tasks[:last] {
		if err := ctx.Err(); err != nil {
			_, _ = fp.Close(context.WithoutCancel(ctx))
			res.Sent = i
			return res, fmt.Errorf("publish batch: %w: stopped after %d of %d tasks: %w", ErrOutcomeUnknown, i, len(tasks), err)
		}
		ack, err := fp.AddMsg(msg(t))
		if ack != nil {
			res.Stored = int(ack.AckSequence)
		}
		res.Sent = i + 1
		if err != nil {
			if ack == nil {
				res.Sent = i // this one did not go out
			}
			return res, batchError(i, len(tasks), err)
		}
	}
	ack, err := fp.CommitMsg(ctx, msg(tasks[last]))
	res.Sent = len(tasks)
	if err != nil {
		return res, batchError(last, len(tasks), err)
	}
	res.Stored, res.Stream, res.LastSeq = len(tasks), cmp.Or(ack.Stream, stream), ack.Sequence
	return res, nil
}

// batchStream finds the stream that stores the batch, checks it allows
// batch publishing and stores every task's subject: the server would not
// answer a batch it cannot take, and the batch would time out instead.
// Positive answers are cached per stream.
func (p *Publisher) batchStream(ctx context.Context, tasks []BatchTask) (string, error) {
	name, err := p.js.StreamNameBySubject(ctx, tasks[0].Subject)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return "", fmt.Errorf("publish batch %q: %w", tasks[0].Subject, ErrNoStream)
		}
		return "", fmt.Errorf("publish batch %q: look up its stream: %w", tasks[0].Subject, err)
	}
	var subjects []string
	if v, ok := p.streams.Load("batch\x00" + name); ok {
		subjects = v.([]string)
	} else {
		s, err := p.js.Stream(ctx, name)
		if err != nil {
			return "", fmt.Errorf("publish batch: look up stream %q: %w", name, err)
		}
		cfg := s.CachedInfo().Config
		if !cfg.AllowBatchPublish {
			return "", fmt.Errorf("publish batch: %w: stream %q does not allow batch publishing (streams.Tasks turns it on; run streams.Provision)", ErrBatchNotSupported, name)
		}
		subjects = cfg.Subjects
		p.streams.Store("batch\x00"+name, subjects)
	}
	for i, t := range tasks {
		if !slices.ContainsFunc(subjects, func(f string) bool { return jsubject.Match(f, t.Subject) }) {
			return "", fmt.Errorf("publish batch: task %d: %w: subject %q is not stored in stream %q with the rest of the batch", i, ErrInvalidOptions, t.Subject, name)
		}
	}
	return name, nil
}

// batchError explains a failed batch.
func batchError(at, n int, err error) error {
	switch {
	case errors.Is(err, jetstreamext.ErrFastBatchNotEnabled):
		return fmt.Errorf("publish batch: %w: the stream does not allow batch publishing (streams.Tasks turns it on; run streams.Provision): %w", ErrBatchNotSupported, err)
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("publish batch: %w: %w", ErrNoStream, err)
	}
	return fmt.Errorf("publish batch: %w: failed at task %d of %d: %w", ErrOutcomeUnknown, at, n, err)
}
