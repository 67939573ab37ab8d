package subject_test

import (
	"errors"
	"testing"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/internal/subject"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		subject string
		filter  bool
		want    error
	}{
		{name: "plain subject", subject: "tasks.email.welcome"},
		{name: "one token", subject: "tasks"},
		{name: "unicode token", subject: "tasks.über"},
		{name: "empty", subject: "", want: jetworker.ErrInvalidSubject},
		{name: "empty token in the middle", subject: "tasks..a", want: jetworker.ErrInvalidSubject},
		{name: "leading dot", subject: ".tasks", want: jetworker.ErrInvalidSubject},
		{name: "trailing dot", subject: "tasks.", want: jetworker.ErrInvalidSubject},
		{name: "space", subject: "tasks.a b", want: jetworker.ErrInvalidSubject},
		{name: "tab", subject: "tasks.a\tb", want: jetworker.ErrInvalidSubject},
		{name: "escape character", subject: "tasks.\x1b[2J", want: jetworker.ErrInvalidSubject},
		{name: "bidi override", subject: "tasks.\u202egnp", want: jetworker.ErrInvalidSubject},
		{name: "invalid utf-8", subject: "tasks.\xff", want: jetworker.ErrInvalidSubject},
		{name: "star token", subject: "tasks.*", want: jetworker.ErrInvalidSubject},
		{name: "gt token", subject: "tasks.>", want: jetworker.ErrInvalidSubject},
		{name: "star in token", subject: "tasks.a*", want: jetworker.ErrInvalidSubject},
		{name: "JetStream API", subject: "$JS.API.STREAM.PURGE.TASKS", want: jetworker.ErrReservedSubject},
		{name: "KV", subject: "$KV.jetworker_leases.scheduler", want: jetworker.ErrReservedSubject},
		{name: "object store", subject: "$O.bucket.C.x", want: jetworker.ErrReservedSubject},
		{name: "system", subject: "$SYS.REQ.SERVER.PING", want: jetworker.ErrReservedSubject},
		{name: "NATS", subject: "$NATS.x", want: jetworker.ErrReservedSubject},
		{name: "any dollar subject", subject: "$G", want: jetworker.ErrReservedSubject},
		{name: "inbox", subject: "_INBOX.abc.def", want: jetworker.ErrReservedSubject},
		{name: "bare inbox", subject: "_INBOX", want: jetworker.ErrReservedSubject},
		{name: "inbox-like task is fine", subject: "_INBOXES.x"},
		{name: "filter with star", subject: "tasks.*.send", filter: true},
		{name: "filter with gt", subject: "tasks.>", filter: true},
		{name: "filter only gt", subject: ">", filter: true},
		{name: "filter gt not last", subject: "tasks.>.x", filter: true, want: jetworker.ErrInvalidSubject},
		{name: "filter partial wildcard", subject: "tasks.email*", filter: true, want: jetworker.ErrInvalidSubject},
		{name: "filter of JetStream API", subject: "$JS.API.>", filter: true, want: jetworker.ErrReservedSubject},
		{name: "filter of inboxes", subject: "_INBOX.>", filter: true, want: jetworker.ErrReservedSubject},
		{name: "filter empty token", subject: "tasks..>", filter: true, want: jetworker.ErrInvalidSubject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			validate := subject.Validate
			if tt.filter {
				validate = subject.ValidateFilter
			}
			err := validate(tt.subject)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want an error wrapping %v", err, tt.want)
			}
		})
	}
}

func TestValidateName(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"TASKS", "worker-hooks", "jetworker_workers", "a=b"} {
		if err := subject.ValidateName("Durable", ok); err != nil {
			t.Errorf("%q: got %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "a.b", "a*", "a>", "a b", "a/b", `a\b`, "a\x00", string(make([]byte, 256))} {
		if err := subject.ValidateName("Durable", bad); err == nil {
			t.Errorf("%q: got nil, want an error", bad)
		}
	}
}

func TestMatchAndOverlap(t *testing.T) {
	t.Parallel()
	match := []struct {
		filter, subject string
		want            bool
	}{
		{"tasks.>", "tasks.a", true},
		{"tasks.>", "tasks.a.b", true},
		{"tasks.>", "tasks", false},
		{"tasks.*", "tasks.a", true},
		{"tasks.*", "tasks.a.b", false},
		{"tasks.email", "tasks.emailer", false},
		{"*.b", "a.b", true},
		{">", "a", true},
		{"a.b", "a.b", true},
		{"a.b", "a", false},
	}
	for _, m := range match {
		if got := subject.Match(m.filter, m.subject); got != m.want {
			t.Errorf("Match(%q, %q): got %v, want %v", m.filter, m.subject, got, m.want)
		}
	}
	overlap := []struct {
		a, b string
		want bool
	}{
		{"tasks.>", "tasks.>", true},
		{"tasks.>", "tasks.email.*", true},
		{"tasks.billing.>", "tasks.email.>", false},
		{"tasks.*", "tasks.a.b", false},
		{"tasks.*.x", "tasks.a.*", true},
		{"tasks.a", "tasks.b", false},
		{">", "anything.at.all", true},
		{"tasks", "tasks.>", false},
	}
	for _, o := range overlap {
		if got := subject.Overlap(o.a, o.b); got != o.want {
			t.Errorf("Overlap(%q, %q): got %v, want %v", o.a, o.b, got, o.want)
		}
		if got := subject.Overlap(o.b, o.a); got != o.want {
			t.Errorf("Overlap(%q, %q): got %v, want %v", o.b, o.a, got, o.want)
		}
	}
}

func TestDelaySubjects(t *testing.T) {
	t.Parallel()
	if err := subject.Validate("jetworker.delay.TASKS.x"); !errors.Is(err, jetworker.ErrReservedSubject) {
		t.Fatalf("delay subject: got %v, want ErrReservedSubject", err)
	}
}

func BenchmarkValidate(b *testing.B) {
	for b.Loop() {
		if err := subject.Validate("tasks.email.welcome.eu-west-1"); err != nil {
			b.Fatal(err)
		}
	}
}
