package taskhttp_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/streams"
	"github.com/jetworker/jetworker/task"
	"github.com/jetworker/jetworker/task/taskhttp"
)

const prefix = "/jobs"

type testBundle struct {
	js    jetstream.JetStream
	store *task.Store
	pub   *publisher.Publisher
	srv   *httptest.Server
	h     *taskhttp.Handler
	// step lets a "steps" task take its next step.
	step chan struct{}
	// streamEnded receives the path of every events request whose handler
	// returned.
	streamEnded chan string
}

// job is the payload the test worker understands.
type job struct {
	Mode  string `json:"mode"`
	Steps int    `json:"steps,omitempty"`
}

// setup starts a server, a worker on tasks.http.> and the handler at
// /jobs (cfg.Subject defaults to tasks.http.job), served by httptest.
func setup(t *testing.T, cfg taskhttp.Config) testBundle {
	t.Helper()
	srv := embeddedtest.Start(t, embedded.Config{})
	_, js := embeddedtest.Connect(t, srv)
	if err := streams.Provision(t.Context(), js, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	log := testutil.Logger(t, slog.LevelWarn)
	store, err := task.New(js, task.Config{Logger: log, MaxResult: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Provision(t.Context()); err != nil {
		t.Fatal(err)
	}
	pub, err := publisher.New(js, publisher.Config{Tasks: store, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	b := testBundle{js: js, store: store, pub: pub, step: make(chan struct{}), streamEnded: make(chan string, 16)}
	b.worker(t, log)

	if cfg.Subject == "" {
		cfg.Subject = "tasks.http.job"
	}
	cfg.Prefix = prefix
	cfg.Logger = log
	h, err := taskhttp.New(store, pub, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.h = h
	mux := http.NewServeMux()
	mux.Handle(prefix, h)
	mux.Handle(prefix+"/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if strings.HasSuffix(r.URL.Path, "/events") {
			b.streamEnded <- r.URL.Path
		}
	}))
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	return b
}

func (b testBundle) worker(t *testing.T, log *slog.Logger) {
	t.Helper()
	h := jetworker.HandlerFunc(func(ctx context.Context, tk *jetworker.Task) error {
		var j job
		if err := json.Unmarshal(tk.Data, &j); err != nil {
			return jetworker.Permanent(err)
		}
		switch j.Mode {
		case "steps":
			for i := 1; i <= j.Steps; i++ {
				select {
				case <-b.step:
				case <-ctx.Done():
					return context.Cause(ctx)
				}
				if err := jetworker.SetProgress(ctx, float64(100*i/j.Steps), fmt.Sprintf("step %d of %d", i, j.Steps)); err != nil {
					return err
				}
			}
			return jetworker.SetResult(ctx, fmt.Appendf(nil, `{"steps": %d}`, j.Steps))
		case "text":
			return jetworker.SetResult(ctx, []byte("https://files.example.com/7.pdf"))
		case "binary":
			return jetworker.SetResult(ctx, []byte{0xff, 0x00, 0xfe})
		case "big":
			if err := jetworker.SetResult(ctx, bytes.Repeat([]byte("x"), 5<<10)); err != nil {
				return jetworker.Permanent(err)
			}
			return nil
		case "bad-progress":
			if err := jetworker.SetProgress(ctx, 30, "fine"); err != nil {
				return err
			}
			err := jetworker.SetProgress(ctx, 150, "too far")
			return jetworker.SetResult(ctx, fmt.Appendf(nil, `{"invalid_progress":%t}`, errors.Is(err, task.ErrInvalidProgress)))
		case "block":
			<-ctx.Done()
			return context.Cause(ctx)
		case "stubborn": // finishes although it was cancelled
			<-ctx.Done()
			return nil
		}
		return jetworker.Permanent(fmt.Errorf("unknown mode %q", j.Mode))
	})
	c, err := consumer.New(b.js, h, consumer.Config{
		Durable: "http", FilterSubjects: []string{"tasks.http.>"}, Tasks: b.store, DisablePresence: true, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("consumer: %v", err)
		}
	})
	select {
	case <-c.Ready():
	case err := <-done:
		t.Fatalf("consumer: %v", err)
	}
}

// ended waits for the events handler of path to return.
func (b testBundle) ended(t *testing.T, path string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case p := <-b.streamEnded:
			if p == path {
				return
			}
		case <-timeout:
			t.Fatalf("the events handler of %s did not return", path)
		}
	}
}

