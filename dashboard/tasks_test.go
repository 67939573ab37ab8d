package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dashboard"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/task"
)

// taskBundle is a dashboard with a task store and a publisher that tracks.
type taskBundle struct {
	*testBundle
	store *task.Store
	pub   *publisher.Publisher
	tok   string
}

func setupTasks(t *testing.T, cfg dashboard.Config) *taskBundle {
	t.Helper()
	b := setup(t, cfg)
	provision(t, b.js)
	store, err := task.New(b.js, task.Config{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := publisher.New(b.js, publisher.Config{Tasks: store})
	if err != nil {
		t.Fatal(err)
	}
	tb := &taskBundle{testBundle: b, store: store, pub: pub}
	if cfg.BearerToken == "" {
		tb.tok = csrfToken(t, b)
	}
	return tb
}

func (tb *taskBundle) publish(t *testing.T, subj string, opts *publisher.PublishOpts) publisher.Result {
	t.Helper()
	res, err := tb.pub.Publish(t.Context(), subj, []byte(`{"subject":"`+subj+`"}`), opts)
	if err != nil {
		t.Fatalf("publish %s: %v", subj, err)
	}
	return res
}

func (tb *taskBundle) form(t *testing.T, path string, v url.Values) response {
	t.Helper()
	v.Set(dashboard.CSRFField, tb.tok)
	return tb.do(t, http.MethodPost, path, strings.NewReader(v.Encode()), "Content-Type", "application/x-www-form-urlencoded")
}

type queuedJSON struct {
	Ref       string   `json:"ref"`
	Stream    string   `json:"stream"`
	Sequence  uint64   `json:"seq"`
	ID        string   `json:"id"`
	Subject   string   `json:"subject"`
	Tracked   bool     `json:"tracked"`
	Delayed   bool     `json:"delayed"`
	Status    string   `json:"status"`
	Consumers []string `json:"consumers"`
}

type tasksBody[T any] struct {
	State  string `json:"state"`
	Source string `json:"source"`
	Tasks  []T    `json:"tasks"`
}

// TestTaskBrowserLists: pending and delayed tasks are listed from the
// stream, tracked or not, with where they are; tracked ones by state from
// their records; an ID opens a tracked task's page.
func TestTaskBrowserLists(t *testing.T) {
	t.Parallel()
	tb := setupTasks(t, dashboard.Config{})
	if _, err := consumer.Provision(t.Context(), tb.js, consumer.Config{Durable: "idle", FilterSubjects: []string{"tasks.idle.>"}}); err != nil {
		t.Fatal(err)
	}
	// Before anything is tracked, the record tabs say so, and reading does
	// not create the bucket.
	if r := tb.get(t, "/tasks?state=active"); !strings.Contains(r.body, "No task is tracked yet") {
		t.Error("active tab before any tracking: want a note that nothing is tracked yet")
	}
	if _, err := tb.js.KeyValue(t.Context(), task.DefaultBucket); err == nil {
		t.Fatal("the task bucket was created by a read-only view")
	}
	plain := tb.publish(t, "tasks.idle.plain", nil)
	tracked := tb.publish(t, "tasks.idle.report", &publisher.PublishOpts{ID: "report-7", Track: true})
	later := tb.publish(t, "tasks.idle.later", &publisher.PublishOpts{Delay: time.Hour})
	unrouted := tb.publish(t, "tasks.nobody.x", nil)

	pending := decode[tasksBody[queuedJSON]](t, tb.get(t, "/api/tasks?state=pending"))
	if pending.Source != "stream" || len(pending.Tasks) != 3 {
		t.Fatalf("pending: got source %q and %d tasks %+v, want 3 from the stream", pending.Source, len(pending.Tasks), pending.Tasks)
	}
	bySeq := map[uint64]queuedJSON{}
	for _, q := range pending.Tasks {
		bySeq[q.Sequence] = q
	}
	if q := bySeq[plain.Sequence]; q.Status != "pending" || q.Tracked || q.ID != "" || len(q.Consumers) != 1 {
		t.Errorf("untracked pending task: got %+v, want pending, untracked, one consumer", q)
	}
	if q := bySeq[tracked.Sequence]; q.Status != "pending" || !q.Tracked || q.ID != "report-7" {
		t.Errorf("tracked pending task: got %+v, want pending, tracked, ID report-7", q)
	}
	if q := bySeq[unrouted.Sequence]; q.Status != "unrouted" || q.Consumers == nil {
		t.Errorf("a task no consumer selects: got %+v, want unrouted, consumers []", q)
	}
	delayed := decode[tasksBody[queuedJSON]](t, tb.get(t, "/api/tasks?state=delayed"))
	if len(delayed.Tasks) != 1 || delayed.Tasks[0].Subject != "tasks.idle.later" || delayed.Tasks[0].Status != "delayed" || delayed.Tasks[0].Sequence != later.Sequence {
		t.Errorf("delayed: got %+v, want the delayed task on its target subject", delayed.Tasks)
	}
	filtered := decode[tasksBody[queuedJSON]](t, tb.get(t, "/api/tasks?state=pending&subject="+url.QueryEscape("tasks.idle.*")))
	if len(filtered.Tasks) != 2 {
		t.Errorf("pending by subject tasks.idle.*: got %d, want 2", len(filtered.Tasks))
	}
	records := decode[tasksBody[task.Info]](t, tb.get(t, "/api/tasks?state=tracked"))
	if records.Source != "records" || len(records.Tasks) != 1 || records.Tasks[0].ID != "report-7" || records.Tasks[0].State != task.Pending {
		t.Errorf("tracked records: got %+v, want report-7 pending", records)
	}

	page := tb.get(t, "/tasks")
	for _, want := range []string{fmt.Sprintf(`data-testid="queued-%d"`, plain.Sequence), `data-testid="tracked-report-7"`, fmt.Sprintf(`data-testid="delete-%d"`, plain.Sequence)} {
		if !strings.Contains(page.body, want) {
			t.Errorf("pending page: want %s", want)
		}
	}
	// An ID of a tracked task opens its page, with the stored payload.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, tb.http.URL+"/tasks?id=report-7", nil)
	if res := tb.noRedirect(t, req); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/tasks/report-7" {
		t.Errorf("search by a tracked ID: got %d to %q, want 303 to /tasks/report-7", res.StatusCode, res.Header.Get("Location"))
	}
	r := tb.get(t, "/tasks/report-7")
	if r.code != http.StatusOK || !strings.Contains(r.body, `data-events="/api/tasks/report-7/events"`) || !strings.Contains(r.body, "tasks.idle.report") {
		t.Errorf("tracked task page: got %d, want the live task with its payload", r.code)
	}
	// An untracked task's page, by stream and sequence.
	r = tb.get(t, fmt.Sprintf("/tasks/ref/TASKS/%d", plain.Sequence))
	if r.code != http.StatusOK || !strings.Contains(r.body, `data-testid="ref-status">pending`) || !strings.Contains(r.body, `&#34;subject&#34;: &#34;tasks.idle.plain&#34;`) {
		t.Errorf("untracked task page: got %d, want it pending with its payload indented", r.code)
	}
	for _, path := range []string{"/tasks/nope", "/tasks/ref/TASKS/99999", "/tasks/ref/DLQ/1", "/api/tasks/nope", "/api/tasks/ref/TASKS/99999"} {
		if r := tb.get(t, path); r.code != http.StatusNotFound {
			t.Errorf("GET %s: got %d, want 404", path, r.code)
		}
	}
	if r := tb.get(t, "/api/tasks?state=bogus"); r.code != http.StatusBadRequest {
		t.Errorf("an unknown state: got %d, want 400", r.code)
	}
}

// TestTaskActions: delete a pending untracked task, run a delayed one now,
// cancel a tracked pending one, and cancel a running one, which stops its
// handler.
func TestTaskActions(t *testing.T) {
	t.Parallel()
	tb := setupTasks(t, dashboard.Config{})
	if _, err := consumer.Provision(t.Context(), tb.js, consumer.Config{Durable: "idle", FilterSubjects: []string{"tasks.idle.>"}}); err != nil {
		t.Fatal(err)
	}
	stored := func(seq uint64) bool {
		st, _ := tb.js.Stream(t.Context(), "TASKS")
		_, err := st.GetMsg(t.Context(), seq)
		return err == nil
	}
	// Delete a pending untracked task.
	plain := tb.publish(t, "tasks.idle.plain", nil)
	r := tb.form(t, fmt.Sprintf("/tasks/ref/TASKS/%d/delete", plain.Sequence), url.Values{})
	if r.code != http.StatusOK || !strings.Contains(r.body, "removed from its stream") || stored(plain.Sequence) {
		t.Errorf("delete a pending task: got %d, stored %v; want it removed", r.code, stored(plain.Sequence))
	}
	// Run a delayed task now.
	later := tb.publish(t, "tasks.idle.later", &publisher.PublishOpts{Delay: time.Hour})
	r = tb.form(t, fmt.Sprintf("/tasks/ref/TASKS/%d/run-now", later.Sequence), url.Values{})
	if r.code != http.StatusOK || !strings.Contains(r.body, "Released now as TASKS/") {
		t.Errorf("run a delayed task now: got %d, want it released", r.code)
	}
	pending := decode[tasksBody[queuedJSON]](t, tb.get(t, "/api/tasks?state=pending&subject=tasks.idle.later"))
	if len(pending.Tasks) != 1 {
		t.Errorf("after run-now: %d pending tasks.idle.later, want 1", len(pending.Tasks))
	}
	if r := tb.form(t, fmt.Sprintf("/tasks/ref/TASKS/%d/run-now", later.Sequence), url.Values{}); !strings.Contains(r.body, "flash err") {
		t.Error("run-now twice: want an error the second time")
	}
	// Cancel a tracked pending task through the API.
	tracked := tb.publish(t, "tasks.idle.report", &publisher.PublishOpts{ID: "report-8", Track: true})
	r = tb.do(t, http.MethodPost, "/api/tasks/report-8/cancel", nil, dashboard.CSRFHeader, tb.tok)
	if r.code != http.StatusOK || !strings.Contains(r.body, `"state": "cancelled"`) || stored(tracked.Sequence) {
		t.Errorf("cancel a tracked pending task: got %d %s, want it cancelled and removed", r.code, r.body)
	}
	if r := tb.do(t, http.MethodPost, "/api/tasks/report-8/cancel", nil, dashboard.CSRFHeader, tb.tok); r.code != http.StatusConflict {
		t.Errorf("cancel a finished task: got %d, want 409", r.code)
	}
	if r := tb.do(t, http.MethodPost, "/api/tasks/report-8/cancel", nil); r.code != http.StatusForbidden {
		t.Errorf("cancel without the CSRF token: got %d, want 403", r.code)
	}

	// Cancel a running tracked task from its page.
	started, stopped := make(chan struct{}), make(chan error, 1)
	startConsumer(t, tb.js, func(ctx context.Context, tk *jetworker.Task) error {
		close(started)
		<-ctx.Done()
		stopped <- context.Cause(ctx)
		return ctx.Err()
	}, consumer.Config{Durable: "slow", FilterSubjects: []string{"tasks.slow.>"}, Tasks: tb.store, DisablePresence: true})
	tb.publish(t, "tasks.slow.x", &publisher.PublishOpts{ID: "slow-1", Track: true})
	<-started
	testutil.Eventually(t, 5*time.Second, func() error {
		if info, _ := tb.store.Get(t.Context(), "slow-1"); info.State != task.Active {
			return fmt.Errorf("state %q, want active", info.State)
		}
		return nil
	})
	r = tb.form(t, "/tasks/slow-1/cancel", url.Values{})
	if r.code != http.StatusOK || !strings.Contains(r.body, "Cancel requested") {
		t.Errorf("cancel a running task: got %d, want the task page saying the cancel was requested", r.code)
	}
	select {
	case cause := <-stopped:
		if !errors.Is(cause, task.ErrCancelled) {
			t.Errorf("handler context cause: got %v, want task.ErrCancelled", cause)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the running task was not stopped")
	}
	info, err := tb.store.Wait(t.Context(), "slow-1")
	if err != nil || info.State != task.Cancelled {
		t.Errorf("after cancel: got %q %v, want cancelled", info.State, err)
	}
}

// sseEvent is one event read from an event stream.
type sseEvent struct {
	name string
	data string
}

// readEvents reads events from an event stream until it ends.
func readEvents(body *bufio.Reader, out chan<- sseEvent) {
	defer close(out)
	var ev sseEvent
	for {
		line, err := body.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if ev.name != "" {
				out <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			ev.name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[len("data: "):]
		}
	}
}

// TestTaskEvents: the event stream sends the record as it is first, then
// each change, ends after a terminal state, and costs nothing once the
// client goes away.
func TestTaskEvents(t *testing.T) {
	t.Parallel()
	tb := setupTasks(t, dashboard.Config{})
	if _, err := consumer.Provision(t.Context(), tb.js, consumer.Config{Durable: "idle", FilterSubjects: []string{"tasks.idle.>"}}); err != nil {
		t.Fatal(err)
	}
	// Its own server, so that Close tells whether its handlers returned.
	hs := httptest.NewServer(tb.dash.Handler())
	open := func(ctx context.Context, id string) (*http.Response, chan sseEvent) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+"/api/tasks/"+id+"/events", nil)
		res, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		events := make(chan sseEvent, 16)
		if res.StatusCode == http.StatusOK {
			go readEvents(bufio.NewReader(res.Body), events)
		} else {
			close(events)
		}
		return res, events
	}
	next := func(events chan sseEvent) sseEvent {
		t.Helper()
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("the event stream ended early")
			}
			return ev
		case <-time.After(10 * time.Second):
			t.Fatal("no event within 10s")
		}
		return sseEvent{}
	}
	state := func(ev sseEvent) task.Info {
		t.Helper()
		var info task.Info
		if ev.name != "task" || json.Unmarshal([]byte(ev.data), &info) != nil {
			t.Fatalf("event: got %q %s, want a task event", ev.name, ev.data)
		}
		return info
	}

	if res, _ := open(t.Context(), "nope"); res.StatusCode != http.StatusNotFound {
		t.Errorf("events of an unknown task: got %d, want 404", res.StatusCode)
	}
	tb.publish(t, "tasks.idle.report", &publisher.PublishOpts{ID: "r1", Track: true})
	ctx, cancel := context.WithCancel(t.Context())
	res, events := open(ctx, "r1")
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type: got %q, want text/event-stream", ct)
	}
	if info := state(next(events)); info.ID != "r1" || info.State != task.Pending {
		t.Fatalf("first event: got %s %s, want r1 as it is now (pending)", info.ID, info.State)
	}
	// A change arrives as it happens.
	if _, err := tb.store.Cancel(t.Context(), "r1"); err != nil {
		t.Fatal(err)
	}
	for {
		info := state(next(events))
		if info.State == task.Cancelled {
			break
		}
	}
	if ev := next(events); ev.name != "end" {
		t.Errorf("after a terminal state: got %q, want end", ev.name)
	}
	cancel()
	res.Body.Close()

	// A client that goes away while the task waits: the handler returns.
	tb.publish(t, "tasks.idle.report", &publisher.PublishOpts{ID: "r2", Track: true})
	ctx, cancel = context.WithCancel(t.Context())
	res, events = open(ctx, "r2")
	if info := state(next(events)); info.ID != "r2" {
		t.Fatalf("first event: got %s, want r2", info.ID)
	}
	cancel()
	res.Body.Close()
	closed := make(chan struct{})
	go func() { hs.Close(); close(closed) }() // Close waits for every handler
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("an event stream handler kept running after its client went away")
	}
}

