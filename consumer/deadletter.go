package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/internal/logkey"
)

// maxErrorHeader bounds the error text stored in a dead letter's header.
const maxErrorHeader = 2048

// deadTask is what a dead letter is made from.
type deadTask struct {
	subject  string
	data     []byte
	header   nats.Header
	seq      uint64
	attempts uint64
}

// strippedHeaders are server directives of the original publish that must
// not apply to the dead-letter copy (they would expire it, expect another
// stream, or de-duplicate it against the original).
func stripped(k string) bool {
	return k == jetworker.HeaderMsgID || k == jetstream.MsgTTLHeader || k == jetstream.MsgRollup ||
		strings.HasPrefix(k, "Nats-Expected-") || strings.HasPrefix(k, "Nats-Schedule")
}

// deadLetter stores a copy of the task on the dead-letter subject and waits
// for the PubAck. The copy's Nats-Msg-Id is <stream>.<durable>.<seq>, so
// the handler path and the max-deliveries path store a task once.
func (c *Consumer) deadLetter(ctx context.Context, d deadTask, reason string) error {
	h := make(nats.Header, len(d.header)+9)
	for k, vs := range d.header {
		if !stripped(k) {
			h[k] = vs
		}
	}
	if id := jetworker.TaskID(d.header); id != "" {
		h.Set(jetworker.HeaderTaskID, id)
	}
	h.Set(jetworker.HeaderMsgID, c.cfg.Stream+"."+c.cfg.Durable+"."+strconv.FormatUint(d.seq, 10))
	h.Set(jetworker.HeaderError, headerValue(reason))
	h.Set(jetworker.HeaderAttempts, strconv.FormatUint(d.attempts, 10))
	h.Set(jetworker.HeaderOriginalSubject, d.subject)
	h.Set(jetworker.HeaderOriginalStream, c.cfg.Stream)
	h.Set(jetworker.HeaderOriginalSeq, strconv.FormatUint(d.seq, 10))
	h.Set(jetworker.HeaderConsumer, c.cfg.Durable)
	h.Set(jetworker.HeaderFailedAt, c.cfg.NowFunc().UTC().Format(time.RFC3339Nano))
	subject := c.cfg.deadLetterSubject()
	if _, err := c.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: d.data, Header: h}); err != nil {
		return fmt.Errorf("dead-letter seq %d to %q: %w", d.seq, subject, err)
	}
	return nil
}

// headerValue makes s safe as a single-line header value, bounded in size.
func headerValue(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxErrorHeader {
		s = s[:maxErrorHeader] + "…"
	}
	return s
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
	if c.cfg.Hooks.DeadLetterFunc != nil {
		c.cfg.Hooks.DeadLetterFunc(ctx, &jetworker.Task{
			ID: jetworker.TaskID(raw.Header), Subject: raw.Subject, Data: raw.Data, Header: raw.Header,
			Stream: c.cfg.Stream, Consumer: c.cfg.Durable, Sequence: raw.Sequence, Delivered: adv.Deliveries, Published: raw.Time,
		}, reason)
	}
}
