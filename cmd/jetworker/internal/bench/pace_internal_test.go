package bench

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestPacerDue(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := pacer{start: start, rate: 2500} // not a whole number of tasks per millisecond
	for _, tt := range []struct {
		i    int64
		want time.Duration
	}{{0, 0}, {1, 400 * time.Microsecond}, {2500, time.Second}, {3, 1200 * time.Microsecond}} {
		if got := p.due(tt.i).Sub(start); got != tt.want {
			t.Errorf("due(%d) = start+%s, want start+%s", tt.i, got, tt.want)
		}
	}
	for _, tt := range []struct {
		name string
		i    int64
		now  time.Duration // after start
		want time.Duration
	}{
		{"due now", 5, 2 * time.Millisecond, 0},
		{"behind: no wait", 5, time.Second, 0},
		{"ahead by less than minSleep: minSleep", 1, 0, minSleep},
		{"ahead: until due", 2500, 250 * time.Millisecond, 750 * time.Millisecond},
	} {
		if got := p.wait(tt.i, start.Add(tt.now)); got != tt.want {
			t.Errorf("%s: wait(%d, start+%s) = %s, want %s", tt.name, tt.i, tt.now, got, tt.want)
		}
	}
	if got := (pacer{start: start}).wait(1000, start); got != 0 {
		t.Errorf("unpaced: wait = %s, want 0", got)
	}
}

// A paced run holds its rate on average, whatever the publishers' number:
// in a bubble, time only moves while every publisher sleeps, so the run
// takes exactly as long as the pace says.
func TestProducePacesOnAverage(t *testing.T) {
	t.Parallel()
	for _, publishers := range []int{1, 3} {
		synctest.Test(t, func(t *testing.T) {
			const n, rate = 2500, 2500
			var mu sync.Mutex
			var sent []time.Time
			start := time.Now()
			err := produce(context.Background(), Config{N: n, Size: 8, Publishers: publishers, Rate: rate, Progress: func(string, int, int) {}},
				opener(func([]byte) error {
					mu.Lock()
					sent = append(sent, time.Now())
					mu.Unlock()
					return nil
				}), "test")
			if err != nil {
				t.Fatal(err)
			}
			if len(sent) != n {
				t.Fatalf("%d publishers: sent %d, want %d", publishers, len(sent), n)
			}
			p := pacer{start: start, rate: rate}
			// Sends are in order of time; the k-th is never early.
			for k, at := range sent {
				if at.Before(p.due(int64(k))) {
					t.Fatalf("%d publishers: send %d at start+%s, before it is due at start+%s", publishers, k, at.Sub(start), p.due(int64(k)).Sub(start))
				}
			}
			// The last one goes out within a minSleep of its due time:
			// the run takes (n-1)/rate, not more.
			last, due := sent[n-1].Sub(start), p.due(n-1).Sub(start)
			if last > due+minSleep {
				t.Fatalf("%d publishers: last send at start+%s, due at start+%s", publishers, last, due)
			}
		})
	}
}

// A cancelled context stops a paced producer waiting for its next slot.
func TestProduceStopsOnCancel(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		sends := 0
		err := produce(ctx, Config{N: 100, Size: 8, Publishers: 1, Rate: 1, Progress: func(string, int, int) {}}, opener(func([]byte) error {
			if sends++; sends == 2 {
				cancel()
			}
			return nil
		}), "test")
		if err != context.Canceled || sends != 2 {
			t.Fatalf("got %v after %d sends, want context.Canceled after 2", err, sends)
		}
	})
}

// opener shares send among the publishers, as the raw and jetworker
// sides do.
func opener(send func([]byte) error) func() (func([]byte) error, func() error) {
	return func() (func([]byte) error, func() error) { return send, noFlush }
}

// Each publisher gets its own sender and flushes it after its last
// send, as the bulk side needs.
func TestProduceOpensAndFlushesPerPublisher(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	opened, flushed, sent := 0, 0, 0
	open := func() (func([]byte) error, func() error) {
		mu.Lock()
		opened++
		mu.Unlock()
		mine := 0
		return func([]byte) error {
				mine++
				return nil
			}, func() error {
				mu.Lock()
				defer mu.Unlock()
				flushed++
				sent += mine
				return nil
			}
	}
	if err := produce(context.Background(), Config{N: 1000, Size: 8, Publishers: 3, Progress: func(string, int, int) {}}, open, "test"); err != nil {
		t.Fatal(err)
	}
	if opened != 3 || flushed != 3 || sent != 1000 {
		t.Errorf("opened %d, flushed %d, sent %d: want 3, 3 and 1000", opened, flushed, sent)
	}
}
