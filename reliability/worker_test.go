package reliability_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jetworker/jetworker/reliability/internal/check"
)

// TestWorkerKill is scenario 1: three worker processes, one SIGKILLed
// mid-task again and again (and restarted) while tasks flow. Nothing
// acknowledged is lost, every duplicate execution is explained by a kill,
// and a killed worker's in-flight tasks resume within AckWait + 2s.
func TestWorkerKill(t *testing.T) {
	const ackWait = 2 * time.Second
	n := size(1500, 20000)
	maxKills := size(5, 40)
	killEvery := size(1200*time.Millisecond, 1500*time.Millisecond)
	// Spread the tasks over the kills, so every kill hits a busy worker.
	rate := float64(n) / (float64(maxKills) * killEvery.Seconds())

	srv := newNATS(t, serverOpts{name: "n1"})
	mustJetworker(t, jwEnv(srv.url()), "provision")
	rcv := newReceiver(t, func(string, int, []byte) (time.Duration, int) { return 20 * time.Millisecond, 200 })
	ws := newWorkers(t, rcv, jwEnv(srv.url(), "ACK_WAIT", ackWait.String(), "MAX_DELIVER", "50",
		"CONCURRENCY", "16", "PROVISION", "false", "SHUTDOWN_GRACE", "1s"))
	for i := range 3 {
		ws.start(i)
	}
	for i := range 3 {
		ws.waitReady(i)
	}

	_, js := connect(t, srv.url())
	pub := newPublisher(t, js)
	var plog pubLog
	all := ids("k", n)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		publishRange(ctx, pub, &plog, "tasks.webhook.kill", all, func(string) []byte { return []byte(`{"n":1}`) }, 8, rate, 5*time.Minute)
	}()

	var (
		kills    []check.Kill
		inFlight []int
	)
	allDone := func() bool {
		select {
		case <-pubDone:
		default:
			return false
		}
		_, acked := plog.snapshot()
		return rcv.completed(acked) == len(acked)
	}
	for k := 0; k < maxKills && !allDone(); k++ {
		time.Sleep(killEvery)
		i := k % 3
		p, label := ws.get(i)
		busy := rcv.busy(label)
		at := p.kill(t)
		kills = append(kills, check.Kill{Worker: label, At: at})
		inFlight = append(inFlight, busy)
		ws.start(i)
	}
	<-pubDone
	_, acked := plog.snapshot()
	eventually(t, size(90*time.Second, 5*time.Minute), "every acknowledged task completed", func() error {
		if c := rcv.completed(acked); c != len(acked) {
			return fmt.Errorf("%d of %d completed", c, len(acked))
		}
		return nil
	})
	// Late duplicates would arrive within an ack wait.
	time.Sleep(ackWait + time.Second)

	attempted, acked := plog.snapshot()
	r := check.Check(check.History{Attempted: attempted, Acked: acked, Executions: rcv.executions(), Kills: kills, AckWait: ackWait})
	killedMidTask := 0
	for _, b := range inFlight {
		if b > 0 {
			killedMidTask++
		}
	}
	figure(t, "scenario=1 tasks=%d acked=%d workers=3 kills=%d kills_mid_task=%d lost=%d dup=%d explained=%d unexplained=%d stored_twice=%d resumed=%d resume_max=%s ack_wait=%s bad_sig=%d",
		n, r.Acked, len(kills), killedMidTask, len(r.Lost), r.Duplicates, r.Explained, len(r.Unexplained), len(r.StoredTwice), r.Resumed, secs(r.ResumeMax), ackWait, rcv.badSig.Load())
	if r.Acked != n {
		t.Errorf("acked: got %d, want %d (publisher failures %d, last %v)", r.Acked, n, plog.failures, plog.lastErr)
	}
	if len(r.Lost) != 0 {
		t.Errorf("lost: got %d (%v), want 0", len(r.Lost), head(r.Lost))
	}
	if len(r.Unexplained) != 0 {
		t.Errorf("unexplained duplicates: got %v, want none", head(r.Unexplained))
	}
	if len(r.StoredTwice) != 0 {
		t.Errorf("stored twice: got %v, want none", head(r.StoredTwice))
	}
	if r.ResumeMax > ackWait+2*time.Second {
		t.Errorf("resume max: got %s, want <= %s", r.ResumeMax, ackWait+2*time.Second)
	}
	if killedMidTask == 0 {
		t.Errorf("kills mid-task: got 0 of %d, want > 0", len(kills))
	}
}

