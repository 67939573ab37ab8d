// Package subject is the one place where jetworker checks NATS subjects,
// subject filters and the names of streams, consumers and buckets, so that
// the publisher, the scheduler, the dead-letter tools, the mux, the
// consumer and the command line all accept and refuse the same things.
//
// A subject is a dot-separated list of non-empty tokens without white
// space or control characters. Subjects in the server's reserved spaces
// ($JS., $KV., $O., $SYS., $NATS. and every other subject starting with
// '$', and _INBOX.) are never task subjects: publishing a task there would
// be an API request to the server (purge a stream, delete a bucket) or a
// reply to somebody else's request.
package subject

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jetworker/jetworker"
)

// Reserved reports whether s, a subject or a filter, lies in a space the
// server or its clients own: it starts with '$' (the JetStream API, KV,
// object store, system and account subjects) or is _INBOX or starts with
// _INBOX. (request replies). A filter made only of wildcards ("*", ">")
// is not reserved: it selects within what its stream captures.
func Reserved(s string) bool {
	return strings.HasPrefix(s, "$") || s == "_INBOX" || strings.HasPrefix(s, "_INBOX.")
}

// DelayPrefix starts the subjects where delayed tasks wait for their
// release (streams.DelaySubject); tasks are not published there directly.
const DelayPrefix = "jetworker.delay."

// Validate checks that s is a subject a task may be published on: a
// valid subject without wildcards, outside the reserved spaces and
// jetworker's delay subjects. The error wraps [jetworker.ErrInvalidSubject]
// or [jetworker.ErrReservedSubject] and quotes s.
func Validate(s string) error {
	if err := check(s, false); err != nil {
		return err
	}
	if Reserved(s) {
		return reservedError(s)
	}
	if strings.HasPrefix(s, DelayPrefix) {
		return fmt.Errorf("%w: %q: jetworker.delay.> holds delayed tasks waiting for their release; publish with a delay instead", jetworker.ErrReservedSubject, s)
	}
	return nil
}

// ValidateFilter checks that s is a subject filter for task subjects:
// "*" may stand for one whole token and ">" for the last ones, and the
// filter must not select a reserved space.
func ValidateFilter(s string) error {
	if err := check(s, true); err != nil {
		return err
	}
	if Reserved(s) {
		return reservedError(s)
	}
	return nil
}

func reservedError(s string) error {
	return fmt.Errorf("%w: %q: subjects starting with '$' or _INBOX. belong to the server ($JS, $KV, $O, $SYS, $NATS) and to request replies, never to tasks", jetworker.ErrReservedSubject, s)
}

// check validates the syntax of a subject (wildcards false) or a filter.
func check(s string, wildcards bool) error {
	if s == "" {
		return fmt.Errorf("%w: empty", jetworker.ErrInvalidSubject)
	}
	if !printableASCII(s) { // the common case skips the Unicode checks
		if !utf8.ValidString(s) {
			return fmt.Errorf("%w: %q is not valid UTF-8", jetworker.ErrInvalidSubject, s)
		}
		for _, r := range s {
			if unicode.IsSpace(r) {
				return fmt.Errorf("%w: %q contains white space", jetworker.ErrInvalidSubject, s)
			}
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				return fmt.Errorf("%w: %q contains the control character %U", jetworker.ErrInvalidSubject, s, r)
			}
		}
	}
	last := false
	for start := 0; !last; {
		end := strings.IndexByte(s[start:], '.')
		if end < 0 {
			end, last = len(s), true
		} else {
			end += start
		}
		tok := s[start:end]
		start = end + 1
		switch {
		case tok == "":
			return fmt.Errorf("%w: %q has an empty token", jetworker.ErrInvalidSubject, s)
		case tok == "*" || tok == ">":
			if !wildcards {
				return fmt.Errorf("%w: %q has the wildcard token %q; a task subject names one subject", jetworker.ErrInvalidSubject, s, tok)
			}
			if tok == ">" && !last {
				return fmt.Errorf("%w: %q has \">\" before its last token", jetworker.ErrInvalidSubject, s)
			}
		case hasWildcardByte(tok):
			if wildcards {
				return fmt.Errorf("%w: %q has a wildcard inside the token %q; wildcards must be whole tokens", jetworker.ErrInvalidSubject, s, tok)
			}
			return fmt.Errorf("%w: %q has the wildcard character in token %q", jetworker.ErrInvalidSubject, s, tok)
		}
	}
	return nil
}

// hasWildcardByte reports whether tok contains '*' or '>'.
func hasWildcardByte(tok string) bool {
	for i := 0; i < len(tok); i++ {
		if tok[i] == '*' || tok[i] == '>' {
			return true
		}
	}
	return false
}

// printableASCII reports whether every byte of s is a printable ASCII
// character other than space.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// ValidateName checks the name of a stream, consumer, bucket, schedule
// lease key or dead-letter prefix: one subject token (no '.', '*', '>'),
// no white space, control characters or path separators, at most 255
// bytes. what names the field in the error ("Durable", "Stream").
func ValidateName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s must not be empty", what)
	case len(s) > 255:
		return fmt.Errorf("%s %q is longer than 255 bytes", what, s[:32]+"…")
	case !utf8.ValidString(s):
		return fmt.Errorf("%s %q is not valid UTF-8", what, s)
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || strings.ContainsRune(".*>/\\", r) {
			return fmt.Errorf("%s %q must be one token: no '.', '*', '>', '/', '\\', white space or control characters", what, s)
		}
	}
	return nil
}

// Match reports whether the literal subject s matches the filter f,
// token by token ("*" one token, ">" one or more trailing tokens). Both
// must be valid; Match does not check them.
func Match(f, s string) bool {
	for {
		ft, frest, fmore := strings.Cut(f, ".")
		st, srest, smore := strings.Cut(s, ".")
		switch {
		case ft == ">":
			return true
		case ft != "*" && ft != st:
			return false
		case !fmore || !smore:
			return !fmore && !smore
		}
		f, s = frest, srest
	}
}

// Overlap reports whether some subject matches both filters a and b.
func Overlap(a, b string) bool {
	for {
		at, arest, amore := strings.Cut(a, ".")
		bt, brest, bmore := strings.Cut(b, ".")
		switch {
		case at == ">" || bt == ">":
			return true
		case at != "*" && bt != "*" && at != bt:
			return false
		case !amore || !bmore:
			return !amore && !bmore
		}
		a, b = arest, brest
	}
}

// Tokens returns the number of tokens of s.
func Tokens(s string) int { return strings.Count(s, ".") + 1 }
