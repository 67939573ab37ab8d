package consumer

import "strings"

// ackInfo is what the consumer needs from a message's ack reply subject.
type ackInfo struct {
	delivered uint64
	streamSeq uint64
	timestamp int64 // Unix nanoseconds
}

// parseAckReply reads the delivery count, stream sequence and timestamp
// from a JetStream ack reply subject without allocating, which
// jetstream.Msg.Metadata does on every message. The subject is
// $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>, or
// since server 2.9 $JS.ACK.<domain>.<hash>.<stream>.<consumer>.<delivered>.
// <sseq>.<cseq>.<ts>.<pending>[.<token>...]. It reports false for anything
// else; the caller then asks nats.go, which explains the error.
func parseAckReply(reply string) (ackInfo, bool) {
	rest, ok := strings.CutPrefix(reply, "$JS.ACK.")
	if !ok {
		return ackInfo{}, false
	}
	var tokens [12]string
	n := 0
	for n < len(tokens) {
		tok, after, more := strings.Cut(rest, ".")
		tokens[n] = tok
		n++
		if !more {
			break
		}
		rest = after
	}
	first := 0 // index of <delivered> among the tokens after $JS.ACK.
	switch {
	case n == 7:
		first = 2
	case n >= 9:
		first = 4
	default:
		return ackInfo{}, false
	}
	d, ok1 := parseUint(tokens[first])
	s, ok2 := parseUint(tokens[first+1])
	ts, ok3 := parseUint(tokens[first+3])
	if !ok1 || !ok2 || !ok3 {
		return ackInfo{}, false
	}
	return ackInfo{delivered: d, streamSeq: s, timestamp: int64(ts)}, true
}

// parseUint parses a non-empty run of at most 19 decimal digits.
func parseUint(s string) (uint64, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}