// TestWorkerTerm is scenario 2: SIGTERM to a worker with tasks in flight.
// Tasks that finish within the grace are acknowledged once; the rest are
// handed back and another worker starts them within 1s; the process exits
// within grace + 1s.
func TestWorkerTerm(t *testing.T) {
	const (
		grace   = 2 * time.Second
		ackWait = 10 * time.Second
	)
	rounds := size(1, 5)
	srv := newNATS(t, serverOpts{name: "n1"})
	mustJetworker(t, jwEnv(srv.url()), "provision")
	// fast tasks take 1s (they finish within the grace); slow ones take
	// 60s on their first delivery and are quick when redelivered.
	rcv := newReceiver(t, func(id string, delivered int, _ []byte) (time.Duration, int) {
		switch {
		case strings.Contains(id, "fast"):
			return time.Second, 200
		case delivered == 1:
			return time.Minute, 200
		default:
			return 10 * time.Millisecond, 200
		}
	})
	ws := newWorkers(t, rcv, jwEnv(srv.url(), "ACK_WAIT", ackWait.String(), "CONCURRENCY", "8",
		"PROVISION", "false", "SHUTDOWN_GRACE", grace.String()))
	_, js := connect(t, srv.url())
	pub := newPublisher(t, js)

	var (
		mu                   sync.Mutex
		handoffMax, exitMax  time.Duration
		fastOnce, slowHanded int
		fastTotal, slowTotal int
		failures             []string
	)
	for round := range rounds {
		// Worker A takes every task; B starts once A has them all.
		a := ws.start(0)
		ws.waitReady(0)
		var plog pubLog
		fast, slow := ids(fmt.Sprintf("r%d-fast", round), 3), ids(fmt.Sprintf("r%d-slow", round), 3)
		batch := append(append([]string{}, fast...), slow...)
		publishRange(t.Context(), pub, &plog, "tasks.webhook.term", batch, func(string) []byte { return []byte(`{}`) }, 6, 0, 30*time.Second)
		if _, ack := plog.snapshot(); len(ack) != len(batch) {
			t.Fatalf("round %d: acked %d of %d publishes: %v", round, len(ack), len(batch), plog.lastErr)
		}
		eventually(t, 10*time.Second, "worker A runs all 6 tasks", func() error {
			if b := rcv.busy(a); b != 6 {
				return fmt.Errorf("%d in flight on %s", b, a)
			}
			return nil
		})
		b := ws.start(1)
		ws.waitReady(1)
		pa, _ := ws.get(0)
		termAt := time.Now()
		pa.signal(syscall.SIGTERM)
		pa.wait(t, grace+5*time.Second)
		exit := pa.end.Sub(termAt)
		eventually(t, ackWait, "slow tasks redelivered to B", func() error {
			if c := rcv.completed(slow); c != len(slow) {
				return fmt.Errorf("%d of %d slow tasks completed", c, len(slow))
			}
			return nil
		})
		time.Sleep(time.Second) // a duplicate of a fast task would show now
		mu.Lock()
		exitMax = max(exitMax, exit)
		if pa.exitCode() != 0 {
			failures = append(failures, fmt.Sprintf("round %d: worker A exit code %d, want 0\n%s", round, pa.exitCode(), tail(pa.output(), 1500)))
		}
		execs := rcv.executions()
		for _, id := range fast {
			fastTotal++
			var n int
			for _, e := range execs {
				if e.ID == id {
					n++
				}
			}
			if n == 1 {
				fastOnce++
			} else {
				failures = append(failures, fmt.Sprintf("round %d: fast task %s executed %d times, want 1", round, id, n))
			}
		}
		for _, id := range slow {
			slowTotal++
			var first, second *check.Execution
			for i := range execs {
				e := &execs[i]
				switch {
				case e.ID == id && e.Worker == a:
					first = e
				case e.ID == id && e.Worker == b:
					second = e
				}
			}
			if first == nil || second == nil {
				failures = append(failures, fmt.Sprintf("round %d: slow task %s: execution on A %v, on B %v", round, id, first != nil, second != nil))
				continue
			}
			slowHanded++
			// Handed back when the grace expired.
			handoffMax = max(handoffMax, second.Start.Sub(termAt.Add(grace)))
		}
		mu.Unlock()
		// B becomes A of the next round.
		pb, _ := ws.get(1)
		pb.signal(syscall.SIGTERM)
		pb.wait(t, grace+5*time.Second)
	}
	figure(t, "scenario=2 rounds=%d grace=%s fast_acked_once=%d/%d slow_handed_over=%d/%d handoff_after_grace_max=%s exit_max=%s",
		rounds, grace, fastOnce, fastTotal, slowHanded, slowTotal, secs(handoffMax), secs(exitMax))
	for _, f := range failures {
		t.Error(f)
	}
	if handoffMax > time.Second {
		t.Errorf("hand-off to another worker: got %s, want <= 1s", handoffMax)
	}
	if exitMax > grace+time.Second {
		t.Errorf("exit after SIGTERM: got %s, want <= %s", exitMax, grace+time.Second)
	}
}

// head returns at most the first 10 of ids, for messages.
func head(ids []string) []string {
	return ids[:min(len(ids), 10)]
}
