package wire_test

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/jetworker/jetworker/internal/wire"
)

func TestDirective(t *testing.T) {
	t.Parallel()
	for _, h := range []string{"Nats-Rollup", "nats-ttl", "NATS-EXPECTED-STREAM", "Nats-Msg-Id", "Jetworker-Task-Id", "jetworker-replayed-from"} {
		if !wire.Directive(h) {
			t.Errorf("Directive(%q): got false, want true", h)
		}
	}
	for _, h := range []string{"X-Tenant", "traceparent", "Content-Type", "Natsy"} {
		if wire.Directive(h) {
			t.Errorf("Directive(%q): got true, want false", h)
		}
	}
}

func TestCheckHeader(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		h         nats.Header
		ok        bool
		directive bool
	}{
		{nats.Header{"X-Tenant": {"acme"}, "traceparent": {"00-ab-cd-01"}}, true, false},
		{nil, true, false},
		{nats.Header{"Nats-Rollup": {"all"}}, false, true},
		{nats.Header{"jetworker-track": {"1"}}, false, true},
		{nats.Header{"": {"x"}}, false, false},
		{nats.Header{"X Bad": {"x"}}, false, false},
		{nats.Header{"X:Bad": {"x"}}, false, false},
		{nats.Header{"X-Split": {"a\r\nNats-Rollup: all"}}, false, false},
	} {
		err := wire.CheckHeader(tt.h)
		var he *wire.HeaderError
		switch {
		case tt.ok && err != nil:
			t.Errorf("%v: got %v, want nil", tt.h, err)
		case !tt.ok && !errors.As(err, &he):
			t.Errorf("%v: got %v, want a *HeaderError", tt.h, err)
		case !tt.ok && he.Directive != tt.directive:
			t.Errorf("%v: Directive %v, want %v (%v)", tt.h, he.Directive, tt.directive, err)
		}
	}
}

func TestHeaderSize(t *testing.T) {
	t.Parallel()
	// What nats.go puts on the wire for this header.
	const block = "NATS/1.0\r\nX-A: 1\r\nX-B: 22\r\n\r\n"
	if got := wire.HeaderSize(nats.Header{"X-A": {"1"}, "X-B": {"22"}}); got != len(block) {
		t.Fatalf("HeaderSize: got %d, want %d", got, len(block))
	}
}

func TestValue(t *testing.T) {
	t.Parallel()
	h := nats.Header{}
	h.Set("Jetworker-Track", "1")
	for _, tc := range []struct {
		h          nats.Header
		name, want string
	}{
		{nil, "Jetworker-Track", ""},
		{h, "Jetworker-Track", "1"},
		{h, "Jetworker-Unique", ""},
		{nats.Header{"Jetworker-Unique": {}}, "Jetworker-Unique", ""},
		{nats.Header{"Nats-Msg-Id": {"a", "b"}}, "Nats-Msg-Id", "a"},
	} {
		if got := wire.Value(tc.h, tc.name); got != tc.want {
			t.Errorf("Value(%v, %q) = %q, want %q", tc.h, tc.name, got, tc.want)
		}
	}
}
