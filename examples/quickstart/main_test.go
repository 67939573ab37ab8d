package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
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
	want := []string{
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
	got := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
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
