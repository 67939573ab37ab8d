//go:build docker

package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestComposeStack builds the images with build.sh and runs compose.yaml
// (3 NATS nodes, 2 workers, 2 schedulers) under a project name of its own,
// with every port published on a free loopback port. It waits for every
// container's healthcheck, publishes tasks and a schedule and checks every
// task is processed; checks that "jetworker status", the workers' and
// schedulers' /metrics and their dashboards (signed in with the configured
// credentials) show what was processed, through the published ports; then
// stops one NATS node and one worker, publishes more and checks those are
// processed too. At the end every jetworker container must have logged
// JSON only, without a secret and without the durability notice a missing
// JETWORKER_NATS_MONITOR_URL causes. It removes its containers, networks,
// volumes and images.
//
//	go test -tags docker -run TestComposeStack -v ./deploy/
//
// Not parallel: it runs a whole cluster on the machine.
func TestComposeStack(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	s := startStack(t, ctx)

	s.waitHealthy(t, ctx, 2*time.Minute)
	status := s.waitStatus(t, ctx, 90*time.Second, func(st stackStatus) error {
		if len(st.Workers) != 2 || st.Leader == "" {
			return fmt.Errorf("%d workers and scheduler leader %q, want 2 and a leader", len(st.Workers), st.Leader)
		}
		return nil
	})
	t.Logf("stack up: %d workers, scheduler leader %s", len(status.Workers), status.Leader)

	// A schedule, through the CLI in the image: it fires every second
	// for the whole test.
	s.exec(t, ctx, "worker-2", "jetworker", "schedule", "add", "tick", "--spec", "@every 1s", "--subject", "tasks.deploytest.tick", "--catch-up", "skip")

	js := s.connect(t, ctx)
	want := map[string]bool{}
	s.exec(t, ctx, "worker-2", "jetworker", "publish", "--id", "cli-1", "tasks.deploytest.cli", `{"via":"cli"}`)
	want["cli-1"] = true
	publishTasks(t, ctx, js, "one", 50, want)
	s.waitProcessed(t, ctx, want, "worker-1", "worker-2")
	t.Logf("phase 1: %d tasks processed", len(want))

	s.checkProcessedShows(t, ctx, js)
	s.checkDashboards(t, ctx)
	s.checkFatalErrorsAreJSON(t, ctx)

	// Faults: one of three NATS nodes and one of two workers go away.
	s.compose(t, ctx, "stop", "nats-2", "worker-1")
	stopped := time.Now()
	t.Log("stopped nats-2 and worker-1")

	want2 := map[string]bool{}
	publishTasks(t, ctx, js, "two", 50, want2)
	s.exec(t, ctx, "worker-2", "jetworker", "publish", "--id", "cli-2", "tasks.deploytest.cli", `{"via":"cli"}`)
	want2["cli-2"] = true
	s.waitProcessed(t, ctx, want2, "worker-2")
	t.Logf("phase 2: %d tasks processed by worker-2 with nats-2 down", len(want2))

	// The schedule keeps firing, and the stream drains.
	eventually(t, ctx, 60*time.Second, func() error {
		n := 0
		for _, e := range s.taskLogs(t, ctx, "worker-2") {
			if e.Subject == "tasks.deploytest.tick" && e.Time.After(stopped) {
				n++
			}
		}
		if n < 3 {
			return fmt.Errorf("%d scheduled ticks processed since the faults, want 3", n)
		}
		return nil
	})
	eventually(t, ctx, 30*time.Second, func() error {
		info, err := js.Stream(ctx, "TASKS")
		if err != nil {
			return err
		}
		st, err := info.Info(ctx)
		if err != nil {
			return err
		}
		if st.Config.Replicas != 3 {
			return fmt.Errorf("TASKS has %d replicas, want 3", st.Config.Replicas)
		}
		// The tick schedule may have one task in flight at any moment.
		if st.State.Msgs > 1 {
			return fmt.Errorf("TASKS holds %d messages, want it drained", st.State.Msgs)
		}
		return nil
	})
	final := s.waitStatus(t, ctx, 30*time.Second, func(st stackStatus) error {
		if st.Leader == "" {
			return fmt.Errorf("no scheduler leader")
		}
		return nil
	})
	t.Logf("after the faults: scheduler leader %s", final.Leader)

	s.checkLogs(t, ctx)
}