// do sends a request and returns the answer with its body read, without
// following redirects.
func (b testBundle) do(t *testing.T, method, path, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, b.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

// post enqueues a job and returns its Location.
func (b testBundle) post(t *testing.T, j job) string {
	t.Helper()
	body, _ := json.Marshal(j)
	resp, data := b.do(t, "POST", prefix, string(body))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s: got %d %s, want 202", body, resp.StatusCode, data)
	}
	return resp.Header.Get("Location")
}

func (b testBundle) status(t *testing.T, path string) taskhttp.Status {
	t.Helper()
	resp, data := b.do(t, "GET", path, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: got %d %s, want 200", path, resp.StatusCode, data)
	}
	var st taskhttp.Status
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, data)
	}
	return st
}

// until polls the status at path until cond accepts it.
func (b testBundle) until(t *testing.T, path string, cond func(taskhttp.Status) error) taskhttp.Status {
	t.Helper()
	var st taskhttp.Status
	testutil.Eventually(t, 15*time.Second, func() error {
		st = b.status(t, path)
		return cond(st)
	})
	return st
}

func inState(want task.State) func(taskhttp.Status) error {
	return func(st taskhttp.Status) error {
		if st.State != want {
			return fmt.Errorf("state %s, want %s", st.State, want)
		}
		return nil
	}
}

