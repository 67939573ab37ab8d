package bench_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetworker/jetworker/cmd/jetworker/internal/bench"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
)

func TestRunMeasuresBothSides(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{bench.Sequential, bench.Mixed} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			js := embeddedtest.JetStream(t)
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
				if r.Processed != 2000 || r.EnqueuePerSec <= 0 || r.ProcessPerSec <= 0 || r.P99 < r.P50 || r.Max < r.P99 || r.P50 <= 0 || r.AllocsPerTask <= 0 || r.BytesPerTask < r.AllocsPerTask {
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
	js := embeddedtest.JetStream(t)
	_, err := bench.Run(t.Context(), js, bench.Config{Size: 4, Mode: "sideways", Work: -time.Second, Rounds: -1, Load: 1.5})
	for _, want := range []string{"Size", "Mode", "Work", "Rounds", "Load must be in"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error naming %s", err, want)
		}
	}
	for _, cfg := range []bench.Config{{Load: 0.5}, {Mode: bench.Mixed, Rate: 100, Load: 0.5}} {
		if _, err := bench.Run(t.Context(), js, cfg); err == nil || !strings.Contains(err.Error(), "Load applies to mixed mode without Rate") {
			t.Errorf("%+v: got %v, want the Load error", cfg, err)
		}
	}
}

// Load paces every side at a fraction of jetworker's unpaced mixed rate,
// measured first in the same run.
func TestLoadPacesAtAFractionOfTheMaximum(t *testing.T) {
	t.Parallel()
	js := embeddedtest.JetStream(t)
	phases := map[string]int{}
	var mu sync.Mutex
	rep, err := bench.Run(t.Context(), js, bench.Config{
		N: 2000, Size: 64, Concurrency: 4, Mode: bench.Mixed, Load: 0.25,
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
	if rep.MaxRate <= 0 || rep.Load != 0.25 {
		t.Fatalf("MaxRate %v, Load %v: want the measured maximum and 0.25", rep.MaxRate, rep.Load)
	}
	if want := int(0.25*rep.MaxRate + 0.5); rep.Rate != want {
		t.Errorf("Rate = %d, want 0.25 x %.0f = %d", rep.Rate, rep.MaxRate, want)
	}
	// jetworker ran once unpaced, then once paced; the raw sides once.
	if phases["jetworker process"] != 2 || phases["raw process"] != 1 {
		t.Errorf("completed phases %v: want jetworker twice, raw once", phases)
	}
	// That the paced sides hold the rate is the pacer's business, tested
	// on a fake clock in pace_internal_test.go: a loaded machine may
	// enqueue slower than asked.
}

func TestRoundsReportMedians(t *testing.T) {
	t.Parallel()
	js := embeddedtest.JetStream(t)
	phases := map[string]int{}
	var order []string // sides in the order their enqueues finished
	var mu sync.Mutex
	rep, err := bench.Run(t.Context(), js, bench.Config{
		N: 1000, Size: 64, Concurrency: 4, Rounds: 3,
		Progress: func(phase string, done, total int) {
			if done == total {
				mu.Lock()
				phases[phase]++
				if side, ok := strings.CutSuffix(phase, " enqueue"); ok {
					order = append(order, side)
				}
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
	// Each round starts with the next side.
	want := []string{
		"raw", "raw_msgid", "jetworker",
		"raw_msgid", "jetworker", "raw",
		"jetworker", "raw", "raw_msgid",
	}
	if !slices.Equal(order, want) {
		t.Errorf("sides ran in the order %v, want %v", order, want)
	}
	if rep.Jetworker.Processed != 1000 || rep.ProcessRatio <= 0 || rep.EnqueueRatioMsgID <= 0 {
		t.Errorf("implausible report %+v", rep)
	}
}
