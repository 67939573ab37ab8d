package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/streams"
)

// binary is the jetworker binary built once for every test.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "jetworker-bin-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "jetworker")
	build := exec.Command("go", "build", "-race", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build jetworker:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// result is a finished command.
type result struct {
	code           int
	stdout, stderr string
}

// text is what a person reads: stdout, and stderr with each JSON log
// line reduced to its message.
func (r result) text() string {
	var b strings.Builder
	b.WriteString(r.stdout)
	for line := range strings.SplitSeq(r.stderr, "\n") {
		var rec struct{ Msg string }
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &rec) == nil {
			line = rec.Msg
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// jw runs the binary with env (JETWORKER_* only, plus PATH and HOME) and
// stdin, and waits up to a minute.
func jw(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "JETWORKER_LOG_FORMAT=json"}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// background starts the binary and returns a stop function that sends
// SIGINT and returns the result.
func background(t *testing.T, env []string, args ...string) (stop func() result, stdout *syncBuffer) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "JETWORKER_LOG_FORMAT=json"}, env...)
	out, errb := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, errb
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", args, err)
	}
	done := make(chan struct{})
	var res result
	go func() {
		err := cmd.Wait()
		res.code = cmd.ProcessState.ExitCode()
		_ = err
		close(done)
	}()
	stopped := false
	stop = func() result {
		if !stopped {
			stopped = true
			_ = cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Errorf("%v did not exit within 30s of SIGINT", args)
			}
			res.stdout, res.stderr = out.String(), errb.String()
		}
		return res
	}
	t.Cleanup(func() {
		r := stop()
		if t.Failed() {
			t.Logf("%v stdout:\n%s\nstderr:\n%s", args, r.stdout, r.stderr)
		}
	})
	return stop, out
}

// natsEnv starts an embedded server with the default streams provisioned
// and returns the env that points the binary at it.
func natsEnv(t *testing.T) (*embedded.Server, []string) {
	t.Helper()
	srv := embeddedtest.Start(t, embedded.Config{})
	_, js := embeddedtest.Connect(t, srv)
	if err := streams.Provision(t.Context(), js, streams.Config{}); err != nil {
		t.Fatalf("provision: %v", err)
	}
	return srv, []string{"JETWORKER_NATS_URL=" + srv.URL()}
}

// syncBuffer is a bytes.Buffer safe for the exec copy goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
