package reliability_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jetworker/jetworker/reliability/internal/check"
)

// TestBurst is scenario 7: a sustained rate, then 10x that rate for a
// while, then the sustained rate again. Nothing is lost, the workers'
// peak memory stays bounded, and the backlog drains.
func TestBurst(t *testing.T) {
	const (
		rate     = 150.0 // sustained tasks per second
		rssLimit = 256 << 10
	)
	burst := size(3*time.Second, 30*time.Second)
	calm := 2 * time.Second

	srv := newNATS(t, serverOpts{name: "n1"})
	mustJetworker(t, jwEnv(srv.url()), "provision")
	rcv := newReceiver(t, func(string, int, []byte) (time.Duration, int) { return 5 * time.Millisecond, 200 })
	ws := newWorkers(t, rcv, jwEnv(srv.url(), "ACK_WAIT", "10s", "CONCURRENCY", "16", "PROVISION", "false", "LOG_LEVEL", "warn"))
	for i := range 2 {
		ws.start(i)
	}
	_, js := connect(t, srv.url())
	eventually(t, 20*time.Second, "worker consumer", func() error {
		_, err := js.Consumer(t.Context(), "TASKS", "worker-webhook")
		return err
	})
	pub := newPublisher(t, js)
	var plog pubLog
	cons, err := js.Consumer(t.Context(), "TASKS", "worker-webhook")
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	// Sample the backlog (pending + ack pending) every 200ms.
	var (
		mu         sync.Mutex
		maxPending uint64
		drained    time.Time
		burstEnd   time.Time
		burstTook  time.Duration
		burstCount int
	)
	sctx, stop := context.WithCancel(t.Context())
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-tick.C:
			}
			ictx, cancel := context.WithTimeout(sctx, time.Second)
			info, err := cons.Info(ictx)
			cancel()
			if err != nil {
				continue
			}
			mu.Lock()
			maxPending = max(maxPending, info.NumPending+uint64(info.NumAckPending))
			if !burstEnd.IsZero() && drained.IsZero() && info.NumPending == 0 && info.NumAckPending == 0 {
				drained = time.Now()
			}
			mu.Unlock()
		}
	})
	defer sampler.Wait()
	defer stop()
	phases := []struct {
		name string
		rate float64
		d    time.Duration
	}{{"before", rate, calm}, {"burst", 10 * rate, burst}, {"after", rate, calm}}
	data := func(string) []byte { return []byte(`{"burst":true}`) }
	for _, ph := range phases {
		n := int(ph.rate * ph.d.Seconds())
		start := time.Now()
		publishRange(t.Context(), pub, &plog, "tasks.webhook.burst", ids(ph.name, n), data, 32, ph.rate, 2*time.Minute)
		if ph.name == "burst" {
			mu.Lock()
			burstEnd, burstTook, burstCount = time.Now(), time.Since(start), n
			mu.Unlock()
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), size(2*time.Minute, 5*time.Minute))
	defer cancel()
	eventually(t, size(2*time.Minute, 5*time.Minute), "backlog drained", func() error {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("pending %d, ack pending %d", info.NumPending, info.NumAckPending)
		}
		mu.Lock()
		if drained.IsZero() {
			drained = time.Now()
		}
		mu.Unlock()
		return nil
	})
	stop()
	sampler.Wait()
	attempted, acked := plog.snapshot()
	eventually(t, 30*time.Second, "every acknowledged task completed", func() error {
		if c := rcv.completed(acked); c != len(acked) {
			return fmt.Errorf("%d of %d completed", c, len(acked))
		}
		return nil
	})
	peak := 0
	for i := range 2 {
		p, _ := ws.get(i)
		if p.exited() {
			t.Errorf("worker %d exited: %v\n%s", i, p.err, tail(p.output(), 1500))
		}
		peak = max(peak, p.rssPeakKB())
	}
	r := check.Check(check.History{Attempted: attempted, Acked: acked, Executions: rcv.executions()})
	figure(t, "scenario=7 sustained=%.0f/s burst=%.0f/s for %s burst_published=%.0f/s tasks=%d acked=%d lost=%d dup=%d max_backlog=%d drain_after_burst=%s worker_peak_rss=%dMiB",
		rate, 10*rate, burst, float64(burstCount)/burstTook.Seconds(), len(attempted), r.Acked, len(r.Lost), r.Duplicates, maxPending, secs(drained.Sub(burstEnd)), peak>>10)
	if r.Acked != len(attempted) {
		t.Errorf("acked: got %d, want %d (%v)", r.Acked, len(attempted), plog.lastErr)
	}
	if len(r.Lost) != 0 {
		t.Errorf("lost: got %d (%v), want 0", len(r.Lost), head(r.Lost))
	}
	if peak > rssLimit {
		t.Errorf("worker peak RSS: got %d KiB, want <= %d KiB", peak, rssLimit)
	}
}
