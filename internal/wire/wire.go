// Package wire holds the rules for what a task message carries on the
// wire that are not about its subject: which headers a caller may set and
// how large a header block is. The publisher, the outbox and the dead
// letter path share them.
package wire

import (
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
)

// Directive reports whether a header name is one a task must not carry
// from a caller: Nats- headers are server directives (Nats-Rollup: all
// purges a stream, Nats-TTL expires the task, Nats-Expected-* and
// Nats-Schedule-* change how it is stored) and Jetworker- headers are
// jetworker's own bookkeeping. Publishers set the ones they mean from
// their options.
func Directive(name string) bool {
	l := strings.ToLower(name)
	return strings.HasPrefix(l, "nats-") || strings.HasPrefix(l, "jetworker-")
}

// HeaderError says why a caller's header is refused.
type HeaderError struct {
	// Name is the header's name.
	Name string
	// Directive is set when the name is a Nats- or Jetworker- header
	// (see [Directive]); otherwise the name or a value is malformed.
	Directive bool
	reason    string
}

// Error describes the header and the reason.
func (e *HeaderError) Error() string { return fmt.Sprintf("header %q: %s", e.Name, e.reason) }

// CheckHeader refuses a caller's header that the server would obey or
// reject, or that would break the header block: a [Directive] name, an
// empty name or one with a space, colon or control character, a value with
// a line break. It returns a *[HeaderError] or nil.
func CheckHeader(h nats.Header) error {
	for k, vs := range h {
		if k == "" || strings.ContainsAny(k, " :\r\n\t") {
			return &HeaderError{Name: k, reason: "not a valid header name"}
		}
		if Directive(k) {
			return &HeaderError{Name: k, Directive: true, reason: "Nats- headers are server directives (Nats-Rollup: all would purge the stream) and Jetworker- headers are jetworker's own; set what they do through the options"}
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n") {
				return &HeaderError{Name: k, reason: "a line break in its value"}
			}
		}
	}
	return nil
}

// HeaderSize is the encoded size of h on the wire (the NATS/1.0 header
// block).
func HeaderSize(h nats.Header) int {
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(": ") + len(v) + len("\r\n")
		}
	}
	return n
}

// Value returns the first value of header name in h, "" if none. name must
// be in canonical form, as jetworker's and nats.go's header constants are:
// unlike nats.Header.Get it does not canonicalize it again, which per task
// adds up on the hot paths.
func Value(h nats.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}