// jetworkerServices and natsServices are compose.yaml's services.
var (
	jetworkerServices = []string{"worker-1", "worker-2", "scheduler-1", "scheduler-2"}
	natsServices      = []string{"nats-1", "nats-2", "nats-3"}
	workerServices    = jetworkerServices[:2]
	schedulerServices = jetworkerServices[2:]
)

// stack is one running compose project.
type stack struct {
	composeCmd []string
	env        []string
	project    string
	// The secrets compose.yaml reads from the environment; none of them
	// may appear in a log.
	password, clusterPassword string
	dashboardUser             string
	dashboardPassword         string
	metricsToken              string
}

// dashboardUser is DASHBOARD_USER in the test.
const dashboardUser = "operator"

func startStack(t *testing.T, ctx context.Context) *stack {
	t.Helper()
	id := randomHex(t, 4)
	s := &stack{
		composeCmd:        findCompose(t),
		project:           "jwtest" + id,
		password:          randomHex(t, 16),
		clusterPassword:   randomHex(t, 16),
		dashboardUser:     dashboardUser,
		dashboardPassword: randomHex(t, 16),
		metricsToken:      randomHex(t, 16),
	}
	jetworkerImage := "jetworker:jwtest" + id
	natsImage := "jetworker-nats-server:jwtest" + id
	s.env = append(os.Environ(),
		"JETWORKER_IMAGE="+jetworkerImage,
		"NATS_IMAGE="+natsImage,
		"NATS_PASSWORD="+s.password,
		"NATS_CLUSTER_PASSWORD="+s.clusterPassword,
		"DASHBOARD_USER="+s.dashboardUser,
		"DASHBOARD_PASSWORD="+s.dashboardPassword,
		"METRICS_TOKEN="+s.metricsToken,
		"VERSION=jwtest"+id,
	)
	// Any free port on loopback for everything compose.yaml publishes.
	s.env = append(s.env, "NATS_PORT=127.0.0.1:")
	for _, svc := range jetworkerServices {
		v := strings.ToUpper(strings.ReplaceAll(svc, "-", "_"))
		s.env = append(s.env, v+"_HTTP_PORT=127.0.0.1:", v+"_METRICS_PORT=127.0.0.1:")
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if t.Failed() {
			out, _ := s.run(ctx, append(s.composeArgs(), "logs", "--no-color", "--tail", "40")...)
			t.Logf("compose logs:\n%s", out)
		}
		if out, err := s.run(ctx, append(s.composeArgs(), "down", "-v", "--rmi", "local", "--remove-orphans", "-t", "20")...); err != nil {
			t.Errorf("compose down: %v\n%s", err, out)
		}
		if out, err := s.run(ctx, "docker", "rmi", "-f", jetworkerImage, natsImage); err != nil {
			t.Errorf("docker rmi: %v\n%s", err, out)
		}
	})

	start := time.Now()
	buildCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if out, err := s.run(buildCtx, "./build.sh"); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, out)
	}
	t.Logf("images built in %v", time.Since(start).Round(time.Second))
	// up waits for the NATS nodes' healthchecks before it starts the
	// jetworker services (depends_on: service_healthy).
	start = time.Now()
	s.compose(t, ctx, "up", "-d")
	t.Logf("compose up in %v (%s)", time.Since(start).Round(time.Second), strings.Join(s.composeCmd, " "))
	return s
}

// composeTools are the two ways to run Compose: the Docker CLI plugin
// (Compose v2) and the standalone docker-compose (v1, or v2's
// compatibility binary).
var composeTools = [][]string{{"docker", "compose"}, {"docker-compose"}}

// findComposes returns the compose tools that work here, in the order of
// composeTools.
func findComposes() [][]string {
	var found [][]string
	for _, c := range composeTools {
		if err := exec.Command(c[0], append(c[1:], "version")...).Run(); err == nil {
			found = append(found, c)
		}
	}
	return found
}

// findCompose returns "docker compose" or "docker-compose", whichever works.
func findCompose(t *testing.T) []string {
	t.Helper()
	found := findComposes()
	if len(found) == 0 {
		t.Fatal("neither docker compose nor docker-compose works")
	}
	return found[0]
}

