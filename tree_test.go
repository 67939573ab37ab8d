package jetworker_test

import (
	"bytes"
	"os"
	"os/exec"
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
