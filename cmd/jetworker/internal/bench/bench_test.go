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
				N: 2000, Size: 64, Concurrency: 4, Mode: mode, Rate: map[string]int{bench.Mixed: 4000}[mode], Rounds: 1, BatchSize: 300,
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
			want := []string{bench.SideRaw, bench.SideRawMsgID, bench.SideJetworker, bench.SideJetworkerID}
			if mode == bench.Sequential {
				want = append(want, bench.SideBulk, bench.SideRawFiltered)
			}
			var names []string
			for _, r := range rep.Sides() {
				names = append(names, r.Name)
			}
			if !slices.Equal(names, want) {
				t.Errorf("sides %v, want %v", names, want)
			}
			for _, r := range rep.Sides() {
				if r.Processed != 2000 || r.EnqueuePerSec <= 0 || r.ProcessPerSec <= 0 || r.P99 < r.P50 || r.Max < r.P99 || r.P50 <= 0 || r.AllocsPerTask <= 0 || r.BytesPerTask < r.AllocsPerTask {
					t.Errorf("%s: implausible result %+v", r.Name, r)
				}
			}
			var wantRatios []string
			if mode == bench.Sequential {
				wantRatios = []string{
					"jetworker/raw enqueue/s", "jetworker/raw process/s",
					"jetworker_id/raw_msgid enqueue/s", "jetworker_id/raw_msgid process/s",
					"bulk/raw enqueue/s", "jetworker/raw_filtered process/s",
				}
			} else { // paced: no rate ratios
				wantRatios = []string{"jetworker/raw p50", "jetworker/raw p99", "jetworker_id/raw_msgid p50", "jetworker_id/raw_msgid p99"}
			}
			var gotRatios []string
			for _, r := range rep.Ratios {
				gotRatios = append(gotRatios, r.Name())
				if r.Median <= 0 || r.Min > r.Median || r.Max < r.Median || len(r.Rounds) != 1 {
					t.Errorf("%s: implausible ratio %+v", r.Name(), r)
				}
				if (r.Figure == bench.FigureP50 || r.Figure == bench.FigureP99) != r.LowerIsBetter {
					t.Errorf("%s: LowerIsBetter %v", r.Name(), r.LowerIsBetter)
				}
			}
			slices.Sort(gotRatios)
			slices.Sort(wantRatios)
			if !slices.Equal(gotRatios, wantRatios) {
				t.Errorf("ratios %v, want %v", gotRatios, wantRatios)
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
	_, err := bench.Run(t.Context(), js, bench.Config{Size: 4, Mode: "sideways", Work: -time.Second, Rounds: -1, Load: 1.5, BatchSize: -1, BatchFlow: 70000})
	for _, want := range []string{"Size", "Mode", "Work", "Rounds", "Load must be in", "BatchSize", "BatchFlow"} {
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
		N: 2000, Size: 64, Concurrency: 4, Mode: bench.Mixed, Load: 0.25, Rounds: 1,
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
		N: 1000, Size: 64, Concurrency: 4, Rounds: 3, BatchSize: 300,
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
	for _, phase := range []string{"raw enqueue", "raw_msgid process", "jetworker process", "jetworker_id enqueue", "bulk process"} {
		if phases[phase] != 3 {
			t.Errorf("phase %q completed %d times, want 3 (%v)", phase, phases[phase], phases)
		}
	}
	// Each round starts with the next side.
	want := []string{
		"raw", "raw_msgid", "jetworker", "jetworker_id", "bulk", "raw_filtered",
		"raw_msgid", "jetworker", "jetworker_id", "bulk", "raw_filtered", "raw",
		"jetworker", "jetworker_id", "bulk", "raw_filtered", "raw", "raw_msgid",
	}
	if !slices.Equal(order, want) {
		t.Errorf("sides ran in the order %v, want %v", order, want)
	}
	if rep.Side(bench.SideJetworker).Processed != 1000 {
		t.Errorf("implausible report %+v", rep)
	}
	// Every ratio has one value per round, and its spread holds them.
	for _, r := range rep.Ratios {
		if len(r.Rounds) != 3 || r.Min != slices.Min(r.Rounds) || r.Max != slices.Max(r.Rounds) || r.Median < r.Min || r.Median > r.Max {
			t.Errorf("%s: rounds %v, median %v, spread %v-%v", r.Name(), r.Rounds, r.Median, r.Min, r.Max)
		}
	}
}