// TestTaskEventsEndWithRun: an open event stream does not hold Run's
// shutdown back: it ends as Run stops, and Run returns at once.
func TestTaskEventsEndWithRun(t *testing.T) {
	t.Parallel()
	tb := setupTasks(t, dashboard.Config{Addr: "127.0.0.1:0", ShutdownTimeout: 30 * time.Second})
	if _, err := consumer.Provision(t.Context(), tb.js, consumer.Config{Durable: "idle", FilterSubjects: []string{"tasks.idle.>"}}); err != nil {
		t.Fatal(err)
	}
	tb.publish(t, "tasks.idle.report", &publisher.PublishOpts{ID: "r1", Track: true})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- tb.dash.Run(ctx) }()
	<-tb.dash.Ready()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+tb.dash.Addr()+"/api/tasks/r1/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	events := make(chan sseEvent, 4)
	go readEvents(bufio.NewReader(res.Body), events)
	if ev := <-events; ev.name != "task" {
		t.Fatalf("first event: got %q, want task", ev.name)
	}
	began := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return with an event stream open")
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Run took %s to stop with an event stream open, want it at once (not ShutdownTimeout)", took)
	}
	for range events {
	} // the stream ends
}

// TestPagesWithNATSDown: with the connection down the pages answer at once
// and say the state is unknown, never that there is nothing.
func TestPagesWithNATSDown(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{})
	provision(t, b.js)
	b.srv.Shutdown()
	testutil.Eventually(t, 5*time.Second, func() error {
		if b.nc.IsConnected() {
			return errors.New("still connected")
		}
		return nil
	})
	for path, want := range map[string]string{
		"/":                        "State unknown.",
		"/tasks":                   "the tasks cannot be read",
		"/tasks?state=failed":      "the tasks cannot be read",
		"/dead-letters":            "the dead letters cannot be read",
		"/workers":                 "the workers cannot be read",
		"/schedules":               "the schedules cannot be read",
		"/api/tasks?state=pending": "NATS is not connected",
	} {
		began := time.Now()
		r := b.get(t, path)
		if took := time.Since(began); took > 2*time.Second {
			t.Errorf("GET %s with NATS down took %s, want an answer at once", path, took)
		}
		if !strings.Contains(r.body, want) {
			t.Errorf("GET %s with NATS down: want %q in %d %s", path, want, r.code, r.body)
		}
		for _, wrong := range []string{"every task published has finished", "Nothing has failed for good", "No live workers", "No schedules yet"} {
			if strings.Contains(r.body, wrong) {
				t.Errorf("GET %s with NATS down says %q, want unknown", path, wrong)
			}
		}
	}
	if r := b.get(t, "/api/tasks?state=pending"); r.code != http.StatusServiceUnavailable {
		t.Errorf("API with NATS down: got %d, want 503", r.code)
	}
}

