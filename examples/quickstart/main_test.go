package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// runMainEnv makes the test binary run the program's main instead of the
// tests, so that TestQuickstart sees exactly what a user sees on stdout.
const runMainEnv = "QUICKSTART_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// output is what the program prints, line by line.
func output() []string {
	return []string{
		"publishing welcome-ada",
		"welcome: attempt 1 failed: mail server busy",
		"welcome: attempt 2 welcomed ada@example.com",
		"welcome-ada: succeeded after 2 attempts",
		"publishing invoice-7",
		"invoice-7: failed after 1 attempt, in the dead letters: permanent: invoice 7 has no customer",
		"storing schedule cleanup: @every 1s",
		"cleanup: fired by schedule cleanup",
		"stopped: worker and scheduler shut down",
	}
}

// TestQuickstart runs the program and checks every line it prints, in
// order: the doc comment of main.go shows the same lines.
func TestQuickstart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("quickstart: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.Bytes())
	}
	got := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	want := output()
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("line %d: got %q, want %q", i+1, g, w)
		}
	}
	// stderr has the consumer's warning for the retry and its error for
	// the dead letter.
	var retried, deadLettered bool
	for l := range strings.SplitSeq(stderr.String(), "\n") {
		retried = retried || strings.Contains(l, "level=WARN") && strings.Contains(l, "task_id=welcome-ada")
		deadLettered = deadLettered || strings.Contains(l, "level=ERROR") && strings.Contains(l, "task_id=invoice-7")
	}
	if !retried || !deadLettered {
		t.Errorf("stderr: got\n%s\nwant a warning for welcome-ada's retry and an error for invoice-7's dead letter", stderr.Bytes())
	}

	// The doc comment shows the output as it is.
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	if doc := strings.Join(indented(src, "//\t"), "\n"); !strings.Contains(doc, strings.Join(want, "\n")) {
		t.Errorf("main.go's doc comment does not show the output:\n%s", strings.Join(want, "\n"))
	}
}

// indented returns the lines of src that start with prefix, without it.
func indented(src []byte, prefix string) []string {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		if l, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestREADME keeps the README's quickstart what this program runs: every
// line of its Go snippet is a line of main.go, in the same order (main.go
// adds the steps that wait and print between them), except the last,
// which runs the steps beside the worker and the scheduler here; and the
// output the README shows is the program's.
func TestREADME(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Quickstart\n")
	if !ok {
		t.Fatal("README.md has no Quickstart section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	snippet := fenced(section, "```go")
	if len(snippet) < 20 {
		t.Fatalf("the Quickstart's Go snippet has %d lines, want the whole quickstart", len(snippet))
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	var code []string
	for l := range strings.SplitSeq(string(src), "\n") {
		code = append(code, strings.TrimSpace(l))
	}
	const last = "return jetworker.RunAll(ctx, worker, scheduler)"
	i := 0
	for n, line := range snippet {
		if line == last && n == len(snippet)-1 {
			if !slices.ContainsFunc(code, func(c string) bool { return strings.HasPrefix(c, "if err := jetworker.RunAll(ctx, worker, scheduler,") }) {
				t.Errorf("main.go does not run the worker and the scheduler with RunAll as the README does")
			}
			continue
		}
		for i < len(code) && code[i] != line {
			i++
		}
		if i == len(code) {
			t.Errorf("README line %d of the snippet is not in main.go (in order): %q", n+1, line)
			return
		}
		i++
	}
	if got := fenced(section, "```"); strings.Join(got, "\n") != strings.Join(output(), "\n") {
		t.Errorf("README shows the output\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(output(), "\n"))
	}
}

// fenced returns the trimmed, non-empty lines of the first fenced block
// whose opening line is fence ("```go", or "```" for plain text).
func fenced(text, fence string) []string {
	var lines []string
	open, want := false, false
	for l := range strings.SplitSeq(text, "\n") {
		switch {
		case !open && strings.HasPrefix(l, "```"):
			open, want = true, l == fence
		case open && l == "```":
			if want {
				return lines
			}
			open = false
		case open && want && strings.TrimSpace(l) != "":
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	return nil
}
