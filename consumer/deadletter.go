package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/dlq"
	"github.com/jetworker/jetworker/internal/logkey"
)

// deadTask is what a dead letter is made from.
type deadTask struct {
	subject  string
	data     []byte
	header   nats.Header
	seq      uint64
	attempts uint64
}

// deadLetter stores a copy of the task on the dead-letter subject and waits
// for the PubAck. The copy's Nats-Msg-Id makes the handler path and the
// max-deliveries path store a task once; the copy always fits in the
// server's max payload (see [dlq.Message]).
func (c *Consumer) deadLetter(ctx context.Context, d deadTask, reason string) error {
	msg := dlq.Message(dlq.Letter{
		Prefix:   c.cfg.DeadLetterPrefix,
		Stream:   c.cfg.Stream,
		Consumer: c.cfg.Durable,
		Sequence: d.seq,
		Subject:  d.subject,
		Header:   d.header,
		Data:     d.data,
		Attempts: d.attempts,
		Reason:   reason,
		FailedAt: c.cfg.NowFunc(),
	}, c.js.Conn().MaxPayload())
	if _, err := c.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("dead-letter %s to %q: %w", jetworker.Ref(c.cfg.Stream, d.seq), msg.Subject, err)
	}
	return nil
}

// maxDeliveriesAdvisory is the server's JSConsumerDeliveryExceededAdvisory.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// listenMaxDeliveries subscribes to the server's max-deliveries advisories
// for this consumer. Workers of one durable share a queue group, so one of
// them handles each advisory. The listener goroutine is added to wg and
// ends when ctx does.
func (c *Consumer) listenMaxDeliveries(ctx context.Context, wg *sync.WaitGroup) error {
	subject := "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + c.cfg.Stream + "." + c.cfg.Durable
	ch := make(chan *nats.Msg, 64)
	sub, err := c.js.Conn().ChanQueueSubscribe(subject, "jetworker."+c.cfg.Stream+"."+c.cfg.Durable, ch)
	if err != nil {
		return fmt.Errorf("consumer: subscribe to %q: %w", subject, err)
	}
	wg.Go(func() {
		defer func() { _ = sub.Unsubscribe() }()
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-ch:
				var adv maxDeliveriesAdvisory
				if err := json.Unmarshal(m.Data, &adv); err != nil {
					c.log.WarnContext(ctx, "malformed max-deliveries advisory", slog.Any(logkey.Err, err))
					continue
				}
				c.onMaxDeliveries(ctx, adv)
			}
		}
	})
	return nil
}

// onMaxDeliveries dead-letters a message whose deliveries ran out without
// a handler result, then removes it from a work-queue stream.
func (c *Consumer) onMaxDeliveries(ctx context.Context, adv maxDeliveriesAdvisory) {
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	attrs := []slog.Attr{slog.Uint64(logkey.Seq, adv.StreamSeq), slog.Uint64(logkey.Delivered, adv.Deliveries)}
	raw, err := c.stream.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return // settled meanwhile (acked, or dead-lettered and terminated)
	}
	if err != nil {
		c.log.LogAttrs(ctx, slog.LevelError, "max deliveries: fetch message", append(attrs, slog.Any(logkey.Err, err))...)
		return
	}
	reason := fmt.Sprintf("max deliveries (%d) reached without a handler result (worker crashed or ack wait expired)", adv.Deliveries)
	if err := c.deadLetter(ctx, deadTask{subject: raw.Subject, data: raw.Data, header: raw.Header, seq: raw.Sequence, attempts: adv.Deliveries}, reason); err != nil {
		// Left in the stream: not lost, and visible in the consumer's state.
		c.log.LogAttrs(ctx, slog.LevelError, "max deliveries: dead-letter", append(attrs, slog.Any(logkey.Err, err))...)
		return
	}
	if c.stream.CachedInfo().Config.Retention == jetstream.WorkQueuePolicy {
		if err := c.stream.DeleteMsg(ctx, adv.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			c.log.LogAttrs(ctx, slog.LevelWarn, "max deliveries: delete original", append(attrs, slog.Any(logkey.Err, err))...)
		}
	}
	c.log.LogAttrs(ctx, slog.LevelError, "task dead-lettered after max deliveries",
		append(attrs, slog.String(logkey.Subject, raw.Subject), slog.String(logkey.TaskID, jetworker.TaskID(raw.Header)))...)
	t := &jetworker.Task{
		ID: jetworker.TaskID(raw.Header), Subject: raw.Subject, Data: raw.Data, Header: raw.Header,
		Stream: c.cfg.Stream, Consumer: c.cfg.Durable, Sequence: raw.Sequence, Delivered: adv.Deliveries, Published: raw.Time,
	}
	if tr := c.trackerFor(raw.Header); tr != nil {
		tr.Dead(t, reason)
		tr.Release(t.ID, raw.Header)
	}
	if c.cfg.Hooks.DeadLetterFunc != nil {
		c.cfg.Hooks.DeadLetterFunc(ctx, t, reason)
	}
}