// TestComposeFileEveryTool: every compose tool installed here reads
// compose.yaml without an error (TestComposeStack runs the stack with the
// first); a tool that is missing is named in the log.
func TestComposeFileEveryTool(t *testing.T) {
	t.Parallel()
	env := append(os.Environ(), "JETWORKER_IMAGE=jetworker:x", "NATS_IMAGE=nats:x", "NATS_PASSWORD=p", "NATS_CLUSTER_PASSWORD=c",
		"DASHBOARD_USER=u", "DASHBOARD_PASSWORD=d", "METRICS_TOKEN=m", "VERSION=x")
	found := findComposes()
	if len(found) == 0 {
		t.Fatal("neither docker compose nor docker-compose works")
	}
	for _, c := range composeTools {
		name := strings.Join(c, " ")
		if !slices.ContainsFunc(found, func(f []string) bool { return slices.Equal(f, c) }) {
			t.Logf("%s is not installed here: not checked", name)
			continue
		}
		cmd := exec.CommandContext(t.Context(), c[0], append(c[1:], "-p", "jwconfig", "-f", "compose.yaml", "config", "-q")...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s config: %v\n%s", name, err, out)
		} else {
			t.Logf("%s reads compose.yaml", name)
		}
	}
}

func (s *stack) composeArgs() []string {
	return append(append([]string{}, s.composeCmd...), "-p", s.project, "-f", "compose.yaml")
}

func (s *stack) run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = s.env
	cmd.WaitDelay = 5 * time.Second
	return cmd.CombinedOutput()
}

