// Package scan reads stream messages with the server's batched direct gets
// (ADR-31, through orbit.go's jetstreamext), forward or newest first with a
// cursor, without creating consumers. The dead-letter tools, the task
// browser and the task store read with it.
package scan

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// batch is how many messages one batched direct get asks for.
const batch = 256

// Reader reads one stream.
type Reader struct {
	JS      jetstream.JetStream
	Stream  string
	Timeout time.Duration // per request
}

// Bounds returns the stream's first and last sequence; last is 0 when it
// is empty.
func (r Reader) Bounds(ctx context.Context) (first, last uint64, err error) {
	rctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	st, err := r.JS.Stream(rctx, r.Stream)
	if err != nil {
		return 0, 0, fmt.Errorf("stream %q: %w", r.Stream, err)
	}
	info, err := st.Info(rctx)
	if err != nil {
		return 0, 0, fmt.Errorf("stream %q: %w", r.Stream, err)
	}
	if info.State.Msgs == 0 {
		return 0, 0, nil
	}
	return info.State.FirstSeq, info.State.LastSeq, nil
}

// Forward calls fn, in order, for the messages on subject filter subj with
// sequences in [lo, hi), until fn returns false.
func (r Reader) Forward(ctx context.Context, lo, hi uint64, subj string, fn func(*jetstream.RawStreamMsg) bool) error {
	seq := max(lo, 1)
	for seq < hi {
		rctx, cancel := context.WithTimeout(ctx, r.Timeout)
		msgs, err := jetstreamext.GetBatch(rctx, r.JS, r.Stream, batch,
			jetstreamext.GetBatchSeq(seq), jetstreamext.GetBatchSubject(subj), jetstreamext.GetBatchMaxBytes(8<<20))
		if err != nil {
			cancel()
			return fmt.Errorf("read %q from %d: %w", r.Stream, seq, err)
		}
		n, done := 0, false
		for m, err := range msgs {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				done = true
				break
			}
			if err != nil {
				cancel()
				return fmt.Errorf("read %q from %d: %w", r.Stream, seq, err)
			}
			n++
			if m.Sequence >= hi {
				done = true
				break
			}
			seq = m.Sequence + 1
			if !fn(m) {
				done = true
				break
			}
		}
		cancel()
		if done || n == 0 {
			return ctx.Err()
		}
	}
	return nil
}

// Backward calls fn for the messages on subject filter subj with
// sequences below before (0: from the newest), newest first, until fn
// returns false or the stream's start is reached. It reads windows of
// growing size forward and hands their messages out in reverse, so a dense
// filter costs one request and a sparse one a few.
func (r Reader) Backward(ctx context.Context, before uint64, subj string, fn func(*jetstream.RawStreamMsg) bool) error {
	first, last, err := r.Bounds(ctx)
	if err != nil || last == 0 {
		return err
	}
	hi := last + 1
	if before != 0 && before < hi {
		hi = before
	}
	window := uint64(128)
	for hi > first {
		lo := first
		if hi-first > window {
			lo = hi - window
		}
		var chunk []*jetstream.RawStreamMsg
		if err := r.Forward(ctx, lo, hi, subj, func(m *jetstream.RawStreamMsg) bool {
			chunk = append(chunk, m)
			return true
		}); err != nil {
			return err
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			if !fn(chunk[i]) {
				return nil
			}
		}
		hi = lo
		window = min(4*window, 1<<22)
	}
	return nil
}