// TestPagesWithJetStreamOff: with the connection up but JetStream not
// answering (here disabled on the server), every page and API read gives
// up after the page budget and says the state is unknown, instead of
// waiting on 5s request timeouts (several in a row on some pages). Each
// request is sent with a 4s deadline, so a page that waits for a request
// timeout fails here rather than slowly.
func TestPagesWithJetStreamOff(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{})
	provision(t, b.js)
	if err := b.srv.NATSServer().DisableJetStream(); err != nil {
		t.Fatal(err)
	}
	const unknown = "unknown for now: JetStream did not answer within 1s"
	var wg sync.WaitGroup
	for _, path := range []string{
		"/", "/dead-letters", "/dead-letters/1", "/dead-letters/confirm?action=replay", "/tasks", "/tasks?state=delayed",
		"/tasks?state=failed", "/tasks/some-id", "/tasks/ref/TASKS/1", "/schedules", "/schedules/nightly", "/workers",
		"/api/overview", "/api/dead-letters", "/api/dead-letters/1", "/api/dead-letters/count", "/api/tasks", "/api/tasks/some-id",
		"/api/tasks/ref/TASKS/1", "/api/schedules", "/api/schedules/nightly", "/api/workers",
	} {
		wg.Go(func() { // all at once: each waits for the page budget
			ctx, cancel := context.WithTimeout(t.Context(), 4*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.http.URL+path, nil)
			res, err := b.http.Client().Do(req)
			if err != nil {
				t.Errorf("GET %s with JetStream off: %v; want an answer within the page budget", path, err)
				return
			}
			defer res.Body.Close()
			data, _ := io.ReadAll(res.Body)
			body := string(data)
			if !strings.Contains(body, unknown) {
				t.Errorf("GET %s with JetStream off: got %d, want %q in %.300s", path, res.StatusCode, unknown, body)
			}
			if strings.HasPrefix(path, "/api/") && path != "/api/overview" && res.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("GET %s with JetStream off: got %d, want 503", path, res.StatusCode)
			}
			for _, wrong := range []string{"every task published has finished", "Nothing has failed for good", "No live workers", "No schedules yet", `"known": true`} {
				if strings.Contains(body, wrong) {
					t.Errorf("GET %s with JetStream off says %q, want unknown", path, wrong)
				}
			}
		})
	}
	wg.Wait()
}
