package dashboard_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dashboard"
	"github.com/jetworker/jetworker/dlq"
	"github.com/jetworker/jetworker/internal/outboxdata"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/schedule"
	"github.com/jetworker/jetworker/task"
)

var snakeKey = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// checkJSON walks a JSON document and reports keys that are not
// snake_case and, unless nullOK, null values. The values of "header" are
// message headers, whose names are data: they are not walked. A chart's
// points are null where the series had no value, as documented.
func checkJSON(t *testing.T, what string, body []byte, nullOK bool) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: not JSON: %v: %s", what, err, body)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case nil:
			if !nullOK {
				t.Errorf("%s: %s is null, want a value ([] for a list)", what, path)
			}
		case map[string]any:
			for k, e := range x {
				if !snakeKey.MatchString(k) {
					t.Errorf("%s: key %s.%s is not snake_case", what, path, k)
				}
				switch {
				case k == "header":
				case k == "points" && !nullOK:
					nullOK = true
					walk(path+"."+k, e)
					nullOK = false
				default:
					walk(path+"."+k, e)
				}
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		}
	}
	walk("$", v)
}

// TestAPIEmptyLists: with nothing to show, every list endpoint answers
// [] (never null), and every key is snake_case.
func TestAPIEmptyLists(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{Addr: "127.0.0.1:0", SampleInterval: 50 * time.Millisecond})
	provision(t, b.js)
	b.run(t)
	for path, list := range map[string]string{
		"/api/overview":              "streams consumers",
		"/api/dead-letters":          "entries",
		"/api/workers":               "",
		"/api/schedules":             "schedules",
		"/api/tasks?state=pending":   "tasks",
		"/api/tasks?state=delayed":   "tasks",
		"/api/tasks?state=active":    "tasks",
		"/api/tasks?state=tracked":   "tasks",
		"/api/charts":                "times series",
		"/api/dead-letters/count":    "",
		"/api/csrf-token":            "",
		"/readyz":                    "checks",
		"/healthz":                   "",
		"/api/overview?window=15m0s": "consumers",
	} {
		r := b.get(t, path)
		if r.code != http.StatusOK {
			t.Errorf("GET %s: got %d %s, want 200", path, r.code, r.body)
			continue
		}
		if ct := r.hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("GET %s: Content-Type %q, want JSON", path, ct)
		}
		checkJSON(t, "GET "+path, []byte(r.body), false)
		if path == "/api/workers" && strings.TrimSpace(r.body) != "[]" {
			t.Errorf("GET /api/workers with no workers: got %s, want []", r.body)
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(r.body), &m)
		for _, key := range strings.Fields(list) {
			if l, ok := m[key].([]any); !ok {
				t.Errorf("GET %s: %s is %v, want a list", path, key, m[key])
			} else if len(l) != 0 && key != "streams" && key != "checks" && key != "times" && key != "series" {
				t.Errorf("GET %s: %s has %d items, want []", path, key, len(l))
			}
		}
	}
}

