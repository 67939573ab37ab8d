package jetworker_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoBuildOutputsCommitted fails when an executable or another build
// output is tracked by git: a 38 MB jetworker binary once was.
func TestNoBuildOutputsCommitted(t *testing.T) {
	t.Parallel()
	out, err := exec.CommandContext(t.Context(), "git", "ls-files", "-z").Output()
	if err != nil {
		t.Skipf("not a git checkout (git ls-files: %v)", err)
	}
	for name := range strings.SplitSeq(strings.TrimRight(string(out), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		f, err := os.Open(name)
		if err != nil {
			continue // deleted in the work tree
		}
		head := make([]byte, 4)
		n, _ := f.Read(head)
		f.Close()
		head = head[:n]
		for _, magic := range [][]byte{{0x7f, 'E', 'L', 'F'}, {0xcf, 0xfa, 0xed, 0xfe}, {'M', 'Z'}} {
			if bytes.HasPrefix(head, magic) {
				t.Errorf("%s is a committed executable: remove it and let .gitignore keep it out", name)
			}
		}
		if strings.HasSuffix(name, ".test") || strings.HasSuffix(name, ".prof") {
			t.Errorf("%s is a committed build output", name)
		}
	}
}

// TestBuildOutputsIgnored: `go build` in any main package's directory (or
// of ./cmd/jetworker at the root) writes a binary named after the
// directory, and .gitignore keeps every one of them out of commits.
func TestBuildOutputsIgnored(t *testing.T) {
	t.Parallel()
	if err := exec.CommandContext(t.Context(), "git", "rev-parse", "--git-dir").Run(); err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	out, err := exec.CommandContext(t.Context(), "go", "list", "-f", "{{if eq .Name \"main\"}}{{.Dir}}{{end}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	outputs := []string{"jetworker"}
	for dir := range strings.FieldsSeq(string(out)) {
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, filepath.Join(rel, filepath.Base(dir)))
	}
	if len(outputs) < 4 {
		t.Fatalf("found %d main packages, want the binary and the examples", len(outputs)-1)
	}
	for _, o := range outputs {
		if err := exec.CommandContext(t.Context(), "git", "check-ignore", "-q", "--no-index", o).Run(); err != nil {
			t.Errorf("%s (a go build output) is not ignored by .gitignore", o)
		}
	}
}

// TestDependencyHygiene: programs that run workers, a dashboard or
// metrics do not link the PostgreSQL driver (only the outbox packages do),
// and the production binary does not link package testing.
func TestDependencyHygiene(t *testing.T) {
	t.Parallel()
	deps := func(pkg string) []string {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		return strings.Fields(string(out))
	}
	for _, pkg := range []string{"./consumer", "./publisher", "./schedule", "./dashboard", "./metrics", "./task/taskhttp"} {
		for _, d := range deps(pkg) {
			if strings.HasPrefix(d, "github.com/jackc/") {
				t.Errorf("%s links %s", pkg, d)
				break
			}
		}
	}
	for _, d := range deps("./cmd/jetworker") {
		if d == "testing" {
			t.Error("cmd/jetworker links package testing")
		}
	}
}
