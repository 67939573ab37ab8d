package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/reliability/internal/check"
)

// TestServerKill is scenario 3: the single nats-server (sync_interval
// always) is SIGKILLed under load and started again on the same store.
// No acknowledged publish is lost, none is stored twice, and the worker
// processes and the test's publisher reconnect by themselves.
func TestServerKill(t *testing.T) {
	const ackWait = 5 * time.Second
	n := size(2000, 20000)
	crashes := size(1, 3)
	duration := size(8*time.Second, 40*time.Second)
	down := time.Second

	srv := newNATS(t, serverOpts{name: "n1"})
	mustJetworker(t, jwEnv(srv.url()), "provision")
	rcv := newReceiver(t, func(string, int, []byte) (time.Duration, int) { return 5 * time.Millisecond, 200 })
	ws := newWorkers(t, rcv, jwEnv(srv.url(), "ACK_WAIT", ackWait.String(), "CONCURRENCY", "16", "PROVISION", "false"))
	for i := range 2 {
		ws.start(i)
		ws.waitReady(i)
	}
	_, js := connect(t, srv.url())
	pub := newPublisher(t, js)
	var plog pubLog
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		publishRange(ctx, pub, &plog, "tasks.webhook.crash", ids("c", n), func(string) []byte { return []byte(`{}`) }, 8, float64(n)/duration.Seconds(), 5*time.Minute)
	}()
	var resumeMax time.Duration
	for c := range crashes {
		time.Sleep(duration / time.Duration(crashes+1))
		srv.proc.kill(t)
		time.Sleep(down)
		restartAt := time.Now()
		srv.start()
		ready := time.Now()
		eventually(t, 30*time.Second, fmt.Sprintf("crash %d: publishes acknowledged again", c), func() error {
			plog.mu.Lock()
			defer plog.mu.Unlock()
			if len(plog.ackTimes) == 0 || plog.ackTimes[len(plog.ackTimes)-1].Before(ready) {
				return errors.New("no ack since the restart")
			}
			return nil
		})
		plog.mu.Lock()
		resumeMax = max(resumeMax, plog.ackTimes[len(plog.ackTimes)-1].Sub(restartAt))
		plog.mu.Unlock()
	}
	<-pubDone
	_, acked := plog.snapshot()
	eventually(t, size(90*time.Second, 5*time.Minute), "every acknowledged task completed", func() error {
		if c := rcv.completed(acked); c != len(acked) {
			return fmt.Errorf("%d of %d completed", c, len(acked))
		}
		return nil
	})
	time.Sleep(ackWait + time.Second)
	attempted, acked := plog.snapshot()
	r := check.Check(check.History{Attempted: attempted, Acked: acked, Executions: rcv.executions(), AckWait: ackWait})
	reconnected := 0
	for i := range 2 {
		p, _ := ws.get(i)
		if !p.exited() && len(logLines(p, "nats reconnected")) >= crashes {
			reconnected++
		}
	}
	figure(t, "scenario=3 tasks=%d acked=%d crashes=%d down=%s lost=%d stored_twice=%d dup_exec=%d publish_resume_max=%s publisher_retries=%d workers_reconnected=%d/2",
		n, r.Acked, crashes, down, len(r.Lost), len(r.StoredTwice), r.Duplicates, secs(resumeMax), plog.failures, reconnected)
	if r.Acked != n {
		t.Errorf("acked: got %d, want %d (last error %v)", r.Acked, n, plog.lastErr)
	}
	if len(r.Lost) != 0 {
		t.Errorf("lost: got %d (%v), want 0", len(r.Lost), head(r.Lost))
	}
	if len(r.StoredTwice) != 0 {
		t.Errorf("stored twice: got %v, want none", head(r.StoredTwice))
	}
	if reconnected != 2 {
		for i := range 2 {
			p, _ := ws.get(i)
			t.Logf("worker %d (exited %v):\n%s", i, p.exited(), tail(p.output(), 1500))
		}
		t.Errorf("workers running and reconnected: got %d, want 2", reconnected)
	}
}

