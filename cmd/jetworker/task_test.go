package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/task"
)

// hookWorker runs a worker whose webhook route (tasks.webhook.>) succeeds,
// fails for good (400) on a payload with "fail", and blocks until the task
// is cancelled on one with "block".
func hookWorker(t *testing.T, env []string, extra ...string) {
	t.Helper()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case strings.Contains(string(body), "block"):
			<-r.Context().Done()
		case strings.Contains(string(body), "fail"):
			http.Error(w, "no such customer", http.StatusBadRequest)
		}
	}))
	t.Cleanup(hook.Close)
	_, _ = background(t, append(append(env, "JETWORKER_WEBHOOK_URL="+hook.URL, "JETWORKER_WEBHOOK_SECRET=x"), extra...), "worker")
}

// taskInfo reads "task get --json ID".
func taskInfo(t *testing.T, env []string, id string) (task.Info, result) {
	t.Helper()
	r := jw(t, env, "", "task", "get", "--json", id)
	var info task.Info
	if r.code == 0 {
		if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
			t.Fatalf("task get --json %s: %v\n%s", id, err, r.stdout)
		}
	}
	return info, r
}

// published is the reference "publish" printed: "published task TASKS/7".
var published = regexp.MustCompile(`published task (?:\S+ as )?([A-Z]+/\d+)`)