func TestPostPollResult(t *testing.T) {
	t.Parallel()
	b := setup(t, taskhttp.Config{})
	resp, data := b.do(t, "POST", prefix, `{"mode":"steps","steps":2}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: got %d %s, want 202", resp.StatusCode, data)
	}
	var acc taskhttp.Accepted
	if err := json.Unmarshal(data, &acc); err != nil {
		t.Fatal(err)
	}
	loc := resp.Header.Get("Location")
	if acc.ID == "" || loc != prefix+"/"+acc.ID || acc.Links.Self != loc || acc.Links.Events != loc+"/events" || acc.State != task.Pending {
		t.Fatalf("202: Location %q body %s; want Location %s/{id}, the links and state pending", loc, data, prefix)
	}
	if got := resp.Header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After: got %q, want 1", got)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control: got %q, want no-store", got)
	}

	b.step <- struct{}{}
	st := b.until(t, loc, func(st taskhttp.Status) error {
		if st.State != task.Active || st.Progress == nil || st.Progress.Percent != 50 {
			return fmt.Errorf("state %s progress %+v, want active at 50%%", st.State, st.Progress)
		}
		return nil
	})
	if st.Progress.Message != "step 1 of 2" || st.Attempt != 1 || st.Result != nil {
		t.Fatalf("while running: %+v", st)
	}
	b.step <- struct{}{}
	st = b.until(t, loc, inState(task.Succeeded))
	if string(st.Result) != `{"steps":2}` || st.ResultEncoding != taskhttp.EncodingJSON {
		t.Fatalf("result %s (%s), want the JSON result as JSON", st.Result, st.ResultEncoding)
	}
	var states []task.State
	for _, tr := range st.History {
		states = append(states, tr.State)
	}
	if want := []task.State{task.Pending, task.Active, task.Succeeded}; !slices.Equal(states, want) {
		t.Fatalf("history %v, want %v", states, want)
	}
	resp, _ = b.do(t, "GET", loc, "")
	if resp.Header.Get("Retry-After") != "" {
		t.Errorf("Retry-After on a finished task: %q, want none", resp.Header.Get("Retry-After"))
	}
}

func TestResults(t *testing.T) {
	t.Parallel()
	b := setup(t, taskhttp.Config{})
	for _, tc := range []struct {
		mode     string
		state    task.State
		encoding string
		result   string // as the task set it
		raw      string // as it is shown
		lastErr  string
	}{
		{mode: "text", state: task.Succeeded, encoding: taskhttp.EncodingText, result: "https://files.example.com/7.pdf", raw: `"https://files.example.com/7.pdf"`},
		{mode: "binary", state: task.Succeeded, encoding: taskhttp.EncodingBase64, result: "\xff\x00\xfe", raw: `"/wD+"`},
		{mode: "bad-progress", state: task.Succeeded, encoding: taskhttp.EncodingJSON, result: `{"invalid_progress":true}`, raw: `{"invalid_progress":true}`},
		{mode: "big", state: task.Failed, lastErr: "task: result too large: 5120 bytes, more than the 4096 allowed"},
		{mode: "nonsense", state: task.Failed, lastErr: `unknown mode "nonsense"`},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			loc := b.post(t, job{Mode: tc.mode})
			st := b.until(t, loc, func(st taskhttp.Status) error {
				if !st.State.Terminal() {
					return fmt.Errorf("state %s", st.State)
				}
				return nil
			})
			if st.State != tc.state || st.ResultEncoding != tc.encoding || string(st.Result) != tc.raw || !strings.Contains(st.LastError, tc.lastErr) {
				t.Fatalf("got %s, result %s (%q), error %q; want %s, %s (%q), error %q",
					st.State, st.Result, st.ResultEncoding, st.LastError, tc.state, tc.raw, tc.encoding, tc.lastErr)
			}
			got, err := st.ResultBytes()
			if err != nil || string(got) != tc.result {
				t.Fatalf("ResultBytes: %q, %v; want %q", got, err, tc.result)
			}
			if tc.mode == "bad-progress" && (st.Progress == nil || st.Progress.Percent != 30) {
				t.Fatalf("progress after an invalid report: %+v, want the last valid one (30%%)", st.Progress)
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	b := setup(t, taskhttp.Config{MaxBody: 64})
	long := strings.Repeat("x", taskhttp.MaxIDLength+1)
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		allow                    string
		msg                      string
	}{
		{"not JSON", "POST", prefix, `{"mode":`, 400, "", "request body is not JSON: unexpected end of JSON input"},
		{"empty body", "POST", prefix, "", 400, "", "empty request body: want a JSON value"},
		{"two JSON values", "POST", prefix, `{} {}`, 400, "", "request body is not JSON"},
		{"body too large", "POST", prefix, `{"pad":"` + strings.Repeat("x", 64) + `"}`, 413, "", "request body of 74 bytes, more than the 64 allowed"},
		{"unknown ID", "GET", prefix + "/nope", "", 404, "", `no task "nope"`},
		{"cancel of an unknown ID", "DELETE", prefix + "/nope", "", 404, "", `no task "nope"`},
		{"events of an unknown ID", "GET", prefix + "/nope/events", "", 404, "", `no task "nope"`},
		{"an ID too long", "GET", prefix + "/" + long, "", 404, "", "no task with an ID of 257 bytes"},
		{"method on the collection", "GET", prefix, "", 405, "POST", "method GET not allowed"},
		{"method on a task", "PUT", prefix + "/x", "", 405, "GET, HEAD, DELETE", "method PUT not allowed"},
		{"method on events", "POST", prefix + "/x/events", "", 405, "GET, HEAD", "method POST not allowed"},
		{"no such endpoint", "GET", prefix + "/x/y", "", 404, "", "no endpoint GET /jobs/x/y"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, data := b.do(t, tc.method, tc.path, tc.body)
			var e taskhttp.ErrorBody
			if err := json.Unmarshal(data, &e); err != nil {
				t.Fatalf("body %q is not a JSON error: %v", data, err)
			}
			if resp.StatusCode != tc.code || !strings.Contains(e.Error, tc.msg) {
				t.Fatalf("got %d %q, want %d with %q", resp.StatusCode, e.Error, tc.code, tc.msg)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
	t.Run("body too large without a length", func(t *testing.T) {
		t.Parallel()
		// A reader of unknown length: sent chunked, without Content-Length.
		body := io.MultiReader(strings.NewReader(`{"pad":"` + strings.Repeat("x", 100) + `"}`))
		resp, err := http.Post(b.srv.URL+prefix, "application/json", body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 413 || !strings.Contains(string(data), "request body larger than the 64 bytes allowed") {
			t.Fatalf("got %d %s, want 413", resp.StatusCode, data)
		}
	})
}

func TestDecodeAndIDFuncs(t *testing.T) {
	t.Parallel()
	b := setup(t, taskhttp.Config{
		DecodeFunc: func(r *http.Request, body []byte) ([]byte, error) {
			var j job
			if err := json.Unmarshal(body, &j); err != nil || j.Mode == "" {
				return nil, errors.New(`want {"mode": "..."}`)
			}
			return json.Marshal(j)
		},
		IDFunc: func(r *http.Request, _ []byte) (string, error) {
			if k := r.Header.Get("Idempotency-Key"); k != "" {
				return k, nil
			}
			return "", errors.New("an Idempotency-Key header is required")
		},
		Publish: publisher.PublishOpts{MaxAttempts: 1},
	})
	if resp, data := b.do(t, "POST", prefix, `{"steps":1}`, "Idempotency-Key", "k1"); resp.StatusCode != 400 || !strings.Contains(string(data), `want {\"mode\": \"...\"}`) {
		t.Fatalf("DecodeFunc's refusal: got %d %s, want 400 with its error", resp.StatusCode, data)
	}
	if resp, data := b.do(t, "POST", prefix, `{"mode":"text"}`); resp.StatusCode != 400 || !strings.Contains(string(data), "Idempotency-Key header is required") {
		t.Fatalf("IDFunc's refusal: got %d %s, want 400 with its error", resp.StatusCode, data)
	}

	// An ID with characters that need escaping in a path.
	const id = "order 7/invoice"
	resp, data := b.do(t, "POST", prefix, `{"mode":"text"}`, "Idempotency-Key", id)
	want := prefix + "/" + url.PathEscape(id)
	if resp.StatusCode != 202 || resp.Header.Get("Location") != want {
		t.Fatalf("POST: got %d Location %q %s; want 202 at %s", resp.StatusCode, resp.Header.Get("Location"), data, want)
	}
	st := b.until(t, want, inState(task.Succeeded))
	if st.ID != id || st.MaxAttempts != 1 {
		t.Fatalf("status %+v: want ID %q with MaxAttempts 1 from Config.Publish", st, id)
	}
	// The same key again: the same task, nothing published.
	resp, data = b.do(t, "POST", prefix, `{"mode":"text"}`, "Idempotency-Key", id)
	var acc taskhttp.Accepted
	_ = json.Unmarshal(data, &acc)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want || acc.State != task.Succeeded {
		t.Fatalf("POST of an existing ID: got %d Location %q %s; want 303 to %s, state succeeded", resp.StatusCode, resp.Header.Get("Location"), data, want)
	}
	// A client that follows redirects gets the status.
	r, err := http.Post(b.srv.URL+prefix, "application/json", strings.NewReader(`{"mode":"text"}`))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 400 { // no key
		t.Fatalf("got %d", r.StatusCode)
	}
	req, _ := http.NewRequest("POST", b.srv.URL+prefix, strings.NewReader(`{"mode":"text"}`))
	req.Header.Set("Idempotency-Key", id)
	r, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ = io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || !strings.Contains(string(data), `"state":"succeeded"`) {
		t.Fatalf("POST followed to the status: got %d %s", r.StatusCode, data)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	b := setup(t, taskhttp.Config{})

	t.Run("running", func(t *testing.T) {
		t.Parallel()
		loc := b.post(t, job{Mode: "block"})
		b.until(t, loc, inState(task.Active))
		began := time.Now()
		resp, data := b.do(t, "DELETE", loc, "")
		var st taskhttp.Status
		_ = json.Unmarshal(data, &st)
		if resp.StatusCode != 202 || !st.CancelRequested {
			t.Fatalf("DELETE of a running task: got %d %s, want 202 with cancel_requested", resp.StatusCode, data)
		}
		b.until(t, loc, inState(task.Cancelled))
		t.Logf("a running task was cancelled %s after DELETE", time.Since(began))

		resp, data = b.do(t, "DELETE", loc, "")
		var e taskhttp.ErrorBody
		_ = json.Unmarshal(data, &e)
		if resp.StatusCode != 409 || e.State != task.Cancelled || !strings.Contains(e.Error, "already finished") {
			t.Fatalf("DELETE of a cancelled task: got %d %s, want 409 naming the state", resp.StatusCode, data)
		}
	})
	t.Run("finished", func(t *testing.T) {
		t.Parallel()
		loc := b.post(t, job{Mode: "text"})
		b.until(t, loc, inState(task.Succeeded))
		resp, data := b.do(t, "DELETE", loc, "")
		var e taskhttp.ErrorBody
		_ = json.Unmarshal(data, &e)
		if resp.StatusCode != 409 || e.State != task.Succeeded {
			t.Fatalf("DELETE of a finished task: got %d %s, want 409 succeeded", resp.StatusCode, data)
		}
	})
	t.Run("finishes anyway", func(t *testing.T) {
		// The race of a cancel and the task's end, made certain: the
		// handler returns nil when its context ends.
		t.Parallel()
		loc := b.post(t, job{Mode: "stubborn"})
		b.until(t, loc, inState(task.Active))
		if resp, data := b.do(t, "DELETE", loc, ""); resp.StatusCode != 202 {
			t.Fatalf("DELETE: got %d %s, want 202", resp.StatusCode, data)
		}
		st := b.until(t, loc, inState(task.Succeeded))
		if !st.CancelRequested {
			t.Fatalf("status %+v: want succeeded with cancel_requested", st)
		}
	})
	t.Run("scheduled", func(t *testing.T) {
		t.Parallel()
		later, err := taskhttp.New(b.store, b.pub, taskhttp.Config{Subject: "tasks.http.job", Prefix: prefix, Publish: publisher.PublishOpts{Delay: time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(later)
		defer srv.Close()
		resp, err := http.Post(srv.URL+prefix, "application/json", strings.NewReader(`{"mode":"text"}`))
		if err != nil {
			t.Fatal(err)
		}
		var acc taskhttp.Accepted
		_ = json.NewDecoder(resp.Body).Decode(&acc)
		resp.Body.Close()
		if resp.StatusCode != 202 || acc.State != task.Scheduled {
			t.Fatalf("POST of a delayed task: got %d %s, want 202 scheduled", resp.StatusCode, acc.State)
		}
		if st := b.status(t, acc.Links.Self); st.State != task.Scheduled || time.Until(st.RunAt) < 50*time.Minute {
			t.Fatalf("status %s, run at %s: want scheduled in an hour", st.State, st.RunAt)
		}
		resp2, data := b.do(t, "DELETE", acc.Links.Self, "")
		var st taskhttp.Status
		_ = json.Unmarshal(data, &st)
		if resp2.StatusCode != 202 || st.State != task.Cancelled {
			t.Fatalf("DELETE of a scheduled task: got %d %s, want 202 and cancelled at once", resp2.StatusCode, data)
		}
	})
	t.Run("pending", func(t *testing.T) {
		t.Parallel()
		// Nobody consumes tasks.idle.>: the task stays pending.
		idle, err := taskhttp.New(b.store, b.pub, taskhttp.Config{Subject: "tasks.idle.job", Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(idle)
		defer srv.Close()
		resp, err := http.Post(srv.URL+prefix, "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		req, _ := http.NewRequest("DELETE", srv.URL+resp.Header.Get("Location"), nil)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var st taskhttp.Status
		_ = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if resp.StatusCode != 202 || st.State != task.Cancelled {
			t.Fatalf("DELETE of a pending task: got %d %s, want 202 and cancelled at once", resp.StatusCode, st.State)
		}
	})
}

// sseEvent is one event of a stream.
type sseEvent struct{ event, id, data string }

type sseStream struct {
	resp     *http.Response
	sc       *bufio.Scanner
	comments int
}

// follow opens the event stream at path; cancel ctx to disconnect.
func (b testBundle) follow(t *testing.T, ctx context.Context, path string, hdr ...string) *sseStream {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", b.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return &sseStream{resp: resp, sc: sc}
}

// next returns the next event, or io.EOF at the end of the stream.
func (s *sseStream) next() (sseEvent, error) {
	var ev sseEvent
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "":
			if ev != (sseEvent{}) {
				return ev, nil
			}
		case strings.HasPrefix(line, ":"):
			s.comments++
		case strings.HasPrefix(line, "event: "):
			ev.event = line[len("event: "):]
		case strings.HasPrefix(line, "id: "):
			ev.id = line[len("id: "):]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[len("data: "):]
		}
	}
	if err := s.sc.Err(); err != nil {
		return ev, err
	}
	return ev, io.EOF
}

func (s *sseStream) status(t *testing.T) taskhttp.Status {
	t.Helper()
	ev, err := s.next()
	if err != nil {
		t.Fatalf("next event: %v", err)
	}
	var st taskhttp.Status
	if ev.event != "state" || json.Unmarshal([]byte(ev.data), &st) != nil || ev.id == "" {
		t.Fatalf("event %+v: want a state event with an id and a status", ev)
	}
	return st
}

func TestEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, taskhttp.Config{Heartbeat: 100 * time.Millisecond})

	t.Run("current state first, then changes to the end", func(t *testing.T) {
		loc := b.post(t, job{Mode: "steps", Steps: 2})
		b.until(t, loc, inState(task.Active)) // so the first event is known
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		s := b.follow(t, ctx, loc+"/events")
		if s.resp.StatusCode != 200 || s.resp.Header.Get("Content-Type") != "text/event-stream" || s.resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("events: %d %v", s.resp.StatusCode, s.resp.Header)
		}
		if st := s.status(t); st.State != task.Active || st.Progress != nil {
			t.Fatalf("first event: %s %+v, want the current state, active without progress", st.State, st.Progress)
		}
		var seen []string
		for range 2 {
			b.step <- struct{}{}
		}
		for {
			ev, err := s.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			var st taskhttp.Status
			_ = json.Unmarshal([]byte(ev.data), &st)
			p := 0.0
			if st.Progress != nil {
				p = st.Progress.Percent
			}
			seen = append(seen, fmt.Sprintf("%s %v", st.State, p))
		}
		if len(seen) == 0 || seen[len(seen)-1] != "succeeded 100" {
			t.Fatalf("events %v: want changes through to succeeded, then the end", seen)
		}
		b.ended(t, loc+"/events")
	})
	t.Run("a cancelled task's stream ends cancelled", func(t *testing.T) {
		loc := b.post(t, job{Mode: "block"})
		b.until(t, loc, inState(task.Active))
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		s := b.follow(t, ctx, loc+"/events")
		s.status(t)
		resp, _ := b.do(t, "DELETE", loc, "")
		if resp.StatusCode != 202 {
			t.Fatalf("DELETE: %d", resp.StatusCode)
		}
		var last taskhttp.Status
		for {
			ev, err := s.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			_ = json.Unmarshal([]byte(ev.data), &last)
		}
		if last.State != task.Cancelled {
			t.Fatalf("last event %s, want cancelled", last.State)
		}
		b.ended(t, loc+"/events")
	})
	t.Run("a late client gets the final state alone", func(t *testing.T) {
		loc := b.post(t, job{Mode: "text"})
		b.until(t, loc, inState(task.Succeeded))
		s := b.follow(t, t.Context(), loc+"/events")
		st := s.status(t)
		if st.State != task.Succeeded {
			t.Fatalf("got %s, want succeeded", st.State)
		}
		if ev, err := s.next(); err != io.EOF {
			t.Fatalf("after the final state: %+v %v, want the end of the stream", ev, err)
		}
		b.ended(t, loc+"/events")

		// An EventSource reconnecting after the final event: 204.
		final := b.follow(t, t.Context(), loc+"/events")
		ev, _ := final.next()
		again := b.follow(t, t.Context(), loc+"/events", "Last-Event-ID", ev.id)
		if again.resp.StatusCode != http.StatusNoContent {
			t.Fatalf("reconnect after the final event: got %d, want 204", again.resp.StatusCode)
		}
		stale := b.follow(t, t.Context(), loc+"/events", "Last-Event-ID", "1")
		if stale.resp.StatusCode != 200 || stale.status(t).State != task.Succeeded {
			t.Fatalf("reconnect that missed the final event: got %d, want 200 and the final state", stale.resp.StatusCode)
		}
	})
	t.Run("a stream outlives the server's WriteTimeout", func(t *testing.T) {
		const writeTimeout = 300 * time.Millisecond
		srv := httptest.NewUnstartedServer(b.h)
		srv.Config.WriteTimeout = writeTimeout
		srv.Start()
		defer srv.Close()
		loc := b.post(t, job{Mode: "block"})
		b.until(t, loc, inState(task.Active))
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		long := b
		long.srv = srv
		s := long.follow(t, ctx, loc+"/events")
		s.status(t)
		began := time.Now()
		for time.Since(began) < 3*writeTimeout { // heartbeats meanwhile
			if !s.sc.Scan() {
				t.Fatalf("the stream ended %s in, before 3 times the server's WriteTimeout (%v)", time.Since(began), s.sc.Err())
			}
		}
		if resp, _ := b.do(t, "DELETE", loc, ""); resp.StatusCode != 202 {
			t.Fatalf("DELETE: %d", resp.StatusCode)
		}
		for {
			ev, err := s.next()
			if err != nil {
				t.Fatalf("before the final event: %v", err)
			}
			var st taskhttp.Status
			_ = json.Unmarshal([]byte(ev.data), &st)
			if st.State == task.Cancelled {
				break
			}
		}
	})
	t.Run("a client that goes away leaves nothing running", func(t *testing.T) {
		loc := b.post(t, job{Mode: "block"})
		b.until(t, loc, inState(task.Active))
		before := kvConsumers(t, b.js)
		ctx, cancel := context.WithCancel(t.Context())
		s := b.follow(t, ctx, loc+"/events")
		s.status(t)
		// The first event is the record as read; the watch starts after it.
		testutil.Eventually(t, 5*time.Second, func() error {
			if n := kvConsumers(t, b.js); n != before+1 {
				return fmt.Errorf("consumers on the task bucket while following: %d, want %d (the watch)", n, before+1)
			}
			return nil
		})
		// Heartbeats keep it open meanwhile.
		for s.comments < 2 {
			if !s.sc.Scan() {
				t.Fatal("stream ended")
			}
			if strings.HasPrefix(s.sc.Text(), ":") {
				s.comments++
			}
		}
		cancel()
		b.ended(t, loc+"/events")
		testutil.Eventually(t, 10*time.Second, func() error {
			if n := kvConsumers(t, b.js); n != before {
				return fmt.Errorf("consumers on the task bucket: %d, want %d (the watch stopped)", n, before)
			}
			return nil
		})
		if resp, _ := b.do(t, "DELETE", loc, ""); resp.StatusCode != 202 {
			t.Fatalf("DELETE: %d", resp.StatusCode)
		}
	})
}

// kvConsumers counts the consumers of the task bucket's stream: the
// worker's watch of cancel requests, and one per followed task.
func kvConsumers(t *testing.T, js jetstream.JetStream) int {
	t.Helper()
	st, err := js.Stream(t.Context(), "KV_"+task.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Consumers
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  taskhttp.Config
		want string
	}{
		{"no subject", taskhttp.Config{}, "taskhttp: Subject is required"},
		{"a wildcard subject", taskhttp.Config{Subject: "tasks.*"}, "taskhttp: Subject"},
		{"a root prefix", taskhttp.Config{Subject: "tasks.x", Prefix: "/"}, `taskhttp: Prefix ""`},
		{"a relative prefix", taskhttp.Config{Subject: "tasks.x", Prefix: "reports"}, `taskhttp: Prefix "reports"`},
		{"an unclean prefix", taskhttp.Config{Subject: "tasks.x", Prefix: "/a/../b"}, `taskhttp: Prefix "/a/../b"`},
		{"a prefix with a wildcard", taskhttp.Config{Subject: "tasks.x", Prefix: "/r/{id}"}, "taskhttp: Prefix"},
		{"a shared ID", taskhttp.Config{Subject: "tasks.x", Publish: publisher.PublishOpts{ID: "x"}}, "taskhttp: Publish.ID is set"},
		{"a fixed time", taskhttp.Config{Subject: "tasks.x", Publish: publisher.PublishOpts{At: time.Now()}}, "taskhttp: Publish.At is set"},
		{"a negative body limit", taskhttp.Config{Subject: "tasks.x", MaxBody: -1}, "taskhttp: MaxBody must be > 0"},
		{"a fast heartbeat", taskhttp.Config{Subject: "tasks.x", Heartbeat: time.Millisecond}, "taskhttp: Heartbeat must be >= 100ms"},
		{"a bad Retry-After", taskhttp.Config{Subject: "tasks.x", RetryAfter: -2}, "taskhttp: RetryAfter must be > 0 or -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	if err := (taskhttp.Config{Subject: "tasks.x", Prefix: "/reports/"}).Validate(); err != nil {
		t.Fatalf("a prefix with a trailing slash: %v, want it trimmed", err)
	}
	if _, err := taskhttp.New(nil, nil, taskhttp.Config{Subject: "tasks.x"}); err == nil {
		t.Fatal("New with no store: no error")
	}
}

// TestOnlyItsOwnTasks: the store holds other subjects' tasks too; the
// handler shows and cancels only its own, and a DELETE of an unknown ID
// leaves no cancel request behind.
func TestOnlyItsOwnTasks(t *testing.T) {
	t.Parallel()
	b := setup(t, taskhttp.Config{IDFunc: func(r *http.Request, _ []byte) (string, error) {
		return r.Header.Get("Idempotency-Key"), nil
	}})
	if _, err := b.pub.Publish(t.Context(), "tasks.idle.payroll", []byte(`{}`), &publisher.PublishOpts{ID: "payroll-1", Track: true}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ method, path string }{
		{"GET", prefix + "/payroll-1"}, {"DELETE", prefix + "/payroll-1"}, {"GET", prefix + "/payroll-1/events"},
	} {
		if resp, data := b.do(t, tc.method, tc.path, ""); resp.StatusCode != 404 || !strings.Contains(string(data), `no task \"payroll-1\"`) {
			t.Errorf("%s %s of another subject's task: got %d %s, want 404", tc.method, tc.path, resp.StatusCode, data)
		}
	}
	if info, err := b.store.Get(t.Context(), "payroll-1"); err != nil || info.State != task.Pending || info.CancelRequested {
		t.Fatalf("the other task after the requests: %s cancel %v (%v), want pending, untouched", info.State, info.CancelRequested, err)
	}
	resp, data := b.do(t, "POST", prefix, `{"mode":"text"}`, "Idempotency-Key", "payroll-1")
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(data), "taken by a task of another kind") {
		t.Fatalf("POST with another subject's task ID: got %d %s, want 409", resp.StatusCode, data)
	}

	if resp, _ := b.do(t, "DELETE", prefix+"/nope", ""); resp.StatusCode != 404 {
		t.Fatalf("DELETE of an unknown ID: got %d, want 404", resp.StatusCode)
	}
	kv, err := b.js.KeyValue(t.Context(), task.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(t.Context(), "c.nope"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("cancel request of an unknown ID: got %v, want none (ErrKeyNotFound)", err)
	}
}
