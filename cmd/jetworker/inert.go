package main

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// inert returns s safe to print on a terminal on one line: every
// character that could move the cursor, change the title, clear the
// screen or reorder the text around it is escaped Go-style (\x1b,
// \u202e). That is the C0 controls (newline and tab included), DEL, the
// C1 controls, Unicode format characters (bidi overrides and isolates,
// zero-width characters) and the line and paragraph separators; a byte
// that is not UTF-8 becomes \xNN. Task IDs, subjects, headers and errors
// come from whoever published a task, so every human-readable printer
// passes them through here. JSON output does not: encoding/json escapes
// what JSON must, and the bytes stay exact.
func inert(s string) string { return escape(s, false) }

// inertText is inert for a payload shown as text: newlines and tabs are
// kept, so a multi-line payload still reads as one.
func inertText(s string) string { return escape(s, true) }

func escape(s string, keepLines bool) string {
	if isInert(s, keepLines) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case keepLines && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// isInert reports whether s needs no escaping: the common case, checked
// without allocating.
func isInert(s string, keepLines bool) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 && !(keepLines && (c == '\n' || c == '\t'))) || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size <= 1) || unsafeRune(r) {
			return false
		}
		i += size
	}
	return true
}

// unsafeRune reports the non-ASCII runes a terminal may act on: C1
// controls, format characters (Cf: bidi controls, zero-width joiners, the
// BOM) and the line and paragraph separators.
func unsafeRune(r rune) bool {
	return (r >= 0x80 && r <= 0x9f) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029'
}
