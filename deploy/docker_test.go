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
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestComposeStack builds the images with build.sh, runs compose.yaml
// (3 NATS nodes, 2 workers, 2 schedulers) under a project name of its own,
// publishes tasks and a schedule, checks every task is processed, then stops
// one NATS node and one worker, publishes more and checks those are
// processed too. It removes its containers, networks, volumes and images.
//
//	go test -tags docker -run TestComposeStack -v ./deploy/
//
// Not parallel: it runs a whole cluster on the machine.
func TestComposeStack(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	s := startStack(t, ctx)

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
}

// stack is one running compose project.
type stack struct {
	composeCmd []string
	env        []string
	project    string
	password   string
}

func startStack(t *testing.T, ctx context.Context) *stack {
	t.Helper()
	id := randomHex(t, 4)
	s := &stack{composeCmd: findCompose(t), project: "jwtest" + id, password: randomHex(t, 16)}
	jetworkerImage := "jetworker:jwtest" + id
	natsImage := "jetworker-nats-server:jwtest" + id
	s.env = append(os.Environ(),
		"JETWORKER_IMAGE="+jetworkerImage,
		"NATS_IMAGE="+natsImage,
		"NATS_PASSWORD="+s.password,
		"NATS_CLUSTER_PASSWORD="+randomHex(t, 16),
		"NATS_PORT=127.0.0.1:", // any free port on loopback
		"VERSION=jwtest"+id,
	)
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
	s.compose(t, ctx, "up", "-d")
	return s
}

// findCompose returns "docker compose" or "docker-compose", whichever works.
func findCompose(t *testing.T) []string {
	t.Helper()
	for _, c := range [][]string{{"docker", "compose"}, {"docker-compose"}} {
		if err := exec.Command(c[0], append(c[1:], "version")...).Run(); err == nil {
			return c
		}
	}
	t.Fatal("neither docker compose nor docker-compose works")
	return nil
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
		ID string `json:"id"`
	} `json:"workers"`
	Leader string `json:"scheduler_leader"`
}

// waitStatus polls "jetworker status --json" in worker-2's container until
// ok accepts it.
func (s *stack) waitStatus(t *testing.T, ctx context.Context, timeout time.Duration, ok func(stackStatus) error) stackStatus {
	t.Helper()
	var st stackStatus
	eventually(t, ctx, timeout, func() error {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		out, err := s.run(ctx, append(s.composeArgs(), "exec", "-T", "worker-2", "jetworker", "status", "--json")...)
		if err != nil {
			return fmt.Errorf("status: %v: %s", err, firstLines(out, 3))
		}
		st = stackStatus{}
		if err := json.Unmarshal(out, &st); err != nil {
			return fmt.Errorf("status output: %v: %s", err, firstLines(out, 3))
		}
		return ok(st)
	})
	return st
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
