package dlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
)

// Replayed is what [Store.Replay] did.
type Replayed struct {
	// DeadLetter is the dead letter's sequence in the dead-letter stream;
	// it no longer exists.
	DeadLetter uint64 `json:"seq"`
	// TaskID is the task's ID, "" when it had none.
	TaskID string `json:"task_id"`
	// Stream and Sequence locate the task stored again; Ref is the same
	// as a [jetworker.Ref].
	Stream   string `json:"stream"`
	Sequence uint64 `json:"sequence"`
	Ref      string `json:"ref"`
}

// replayHeaders are the dead-letter path's own headers: a replayed task
// does not carry them.
var replayHeaders = []string{
	jetworker.HeaderError, jetworker.HeaderAttempts, jetworker.HeaderOriginalSubject,
	jetworker.HeaderOriginalStream, jetworker.HeaderOriginalSeq, jetworker.HeaderConsumer,
	jetworker.HeaderFailedAt, jetworker.HeaderPayloadTruncated, jetworker.HeaderHeadersDropped, jetworker.HeaderReplayedFrom,
}

// Replay publishes the dead letter seq again on its original subject and,
// once the server has stored it, deletes the dead letter; see the package
// documentation. It returns an error wrapping [ErrNotFound] when there is
// no such dead letter (or another caller replayed or deleted it first),
// and one wrapping [ErrUntrusted] when the entry fails the trust checks.
// The replayed task is published with Nats-Expected-Stream set to its
// original stream, so it cannot land anywhere else.
func (s *Store) Replay(ctx context.Context, seq uint64) (Replayed, error) {
	e, err := s.Get(ctx, seq)
	if err != nil {
		return Replayed{}, err
	}
	if e.Problem != "" {
		return Replayed{}, fmt.Errorf("%w: %s: %s", ErrUntrusted, jetworker.Ref(s.cfg.Stream, seq), e.Problem)
	}
	h := make(nats.Header, len(e.Header))
	for k, vs := range e.Header {
		if !directive(k) {
			h[k] = vs
		}
	}
	for _, k := range replayHeaders {
		delete(h, k)
	}
	from := jetworker.Ref(s.cfg.Stream, seq)
	h.Set(jetworker.HeaderMsgID, "replay-"+s.cfg.Stream+"-"+strconv.FormatUint(seq, 10))
	h.Set(jetworker.HeaderReplayedFrom, from)
	h.Set(jetstream.ExpectedStreamHeader, e.OriginalStream)
	msg := &nats.Msg{Subject: e.OriginalSubject, Data: e.Data, Header: h}

	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	ack, err := s.js.PublishMsg(rctx, msg)
	if err != nil {
		return Replayed{}, fmt.Errorf("dlq: replay %s to %q: %w", from, e.OriginalSubject, err)
	}
	// The task is stored once whoever published it first; whoever deletes
	// the dead letter is the one caller that replayed it.
	if err := s.Delete(ctx, seq); err != nil {
		if errors.Is(err, ErrNotFound) {
			return Replayed{}, err
		}
		return Replayed{}, fmt.Errorf("dlq: replayed %s as %s but could not remove it: %w", from, jetworker.Ref(ack.Stream, ack.Sequence), err)
	}
	return Replayed{DeadLetter: seq, TaskID: e.TaskID, Stream: ack.Stream, Sequence: ack.Sequence, Ref: jetworker.Ref(ack.Stream, ack.Sequence)}, nil
}

// ReplayMatching replays every dead letter f selects, oldest first, and
// returns how many it replayed. Entries that fail (untrusted, gone,
// refused by the server) are skipped and their errors joined; a context
// that ends stops it.
func (s *Store) ReplayMatching(ctx context.Context, f Filter) (int, error) {
	var seqs []uint64
	if err := s.Scan(ctx, f, func(e *Entry) bool { seqs = append(seqs, e.Sequence); return true }); err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, seq := range seqs {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		if _, err := s.Replay(ctx, seq); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