func (s *stack) compose(t *testing.T, ctx context.Context, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := s.run(ctx, append(s.composeArgs(), args...)...)
	if err != nil {
		t.Fatalf("compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// exec runs a command in a running service's container (no shell there:
// the binary itself).
func (s *stack) exec(t *testing.T, ctx context.Context, service string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := append(append(s.composeArgs(), "exec", "-T", service), args...)
	out, err := s.run(ctx, cmd...)
	if err != nil {
		t.Fatalf("exec %s %s: %v\n%s", service, strings.Join(args, " "), err, out)
	}
	return out
}

// stackStatus is the part of "jetworker status --json" the test reads.
type stackStatus struct {
	Workers []struct {
		ID        string `json:"id"`
		Processed uint64 `json:"processed"`
	} `json:"workers"`
	Consumers []struct {
		Stream    string `json:"stream"`
		Name      string `json:"name"`
		Delivered uint64 `json:"delivered_seq"`
	} `json:"consumers"`
	Leader     string `json:"scheduler_leader"`
	Durability struct {
		Cluster  string   `json:"cluster"`
		Sync     string   `json:"sync"`
		Warnings []string `json:"warnings"`
	} `json:"durability"`
}

// waitStatus polls "jetworker status --json" in worker-2's container until
// ok accepts it.
func (s *stack) waitStatus(t *testing.T, ctx context.Context, timeout time.Duration, ok func(stackStatus) error) stackStatus {
	t.Helper()
	var st stackStatus
	eventually(t, ctx, timeout, func() error {
		var err error
		if st, err = s.readStatus(ctx); err != nil {
			return err
		}
		return ok(st)
	})
	return st
}

// status runs "jetworker status --json" in worker-2's container once.
func (s *stack) status(t *testing.T, ctx context.Context) stackStatus {
	t.Helper()
	st, err := s.readStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (s *stack) readStatus(ctx context.Context) (stackStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	args := append(s.composeArgs(), "exec", "-T", "worker-2", "jetworker", "status", "--json")
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = s.env
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return stackStatus{}, fmt.Errorf("status: %v: %s", err, firstLines(stderr.Bytes(), 3))
	}
	var st stackStatus
	if err := json.Unmarshal(out, &st); err != nil {
		return stackStatus{}, fmt.Errorf("status output: %v: %s", err, firstLines(out, 3))
	}
	return st, nil
}

// connect opens a JetStream context on nats-1's port published on
// 127.0.0.1.
func (s *stack) connect(t *testing.T, ctx context.Context) jetstream.JetStream {
	t.Helper()
	addr := strings.TrimSpace(string(s.compose(t, ctx, "port", "nats-1", "4222")))
	nc, err := nats.Connect("nats://"+addr, nats.UserInfo("jetworker", s.password), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatalf("connect to nats-1 on %s: %v", addr, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// publishTasks publishes n tasks with IDs <phase>-<i>, retrying each with
// the same ID (the server drops duplicates) while the cluster elects new
// leaders, and adds the IDs to want.
func publishTasks(t *testing.T, ctx context.Context, js jetstream.JetStream, phase string, n int, want map[string]bool) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("%s-%d", phase, i)
		eventually(t, ctx, 30*time.Second, func() error {
			ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			_, err := js.Publish(ctx, "tasks.deploytest."+phase, fmt.Appendf(nil, `{"n":%d}`, i), jetstream.WithMsgID(id))
			return err
		})
		want[id] = true
	}
}

// taskLog is a worker's log line for one processed task.
type taskLog struct {
	Time    time.Time `json:"time"`
	Msg     string    `json:"msg"`
	TaskID  string    `json:"task_id"`
	Subject string    `json:"subject"`
}

// taskLogs returns the tasks the services' log routes processed.
func (s *stack) taskLogs(t *testing.T, ctx context.Context, services ...string) []taskLog {
	t.Helper()
	out := s.compose(t, ctx, append([]string{"logs", "--no-color"}, services...)...)
	var logs []taskLog
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		i := bytes.IndexByte(line, '{')
		if i < 0 {
			continue
		}
		var e taskLog
		if json.Unmarshal(line[i:], &e) == nil && e.Msg == "task" {
			logs = append(logs, e)
		}
	}
	return logs
}

// waitProcessed waits until the services have logged every task in want.
func (s *stack) waitProcessed(t *testing.T, ctx context.Context, want map[string]bool, services ...string) {
	t.Helper()
	eventually(t, ctx, 60*time.Second, func() error {
		seen := map[string]bool{}
		for _, e := range s.taskLogs(t, ctx, services...) {
			seen[e.TaskID] = true
		}
		var missing []string
		for id := range want {
			if !seen[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%d of %d tasks not processed by %v, e.g. %v", len(missing), len(want), services, missing[:min(5, len(missing))])
		}
		return nil
	})
}

// containers returns the IDs of service's containers, stopped ones too,
// by the labels both docker compose and docker-compose set.
func (s *stack) containers(t *testing.T, ctx context.Context, service string) []string {
	t.Helper()
	out, err := s.run(ctx, "docker", "ps", "-a", "-q",
		"--filter", "label=com.docker.compose.project="+s.project,
		"--filter", "label=com.docker.compose.service="+service)
	if err != nil {
		t.Fatalf("docker ps %s: %v\n%s", service, err, out)
	}
	ids := strings.Fields(string(out))
	if len(ids) == 0 {
		t.Fatalf("no container for service %s", service)
	}
	return ids
}

// inspect returns a docker inspect --format value of service's container.
func (s *stack) inspect(t *testing.T, ctx context.Context, service, format string) string {
	t.Helper()
	ids := s.containers(t, ctx, service)
	out, err := s.run(ctx, "docker", "inspect", "--format", format, ids[0])
	if err != nil {
		t.Fatalf("docker inspect %s: %v\n%s", service, err, out)
	}
	return strings.TrimSpace(string(out))
}

// waitHealthy waits until every container's healthcheck (jetworker
// healthcheck, no shell) reports healthy, and checks no jetworker
// container had to restart to get there.
func (s *stack) waitHealthy(t *testing.T, ctx context.Context, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	services := append(slices.Clone(natsServices), jetworkerServices...)
	eventually(t, ctx, timeout, func() error {
		var bad []string
		for _, svc := range services {
			if h := s.inspect(t, ctx, svc, "{{if .State.Health}}{{.State.Health.Status}}{{else}}no healthcheck{{end}}"); h != "healthy" {
				bad = append(bad, svc+": "+h)
			}
		}
		if len(bad) > 0 {
			return fmt.Errorf("not healthy: %s", strings.Join(bad, ", "))
		}
		return nil
	})
	t.Logf("all %d containers healthy after %v", len(services), time.Since(start).Round(time.Second))
	for _, svc := range jetworkerServices {
		if n := s.inspect(t, ctx, svc, "{{.RestartCount}}"); n != "0" {
			t.Errorf("%s restarted %s times before it was healthy, want 0 (it starts after the NATS nodes are healthy)", svc, n)
		}
	}
}

// hostPort returns the loopback address compose published service's
// container port on.
func (s *stack) hostPort(t *testing.T, ctx context.Context, service string, port int) string {
	t.Helper()
	addr := strings.TrimSpace(string(s.compose(t, ctx, "port", service, fmt.Sprint(port))))
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("%s:%d is published on %q, want 127.0.0.1 only", service, port, addr)
	}
	return addr
}

// httpClient follows no redirects: the test checks them.
var httpClient = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// get sends a GET with the given headers (name, value pairs) and returns
// the response and its body.
func get(t *testing.T, ctx context.Context, url string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	return resp, body
}

// checkProcessedShows publishes one task and checks that, once a worker has
// logged it, "jetworker status" (through the monitor URL it also knows the
// server syncs every write) and the workers' /metrics on their published
// ports count it, and the schedulers' /metrics show one leader firing.
func (s *stack) checkProcessedShows(t *testing.T, ctx context.Context, js jetstream.JetStream) {
	t.Helper()
	ack, err := js.Publish(ctx, "tasks.deploytest.status", []byte(`{"check":"status"}`), jetstream.WithMsgID("status-1"))
	if err != nil {
		t.Fatalf("publish status-1: %v", err)
	}
	s.waitProcessed(t, ctx, map[string]bool{"status-1": true}, workerServices...)
	ran := len(s.taskLogs(t, ctx, workerServices...)) // handler runs so far, ticks included

	// Right away, the consumer has delivered it...
	st := s.status(t, ctx)
	var delivered uint64
	for _, c := range st.Consumers {
		if c.Stream == "TASKS" && c.Name == "worker-log" {
			delivered = c.Delivered
		}
	}
	if delivered < ack.Sequence {
		t.Errorf("status right after status-1 (TASKS seq %d) was processed: consumer worker-log delivered up to seq %d", ack.Sequence, delivered)
	}
	if st.Durability.Sync != "always" || st.Durability.Cluster != "jetworker" || len(st.Durability.Warnings) > 0 {
		t.Errorf("status durability: cluster %q, sync %q, warnings %q; want cluster jetworker, sync always (read through JETWORKER_NATS_MONITOR_URL), no warnings",
			st.Durability.Cluster, st.Durability.Sync, st.Durability.Warnings)
	}
	// ... and within a presence refresh (2s) the workers' records count it.
	eventually(t, ctx, 10*time.Second, func() error {
		st := s.status(t, ctx)
		var processed uint64
		for _, w := range st.Workers {
			processed += w.Processed
		}
		if processed < uint64(ran) {
			return fmt.Errorf("status: the workers processed %d tasks, want at least the %d they logged", processed, ran)
		}
		return nil
	})
	t.Logf("status shows status-1 (seq %d) and %d tasks processed", ack.Sequence, ran)

	// The metrics listeners: probes open, /metrics behind the token.
	var acked, statusAcked float64
	for _, svc := range jetworkerServices {
		base := "http://" + s.hostPort(t, ctx, svc, 9090)
		for _, path := range []string{"/healthz", "/readyz"} {
			if resp, body := get(t, ctx, base+path); resp.StatusCode != http.StatusOK {
				t.Errorf("%s %s: %s %s, want 200 without credentials", svc, path, resp.Status, firstLines(body, 2))
			}
		}
		if resp, _ := get(t, ctx, base+"/metrics"); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s /metrics without the token: %s, want 401", svc, resp.Status)
		}
		if resp, _ := get(t, ctx, base+"/metrics", "Authorization", "Bearer wrong-"+s.metricsToken); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s /metrics with a wrong token: %s, want 401", svc, resp.Status)
		}
		resp, body := get(t, ctx, base+"/metrics", "Authorization", "Bearer "+s.metricsToken)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s /metrics with the token: %s, want 200", svc, resp.Status)
		}
		if v, _ := metricSum(body, "jetworker_build_info"); v != 1 {
			t.Errorf("%s /metrics: jetworker_build_info %v, want 1", svc, v)
		}
		a, _ := metricSum(body, "jetworker_tasks_processed_total", `outcome="acked"`)
		sa, _ := metricSum(body, "jetworker_tasks_processed_total", `subject="tasks.deploytest.status"`, `outcome="acked"`)
		acked += a
		statusAcked += sa
	}
	if statusAcked != 1 {
		t.Errorf("workers' /metrics: jetworker_tasks_processed_total{subject=\"tasks.deploytest.status\",outcome=\"acked\"} adds up to %v, want 1", statusAcked)
	}
	if acked < float64(ran) {
		t.Errorf("workers' /metrics: %v tasks acked, want at least the %d they logged", acked, ran)
	}
	var leaders, fires float64
	for _, svc := range schedulerServices {
		_, body := get(t, ctx, "http://"+s.hostPort(t, ctx, svc, 9090)+"/metrics", "Authorization", "Bearer "+s.metricsToken)
		l, _ := metricSum(body, "jetworker_scheduler_leader")
		f, _ := metricSum(body, "jetworker_schedule_fires_total", `schedule="tick"`, `result="ok"`)
		leaders += l
		fires += f
	}
	if leaders != 1 || fires < 1 {
		t.Errorf("schedulers' /metrics: %v leaders and %v fires of tick, want 1 leader and at least 1 fire", leaders, fires)
	}
	t.Logf("metrics: %v tasks acked by the workers, %v fires of tick", acked, fires)
}

