package bench_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/internal/bench"
)

func TestRunMeasuresBothSides(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{bench.Sequential, bench.Mixed} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			js := embedded.JetStream(t)
			var (
				mu     sync.Mutex
				phases []string
			)
			rep, err := bench.Run(t.Context(), js, bench.Config{
				N: 2000, Size: 64, Concurrency: 4, Mode: mode, Rate: map[string]int{bench.Mixed: 4000}[mode],
				Progress: func(phase string, done, total int) {
					mu.Lock()
					defer mu.Unlock()
					if len(phases) == 0 || phases[len(phases)-1] != phase {
						phases = append(phases, phase)
					}
				},
			})
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			for _, r := range []bench.Result{rep.Raw, rep.RawMsgID, rep.Jetworker} {
				if r.Processed != 2000 || r.EnqueuePerSec <= 0 || r.ProcessPerSec <= 0 || r.P99 < r.P50 || r.P50 <= 0 || r.AllocsPerTask <= 0 {
					t.Errorf("%s: implausible result %+v", r.Name, r)
				}
			}
			if rep.ProcessRatio <= 0 || rep.EnqueueRatio <= 0 || rep.ProcessRatioMsgID <= 0 || rep.EnqueueRatioMsgID <= 0 {
				t.Errorf("ratios: %v %v %v %v", rep.EnqueueRatio, rep.ProcessRatio, rep.EnqueueRatioMsgID, rep.ProcessRatioMsgID)
			}
			if got := strings.Join(phases, ","); !strings.Contains(got, "raw") || !strings.Contains(got, "jetworker") {
				t.Errorf("progress phases %q", got)
			}
			if _, err := js.Stream(t.Context(), "BENCH_RAW"); err == nil {
				t.Error("BENCH_RAW stream left behind")
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	js := embedded.JetStream(t)
	_, err := bench.Run(t.Context(), js, bench.Config{Size: 4, Mode: "sideways", Work: -time.Second, Rounds: -1})
	for _, want := range []string{"Size", "Mode", "Work", "Rounds"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error naming %s", err, want)
		}
	}
}

func TestRoundsReportMedians(t *testing.T) {
	t.Parallel()
	js := embedded.JetStream(t)
	phases := map[string]int{}
	var mu sync.Mutex
	rep, err := bench.Run(t.Context(), js, bench.Config{
		N: 1000, Size: 64, Concurrency: 4, Rounds: 3,
		Progress: func(phase string, done, total int) {
			if done == total {
				mu.Lock()
				phases[phase]++
				mu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if rep.Rounds != 3 {
		t.Errorf("Rounds = %d, want 3", rep.Rounds)
	}
	// Every side ran three times.
	for _, phase := range []string{"raw enqueue", "raw_msgid process", "jetworker process"} {
		if phases[phase] != 3 {
			t.Errorf("phase %q completed %d times, want 3 (%v)", phase, phases[phase], phases)
		}
	}
	if rep.Jetworker.Processed != 1000 || rep.ProcessRatio <= 0 || rep.EnqueueRatioMsgID <= 0 {
		t.Errorf("implausible report %+v", rep)
	}
}
