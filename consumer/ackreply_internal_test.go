package consumer

import (
	"testing"

	"github.com/nats-io/nats.go"
)

// TestParseAckReplyAgreesWithNatsGo checks the fast parser against
// nats.go's on both subject forms, and that it refuses malformed subjects
// (the consumer then asks nats.go, which explains or accepts them).
func TestParseAckReplyAgreesWithNatsGo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		reply string
		ok    bool
	}{
		{"v1", "$JS.ACK.TASKS.workers.3.1042.1040.1763712000123456789.7", true},
		{"v2", "$JS.ACK._.HASH.TASKS.workers.3.1042.1040.1763712000123456789.7.rnd", true},
		{"v2 without token", "$JS.ACK.hub.HASH.TASKS.workers.1.5.5.1763712000000000000.0", true},
		{"v2 with extra tokens", "$JS.ACK.hub.HASH.TASKS.workers.2.9.8.1763712000000000000.0.a.b.c", true},
		{"not an ack", "_INBOX.abc", false},
		{"too short", "$JS.ACK.TASKS.workers.3.1042", false},
		{"eight tokens", "$JS.ACK.a.b.c.d.e.f.g.h", false},
		{"not a number", "$JS.ACK.TASKS.workers.x.1042.1040.1763712000123456789.7", false},
		{"empty number", "$JS.ACK.TASKS.workers..1042.1040.1763712000123456789.7", false},
		{"too long a number", "$JS.ACK.TASKS.workers.3.12345678901234567890.1040.1.7", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := parseAckReply(tt.reply)
			if ok != tt.ok {
				t.Fatalf("parseAckReply(%q) ok = %v, want %v", tt.reply, ok, tt.ok)
			}
			if !ok {
				return
			}
			// What nats.go reads from the same subject.
			m := &nats.Msg{Subject: "tasks.x", Reply: tt.reply, Sub: &nats.Subscription{}}
			meta, err := m.Metadata()
			if err != nil {
				t.Fatalf("nats.go refuses %q: %v", tt.reply, err)
			}
			if got.delivered != meta.NumDelivered || got.streamSeq != meta.Sequence.Stream || got.timestamp != meta.Timestamp.UnixNano() {
				t.Errorf("parseAckReply(%q) = %+v, nats.go reads delivered %d seq %d ts %d",
					tt.reply, got, meta.NumDelivered, meta.Sequence.Stream, meta.Timestamp.UnixNano())
			}
		})
	}
}
