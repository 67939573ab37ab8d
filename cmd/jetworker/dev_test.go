package main_test

import (
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jetworker/jetworker/internal/testutil"
)

// listen occupies a free loopback port for the test.
func listen(t *testing.T) (addr string, port int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l.Addr().String(), l.Addr().(*net.TCPAddr).Port
}

// freeAddr returns a loopback address nothing listens on (for now).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestDevFailsFastOnABusyPort(t *testing.T) {
	t.Parallel()
	t.Run("NATS port", func(t *testing.T) {
		t.Parallel()
		addr, port := listen(t)
		began := time.Now()
		r := jw(t, []string{"JETWORKER_DATA_DIR=" + t.TempDir(), "JETWORKER_LOG_FORMAT=text"}, "", "dev", "--port", strconv.Itoa(port), "--http-addr", "")
		if r.code != 1 || !strings.Contains(r.stderr, "NATS port "+addr+" is in use") || r.stdout != "" {
			t.Fatalf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
		}
		if took := time.Since(began); took > 5*time.Second {
			t.Errorf("took %s to fail, want at once", took)
		}
	})
	t.Run("HTTP port", func(t *testing.T) {
		t.Parallel()
		addr, _ := listen(t)
		r := jw(t, []string{"JETWORKER_DATA_DIR=" + t.TempDir(), "JETWORKER_LOG_FORMAT=text"}, "", "dev", "--port", "-1", "--http-addr", addr)
		if r.code != 1 || !strings.Contains(r.stderr, addr) || !strings.Contains(r.stderr, "address already in use") {
			t.Fatalf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
		}
		// Listen first, print after: no banner, no dashboard URL that
		// does not work.
		if strings.Contains(r.stdout, "dashboard:") || strings.Contains(r.stdout, "Ctrl-C") {
			t.Fatalf("printed the banner before failing:\n%s", r.stdout)
		}
	})
}

// The embedded server has no authentication: dev refuses every host
// beyond loopback unless told it is unsafe, which also makes the
// dashboard read-only and open.
func TestDevReachableHost(t *testing.T) {
	t.Parallel()
	for _, host := range []string{"0.0.0.0", "::", "192.0.2.1", "dev.example.com"} {
		r := jw(t, []string{"JETWORKER_DATA_DIR=" + t.TempDir()}, "", "dev", "--host", host, "--port", "-1")
		if r.code != 2 || !strings.Contains(r.text(), "--unsafe-no-auth") {
			t.Errorf("--host %s: exit %d\n%s", host, r.code, r.text())
		}
	}
	r := jw(t, []string{"JETWORKER_DATA_DIR=" + t.TempDir()}, "", "dev", "--port", "-1", "--http-addr", "0.0.0.0:0")
	if r.code != 2 || !strings.Contains(r.text(), "--http-addr") || !strings.Contains(r.text(), "--http-unsafe-no-auth") {
		t.Errorf("reachable dashboard without credentials: exit %d\n%s", r.code, r.text())
	}
	stop, out := background(t, []string{"JETWORKER_DATA_DIR=" + t.TempDir()}, "dev", "--host", "0.0.0.0", "--port", "-1",
		"--http-addr", "0.0.0.0:0", "--unsafe-no-auth", "--no-demo")
	waitFor(t, out, "Ctrl-C stops it")
	m := regexp.MustCompile(`dashboard: (http://127\.0\.0\.1:\d+)/ \(on every interface\)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no dashboard URL in the banner:\n%s", out.String())
	}
	testutil.Eventually(t, 20*time.Second, func() error { // ready: consumer and scheduler up
		resp, err := http.Get(m[1] + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	})
	if r := stop(); r.code != 0 || !strings.Contains(r.stderr, `"read_only":true`) {
		t.Fatalf("dev --unsafe-no-auth: exit %d, want a read-only dashboard\n%s", r.code, r.stderr)
	}
}

// waitFor waits until out has printed want.
func waitFor(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, func() error {
		if !strings.Contains(out.String(), want) {
			return fmt.Errorf("%q not printed yet:\n%s", want, out.String())
		}
		return nil
	})
}
