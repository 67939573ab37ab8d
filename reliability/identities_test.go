package reliability_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The permission sets deploy/README.md documents, for a worker whose route
// durable is worker-webhook on stream TASKS, and for a scheduler firing to
// tasks.>. TestIdentities runs them. The worker's last six are the task
// status bucket: it writes task records (t.>) and releases uniqueness
// locks (u.>), and watches cancel requests (c.>), which it may not write.
const (
	workerIdentity = `permissions: {
      publish: { allow: [
        "$JS.API.INFO",
        "$JS.API.STREAM.INFO.TASKS", "$JS.API.STREAM.INFO.DLQ",
        "$JS.API.STREAM.MSG.GET.TASKS",
        "$JS.API.STREAM.MSG.DELETE.TASKS",
        "$JS.API.CONSUMER.INFO.TASKS.worker-webhook",
        "$JS.API.CONSUMER.MSG.NEXT.TASKS.worker-webhook",
        "$JS.ACK.TASKS.worker-webhook.>",
        "dlq.TASKS.worker-webhook.>",
        "$JS.API.STREAM.INFO.KV_jetworker_workers",
        "$JS.API.DIRECT.GET.KV_jetworker_workers.>",
        "$KV.jetworker_workers.>",
        "$JS.API.STREAM.INFO.KV_jetworker_status",
        "$JS.API.DIRECT.GET.KV_jetworker_status.>",
        "$KV.jetworker_status.t.>", "$KV.jetworker_status.u.>",
        "$JS.API.CONSUMER.CREATE.KV_jetworker_status.>",
        "$JS.API.CONSUMER.DELETE.KV_jetworker_status.>",
        "$JS.FC.KV_jetworker_status.>"
      ] }
      subscribe: { allow: ["_INBOX.>", "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.TASKS.worker-webhook"] }
    }`
	schedulerIdentity = `permissions: {
      publish: { allow: [
        "$JS.API.INFO",
        "$JS.API.STREAM.INFO.TASKS",
        "$JS.API.STREAM.INFO.KV_jetworker_schedules",
        "$JS.API.CONSUMER.CREATE.KV_jetworker_schedules.>",
        "$JS.API.CONSUMER.DELETE.KV_jetworker_schedules.>",
        "$JS.FC.KV_jetworker_schedules.>",
        "$JS.API.DIRECT.GET.KV_jetworker_schedules.>",
        "$JS.API.STREAM.INFO.KV_jetworker_schedule_state",
        "$JS.API.DIRECT.GET.KV_jetworker_schedule_state.>",
        "$KV.jetworker_schedule_state.>",
        "$JS.API.CONSUMER.CREATE.KV_jetworker_schedule_state.>",
        "$JS.API.CONSUMER.DELETE.KV_jetworker_schedule_state.>",
        "$JS.FC.KV_jetworker_schedule_state.>",
        "$JS.API.STREAM.INFO.KV_jetworker_leases",
        "$JS.API.DIRECT.GET.KV_jetworker_leases.>",
        "$KV.jetworker_leases.>",
        "$JS.API.CONSUMER.CREATE.KV_jetworker_leases.>",
        "$JS.API.CONSUMER.DELETE.KV_jetworker_leases.>",
        "$JS.FC.KV_jetworker_leases.>",
        "tasks.>"
      ] }
      subscribe: { allow: ["_INBOX.>"] }
    }`
)