// TestAPIKeysWithData: the responses of every endpoint, with data in them,
// use snake_case keys throughout, and errors are {"error": "..."}.
func TestAPIKeysWithData(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	lb := setupLoad(t, dashboard.Config{Addr: "127.0.0.1:0", SampleInterval: 50 * time.Millisecond,
		Outbox: fixedOutbox{outboxdata.Stats{Pending: 3, Due: 1, Lag: 2 * time.Second, Dead: 1}},
		OutboxDeadFunc: deadRows(outboxdata.DeadRow{ID: 7, MsgID: "lost-1", Subject: "nowhere.x", Data: []byte(`{}`),
			Header: nats.Header{"X-Tenant": {"acme"}}, Reason: "no stream captures nowhere.x", FailedAt: now, CreatedAt: now, AvailableAt: now})})
	lb.run(t)
	lb.kill(t, "tasks.load.a.x", "tasks.load.b.x", "tasks.load.c.x")
	if _, err := consumer.Provision(t.Context(), lb.js, consumer.Config{Durable: "idle", FilterSubjects: []string{"tasks.idle.>"}}); err != nil {
		t.Fatal(err)
	}
	store, _ := task.New(lb.js, task.Config{})
	pub, _ := publisher.New(lb.js, publisher.Config{Tasks: store})
	tracked, err := pub.Publish(t.Context(), "tasks.idle.report", []byte(`{}`), &publisher.PublishOpts{ID: "rep-1", Track: true, Header: nats.Header{"X-Tenant": {"acme"}}})
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := pub.Publish(t.Context(), "tasks.idle.plain", []byte(`{}`), nil)
	if _, err := pub.Publish(t.Context(), "tasks.idle.later", []byte(`{}`), &publisher.PublishOpts{Delay: time.Hour}); err != nil {
		t.Fatal(err)
	}
	sched, _ := schedule.NewStore(lb.js, schedule.StoreConfig{})
	if _, err := sched.Put(t.Context(), schedule.Entry{Name: "nightly", Spec: "@daily", Subject: "tasks.idle.nightly", Header: nats.Header{"X-Kind": {"n"}}}); err != nil {
		t.Fatal(err)
	}
	page, _ := lb.dead.List(t.Context(), dlq.Filter{}, 0, 0)
	seq := page.Entries[0].Sequence
	testutil.Eventually(t, 10*time.Second, func() error {
		if c := decode[chartsBody](t, lb.get(t, "/api/charts")); c.peak("published") <= 0 || c.peak("processed") < 0 {
			return fmt.Errorf("charts not sampled yet")
		}
		return nil
	})
	for _, path := range []string{
		"/api/overview", "/api/dead-letters", "/api/dead-letters/" + itoa(seq), "/api/dead-letters/count?subject=tasks.load.>",
		"/api/workers", "/api/schedules", "/api/schedules/nightly", "/api/charts",
		"/api/tasks?state=pending", "/api/tasks?state=delayed", "/api/tasks?state=tracked", "/api/tasks/rep-1",
		"/api/tasks/ref/TASKS/" + itoa(tracked.Sequence), "/readyz", "/api/outbox",
	} {
		r := lb.get(t, path)
		if r.code != http.StatusOK {
			t.Errorf("GET %s: got %d %s", path, r.code, r.body)
			continue
		}
		checkJSON(t, "GET "+path, []byte(r.body), true)
	}
	for _, m := range []struct{ method, path, body string }{
		{http.MethodPost, "/api/dead-letters/" + itoa(seq) + "/replay", ""},
		{http.MethodPost, "/api/dead-letters/delete", `{"seqs":[` + itoa(page.Entries[1].Sequence) + `]}`},
		{http.MethodPost, "/api/schedules/nightly/trigger", ""},
		{http.MethodPut, "/api/schedules/hourly", `{"spec":"@hourly","subject":"tasks.idle.hourly"}`},
		{http.MethodPost, "/api/tasks/rep-1/cancel", ""},
		{http.MethodDelete, "/api/tasks/ref/TASKS/" + itoa(plain.Sequence), ""},
	} {
		r := lb.do(t, m.method, m.path, strings.NewReader(m.body), dashboard.CSRFHeader, lb.tok)
		if r.code != http.StatusOK {
			t.Errorf("%s %s: got %d %s", m.method, m.path, r.code, r.body)
			continue
		}
		checkJSON(t, m.method+" "+m.path, []byte(r.body), true)
	}
	// Errors are JSON objects with an error string, whatever went wrong.
	for _, e := range []struct {
		method, path, body string
		code               int
	}{
		{http.MethodGet, "/api/dead-letters/999999", "", 404},
		{http.MethodGet, "/api/dead-letters?since=yesterday", "", 400},
		{http.MethodGet, "/api/tasks/nope", "", 404},
		{http.MethodGet, "/api/tasks?state=bogus", "", 400},
		{http.MethodGet, "/api/schedules/nope", "", 404},
		{http.MethodGet, "/api/nope", "", 404},
		{http.MethodPost, "/api/dead-letters/replay", "{", 400},
		{http.MethodPost, "/api/tasks/rep-1/cancel", "", 409},
		{http.MethodPost, "/api/schedules/nightly/pause", "", 403}, // no CSRF token
	} {
		hdr := []string{dashboard.CSRFHeader, lb.tok}
		if e.code == 403 {
			hdr = nil
		}
		r := lb.do(t, e.method, e.path, strings.NewReader(e.body), hdr...)
		var body map[string]any
		if r.code != e.code || json.Unmarshal([]byte(r.body), &body) != nil || body["error"] == nil {
			t.Errorf("%s %s: got %d %s, want %d with {\"error\": ...}", e.method, e.path, r.code, r.body, e.code)
			continue
		}
		if _, ok := body["error"].(string); !ok {
			t.Errorf("%s %s: error is %v, want a string", e.method, e.path, body["error"])
		}
	}
}
