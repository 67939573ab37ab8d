package bench_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/cmd/jetworker/internal/bench"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
)

// A tiny backlog drained in this process fills the report; the memory
// figure is this process's, and the report says so.
func TestRunBacklogInProcess(t *testing.T) {
	t.Parallel()
	js := embeddedtest.JetStream(t)
	rep, err := bench.RunBacklog(t.Context(), js, bench.BacklogConfig{N: 2500, Size: 32, Concurrency: 4})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	// The parallel tests of this process reset its peak RSS too, so the
	// peak may be below the start here; the worker process test checks
	// their order.
	d := rep.Drain
	if rep.N != 2500 || rep.FillPerSec <= 0 || d.Processed != 2500 || d.ProcessPerSec <= 0 || d.PeakRSSMiB <= 0 ||
		d.StartRSSMiB <= 0 || d.Pid != os.Getpid() || d.Measured != bench.InProcess {
		t.Errorf("implausible report %+v", rep)
	}
	if _, err := js.Stream(t.Context(), "BENCH_BACKLOG"); err == nil {
		t.Error("BENCH_BACKLOG stream left behind")
	}
}

// drainEnv makes the test binary a backlog's worker process: it drains
// the DrainConfig in the variable on the server at drainURL, and prints
// its DrainResult, as "jetworker bench --drain" does.
const (
	drainEnv = "BENCH_TEST_DRAIN"
	drainURL = "BENCH_TEST_DRAIN_URL"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(drainEnv); spec != "" {
		os.Exit(drainProcess(spec, os.Getenv(drainURL)))
	}
	os.Exit(m.Run())
}

func drainProcess(spec, url string) int {
	var d bench.DrainConfig
	if err := json.Unmarshal([]byte(spec), &d); err != nil {
		os.Stderr.WriteString(err.Error())
		return 1
	}
	nc, err := nats.Connect(url)
	if err != nil {
		os.Stderr.WriteString(err.Error())
		return 1
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		os.Stderr.WriteString(err.Error())
		return 1
	}
	r, err := bench.Drain(context.Background(), js, d, nil)
	if err != nil {
		os.Stderr.WriteString(err.Error())
		return 1
	}
	_ = json.NewEncoder(os.Stdout).Encode(r)
	return 0
}

// ProcessDrain runs the worker in a process of its own, whose memory is
// then the worker's alone.
func TestRunBacklogInAWorkerProcess(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.Start(t, embedded.Config{})
	_, js := embeddedtest.Connect(t, srv)
	rep, err := bench.RunBacklog(t.Context(), js, bench.BacklogConfig{
		N: 2500, Size: 32, Concurrency: 4,
		DrainFunc: bench.ProcessDrain(func(ctx context.Context, d bench.DrainConfig) *exec.Cmd {
			spec, _ := json.Marshal(d)
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), drainEnv+"="+string(spec), drainURL+"="+srv.URL())
			cmd.Stderr = os.Stderr
			return cmd
		}),
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	d := rep.Drain
	if d.Processed != 2500 || d.PeakRSSMiB <= 0 || d.PeakRSSMiB < d.StartRSSMiB || d.Pid == os.Getpid() || d.Pid == 0 || !strings.Contains(d.Measured, "worker process of its own") {
		t.Errorf("implausible drain %+v", d)
	}
}