// TestClusterLeaderKill is scenario 4: a 3-node cluster with R3 streams
// and buckets; the stream leader is SIGKILLed under load. No acknowledged
// publish is lost and publishing resumes; then, with quorum lost (2 of 3
// down), a publish fails with a clear error within a bounded time.
func TestClusterLeaderKill(t *testing.T) {
	n := size(1500, 20000)
	duration := size(6*time.Second, 40*time.Second)
	const publishTimeout = 5 * time.Second

	cports := []int{freePort(t), freePort(t), freePort(t)}
	servers := make([]*natsServer, 3)
	for i := range servers {
		servers[i] = newNATS(t, serverOpts{name: fmt.Sprintf("n%d", i+1), clusterPort: cports[i], routes: cports})
	}
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.url()
	}
	url := strings.Join(urls, ",")
	_, js := connect(t, url)
	eventually(t, 60*time.Second, "JetStream cluster ready", func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err
	})
	eventually(t, 60*time.Second, "provision --replicas 3", func() error {
		out, err := jetworker(t, jwEnv(url), "provision", "--replicas", "3")
		if err != nil {
			return fmt.Errorf("%v: %s", err, tail(out, 500))
		}
		return nil
	})
	leader := func() (*natsServer, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, "TASKS")
		if err != nil {
			return nil, err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return nil, err
		}
		if info.Config.Replicas != 3 || info.Cluster == nil {
			return nil, fmt.Errorf("replicas %d, cluster %v", info.Config.Replicas, info.Cluster)
		}
		for _, srv := range servers {
			if srv.name == info.Cluster.Leader {
				return srv, nil
			}
		}
		return nil, fmt.Errorf("no leader (%q)", info.Cluster.Leader)
	}
	var lead *natsServer
	eventually(t, 30*time.Second, "TASKS leader", func() (err error) { lead, err = leader(); return err })

	pub := newPublisher(t, js)
	var plog pubLog
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		publishRange(t.Context(), pub, &plog, "tasks.cluster.load", ids("q", n), func(string) []byte { return []byte(`{}`) }, 8, float64(n)/duration.Seconds(), 5*time.Minute)
	}()
	time.Sleep(duration / 3)
	killAt := lead.proc.kill(t)
	<-pubDone
	attempted, acked := plog.snapshot()
	plog.mu.Lock()
	times := slices.Clone(plog.ackTimes)
	plog.mu.Unlock()
	slices.SortFunc(times, time.Time.Compare)
	var gap time.Duration
	if i, _ := slices.BinarySearchFunc(times, killAt, time.Time.Compare); i < len(times) {
		gap = times[i].Sub(killAt)
	}
	var newLead *natsServer
	eventually(t, 30*time.Second, "new TASKS leader", func() (err error) { newLead, err = leader(); return err })
	stored := streamMsgIDs(t, js, "TASKS")
	counts, twice := check.SlotCounts(stored)
	var lost []string
	for _, id := range acked {
		if counts[id] == 0 {
			lost = append(lost, id)
		}
	}

	// Quorum lost: stop every node but one.
	for _, s := range servers {
		if s != newLead && !s.proc.exited() {
			s.proc.kill(t)
		}
	}
	var (
		quorumErrs []string
		quorumMax  time.Duration
		classified = true
	)
	for i := range 3 {
		ctx, cancel := context.WithTimeout(t.Context(), publishTimeout)
		start := time.Now()
		_, err := pub.Publish(ctx, "tasks.cluster.load", []byte(`{}`), &publisher.PublishOpts{ID: fmt.Sprintf("noquorum-%d", i)})
		cancel()
		quorumMax = max(quorumMax, time.Since(start))
		switch {
		case err == nil:
			quorumErrs = append(quorumErrs, "stored")
			classified = false
		case errors.Is(err, publisher.ErrOutcomeUnknown):
			quorumErrs = append(quorumErrs, "ErrOutcomeUnknown")
		case errors.Is(err, publisher.ErrNoStream):
			quorumErrs = append(quorumErrs, "ErrNoStream")
		default:
			quorumErrs = append(quorumErrs, "other")
			classified = false
			t.Logf("quorum-lost publish %d: %v", i, err)
		}
	}
	figure(t, "scenario=4 nodes=3 replicas=3 tasks=%d acked=%d lost=%d stored_twice=%d leader_killed=%s publish_gap=%s publisher_retries=%d no_quorum_errors=%s no_quorum_max=%s",
		n, len(uniqStrings(acked)), len(lost), len(twice), lead.name, secs(gap), plog.failures, strings.Join(quorumErrs, ","), secs(quorumMax))
	if len(uniqStrings(acked)) != n {
		t.Errorf("acked: got %d of %d attempted %d (last error %v)", len(uniqStrings(acked)), n, len(uniqStrings(attempted)), plog.lastErr)
	}
	if len(lost) != 0 {
		t.Errorf("lost: got %d (%v), want 0", len(lost), head(lost))
	}
	if len(twice) != 0 {
		t.Errorf("stored twice: got %v, want none", head(twice))
	}
	if !classified {
		t.Errorf("publish without quorum: got %v, want ErrOutcomeUnknown or ErrNoStream", quorumErrs)
	}
	if quorumMax > publishTimeout+time.Second {
		t.Errorf("publish without quorum failed after %s, want <= %s", quorumMax, publishTimeout+time.Second)
	}
}

func uniqStrings(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}