func TestTaskCommands(t *testing.T) {
	t.Parallel()
	_, env := natsEnv(t)
	for _, args := range [][]string{{"ls", "--json"}, {"ls", "--queued", "--json"}, {"ls", "--delayed", "--json"}} {
		if r := jw(t, env, "", append([]string{"task"}, args...)...); r.code != 0 || r.stdout != "[]\n" {
			t.Fatalf("task %v on nothing: exit %d, %q, want []\n%s", args, r.code, r.stdout, r.stderr)
		}
	}
	if r := jw(t, env, "", "task", "ls"); r.code != 0 || !strings.HasSuffix(r.stdout, "no tracked tasks\n") {
		t.Fatalf("task ls on nothing: exit %d, %q", r.code, r.stdout)
	}
	hookWorker(t, env)

	t.Run("succeeded", func(t *testing.T) {
		t.Parallel()
		r := jw(t, env, "", "publish", "--track", "--id", "ok-1", "tasks.webhook.order", `{"n":1}`)
		if r.code != 0 || !strings.Contains(r.stdout, "published task ok-1 as TASKS/") || !strings.Contains(r.stdout, "tracked") {
			t.Fatalf("publish --track: exit %d, %q\n%s", r.code, r.stdout, r.stderr)
		}
		r = jw(t, env, "", "task", "wait", "ok-1")
		if r.code != 0 {
			t.Fatalf("wait: exit %d, want 0\n%s", r.code, r.text())
		}
		for _, want := range []string{"Task:       ok-1\n", "Subject:    tasks.webhook.order\n", "State:      succeeded\n",
			"Attempt:    1", "Worker:     ", "Stored as:  TASKS/", "History:\n", "succeeded  attempt 1  "} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("wait output lacks %q:\n%s", want, r.stdout)
			}
		}
		for line := range strings.SplitSeq(r.stdout, "\n") {
			if strings.TrimRight(line, " ") != line {
				t.Errorf("line with trailing spaces: %q", line)
			}
		}
		info, _ := taskInfo(t, env, "ok-1")
		if info.ID != "ok-1" || info.State != task.Succeeded || info.Subject != "tasks.webhook.order" || len(info.History) < 2 || info.Ref == "" {
			t.Fatalf("get --json: %+v", info)
		}
	})

	t.Run("failed: wait exits 3", func(t *testing.T) {
		t.Parallel()
		jw(t, env, "", "publish", "--track", "--id", "bad-1", "tasks.webhook.order", `{"fail":true}`)
		r := jw(t, env, "", "task", "wait", "bad-1")
		if r.code != 3 || !strings.Contains(r.stdout, "State:      failed\n") || !strings.Contains(r.stdout, "Last error: ") ||
			!strings.Contains(r.text(), "jetworker task: task bad-1 failed: ") || !strings.Contains(r.text(), "400") {
			t.Fatalf("wait on a failing task: exit %d, want 3\n%s", r.code, r.text())
		}
	})

	t.Run("running: timeout exits 5, cancel stops it, wait exits 4", func(t *testing.T) {
		t.Parallel()
		jw(t, env, "", "publish", "--track", "--id", "block-1", "tasks.webhook.order", `{"block":true}`)
		testutil.Eventually(t, 20*time.Second, func() error {
			if info, r := taskInfo(t, env, "block-1"); info.State != task.Active {
				return fmt.Errorf("block-1 is %q (%s)", info.State, r.stderr)
			}
			return nil
		})
		r := jw(t, env, "", "task", "wait", "--timeout", "300ms", "block-1")
		if r.code != 5 || !strings.Contains(r.stdout, "State:      active\n") || !strings.Contains(r.text(), "task block-1 is still active after 300ms") {
			t.Fatalf("wait --timeout: exit %d, want 5\n%s", r.code, r.text())
		}
		r = jw(t, env, "", "task", "cancel", "block-1")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "cancel requested: task block-1 is running (attempt 1 on ") {
			t.Fatalf("cancel a running task: exit %d\n%s", r.code, r.text())
		}
		r = jw(t, env, "", "task", "wait", "--timeout", "20s", "block-1")
		if r.code != 4 || !strings.Contains(r.stdout, "State:      cancelled\n") || !strings.Contains(r.text(), "task block-1 was cancelled") {
			t.Fatalf("wait on a cancelled task: exit %d, want 4\n%s", r.code, r.text())
		}
		r = jw(t, env, "", "task", "cancel", "block-1")
		if r.code != 1 || !strings.Contains(r.text(), "task block-1 already cancelled: nothing to cancel") {
			t.Fatalf("cancel a cancelled task: exit %d, want 1\n%s", r.code, r.text())
		}
	})

	t.Run("delayed", func(t *testing.T) {
		t.Parallel()
		// Its own subject, so the other subtests' tasks stay out of the
		// lists.
		r := jw(t, env, "", "publish", "--track", "--id", "later-1", "--delay", "1h", "tasks.webhook.later", `{}`)
		ref := published.FindStringSubmatch(r.stdout)
		if r.code != 0 || ref == nil {
			t.Fatalf("publish --delay: exit %d, %q", r.code, r.stdout)
		}
		r = jw(t, env, "", "task", "ls", "--delayed", "--subject", "tasks.webhook.later")
		if r.code != 0 || !strings.Contains(r.stdout, "RUN AT") || !strings.Contains(r.stdout, ref[1]) || !strings.Contains(r.stdout, "later-1") ||
			!strings.HasSuffix(r.stdout, "1 delayed task in TASKS\n") {
			t.Fatalf("ls --delayed: exit %d\n%s", r.code, r.text())
		}
		if info, _ := taskInfo(t, env, "later-1"); info.State != task.Scheduled || info.RunAt.IsZero() {
			t.Fatalf("a delayed tracked task: %+v", info)
		}
		r = jw(t, env, "", "task", "cancel", "later-1")
		if want := "task later-1 cancelled before it ran: " + ref[1] + " removed from its stream\n"; r.code != 0 || r.stdout != want {
			t.Fatalf("cancel a delayed task: exit %d, %q, want %q\n%s", r.code, r.stdout, want, r.stderr)
		}

		// Untracked: run one now, cancel the other by its place.
		var refs []string
		for i := range 2 {
			r := jw(t, env, "", "publish", "--delay", "1h", "tasks.webhook.later", fmt.Sprintf(`{"n":%d}`, i))
			m := published.FindStringSubmatch(r.stdout)
			if m == nil {
				t.Fatalf("publish --delay: %q", r.stdout)
			}
			refs = append(refs, m[1])
		}
		r = jw(t, env, "", "task", "ls", "--delayed", "--json", "--subject", "tasks.webhook.later")
		var queued []task.Queued
		if err := json.Unmarshal([]byte(r.stdout), &queued); err != nil || len(queued) != 2 || queued[0].Ref != refs[1] || queued[0].Tracked || !queued[0].Delayed {
			t.Fatalf("ls --delayed --json: %v\n%s", err, r.stdout)
		}
		r = jw(t, env, "", "task", "run-now", refs[0])
		if r.code != 0 || !strings.HasPrefix(r.stdout, "released delayed task "+refs[0]+" now as TASKS/") {
			t.Fatalf("run-now: exit %d\n%s", r.code, r.text())
		}
		if r := jw(t, env, "", "task", "run-now", refs[0]); r.code != 1 || !strings.Contains(r.text(), refs[0]) {
			t.Fatalf("run-now again: exit %d, want 1\n%s", r.code, r.text())
		}
		r = jw(t, env, "", "task", "cancel", "--ref", refs[1])
		if want := "task " + refs[1] + " removed from its stream: it will not run\n"; r.code != 0 || r.stdout != want {
			t.Fatalf("cancel --ref: exit %d, %q, want %q", r.code, r.stdout, want)
		}
		r = jw(t, env, "", "task", "cancel", "--ref", refs[1], "--json")
		var out struct {
			Removed *bool
			Ref     string
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Removed == nil || *out.Removed || out.Ref != refs[1] {
			t.Fatalf("cancel --ref again --json: %v\n%s", err, r.stdout)
		}
		if r := jw(t, env, "", "task", "ls", "--delayed", "--json", "--subject", "tasks.webhook.later"); r.stdout != "[]\n" {
			t.Fatalf("ls --delayed after run-now and cancel: %q", r.stdout)
		}
	})

	t.Run("ls", func(t *testing.T) {
		t.Parallel()
		for _, id := range []string{"ls-1", "ls-2", "ls-3"} {
			jw(t, env, "", "publish", "--track", "--id", id, "tasks.webhook.ls", "{}")
			if r := jw(t, env, "", "task", "wait", id); r.code != 0 {
				t.Fatalf("wait %s: exit %d\n%s", id, r.code, r.text())
			}
		}
		r := jw(t, env, "", "task", "ls", "--subject", "tasks.webhook.ls", "--state", "succeeded", "--limit", "2")
		m := regexp.MustCompile(`more: add --before (\d+)\n$`).FindStringSubmatch(r.stdout)
		if r.code != 0 || m == nil || !strings.Contains(r.stdout, "ls-3") || !strings.Contains(r.stdout, "ls-2") || strings.Contains(r.stdout, "ls-1") ||
			!strings.Contains(r.stdout, "2 tracked tasks\n") || !strings.Contains(r.stdout, "UPDATED") {
			t.Fatalf("ls --limit 2: exit %d\n%s", r.code, r.text())
		}
		r = jw(t, env, "", "task", "ls", "--subject", "tasks.webhook.ls", "--before", m[1], "--json")
		var rest []task.Info
		if err := json.Unmarshal([]byte(r.stdout), &rest); err != nil || len(rest) != 1 || rest[0].ID != "ls-1" {
			t.Fatalf("ls --before %s --json: %v\n%s", m[1], err, r.stdout)
		}
		r = jw(t, env, "", "task", "ls", "--subject", "tasks.webhook.ls", "--limit", "1", "--json")
		if !strings.Contains(r.stderr, "more: add --before ") || !strings.HasPrefix(r.stdout, "[") {
			t.Fatalf("ls --json with more: stdout %q, stderr %q", r.stdout, r.stderr)
		}
		if r := jw(t, env, "", "task", "ls", "--subject", "tasks.webhook.ls", "--state", "failed,cancelled", "--json"); r.stdout != "[]\n" {
			t.Fatalf("ls --state failed,cancelled: %q", r.stdout)
		}
	})

	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"get unknown", []string{"get", "nope"}, 1, "jetworker task: task nope not found in jetworker_status"},
		{"wait unknown", []string{"wait", "nope"}, 1, "task nope not found"},
		{"cancel unknown", []string{"cancel", "nope"}, 1, "task nope not found"},
		{"no subcommand", nil, 2, "missing subcommand"},
		{"unknown subcommand", []string{"rm", "x"}, 2, `unknown task subcommand "rm"`},
		{"get without ID", []string{"get"}, 2, "get takes one task ID"},
		{"cancel with both", []string{"cancel", "x", "--ref", "TASKS/1"}, 2, "cancel takes one task ID, or --ref STREAM/SEQ"},
		{"bad ref", []string{"run-now", "TASKS"}, 2, `run-now "TASKS": want STREAM/SEQ`},
		{"bad state", []string{"ls", "--state", "done"}, 2, `--state "done": want scheduled, pending`},
		{"state of the queued", []string{"ls", "--queued", "--state", "pending"}, 2, "--state selects tracked tasks' records"},
		{"bad subject", []string{"ls", "--subject", "tasks..x"}, 2, "--subject"},
		{"bad cursor", []string{"ls", "--before", "x"}, 2, `--before "x"`},
		{"bad TTL", []string{"ls", "--task-ttl", "1s"}, 2, "--task-ttl must be >= 1m"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := jw(t, env, "", append([]string{"task"}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.text(), tt.want) {
				t.Fatalf("exit %d, want %d with %q\n%s", r.code, tt.code, tt.want, r.text())
			}
		})
	}
}

