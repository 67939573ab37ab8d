package dlq

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jetworker/jetworker/internal/wire"

	"github.com/nats-io/nats.go"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/streams"
)

// maxError bounds the error text stored in a dead letter's header, and
// minError is what it is cut to when the copy would not fit otherwise.
const (
	maxError = 2048
	minError = 256
)

// Letter is a task a consumer gives up on, as [Message] needs it.
type Letter struct {
	// Prefix is the first token of dead-letter subjects. Defaults to "dlq".
	Prefix string
	// Stream, Consumer and Sequence locate the original message.
	Stream   string
	Consumer string
	Sequence uint64
	// Subject, Header and Data are the original message's.
	Subject string
	Header  nats.Header
	Data    []byte
	// Attempts is the number of deliveries the task had.
	Attempts uint64
	// Reason is the last error, as text.
	Reason string
	// FailedAt is when the consumer gave up.
	FailedAt time.Time
}

// subject returns l's dead-letter subject:
// <prefix>.<stream>.<consumer>.<original subject>.
func (l Letter) subject(prefix string) string {
	return prefix + "." + l.Stream + "." + l.Consumer + "." + l.Subject
}

// msgID returns the de-duplication key of the dead letter of the task with
// sequence seq in stream, given up by consumer: one task is stored once
// even when both dead-letter paths reach it.
func msgID(stream, consumer string, seq uint64) string {
	return stream + "." + consumer + "." + strconv.FormatUint(seq, 10)
}

// directive reports whether an original header is a server directive that
// must not apply to a copy or a replay: it would expire it, roll up its
// subject, expect another stream or sequence, schedule it, or de-duplicate
// it against the original. Every Nats- header is one.
func directive(k string) bool {
	return strings.HasPrefix(strings.ToLower(k), "nats-")
}

// Message builds the dead-letter copy of l. The copy fits in maxPayload
// bytes (0 means no limit): when it would not, the error text is cut to
// 256 bytes; then, if the task's own headers leave no room, they are
// dropped, largest first, with Jetworker-Headers-Dropped set to how many
// were; then the payload is cut to what fits, with
// Jetworker-Payload-Truncated set to its original length. So a task is
// always dead-lettered, whatever its size; one that was cut cannot be
// replayed.
func Message(l Letter, maxPayload int64) *nats.Msg {
	prefix := l.Prefix
	if prefix == "" {
		prefix = streams.DefaultDeadLetterPrefix
	}
	h := make(nats.Header, len(l.Header)+10)
	for k, vs := range l.Header {
		if !directive(k) && k != jetworker.HeaderPayloadTruncated && k != jetworker.HeaderHeadersDropped {
			h[k] = vs
		}
	}
	if id := jetworker.TaskID(l.Header); id != "" {
		h.Set(jetworker.HeaderTaskID, id)
	}
	own := []string{jetworker.HeaderTaskID}
	set := func(k, v string) {
		h.Set(k, v)
		own = append(own, k)
	}
	set(jetworker.HeaderMsgID, msgID(l.Stream, l.Consumer, l.Sequence))
	set(jetworker.HeaderError, oneLine(l.Reason, maxError))
	set(jetworker.HeaderAttempts, strconv.FormatUint(l.Attempts, 10))
	set(jetworker.HeaderOriginalSubject, l.Subject)
	set(jetworker.HeaderOriginalStream, l.Stream)
	set(jetworker.HeaderOriginalSeq, strconv.FormatUint(l.Sequence, 10))
	set(jetworker.HeaderConsumer, l.Consumer)
	set(jetworker.HeaderFailedAt, l.FailedAt.UTC().Format(time.RFC3339Nano))
	msg := &nats.Msg{Subject: l.subject(prefix), Data: l.Data, Header: h}
	if maxPayload <= 0 {
		return msg
	}
	// The server counts the subject, headers and data; leave room for the
	// protocol line's other fields as nats.go does not count them.
	if maxPayload-int64(wire.HeaderSize(h))-int64(len(msg.Data)) >= 0 {
		return msg
	}
	h.Set(jetworker.HeaderError, oneLine(l.Reason, minError))
	h.Set(jetworker.HeaderPayloadTruncated, strconv.Itoa(len(l.Data)))
	room := maxPayload - int64(wire.HeaderSize(h))
	if room < 0 {
		room = dropHeaders(h, own, maxPayload)
	}
	if room >= int64(len(l.Data)) {
		h.Del(jetworker.HeaderPayloadTruncated)
		return msg
	}
	msg.Data = l.Data[:max(room, 0)]
	return msg
}

// dropHeaders removes the task's own headers (not those named in keep),
// largest first, until h fits in maxPayload, and records how many it
// removed. It returns the room left for the payload.
func dropHeaders(h nats.Header, keep []string, maxPayload int64) int64 {
	type field struct {
		key  string
		size int
	}
	var fields []field
	for k, vs := range h {
		if slices.Contains(keep, k) || k == jetworker.HeaderPayloadTruncated {
			continue
		}
		n := 0
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
		fields = append(fields, field{k, n})
	}
	slices.SortFunc(fields, func(a, b field) int { return cmp.Compare(b.size, a.size) })
	dropped := 0
	room := maxPayload - int64(wire.HeaderSize(h))
	for _, f := range fields {
		if room >= 0 {
			break
		}
		h.Del(f.key)
		dropped++
		h.Set(jetworker.HeaderHeadersDropped, strconv.Itoa(dropped))
		room = maxPayload - int64(wire.HeaderSize(h))
	}
	return room
}

// oneLine makes s a single-line header value of at most n bytes (plus an
// ellipsis), without cutting a character in half.
func oneLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !startsRune(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func startsRune(b byte) bool { return b&0xC0 != 0x80 }
