package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestInert(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, line, text string
	}{
		{"plain text stays", "tasks.email.send héllo ✓", "tasks.email.send héllo ✓", "tasks.email.send héllo ✓"},
		{"set the terminal title (OSC)", "\x1b]0;pwned\x07", `\x1b]0;pwned\x07`, `\x1b]0;pwned\x07`},
		{"clear the screen (CSI)", "a\x1b[2Jb", `a\x1b[2Jb`, `a\x1b[2Jb`},
		{"newline and tab", "a\nb\tc", `a\nb\tc`, "a\nb\tc"},
		{"carriage return rewrites a line", "ok\rFAIL", `ok\rFAIL`, `ok\rFAIL`},
		{"NUL, backspace, DEL", "\x00\x08\x7f", `\x00\x08\x7f`, `\x00\x08\x7f`},
		{"C1 CSI", "a\u009b2Jb", `a\u009b2Jb`, `a\u009b2Jb`},
		{"bidi override reorders text", "invoice\u202egpj.exe", `invoice\u202egpj.exe`, `invoice\u202egpj.exe`},
		{"bidi isolate", "\u2066x\u2069", `\u2066x\u2069`, `\u2066x\u2069`},
		{"zero-width and BOM", "a\u200bb\ufeff", `a\u200bb\ufeff`, `a\u200bb\ufeff`},
		{"line separator", "a\u2028b", `a\u2028b`, `a\u2028b`},
		{"invalid UTF-8", "a\xffb\xc3", `a\xffb\xc3`, `a\xffb\xc3`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := inert(tt.in); got != tt.line {
				t.Errorf("inert(%q) = %q, want %q", tt.in, got, tt.line)
			}
			if got := inertText(tt.in); got != tt.text {
				t.Errorf("inertText(%q) = %q, want %q", tt.in, got, tt.text)
			}
		})
	}
}

func TestExcerpt(t *testing.T) {
	t.Parallel()
	if got := excerpt("a\n\x1b[2J  b", 80); got != `a \x1b[2J b` {
		t.Errorf("got %q", got)
	}
	if got := excerpt(strings.Repeat("é", 10), 5); got != "éééé…" {
		t.Errorf("got %q", got)
	}
}

func TestScrubber(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	s := newScrubber(&out)
	s.add("hunter2-long", "short", "", "hunter2-long-and-longer")
	if _, err := s.Write([]byte("a hunter2-long-and-longer b hunter2-long c short\n")); err != nil {
		t.Fatal(err)
	}
	if want := "a [REDACTED] b [REDACTED] c short\n"; out.String() != want {
		t.Fatalf("got %q, want %q (secrets under %d bytes are left to the printers)", out.String(), want, minScrubbed)
	}
}

// A secret is replaced as JSON and Go quote it too.
func TestScrubberQuotedForms(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	s := newScrubber(&out)
	s.add(`pa"ss\word<&>`)
	if _, err := s.Write([]byte(`{"msg":"auth pa\"ss\\word<&> refused"} and "pa\"ss\\word<&>"` + "\n")); err != nil {
		t.Fatal(err)
	}
	if want := `{"msg":"auth [REDACTED] refused"} and "[REDACTED]"` + "\n"; out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}

func TestURLSecrets(t *testing.T) {
	t.Parallel()
	got := urlSecrets("nats://app:pa%24s@h:1,https://h/x?token=tok3n&b=2,bare:b4re@h:2")
	for _, want := range []string{"app:pa%24s", "pa%24s", "pa$s", "token=tok3n&b=2", "tok3n", "b4re"} {
		if !strings.Contains(strings.Join(got, "\n"), want) {
			t.Errorf("urlSecrets lacks %q: %q", want, got)
		}
	}
}
