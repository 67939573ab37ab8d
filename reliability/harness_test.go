package reliability_test

// The harness: binaries built once in TestMain, nats-server and jetworker
// processes started by the tests (and killed only by their PIDs), the
// webhook receiver that records executions, and a publisher that records
// attempted and acknowledged IDs.
//
// Scenario tests do not call t.Parallel: they measure times (resume,
// failover, throughput) on a 2-core machine, and running them at once
// would measure the neighbours' load instead.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/handlers/webhook"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/reliability/internal/check"
)

var (
	jetworkerBin string
	natsBin      string
	natsVersion  string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "jetworker-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	jetworkerBin = filepath.Join(dir, "jetworker")
	natsBin = filepath.Join(dir, "nats-server")
	for _, b := range [][]string{
		{"build", "-o", jetworkerBin, "github.com/jetworker/jetworker/cmd/jetworker"},
		{"build", "-o", natsBin, "github.com/nats-io/nats-server/v2"},
	} {
		cmd := exec.Command("go", b...)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "reliability: go %s: %v\n", strings.Join(b, " "), err)
			return 1
		}
	}
	out, err := exec.Command(natsBin, "--version").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "reliability: nats-server --version:", err)
		return 1
	}
	natsVersion = strings.TrimSpace(strings.TrimPrefix(string(out), "nats-server: "))
	return m.Run()
}

// figure prints the scenario's one figure line to stdout (and the test
// log), and appends it to $JETWORKER_FIGURES when set.
func figure(t *testing.T, format string, args ...any) {
	t.Helper()
	line := "FIGURE " + fmt.Sprintf(format, args...) + " nats=" + natsVersion + " full=" + strconv.FormatBool(full())
	fmt.Println(line)
	t.Log(line)
	if p := os.Getenv("JETWORKER_FIGURES"); p != "" {
		f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintln(f, line)
			f.Close()
		}
	}
}

// full reports whether the full sizes run.
func full() bool { return fullTag || os.Getenv("JETWORKER_FULL") == "1" }

// size returns short, or long in the full form.
func size[T any](short, long T) T {
	if full() {
		return long
	}
	return short
}

// eventually is testutil.Eventually with what the condition is about in
// its failure.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	testutil.Eventually(t, timeout, func() error {
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ---- processes ----

// proc is a process this test started.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string // combined stdout and stderr
	done chan struct{}
	err  error // exit error, valid after done
	end  time.Time
}

// startProc starts bin with args and env (plus PATH and HOME only), its
// output in a file under dir. Cleanup kills it by PID if still running.
func startProc(t *testing.T, name, dir, bin string, env []string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatalf("%s log: %v", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		p.end = time.Now()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.signal(syscall.SIGCONT)
		p.signal(syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s (pid %d) did not exit after SIGKILL", name, p.pid())
		}
	})
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process by its PID, unless it has exited.
func (p *proc) signal(sig syscall.Signal) {
	if !p.exited() {
		_ = syscall.Kill(p.pid(), sig)
	}
}

// kill SIGKILLs the process and waits for it to be gone.
func (p *proc) kill(t *testing.T) time.Time {
	t.Helper()
	at := time.Now()
	p.signal(syscall.SIGKILL)
	p.wait(t, 10*time.Second)
	return at
}

// wait waits up to timeout for the process to exit.
func (p *proc) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s (pid %d) still running after %s", p.name, p.pid(), timeout)
	}
}

