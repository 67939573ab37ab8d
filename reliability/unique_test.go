package reliability_test

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	jw "github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/task"
)

// TestUniqueLockSurvivesWorkerKill: a unique task's lock never leaks when
// the worker running it is SIGKILLed. Three cases, on real processes:
//
//   - active (held until the task ends): the worker is killed mid-task;
//     the redelivery runs on the other worker and releases the lock;
//   - active, and every attempt fails: the worker is killed mid-task, the
//     other dead-letters the task, and the dead-letter path releases it;
//   - for a duration, with no worker at all: the lock expires by itself.
//
// While the lock is held a second publish of the ID is reported as a
// duplicate and stores nothing.
func TestUniqueLockSurvivesWorkerKill(t *testing.T) {
	const ackWait = 2 * time.Second
	srv := newNATS(t, serverOpts{name: "unique"})
	mustJetworker(t, jwEnv(srv.url()), "provision")
	_, js := connect(t, srv.url())
	store, err := task.New(js, task.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Provision(t.Context()); err != nil {
		t.Fatal(err)
	}
	pub, err := publisher.New(js, publisher.Config{Tasks: store})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), task.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	locked := func(id string) bool {
		_, err := kv.Get(t.Context(), "u."+id)
		return !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted)
	}

	// The first delivery of each task hangs until its worker dies; later
	// ones answer at once: 200, or 500 for the "doomed" task.
	rcv := newReceiver(t, func(id string, delivered int, _ []byte) (time.Duration, int) {
		switch {
		case delivered == 1:
			return time.Hour, 200
		case id == "doomed":
			return 0, 500
		}
		return time.Millisecond, 200
	})
	ws := newWorkers(t, rcv, jwEnv(srv.url(), "ACK_WAIT", ackWait.String(), "MAX_DELIVER", "3", "PROVISION", "false", "LOG_LEVEL", "info"))
	ws.start(0)
	ws.start(1)
	ws.waitReady(0)
	ws.waitReady(1)

	var results []string
	for _, id := range []string{"kept", "doomed"} {
		res, err := pub.Publish(t.Context(), "tasks.webhook.unique", []byte(`{}`), &publisher.PublishOpts{ID: id, Unique: publisher.UniqueActive})
		if err != nil || res.Duplicate {
			t.Fatalf("publish %s: %+v, %v", id, res, err)
		}
		if !locked(id) {
			t.Fatalf("%s: no lock after a unique publish", id)
		}
		// Find the worker running it and kill it.
		var victim int
		eventually(t, 20*time.Second, id+" running", func() error {
			for i := range 2 {
				_, l := ws.get(i)
				if rcv.busy(l) > 0 {
					victim = i
					return nil
				}
			}
			return errors.New("not running yet")
		})
		p, label := ws.get(victim)
		killed := p.kill(t)
		if dup, err := pub.Publish(t.Context(), "tasks.webhook.unique", []byte(`{}`), &publisher.PublishOpts{ID: id, Unique: publisher.UniqueActive}); err != nil || !dup.Duplicate {
			t.Errorf("%s: second publish while the first is held by a dead worker: %+v, %v; want a duplicate", id, dup, err)
		}
		eventually(t, 30*time.Second, id+" lock released", func() error {
			if locked(id) {
				return errors.New("still locked")
			}
			return nil
		})
		took := time.Since(killed)
		if id == "doomed" {
			dlq, err := js.Stream(t.Context(), "DLQ")
			if err != nil {
				t.Fatal(err)
			}
			if m, err := dlq.GetLastMsgForSubject(t.Context(), "dlq.TASKS.worker-webhook.tasks.webhook.unique"); err != nil || jw.TaskID(m.Header) != "doomed" {
				t.Errorf("doomed: want it dead-lettered (the path that released its lock): %v", err)
			}
		}
		results = append(results, fmt.Sprintf("%s_released_after_kill=%s", id, secs(took)))
		t.Logf("%s: worker %s killed; lock released %s later", id, label, took)
		ws.start(victim) // back to two workers
		ws.waitReady(victim)
	}
	// Stop the workers: nobody runs the next task, its lock lasts UniqueFor.
	for i := range 2 {
		p, _ := ws.get(i)
		p.signal(syscall.SIGTERM)
		p.wait(t, 15*time.Second)
	}
	const lockFor = 3 * time.Second
	start := time.Now()
	if _, err := pub.Publish(t.Context(), "tasks.webhook.unique", []byte(`{}`), &publisher.PublishOpts{ID: "orphan", UniqueFor: lockFor}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "orphan lock expired", func() error {
		if locked("orphan") {
			return errors.New("still locked")
		}
		return nil
	})
	expired := time.Since(start)
	if expired < lockFor-500*time.Millisecond {
		t.Errorf("the orphan's lock went after %s, before its %s", expired, lockFor)
	}
	results = append(results, fmt.Sprintf("orphan_lock_expired_after=%s(unique_for=%s)", secs(expired), lockFor))
	leaked := 0
	for _, id := range []string{"kept", "doomed", "orphan"} {
		if locked(id) {
			leaked++
		}
	}
	figure(t, "scenario=unique-lock-kill %s leaked_locks=%d", strings.Join(results, " "), leaked)
}