// metricSum adds up the samples of the metric name, in Prometheus text
// format, whose labels include every one of labels (`key="value"`), and
// reports whether there was any.
func metricSum(body []byte, name string, labels ...string) (float64, bool) {
	var sum float64
	found := false
	for line := range strings.SplitSeq(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		series, value := line[:i], line[i+1:]
		metric, set, _ := strings.Cut(series, "{")
		if metric != name || !allIn(set, labels) {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}

func allIn(set string, labels []string) bool {
	for _, l := range labels {
		if !strings.Contains(set, l) {
			return false
		}
	}
	return true
}

// checkDashboards signs in to every service's dashboard on its published
// port: without credentials pages send a browser to /login and the API
// answers 401; the login form turns the configured user and password into
// a session cookie; the API then shows the cluster's state.
func (s *stack) checkDashboards(t *testing.T, ctx context.Context) {
	t.Helper()
	for _, svc := range jetworkerServices {
		base := "http://" + s.hostPort(t, ctx, svc, 8080)
		if resp, _ := get(t, ctx, base+"/api/overview"); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s /api/overview without credentials: %s, want 401", svc, resp.Status)
		}
		resp, _ := get(t, ctx, base+"/", "Accept", "text/html")
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
			t.Errorf("%s / without credentials: %s to %q, want 303 to /login", svc, resp.Status, loc)
		}
		if resp, _ := s.login(t, ctx, base, "wrong-"+s.dashboardPassword); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s login with a wrong password: %s, want 401", svc, resp.Status)
		}
		resp, _ = s.login(t, ctx, base, s.dashboardPassword)
		var session *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "jetworker_session" && c.Value != "" {
				session = c
			}
		}
		if resp.StatusCode != http.StatusSeeOther || session == nil {
			t.Errorf("%s login with the configured credentials: %s, session cookie %t; want 303 and a cookie", svc, resp.Status, session != nil)
			continue
		}
		cookie := "jetworker_session=" + session.Value
		if resp, body := get(t, ctx, base+"/", "Accept", "text/html", "Cookie", cookie); resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("worker-log")) {
			t.Errorf("%s / signed in: %s, mentions worker-log %t; want 200 and the consumer", svc, resp.Status, bytes.Contains(body, []byte("worker-log")))
		}
		resp, body := get(t, ctx, base+"/api/overview", "Cookie", cookie)
		var ov struct {
			Known     bool   `json:"known"`
			Workers   *int   `json:"workers"`
			Leader    string `json:"leader"`
			Consumers []struct {
				Stream string `json:"stream"`
				Name   string `json:"name"`
			} `json:"consumers"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &ov) != nil {
			t.Errorf("%s /api/overview signed in: %s %s", svc, resp.Status, firstLines(body, 2))
			continue
		}
		hasConsumer := slices.ContainsFunc(ov.Consumers, func(c struct {
			Stream string `json:"stream"`
			Name   string `json:"name"`
		}) bool {
			return c.Stream == "TASKS" && c.Name == "worker-log"
		})
		if !ov.Known || ov.Workers == nil || *ov.Workers != 2 || ov.Leader == "" || !hasConsumer {
			t.Errorf("%s /api/overview: known %t, workers %v, leader %q, consumer TASKS/worker-log %t; want the cluster's state", svc, ov.Known, ov.Workers, ov.Leader, hasConsumer)
		}
		// Machines send basic auth with each request instead.
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/schedules", nil)
		req.SetBasicAuth(s.dashboardUser, s.dashboardPassword)
		resp, body = do(t, req)
		var sv struct {
			Schedules []struct {
				Name string `json:"name"`
			} `json:"schedules"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &sv) != nil || len(sv.Schedules) != 1 || sv.Schedules[0].Name != "tick" {
			t.Errorf("%s /api/schedules with basic auth: %s %s, want the tick schedule", svc, resp.Status, firstLines(body, 2))
		}
	}
	t.Logf("signed in to the dashboards of %s", strings.Join(jetworkerServices, ", "))
}

