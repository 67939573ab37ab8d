// Package pgtest starts a real PostgreSQL server for tests: initdb into a
// data directory under tb.TempDir(), then postgres listening on 127.0.0.1
// on a free port, trust authentication for the superuser "postgres", no
// Unix socket. It is a test helper: only _test.go files import it.
//
// The binaries come from /usr/lib/postgresql/<version>/bin (Debian's
// postgresql package; the highest version wins), from the directory in
// $JETWORKER_PG_BIN, or from PATH. When none is found the test fails,
// naming scripts/install-test-deps.sh, which installs them.
//
// initdb and postgres refuse to run as root: when the test runs as root,
// the server runs as the "postgres" system user (created by Debian's
// package), which owns the data directory.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// installHint is appended to every "binaries missing" failure.
const installHint = "install PostgreSQL with: sudo bash scripts/install-test-deps.sh (Debian's postgresql package)"

// Options tune a test server. The zero value is a fast, non-durable server.
type Options struct {
	// Durable keeps the server's default durability (fsync and
	// full_page_writes on), for benchmarks whose figures should match a
	// real deployment. Defaults to false: the server does not fsync, which
	// is faster; a commit still reaches the write-ahead log before it
	// returns, so a crash of the server process (not of the machine) loses
	// nothing committed.
	Durable bool
	// Settings are extra server settings (postgres -c name=value).
	Settings map[string]string
}

// Server is a running PostgreSQL server owned by one test. Its methods
// are safe for concurrent use.
type Server struct {
	tb      testing.TB
	bin     string
	data    string
	logPath string
	port    int
	opts    Options
	cred    *syscall.Credential

	dbs atomic.Int64

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start runs initdb and starts a server for tb; tb.Cleanup stops it. It
// fails the test (never skips) when the binaries are missing or the
// server does not start.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	bin, err := findBin()
	if err != nil {
		tb.Fatalf("pgtest: %v; %s", err, installHint)
	}
	base := tb.TempDir()
	s := &Server{tb: tb, bin: bin, data: filepath.Join(base, "data"), logPath: filepath.Join(base, "postgres.log"), opts: opts}
	if os.Geteuid() == 0 {
		s.cred, err = postgresUser()
		if err != nil {
			tb.Fatalf("pgtest: running as root, the server must run as the postgres user: %v; %s", err, installHint)
		}
		if err := openPath(base); err != nil {
			tb.Fatalf("pgtest: %v", err)
		}
	}
	if err := os.Mkdir(s.data, 0o700); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	if s.cred != nil {
		if err := os.Chown(s.data, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			tb.Fatalf("pgtest: chown data directory: %v", err)
		}
	}
	initdb := s.command(filepath.Join(bin, "initdb"), "-D", s.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		tb.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	tb.Cleanup(func() { s.stop(syscall.SIGINT) })
	var last error
	for range 5 { // a free port can be taken between probe and bind
		s.port, err = freePort()
		if err != nil {
			tb.Fatalf("pgtest: %v", err)
		}
		if last = s.start(); last == nil {
			return s
		}
	}
	tb.Fatalf("pgtest: start postgres: %v", last)
	return nil
}

// findBin returns the directory holding initdb and postgres.
func findBin() (string, error) {
	if d := os.Getenv("JETWORKER_PG_BIN"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("JETWORKER_PG_BIN=%s has no initdb: %w", d, err)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL server binaries (initdb, postgres) in /usr/lib/postgresql/*/bin, $JETWORKER_PG_BIN or PATH")
}

// version is the major version in /usr/lib/postgresql/<version>/bin.
func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, err
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// openPath lets other users traverse (not list) dir and the directories
// the test framework made above it, up to the system temp directory, so
// the postgres user can reach its data directory.
func openPath(dir string) error {
	root := filepath.Clean(os.TempDir())
	for d := filepath.Clean(dir); strings.HasPrefix(d, root+string(filepath.Separator)); d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return err
		}
		if err := os.Chmod(d, st.Mode().Perm()|0o011); err != nil {
			return fmt.Errorf("open %s to the postgres user: %w", d, err)
		}
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// command builds a command that runs as the server's user.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C", "HOME=" + filepath.Dir(s.data)}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT}
	return cmd
}

// start starts postgres on s.port and waits until it accepts connections.
func (s *Server) start() error {
	args := []string{"-D", s.data, "-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
		"-c", "max_connections=200", "-c", "shared_buffers=128MB"}
	if !s.opts.Durable {
		// Commits still reach the write-ahead log before they return
		// (synchronous_commit stays on), so a crash of the server process
		// loses nothing committed; only a crash of the machine would.
		args = append(args, "-c", "fsync=off", "-c", "full_page_writes=off")
	}
	keys := make([]string, 0, len(s.opts.Settings))
	for k := range s.opts.Settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		args = append(args, "-c", k+"="+s.opts.Settings[k])
	}
	logf, err := os.OpenFile(s.logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	before, _ := logf.Seek(0, 2)
	cmd := s.command(filepath.Join(s.bin, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("postgres exited: %s", s.logSince(before))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			err = conn.Ping(ctx)
			_ = conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.stop(syscall.SIGQUIT)
			return fmt.Errorf("postgres not accepting connections within 30s: %v\n%s", err, s.logSince(before))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) logSince(off int64) string {
	b, _ := os.ReadFile(s.logPath)
	if off < int64(len(b)) {
		b = b[off:]
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// stop signals postgres (SIGINT: fast shutdown, SIGQUIT: immediate, as a
// crash) and waits for it to exit; after 20s it kills it.
func (s *Server) stop(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Port returns the TCP port the server listens on (kept across restarts).
func (s *Server) Port() int { return s.port }

// URL returns the connection URL of database db as the superuser.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// NewDatabase creates a fresh, uniquely named database and returns its
// URL. Tests that share one server use one database each.
func (s *Server) NewDatabase(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("t%d", s.dbs.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		tb.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name+" STRATEGY FILE_COPY"); err != nil {
		tb.Fatalf("pgtest: create database %s: %v", name, err)
	}
	return s.URL(name)
}

// Stop shuts the server down (fast shutdown: sessions are ended, nothing
// committed is lost) and waits for it to exit. [Server.Restart] starts it
// again.
func (s *Server) Stop() { s.stop(syscall.SIGINT) }

// Crash stops the server the way a crash does (immediate shutdown, no
// checkpoint; the next start recovers from the write-ahead log) and waits
// for it to exit.
func (s *Server) Crash() { s.stop(syscall.SIGQUIT) }

// Restart starts a stopped or crashed server again on the same port and
// data directory and waits until it accepts connections. A running server
// is stopped first.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		tb.Fatalf("pgtest: restart postgres: %v", err)
	}
}
