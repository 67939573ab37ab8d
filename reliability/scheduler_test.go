package reliability_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jetworker/jetworker/reliability/internal/check"
)

// logLine is the part of a jetworker JSON log line the scheduler test reads.
type logLine struct {
	Time     time.Time `json:"time"`
	Msg      string    `json:"msg"`
	Schedule string    `json:"schedule"`
	Slot     time.Time `json:"slot"`
}

// parseLog returns the JSON log lines of p with message msg.
func parseLog(p *proc, msg string) []logLine {
	var out []logLine
	for _, l := range logLines(p, `"msg":"`+msg+`"`) {
		var ll logLine
		if json.Unmarshal([]byte(l), &ll) == nil && ll.Msg == msg {
			out = append(out, ll)
		}
	}
	return out
}

// TestSchedulerFailover is scenario 5: two scheduler processes share an
// "@every 1s" entry with catch-up "all". The leader is SIGKILLed, and later
// paused with SIGSTOP past the lease TTL and woken with SIGCONT. Every slot
// is stored exactly once, the follower takes over within TTL + 1s, and the
// paused leader fires nothing after it wakes.
func TestSchedulerFailover(t *testing.T) {
	const ttl = 3 * time.Second
	cycles := size(1, 3)

	srv := newNATS(t, serverOpts{name: "n1"})
	env := jwEnv(srv.url())
	mustJetworker(t, env, "provision")
	mustJetworker(t, env, "schedule", "add", "tick", "--spec", "@every 1s", "--subject", "tasks.sched.tick", "--catch-up", "all")

	dir := t.TempDir()
	gen := map[int]int{}
	procs := map[int]*proc{}
	start := func(i int) {
		gen[i]++
		procs[i] = startProc(t, fmt.Sprintf("s%d.%d", i, gen[i]), dir, jetworkerBin,
			jwEnv(srv.url(), "LEASE_TTL", ttl.String(), "LOG_LEVEL", "debug"), "scheduler")
	}
	start(0)
	start(1)
	var all []*proc // every incarnation, for counting fires
	all = append(all, procs[0], procs[1])
	// leaderAfter waits for a "leader gained" line logged after t0 and
	// returns the process and the line's time.
	leaderAfter := func(t0 time.Time, exclude *proc) (int, time.Time) {
		var (
			who int
			at  time.Time
		)
		eventually(t, 4*ttl, "leader gained", func() error {
			for i, p := range procs {
				if p == exclude {
					continue
				}
				for _, l := range parseLog(p, "leader gained") {
					if l.Time.After(t0) {
						who, at = i, l.Time
						return nil
					}
				}
			}
			return fmt.Errorf("no leader since %s", t0.Format(time.StampMilli))
		})
		return who, at
	}
	lead, _ := leaderAfter(time.Time{}, nil)
	var (
		killFailover, pauseFailover time.Duration
		lateFires                   int
		lostAfterWake               int
	)
	for c := range cycles {
		time.Sleep(3 * time.Second)
		// SIGKILL the leader.
		killAt := procs[lead].kill(t)
		killed := lead
		var at time.Time
		lead, at = leaderAfter(killAt, procs[killed])
		killFailover = max(killFailover, at.Sub(killAt))
		start(killed)
		all = append(all, procs[killed])
		time.Sleep(3 * time.Second)

		// SIGSTOP the leader past the TTL, then SIGCONT it.
		paused := procs[lead]
		stopAt := time.Now()
		paused.signal(syscall.SIGSTOP)
		var next int
		next, at = leaderAfter(stopAt, paused)
		pauseFailover = max(pauseFailover, at.Sub(stopAt))
		time.Sleep(time.Until(stopAt.Add(ttl + 2*time.Second)))
		contAt := time.Now()
		paused.signal(syscall.SIGCONT)
		time.Sleep(3 * time.Second)
		for _, f := range parseLog(paused, "fired") {
			if f.Time.After(contAt) {
				lateFires++
				t.Logf("cycle %d: paused scheduler %s fired slot %s at %s, after SIGCONT at %s", c, paused.name, f.Slot, f.Time, contAt)
			}
		}
		for _, l := range parseLog(paused, "leader lost") {
			if l.Time.After(contAt) {
				lostAfterWake++
				break
			}
		}
		lead = next
	}
	time.Sleep(2 * time.Second)
	for _, p := range procs {
		p.signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		p.wait(t, 15*time.Second)
	}

	_, js := connect(t, srv.url())
	stored := streamMsgIDs(t, js, "TASKS")
	counts, twice := check.SlotCounts(stored)
	var slots []time.Time
	for id := range counts {
		s, ok := strings.CutPrefix(id, "tick@")
		if !ok {
			t.Errorf("stored message with Nats-Msg-Id %q, want tick@<slot>", id)
			continue
		}
		ts, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Errorf("slot of %q: %v", id, err)
			continue
		}
		slots = append(slots, ts)
	}
	first, last := slots[0], slots[0]
	for _, s := range slots {
		first, last = minTime(first, s), maxTime(last, s)
	}
	var missing []string
	for s := first; !s.After(last); s = s.Add(time.Second) {
		if counts["tick@"+s.UTC().Format(time.RFC3339)] == 0 {
			missing = append(missing, s.UTC().Format(time.RFC3339))
		}
	}
	// Fires per slot as the schedulers logged them (before de-duplication).
	fires := map[time.Time]int{}
	for _, p := range all {
		for _, f := range parseLog(p, "fired") {
			fires[f.Slot.UTC()]++
		}
	}
	firedTwice := 0
	for _, n := range fires {
		if n > 1 {
			firedTwice++
		}
	}
	figure(t, "scenario=5 schedulers=2 ttl=%s cycles=%d slots=%d stored=%d stored_twice=%d missing=%d fired_twice_in_logs=%d failover_kill_max=%s failover_pause_max=%s late_fires_after_sigcont=%d leader_lost_after_wake=%d/%d",
		ttl, cycles, last.Sub(first)/time.Second+1, len(stored), len(twice), len(missing), firedTwice, secs(killFailover), secs(pauseFailover), lateFires, lostAfterWake, cycles)
	if len(fires) == 0 {
		t.Errorf("no \"fired\" lines in the schedulers' debug logs: the late-fire check saw nothing")
	}
	if len(twice) != 0 {
		t.Errorf("slots stored twice: got %v, want none", head(twice))
	}
	if len(missing) != 0 {
		t.Errorf("missing slots between %s and %s: got %v, want none", first, last, head(missing))
	}
	if lateFires != 0 {
		t.Errorf("fires of the paused scheduler after SIGCONT: got %d, want 0", lateFires)
	}
	if killFailover > ttl+time.Second {
		t.Errorf("failover after SIGKILL: got %s, want <= %s", killFailover, ttl+time.Second)
	}
	if pauseFailover > ttl+time.Second {
		t.Errorf("failover after SIGSTOP: got %s, want <= %s", pauseFailover, ttl+time.Second)
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