// login posts the login form with the configured user and password.
func (s *stack) login(t *testing.T, ctx context.Context, base, password string) (*http.Response, []byte) {
	t.Helper()
	form := url.Values{"user": {s.dashboardUser}, "password": {password}, "next": {"/"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

// checkFatalErrorsAreJSON runs failing commands in a container: the error
// that ends each one is a single JSON log line too.
func (s *stack) checkFatalErrorsAreJSON(t *testing.T, ctx context.Context) {
	t.Helper()
	for _, args := range [][]string{
		{"jetworker", "publish"}, // usage: no subject
		{"jetworker", "status", "--url", "nats://nats-1:1", "--connect-timeout", "1s"},
	} {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		out, err := s.run(ctx, append(append(s.composeArgs(), "exec", "-T", "worker-2"), args...)...)
		cancel()
		if err == nil {
			t.Errorf("%s: exit 0, want a failure", strings.Join(args, " "))
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		var e struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &e) != nil || e.Level != "ERROR" || e.Msg == "" {
			t.Errorf("%s: output %q, want one JSON line at level ERROR", strings.Join(args, " "), firstLines(out, 3))
		}
	}
}

// checkLogs reads every container's log: jetworker's are JSON lines only,
// without the notice a missing monitor URL causes; no log holds a secret.
func (s *stack) checkLogs(t *testing.T, ctx context.Context) {
	t.Helper()
	secrets := map[string]string{
		"NATS_PASSWORD": s.password, "NATS_CLUSTER_PASSWORD": s.clusterPassword,
		"DASHBOARD_PASSWORD": s.dashboardPassword, "METRICS_TOKEN": s.metricsToken,
	}
	lines := 0
	for _, svc := range append(slices.Clone(jetworkerServices), natsServices...) {
		for _, id := range s.containers(t, ctx, svc) {
			out, err := s.run(ctx, "docker", "logs", id)
			if err != nil {
				t.Fatalf("docker logs %s: %v\n%s", svc, err, firstLines(out, 3))
			}
			for name, secret := range secrets {
				if bytes.Contains(out, []byte(secret)) {
					t.Errorf("%s logged %s", svc, name)
				}
			}
			if !slices.Contains(jetworkerServices, svc) {
				continue // nats-server has no JSON log format
			}
			sc := bufio.NewScanner(bytes.NewReader(out))
			sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
			for sc.Scan() {
				line := sc.Bytes()
				if len(bytes.TrimSpace(line)) == 0 {
					continue
				}
				lines++
				var e struct {
					Time  time.Time `json:"time"`
					Level string    `json:"level"`
					Msg   string    `json:"msg"`
				}
				if err := json.Unmarshal(line, &e); err != nil || e.Time.IsZero() || e.Level == "" || e.Msg == "" {
					t.Errorf("%s logged a line that is not a JSON log record: %.200s", svc, line)
					continue
				}
				if strings.Contains(e.Msg, "cannot read the server's sync setting") {
					t.Errorf("%s: %q: JETWORKER_NATS_MONITOR_URL does not work", svc, e.Msg)
				}
			}
		}
	}
	t.Logf("%d JSON log lines from the jetworker containers", lines)
}

// eventually calls f until it returns nil, or fails the test with f's last
// error after timeout.
func eventually(t *testing.T, ctx context.Context, timeout time.Duration, f func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("after %v: %v", timeout, err)
		case <-tick.C:
		}
	}
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