// output returns what the process wrote so far.
func (p *proc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// exitCode returns the exit code, or -1 (not exited or killed by a signal).
func (p *proc) exitCode() int {
	if !p.exited() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// rssPeakKB reads VmHWM of the running process, in KiB.
func (p *proc) rssPeakKB() int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// ---- nats-server ----

// natsServer is one nats-server process with its config and store; it
// can be killed and started again on the same port and store.
type natsServer struct {
	t           *testing.T
	name        string
	dir         string
	port        int
	clusterPort int
	conf        string
	proc        *proc
	scheme      string
}

// serverOpts are the parts of a config that vary between tests.
type serverOpts struct {
	name  string
	extra string // appended config (authorization, tls, cluster ...)
	tls   bool   // clients connect with tls://
	// routes are the cluster ports of the peers (cluster mode when set).
	clusterPort int
	routes      []int
}

// newNATS writes the config (based on deploy/nats/single.conf: JetStream,
// sync_interval always, 127.0.0.1) and starts the server.
func newNATS(t *testing.T, o serverOpts) *natsServer {
	t.Helper()
	dir := t.TempDir()
	s := &natsServer{t: t, name: o.name, dir: dir, port: freePort(t), clusterPort: o.clusterPort, scheme: "nats"}
	if o.tls {
		s.scheme = "tls"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: %s\nlisten: 127.0.0.1:%d\n", o.name, s.port)
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n  sync_interval: always\n  max_file_store: 4GB\n  max_memory_store: 256MB\n}\n", filepath.Join(dir, "store"))
	b.WriteString("max_payload: 1MB\nlame_duck_duration: 30s\nlame_duck_grace_period: 10s\n")
	if o.clusterPort != 0 {
		fmt.Fprintf(&b, "cluster {\n  name: rel\n  listen: 127.0.0.1:%d\n  routes: [", o.clusterPort)
		for i, p := range o.routes {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "nats-route://127.0.0.1:%d", p)
		}
		b.WriteString("]\n}\n")
	}
	b.WriteString(o.extra)
	s.conf = filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(s.conf, []byte(b.String()), 0o600); err != nil {
		t.Fatalf("write config: %v", err)
	}
	s.start()
	return s
}

// start starts the server (again) and waits for "Server is ready".
func (s *natsServer) start() {
	s.t.Helper()
	before := 0
	if b, err := os.ReadFile(filepath.Join(s.dir, s.name+".log")); err == nil {
		before = len(b)
	}
	s.proc = startProc(s.t, s.name, s.dir, natsBin, nil, "-c", s.conf)
	eventually(s.t, 20*time.Second, s.name+" ready", func() error {
		if s.proc.exited() {
			s.t.Fatalf("%s exited: %v\n%s", s.name, s.proc.err, tail(s.proc.output(), 2000))
		}
		if !strings.Contains(s.proc.output()[before:], "Server is ready") {
			return errors.New("no \"Server is ready\" yet")
		}
		return nil
	})
}

func (s *natsServer) url() string { return fmt.Sprintf("%s://127.0.0.1:%d", s.scheme, s.port) }

// ---- the webhook receiver ----

// receiver is the HTTP endpoint of the workers' webhook route.
type receiver struct {
	srv    *httptest.Server
	secret string
	// decide returns the work time and status of one request.
	decide func(id string, delivered int, body []byte) (time.Duration, int)

	mu       sync.Mutex
	execs    []check.Execution
	inflight map[string]int // worker -> requests being served
	badSig   atomic.Int64
}

func newReceiver(t *testing.T, decide func(id string, delivered int, body []byte) (time.Duration, int)) *receiver {
	t.Helper()
	r := &receiver{secret: "s3cret-" + strconv.FormatInt(time.Now().UnixNano(), 36), decide: decide, inflight: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

// url returns the webhook URL for one worker process; the receiver records
// worker as the executor.
func (r *receiver) url(worker string) string { return r.srv.URL + "/hook?w=" + worker }

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	e := check.Execution{Start: time.Now(), Worker: req.URL.Query().Get("w")}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	if err := webhook.Verify(r.secret, req.Header.Get(webhook.HeaderSignature), body, 0); err != nil {
		r.badSig.Add(1)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	e.ID = req.Header.Get(webhook.HeaderTaskID)
	e.Delivered, _ = strconv.Atoi(req.Header.Get(webhook.HeaderDelivered))
	e.Seq, _ = strconv.ParseUint(req.Header.Get(webhook.HeaderSequence), 10, 64)
	work, status := r.decide(e.ID, e.Delivered, body)
	r.mu.Lock()
	r.inflight[e.Worker]++
	r.mu.Unlock()
	select {
	case <-time.After(work):
		e.Status = status
		w.WriteHeader(status)
	case <-req.Context().Done():
	}
	e.End = time.Now()
	r.mu.Lock()
	r.inflight[e.Worker]--
	r.execs = append(r.execs, e)
	r.mu.Unlock()
}

// busy returns how many requests of worker are being served.
func (r *receiver) busy(worker string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inflight[worker]
}

func (r *receiver) executions() []check.Execution {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]check.Execution(nil), r.execs...)
}

// completed returns how many of ids were answered 2xx.
func (r *receiver) completed(ids []string) int {
	ok := map[string]bool{}
	for _, e := range r.executions() {
		if e.OK() {
			ok[e.ID] = true
		}
	}
	n := 0
	for _, id := range ids {
		if ok[id] {
			n++
		}
	}
	return n
}

// ---- jetworker processes ----

// jwEnv returns the environment of a jetworker process on servers.
func jwEnv(url string, kv ...string) []string {
	env := []string{"JETWORKER_NATS_URL=" + url, "JETWORKER_LOG_FORMAT=json"}
	for i := 0; i+1 < len(kv); i += 2 {
		env = append(env, "JETWORKER_"+kv[i]+"="+kv[i+1])
	}
	return env
}

// jetworker runs a jetworker command to completion and returns its output.
func jetworker(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, jetworkerBin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustJetworker is jetworker that fails the test on error.
func mustJetworker(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, err := jetworker(t, env, args...)
	if err != nil {
		t.Fatalf("jetworker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// workerSet runs webhook workers, one label per process incarnation.
type workerSet struct {
	t    *testing.T
	dir  string
	rcv  *receiver
	env  []string
	mu   sync.Mutex
	proc map[int]*proc
	gen  map[int]int
}

func newWorkers(t *testing.T, rcv *receiver, env []string) *workerSet {
	return &workerSet{t: t, dir: t.TempDir(), rcv: rcv, env: env, proc: map[int]*proc{}, gen: map[int]int{}}
}

func (ws *workerSet) label(i int) string { return fmt.Sprintf("w%d.%d", i, ws.gen[i]) }

// start starts (or restarts) worker i as a new incarnation and returns its label.
func (ws *workerSet) start(i int, extra ...string) string {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.gen[i]++
	l := ws.label(i)
	env := append(append([]string{}, ws.env...),
		"JETWORKER_WEBHOOK_URL="+ws.rcv.url(l), "JETWORKER_WEBHOOK_SECRET="+ws.rcv.secret)
	env = append(env, extra...)
	ws.proc[i] = startProc(ws.t, l, ws.dir, jetworkerBin, env, "worker")
	return l
}

func (ws *workerSet) get(i int) (*proc, string) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.proc[i], ws.label(i)
}

// waitReady waits until the worker logged its route (consumer bound).
func (ws *workerSet) waitReady(i int) {
	p, l := ws.get(i)
	eventually(ws.t, 20*time.Second, l+" ready", func() error {
		if p.exited() {
			ws.t.Fatalf("%s exited: %v\n%s", l, p.err, tail(p.output(), 2000))
		}
		if !strings.Contains(p.output(), `"msg":"route"`) {
			return errors.New("no route line yet")
		}
		return nil
	})
}

// ---- the publisher ----

// pubLog records what the test's publisher did.
type pubLog struct {
	mu        sync.Mutex
	attempted []string
	acked     []string
	ackTimes  []time.Time
	failures  int
	lastErr   error
	dup       int
}

func (l *pubLog) snapshot() (attempted, acked []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.attempted...), append([]string(nil), l.acked...)
}

// connect opens a client connection that reconnects forever.
func connect(t *testing.T, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond), nats.Timeout(5 * time.Second)}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

func newPublisher(t *testing.T, js jetstream.JetStream) *publisher.Publisher {
	t.Helper()
	p, err := publisher.New(js, publisher.Config{})
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}
	return p
}

// publishOne publishes id until it is acknowledged (same ID on every
// retry) or giveUp passes; each attempt waits at most 5s.
func publishOne(ctx context.Context, p *publisher.Publisher, l *pubLog, subject, id string, data []byte, giveUp time.Time) {
	l.mu.Lock()
	l.attempted = append(l.attempted, id)
	l.mu.Unlock()
	for time.Now().Before(giveUp) && ctx.Err() == nil {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		res, err := p.Publish(actx, subject, data, &publisher.PublishOpts{ID: id})
		cancel()
		l.mu.Lock()
		if err == nil {
			l.acked = append(l.acked, id)
			l.ackTimes = append(l.ackTimes, time.Now())
			if res.Duplicate {
				l.dup++
			}
			l.mu.Unlock()
			return
		}
		l.failures++
		l.lastErr = err
		l.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// publishRange publishes ids with n goroutines, at most rate per second
// when rate > 0.
func publishRange(ctx context.Context, p *publisher.Publisher, l *pubLog, subject string, ids []string, data func(id string) []byte, n int, rate float64, giveUp time.Duration) {
	deadline := time.Now().Add(giveUp)
	ch := make(chan string)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for id := range ch {
				publishOne(ctx, p, l, subject, id, data(id), deadline)
			}
		})
	}
	start := time.Now()
	for i, id := range ids {
		if rate > 0 {
			if d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		select {
		case ch <- id:
		case <-ctx.Done():
		}
	}
	close(ch)
	wg.Wait()
}

// ids returns n task IDs with prefix.
func ids(prefix string, n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("%s-%06d", prefix, i)
	}
	return s
}

// streamMsgs reads every stored message of stream.
func streamMsgs(t *testing.T, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	var out []*jetstream.RawStreamMsg
	if info.State.Msgs == 0 {
		return nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("stream %s seq %d: %v", stream, seq, err)
		}
		out = append(out, m)
	}
	return out
}

// streamMsgIDs returns the Nats-Msg-Id of every stored message of stream.
func streamMsgIDs(t *testing.T, js jetstream.JetStream, stream string) []string {
	t.Helper()
	var out []string
	for _, m := range streamMsgs(t, js, stream) {
		out = append(out, m.Header.Get(nats.MsgIdHdr))
	}
	return out
}

// logLines returns the JSON log lines of a jetworker process that contain
// all of the substrings.
func logLines(p *proc, subs ...string) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader([]byte(p.output())))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
next:
	for sc.Scan() {
		for _, s := range subs {
			if !strings.Contains(sc.Text(), s) {
				continue next
			}
		}
		out = append(out, sc.Text())
	}
	return out
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// secs formats d rounded to 10ms.
func secs(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }
