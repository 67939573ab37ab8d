package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dlq"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/schedule"
	"github.com/jetworker/jetworker/task"
)

// Schedules show their payloads as JSON or text, their times in their own
// zone, and the error of a fire that keeps failing.
func TestScheduleReadableValues(t *testing.T) {
	t.Parallel()
	srv, env := natsEnv(t)
	binFile := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(binFile, []byte{0xff, 0x00, 0x01}, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, add := range [][]string{
		{"nightly", "--spec", "0 3 * * *", "--tz", "Europe/Berlin", "--subject", "tasks.cleanup", "--payload", `{"days":30}`, "--jitter", "5s"},
		{"hello", "--spec", "@every 1h", "--subject", "tasks.hello", "--payload", "hello, world"},
		{"binary", "--spec", "@daily", "--subject", "tasks.bin", "--payload-file", binFile},
	} {
		if r := jw(t, env, "", append([]string{"schedule", "add"}, add...)...); r.code != 0 {
			t.Fatalf("add %s: exit %d\n%s", add[0], r.code, r.text())
		}
	}
	r := jw(t, env, "", "schedule", "get", "nightly")
	var got struct {
		Payload         json.RawMessage `json:"payload"`
		PayloadEncoding string          `json:"payload_encoding"`
		TimeZone        string          `json:"time_zone"`
		Jitter          string          `json:"jitter"`
		CatchUp         string          `json:"catch_up"`
		NextFire        time.Time       `json:"next_fire"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("get: %v\n%s", err, r.stdout)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	if string(got.Payload) != `{"days":30}` && !strings.Contains(r.stdout, `"days": 30`) || got.PayloadEncoding != "json" ||
		got.TimeZone != "Europe/Berlin" || got.Jitter != "5s" || got.CatchUp != "once" || got.NextFire.In(berlin).Hour() != 3 ||
		!regexp.MustCompile(`"next_fire": "[0-9-]+T03:00:00\+0[12]:00"`).MatchString(r.stdout) {
		t.Fatalf("get nightly:\n%s", r.stdout)
	}

	// A fire that keeps failing, as a scheduler records it.
	_, js := embeddedtest.Connect(t, srv)
	kv, err := js.KeyValue(t.Context(), schedule.StateBucket)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := json.Marshal(schedule.State{Error: "no task stream captures the subject \"tasks.hello\"", Failures: 12, ErrorAt: time.Now()})
	if _, err := kv.Put(t.Context(), "hello", st); err != nil {
		t.Fatal(err)
	}

	r = jw(t, env, "", "schedule", "ls", "--json")
	var rows []struct {
		Name            string
		PayloadEncoding string `json:"payload_encoding"`
		Payload         json.RawMessage
		Error           string
		Failures        int
	}
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || len(rows) != 3 {
		t.Fatalf("ls --json: %v\n%s", err, r.stdout)
	}
	want := map[string]string{"binary": `"/wAB"`, "hello": `"hello, world"`}
	enc := map[string]string{"binary": "base64", "hello": "text", "nightly": "json"}
	for _, row := range rows {
		if w, ok := want[row.Name]; ok && string(row.Payload) != w {
			t.Errorf("%s: payload %s, want %s", row.Name, row.Payload, w)
		}
		if enc[row.Name] != row.PayloadEncoding {
			t.Errorf("%s: encoding %q, want %q", row.Name, row.PayloadEncoding, enc[row.Name])
		}
	}
	r = jw(t, env, "", "schedule", "ls")
	for _, want := range []string{"03:00:00 CE", "Europe/Berlin", "12 failures", "no task stream captures the subject"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("ls lacks %q:\n%s", want, r.stdout)
		}
	}
}

// Dead letters: an empty list is [] in JSON, and purge says what it did.
func TestDLQSaysWhatItDid(t *testing.T) {
	t.Parallel()
	srv, env := natsEnv(t)
	if r := jw(t, env, "", "dlq", "ls", "--json"); r.code != 0 || r.stdout != "[]\n" {
		t.Fatalf("dlq ls --json on an empty DLQ: exit %d, %q", r.code, r.stdout)
	}
	if r := jw(t, env, "", "dlq", "purge", "--yes"); r.code != 0 || r.stdout != "no dead letters to purge in DLQ\n" {
		t.Fatalf("purge of nothing: exit %d, %q", r.code, r.stdout)
	}
	_, js := embeddedtest.Connect(t, srv)
	for i := range 3 {
		deadLetter(t, js, fmt.Sprintf("t-%d", i), nil, []byte("{}"))
	}
	if r := jw(t, env, "", "dlq", "purge", "--yes"); r.code != 0 || r.stdout != "purged 3 dead letters from DLQ\n" {
		t.Fatalf("purge: exit %d, %q", r.code, r.stdout)
	}
}

// A planted dead letter (anyone may publish on dlq.>) that names a
// JetStream API subject as its original: ls marks it, show says why, and
// neither replay by SEQ nor --all sends anything; the task stream is
// untouched.
func TestDLQRefusesPlantedEntries(t *testing.T) {
	t.Parallel()
	srv, env := natsEnv(t)
	_, js := embeddedtest.Connect(t, srv)
	if r := jw(t, env, "", "publish", "tasks.keep", "{}"); r.code != 0 {
		t.Fatalf("publish: exit %d\n%s", r.code, r.stderr)
	}
	gm := dlq.Message(dlq.Letter{Stream: "TASKS", Consumer: "worker-x", Sequence: 7, Subject: "tasks.x", Data: []byte("{}"),
		Header: nats.Header{jetworker.HeaderTaskID: {"good"}}, Attempts: 1, Reason: "boom", FailedAt: time.Now()}, 0)
	gack, err := js.PublishMsg(t.Context(), gm)
	if err != nil {
		t.Fatal(err)
	}
	good := gack.Sequence
	m := nats.NewMsg("dlq.TASKS.worker-x.tasks.x")
	m.Header.Set(jetworker.HeaderOriginalSubject, "$JS.API.STREAM.PURGE.TASKS")
	m.Header.Set(jetworker.HeaderOriginalStream, "TASKS")
	m.Header.Set(jetworker.HeaderOriginalSeq, "1")
	m.Header.Set(jetworker.HeaderConsumer, "worker-x")
	m.Header.Set(jetworker.HeaderError, "planted")
	ack, err := js.PublishMsg(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	bad := ack.Sequence

	r := jw(t, env, "", "dlq", "ls")
	if r.code != 0 || !strings.Contains(r.stdout, "1 cannot be replayed") || !regexp.MustCompile(fmt.Sprintf(`(?m)^%d .* no +planted`, bad)).MatchString(r.stdout) {
		t.Errorf("dlq ls does not mark the planted entry:\n%s", r.stdout)
	}
	r = jw(t, env, "", "dlq", "show", fmt.Sprint(bad))
	if r.code != 0 || !strings.Contains(r.stdout, "Replay:    refused: ") {
		t.Errorf("dlq show does not say replay is refused:\n%s", r.stdout)
	}
	r = jw(t, env, "", "dlq", "replay", "--yes", fmt.Sprint(bad))
	if r.code != 1 || !strings.Contains(r.stderr, "not replayable") {
		t.Errorf("dlq replay %d: exit %d, want 1 naming the refusal\n%s", bad, r.code, r.stderr)
	}
	r = jw(t, env, "", "dlq", "replay", "--all", "--yes")
	if r.code != 1 || !strings.Contains(r.stderr, "not replayable") {
		t.Errorf("dlq replay --all: exit %d, want 1 naming the refusal\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	s, err := js.Stream(t.Context(), "TASKS")
	if err != nil {
		t.Fatal(err)
	}
	// The kept task and the good entry's replay: nothing purged.
	if n := s.CachedInfo().State.Msgs; n != 2 {
		t.Errorf("TASKS holds %d messages, want 2 (the kept task and the replayed good one)", n)
	}
	store, err := dlq.New(js, dlq.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get(t.Context(), bad); err != nil {
		t.Errorf("the planted entry is gone: %v", err)
	}
	if _, err := store.Get(t.Context(), good); !errors.Is(err, dlq.ErrNotFound) {
		t.Errorf("the good entry was not replayed: %v", err)
	}
}

// deadLetter stores a dead letter as the consumer would.
func deadLetter(t *testing.T, js jetstream.JetStream, id string, h nats.Header, data []byte) uint64 {
	t.Helper()
	m := nats.NewMsg("dlq.TASKS.worker-x")
	m.Data = data
	for k, vs := range h {
		m.Header[k] = vs
	}
	m.Header.Set(jetworker.HeaderTaskID, id)
	m.Header.Set(jetworker.HeaderError, "boom")
	m.Header.Set(jetworker.HeaderAttempts, "1")
	m.Header.Set(jetworker.HeaderOriginalSubject, "tasks.x")
	m.Header.Set(jetworker.HeaderOriginalStream, "TASKS")
	m.Header.Set(jetworker.HeaderOriginalSeq, "1")
	m.Header.Set(jetworker.HeaderConsumer, "worker-x")
	m.Header.Set(jetworker.HeaderFailedAt, time.Now().Format(time.RFC3339Nano))
	ack, err := js.PublishMsg(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// A task can carry terminal escapes in its ID, headers, error and
// payload: the human-readable output shows them escaped, JSON exact.
func TestTerminalOutputIsInert(t *testing.T) {
	t.Parallel()
	srv, env := natsEnv(t)
	_, js := embeddedtest.Connect(t, srv)
	const title, clear, bidi = "\x1b]0;pwned\x07", "\x1b[2J", "\u202e"
	seq := deadLetter(t, js, "id"+title, nats.Header{"X-Evil": {"v" + clear}}, []byte("line 1\nline 2"+clear+bidi))
	r := jw(t, env, "", "dlq", "show", fmt.Sprint(seq))
	if r.code != 0 || strings.ContainsAny(r.stdout, "\x1b\x07\u202e") ||
		!strings.Contains(r.stdout, `id\x1b]0;pwned\x07`) || !strings.Contains(r.stdout, `X-Evil: v\x1b[2J`) ||
		!strings.Contains(r.stdout, "line 1\nline 2\\x1b[2J\\u202e") {
		t.Fatalf("dlq show: exit %d\n%q", r.code, r.stdout)
	}
	r = jw(t, env, "", "dlq", "ls")
	if r.code != 0 || strings.ContainsAny(r.stdout, "\x1b\x07") {
		t.Fatalf("dlq ls: exit %d\n%q", r.code, r.stdout)
	}
	r = jw(t, env, "", "dlq", "show", "--json", fmt.Sprint(seq))
	var d struct {
		TaskID string `json:"task_id"`
		Data   []byte `json:"data"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || d.TaskID != "id"+title || string(d.Data) != "line 1\nline 2"+clear+bidi {
		t.Fatalf("dlq show --json is not exact: %v\n%s", err, r.stdout)
	}
	r = jw(t, env, "", "publish", "--id", "pub"+title, "tasks.x", "{}")
	if r.code != 0 || strings.ContainsAny(r.stdout, "\x1b\x07") || !strings.Contains(r.stdout, `published task pub\x1b]0;pwned\x07 as TASKS/`) {
		t.Fatalf("publish: exit %d\n%q\n%s", r.code, r.stdout, r.stderr)
	}

	// A task record is data: anyone who may write the status bucket (every
	// worker) shapes its state, worker, error and result.
	kv, err := js.CreateOrUpdateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: task.DefaultBucket})
	if err != nil {
		t.Fatal(err)
	}
	evil := "succeeded" + title + clear
	rec, err := json.Marshal(map[string]any{
		"id": "planted", "subject": "tasks.x", "state": evil, "attempt": 1, "worker": "w" + title, "last_error": "e" + clear,
		"result": []byte("r" + title), "created": "2026-12-01T00:00:00Z", "updated": "2026-12-01T00:00:01Z",
		"history": []map[string]any{{"state": evil, "at": "2026-12-01T00:00:01Z", "worker": "w" + bidi}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), "t.planted", rec); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"task", "get", "planted"}, {"task", "ls"}} {
		r = jw(t, env, "", args...)
		if r.code != 0 || strings.ContainsAny(r.stdout, "\x1b\x07\u202e") || !strings.Contains(r.stdout, `succeeded\x1b]0;pwned\x07`) {
			t.Errorf("%s: exit %d\n%q\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
}

// provision prints what it did and stops at the first failure, naming it
// and what it did not attempt.
func TestProvisionReportsWhatFailed(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.Start(t, embedded.Config{})
	_, js := embeddedtest.Connect(t, srv)
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "DLQ", Subjects: []string{"elsewhere.>"}}); err != nil {
		t.Fatal(err)
	}
	r := jw(t, []string{"JETWORKER_NATS_URL=" + srv.URL(), "JETWORKER_LOG_FORMAT=text"}, "", "provision")
	if r.code != 1 || r.stdout != "ok  stream TASKS\n" ||
		!strings.Contains(r.stderr, "jetworker provision: failed at step 2 of 6, stream DLQ: ") ||
		!strings.Contains(r.stderr, "(not attempted: buckets jetworker_schedules and jetworker_schedule_state, bucket jetworker_leases, bucket jetworker_workers, bucket jetworker_status)") {
		t.Fatalf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
}

// With only a metrics address, a worker serves /metrics and the probes
// there and no dashboard; "jetworker healthcheck" asks its /readyz.
func TestMetricsListenerAndHealthcheck(t *testing.T) {
	t.Parallel()
	_, env := natsEnv(t)
	addr := freeAddr(t)
	metricsEnv := []string{"JETWORKER_METRICS_ADDR=" + addr}
	_, _ = background(t, append(env, append(metricsEnv, "JETWORKER_WEBHOOK_URL=http://127.0.0.1:1/", "JETWORKER_WEBHOOK_SECRET=x", "JETWORKER_METRICS_TOKEN=scrape")...), "worker")
	testutil.Eventually(t, 20*time.Second, func() error {
		if r := jw(t, metricsEnv, "", "healthcheck"); r.code != 0 {
			return fmt.Errorf("healthcheck: exit %d %s %s", r.code, r.stdout, r.text())
		}
		return nil
	})
	r := jw(t, metricsEnv, "", "healthcheck")
	if r.stdout != "ok: http://"+addr+"/readyz answered 200 OK\n" {
		t.Errorf("healthcheck: %q", r.stdout)
	}
	for path, want := range map[string]int{"/": http.StatusNotFound, "/metrics": http.StatusUnauthorized, "/healthz": http.StatusOK} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s on the metrics address: %s, want %d", path, resp.Status, want)
		}
	}

	unready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "consumer worker-x: not ready", http.StatusServiceUnavailable)
	}))
	t.Cleanup(unready.Close)
	closed := freeAddr(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--url", unready.URL + "/readyz"}, "answered 503 Service Unavailable: consumer worker-x: not ready"},
		{[]string{"--url", "http://" + closed + "/readyz"}, "connection refused"},
	} {
		r := jw(t, []string{"JETWORKER_LOG_FORMAT=text"}, "", append([]string{"healthcheck"}, tt.args...)...)
		if r.code != 1 || !strings.Contains(r.stderr, tt.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("healthcheck %v: exit %d, stderr %q, want one line with %q", tt.args, r.code, r.stderr, tt.want)
		}
	}
}

// A tracked task's ID, error, progress and result can carry terminal
// escapes: task get and task ls show them escaped, --json exact.
func TestTaskOutputIsInert(t *testing.T) {
	t.Parallel()
	srv, env := natsEnv(t)
	_, js := embeddedtest.Connect(t, srv)
	const evil = "\x1b]0;pwned\x07\u202e"
	store, err := task.New(js, task.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := consumer.New(js, jetworker.HandlerFunc(func(ctx context.Context, tk *jetworker.Task) error {
		if strings.HasPrefix(tk.ID, "ok") {
			return jetworker.SetResult(ctx, []byte("result"+evil))
		}
		_ = jetworker.SetProgress(ctx, 50, "half"+evil)
		return jetworker.Permanent(errors.New("boom" + evil))
	}), consumer.Config{Durable: "evil", Tasks: store, TrackAll: true, DisablePresence: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- cons.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for _, id := range []string{"ok" + evil, "bad" + evil} {
		if r := jw(t, env, "", "publish", "--id", id, "tasks.evil", "{}"); r.code != 0 {
			t.Fatalf("publish: exit %d\n%s", r.code, r.stderr)
		}
		if r := jw(t, env, "", "task", "wait", "--timeout", "20s", id); r.code != 0 && r.code != 3 {
			t.Fatalf("wait: exit %d\n%s", r.code, r.text())
		}
	}
	raw := func(s string) bool { return strings.ContainsAny(s, "\x1b\x07\u202e") }
	r := jw(t, env, "", "task", "get", "bad"+evil)
	if raw(r.stdout) || !strings.Contains(r.stdout, `Task:       bad\x1b]0;pwned\x07\u202e`) ||
		!strings.Contains(r.stdout, `Last error: permanent: boom\x1b]0;pwned\x07\u202e`) || !strings.Contains(r.stdout, `50% half\x1b]0;pwned\x07\u202e`) {
		t.Fatalf("task get of a failed task:\n%q", r.stdout)
	}
	r = jw(t, env, "", "task", "get", "ok"+evil)
	if raw(r.stdout) || !strings.Contains(r.stdout, "Result (19 bytes, text):\n"+`result\x1b]0;pwned\x07\u202e`) {
		t.Fatalf("task get of a task with a result:\n%q", r.stdout)
	}
	for _, args := range [][]string{{"task", "ls"}, {"task", "ls", "--state", "failed"}} {
		if r := jw(t, env, "", args...); r.code != 0 || raw(r.stdout) || !strings.Contains(r.stdout, `bad\x1b]0;pwned\x07\u202e`) {
			t.Fatalf("%v: exit %d\n%q", args, r.code, r.stdout)
		}
	}
	r = jw(t, env, "", "task", "get", "--json", "bad"+evil)
	var info task.Info
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || info.ID != "bad"+evil || info.LastError != "permanent: boom"+evil ||
		info.Progress == nil || info.Progress.Message != "half"+evil {
		t.Fatalf("task get --json is not exact: %v\n%s", err, r.stdout)
	}
	r = jw(t, append(env, "JETWORKER_LOG_FORMAT=text"), "", "task", "get", "nope"+evil)
	if r.code != 1 || raw(r.stderr) || !strings.Contains(r.stderr, `nope\x1b]0;pwned\x07\u202e`) {
		t.Fatalf("task get of an unknown task: exit %d\n%q", r.code, r.stderr)
	}
}