// --track-all records every task a worker runs; a route's "track: true"
// those of that route only.
func TestWorkerTracking(t *testing.T) {
	t.Parallel()
	t.Run("track-all", func(t *testing.T) {
		t.Parallel()
		_, env := natsEnv(t)
		hookWorker(t, env, "JETWORKER_TRACK_ALL=true")
		jw(t, env, "", "publish", "--id", "plain-1", "tasks.webhook.x", "{}")
		testutil.Eventually(t, 20*time.Second, func() error {
			if info, r := taskInfo(t, env, "plain-1"); info.State != task.Succeeded {
				return fmt.Errorf("plain-1 is %q: %s", info.State, r.text())
			}
			return nil
		})
	})
	t.Run("a route's track", func(t *testing.T) {
		t.Parallel()
		_, env := natsEnv(t)
		routes := filepath.Join(t.TempDir(), "routes.yaml")
		if err := os.WriteFile(routes, []byte("routes:\n"+
			"  - {name: tracked, subject: tasks.tracked.>, track: true, log: {}}\n"+
			"  - {name: plain, subject: tasks.plain.>, log: {}}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if r := jw(t, env, "", "worker", "--check", "--routes", routes); r.code != 0 ||
			!strings.Contains(r.stdout, "route tracked: tasks.tracked.> -> log (durable worker-tracked, concurrency 10, max deliver 5, tracks every task)") ||
			strings.Contains(r.stdout, "route plain: tasks.plain.> -> log (durable worker-plain, concurrency 10, max deliver 5, tracks") {
			t.Fatalf("worker --check: exit %d\n%s", r.code, r.text())
		}
		_, _ = background(t, append(env, "JETWORKER_ROUTES="+routes), "worker")
		jw(t, env, "", "publish", "--id", "p-1", "tasks.plain.x", "{}")
		jw(t, env, "", "publish", "--id", "t-1", "tasks.tracked.x", "{}")
		testutil.Eventually(t, 20*time.Second, func() error {
			if info, r := taskInfo(t, env, "t-1"); info.State != task.Succeeded {
				return fmt.Errorf("t-1 is %q: %s", info.State, r.text())
			}
			return nil
		})
		testutil.Eventually(t, 20*time.Second, func() error { // p-1 ran: the work queue let it go
			if r := jw(t, env, "", "task", "ls", "--queued", "--json"); r.stdout != "[]\n" {
				return fmt.Errorf("still queued: %s", r.stdout)
			}
			return nil
		})
		if r := jw(t, env, "", "task", "get", "p-1"); r.code != 1 || !strings.Contains(r.text(), "not found") {
			t.Fatalf("an untracked route's task has a record: exit %d\n%s", r.code, r.text())
		}
	})
}