// TestIdentities runs a worker and a scheduler as the least-privileged
// identities deploy/README.md documents, next to an admin: each does its
// whole job without a permission error (the scheduler fires, the worker
// runs the fires and dead-letters a task that fails), and each is refused
// what it must not do: purge or delete a stream, write to another
// consumer's dead letters, edit schedules, write to a system subject.
func TestIdentities(t *testing.T) {
	adminPass, workerPass, schedPass := "adm-"+randHex(t), "wrk-"+randHex(t), "sch-"+randHex(t)
	srv := newNATS(t, serverOpts{name: "identities", extra: fmt.Sprintf(
		"authorization {\n users: [\n  {user: admin, password: %q}\n  {user: worker, password: %q, %s}\n  {user: scheduler, password: %q, %s}\n ]\n}\n",
		adminPass, workerPass, workerIdentity, schedPass, schedulerIdentity)})
	admin := jwEnv(srv.url(), "USER", "admin", "PASSWORD", adminPass)
	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.json")
	if err := os.WriteFile(routes, []byte(`{"routes":[{"name":"webhook","subject":"tasks.webhook.>","webhook":{"url":"http://127.0.0.1:1/","secret":"x"}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	mustJetworker(t, admin, "provision", "--routes", routes)
	mustJetworker(t, admin, "schedule", "add", "tick", "--spec", "@every 1s", "--subject", "tasks.webhook.tick")
	_, ajs := connect(t, srv.url(), nats.UserInfo("admin", adminPass))

	// Every fire succeeds; the task with ID "doomed" fails for good.
	rcv := newReceiver(t, func(id string, _ int, _ []byte) (time.Duration, int) {
		if id == "doomed" {
			return 0, 400
		}
		return time.Millisecond, 200
	})
	worker := startProc(t, "worker", dir, jetworkerBin, jwEnv(srv.url(), "USER", "worker", "PASSWORD", workerPass,
		"PROVISION", "false", "WEBHOOK_URL", rcv.url("w"), "WEBHOOK_SECRET", rcv.secret, "LOG_LEVEL", "debug"), "worker")
	scheduler := startProc(t, "scheduler", dir, jetworkerBin, jwEnv(srv.url(), "USER", "scheduler", "PASSWORD", schedPass,
		"PROVISION", "false", "LOG_LEVEL", "debug"), "scheduler")
	mustJetworker(t, admin, "publish", "--id", "doomed", "tasks.webhook.doomed", `{}`)
	mustJetworker(t, admin, "publish", "--track", "--id", "tracked", "tasks.webhook.tracked", `{}`)

	eventually(t, 30*time.Second, "three fires run and the doomed task dead-lettered", func() error {
		for _, p := range []*proc{worker, scheduler} {
			if p.exited() {
				t.Fatalf("%s exited: %v\n%s", p.name, p.err, tail(p.output(), 3000))
			}
		}
		fired := 0
		for _, e := range rcv.executions() {
			if e.OK() {
				fired++
			}
		}
		if fired < 3 {
			return fmt.Errorf("%d fires run", fired)
		}
		dlq, err := ajs.Stream(t.Context(), "DLQ")
		if err != nil {
			return err
		}
		if _, err := dlq.GetLastMsgForSubject(t.Context(), "dlq.TASKS.worker-webhook.tasks.webhook.doomed"); err != nil {
			return fmt.Errorf("dead letter: %w", err)
		}
		// The worker records the tracked task on the provisioned bucket.
		if out, err := jetworker(t, admin, "task", "get", "--json", "tracked"); err != nil || !strings.Contains(out, `"state": "succeeded"`) {
			return fmt.Errorf("tracked task: %v: %s", err, tail(out, 500))
		}
		return nil
	})
	for _, p := range []*proc{worker, scheduler} {
		var errs []string
		for _, l := range logLines(p, `"level":"ERROR"`) {
			if !strings.Contains(l, `"task dead-lettered"`) { // the doomed task, as it should
				errs = append(errs, l)
			}
		}
		if len(errs) > 0 {
			t.Errorf("%s logged errors with its documented permissions:\n%s", p.name, strings.Join(errs, "\n"))
		}
		if strings.Contains(p.output(), "ermissions Violation") {
			t.Errorf("%s hit a permission violation:\n%s", p.name, tail(p.output(), 2000))
		}
	}
	worker.signal(syscall.SIGTERM)
	scheduler.signal(syscall.SIGTERM)
	worker.wait(t, 15*time.Second)
	scheduler.wait(t, 15*time.Second)

	tasksBefore, dlqBefore := streamState(t, ajs, "TASKS"), streamState(t, ajs, "DLQ")
	refused := map[string][]string{
		"worker": {
			"$JS.API.STREAM.PURGE.TASKS", "$JS.API.STREAM.DELETE.TASKS", "$JS.API.STREAM.PURGE.DLQ",
			"$JS.API.STREAM.DELETE.DLQ", "$JS.API.STREAM.MSG.DELETE.DLQ",
			"$JS.API.CONSUMER.CREATE.TASKS", "$JS.API.CONSUMER.DELETE.TASKS.worker-webhook",
			"dlq.TASKS.other.tasks.x", "dlq.DLQ.x", "$KV.jetworker_schedules.pwn", "$KV.jetworker_leases.scheduler",
			"$KV.jetworker_status.c.someone-elses-task",
		},
		"scheduler": {
			"$JS.API.STREAM.PURGE.TASKS", "$JS.API.STREAM.DELETE.TASKS", "$JS.API.STREAM.MSG.DELETE.TASKS",
			"$JS.API.STREAM.PURGE.DLQ", "$JS.API.CONSUMER.MSG.NEXT.TASKS.worker-webhook",
			"dlq.TASKS.worker-webhook.tasks.x", "$KV.jetworker_schedules.pwn", "$KV.jetworker_workers.x",
			"$KV.jetworker_status.c.x",
		},
	}
	pass := map[string]string{"worker": workerPass, "scheduler": schedPass}
	for who, subjects := range refused {
		var mu sync.Mutex
		violations := map[string]bool{}
		nc, err := nats.Connect(srv.url(), nats.UserInfo(who, pass[who]),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				if errors.Is(err, nats.ErrPermissionViolation) {
					mu.Lock()
					defer mu.Unlock()
					for _, s := range subjects {
						if strings.Contains(err.Error(), `"`+s+`"`) {
							violations[s] = true
						}
					}
				}
			}))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range subjects {
			_ = nc.Publish(s, []byte(`{}`))
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, who+" refused", func() error {
			mu.Lock()
			defer mu.Unlock()
			var missing []string
			for _, s := range subjects {
				if !violations[s] {
					missing = append(missing, s)
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("%s may publish to %v", who, missing)
			}
			return nil
		})
		nc.Close()
	}
	if after := streamState(t, ajs, "TASKS"); after != tasksBefore {
		t.Errorf("TASKS changed under refused operations: %s, then %s", tasksBefore, after)
	}
	if after := streamState(t, ajs, "DLQ"); after != dlqBefore {
		t.Errorf("DLQ changed under refused operations: %s, then %s", dlqBefore, after)
	}
	figure(t, "scenario=identities worker=ok scheduler=ok fires=%d refused_worker=%d refused_scheduler=%d", len(rcv.executions())-1,
		len(refused["worker"]), len(refused["scheduler"]))
}

// streamState is a stream's message count and sequence range, to compare.
func streamState(t *testing.T, js jetstream.JetStream, name string) string {
	t.Helper()
	st, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	s := st.CachedInfo().State
	return fmt.Sprintf("%d msgs, seq %d-%d", s.Msgs, s.FirstSeq, s.LastSeq)
}
