package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/streams"
	"github.com/jetworker/jetworker/task"
	"github.com/jetworker/jetworker/task/taskhttp"
)

type testBundle struct {
	url string
	// streamDone receives the path of every event stream whose handler
	// returned: after that, nothing runs for it.
	streamDone chan string
}

// setup runs the service on its own embedded server, with pages that take
// step to render, served by httptest.
func setup(t *testing.T, step time.Duration, maxResult int) testBundle {
	t.Helper()
	srv := embeddedtest.Start(t, embedded.Config{})
	_, js := embeddedtest.Connect(t, srv)
	if err := streams.Provision(t.Context(), js, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	s, err := newService(js, config{Step: step, MaxResult: maxResult, Logger: testutil.Logger(t, slog.LevelWarn)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.store.Provision(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.worker.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	select {
	case <-s.worker.Ready():
	case err := <-done:
		t.Fatalf("worker: %v", err)
	}
	b := testBundle{streamDone: make(chan string, 16)}
	routes := s.routes()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		routes.ServeHTTP(w, r)
		if strings.HasSuffix(r.URL.Path, "/events") {
			b.streamDone <- r.URL.Path
		}
	}))
	t.Cleanup(web.Close)
	b.url = web.URL
	return b
}

func (b testBundle) do(t *testing.T, method, path, body string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, b.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, data
}

// post asks for a report and returns its Location.
func (b testBundle) post(t *testing.T, title string, pages int) string {
	t.Helper()
	code, hdr, data := b.do(t, "POST", "/reports", fmt.Sprintf(`{"title":%q,"pages":%d}`, title, pages))
	loc := hdr.Get("Location")
	if code != http.StatusAccepted || !strings.HasPrefix(loc, "/reports/") {
		t.Fatalf("POST /reports: got %d Location %q %s, want 202 with /reports/{id}", code, loc, data)
	}
	return loc
}

func (b testBundle) status(t *testing.T, loc string) taskhttp.Status {
	t.Helper()
	code, _, data := b.do(t, "GET", loc, "")
	var st taskhttp.Status
	if code != http.StatusOK || json.Unmarshal(data, &st) != nil {
		t.Fatalf("GET %s: got %d %s, want 200 and a status", loc, code, data)
	}
	return st
}

func (b testBundle) until(t *testing.T, loc string, want task.State) taskhttp.Status {
	t.Helper()
	var st taskhttp.Status
	testutil.Eventually(t, 20*time.Second, func() error {
		if st = b.status(t, loc); st.State != want {
			return fmt.Errorf("%s is %s, want %s", loc, st.State, want)
		}
		return nil
	})
	return st
}

// waitStream waits for the event stream handler of path to return.
func (b testBundle) waitStream(t *testing.T, path string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case p := <-b.streamDone:
			if p == path {
				return
			}
		case <-timeout:
			t.Fatalf("the event stream handler of %s did not return", path)
		}
	}
}

func TestReportRendered(t *testing.T) {
	t.Parallel()
	b := setup(t, 100*time.Millisecond, 0)
	loc := b.post(t, "Q3 sales", 5)

	// Poll as a client of the 202 pattern would, noting the progress.
	var progress []float64
	var st taskhttp.Status
	testutil.Eventually(t, 20*time.Second, func() error {
		st = b.status(t, loc)
		if st.State == task.Active && st.Progress != nil && (len(progress) == 0 || progress[len(progress)-1] != st.Progress.Percent) {
			progress = append(progress, st.Progress.Percent)
		}
		if !st.State.Terminal() {
			return fmt.Errorf("%s", st.State)
		}
		return nil
	})
	if st.State != task.Succeeded {
		t.Fatalf("ended %s (%s), want succeeded", st.State, st.LastError)
	}
	if len(progress) == 0 || progress[0] >= 100 {
		t.Fatalf("progress seen while it ran: %v, want some below 100", progress)
	}
	var rep Report
	if err := json.Unmarshal(st.Result, &rep); err != nil || st.ResultEncoding != taskhttp.EncodingJSON {
		t.Fatalf("result %s (%s): %v", st.Result, st.ResultEncoding, err)
	}
	if rep.Title != "Q3 sales" || rep.Pages != 5 || len(rep.Contents) != 5 || rep.URL != "https://reports.example.com/"+st.ID+".pdf" {
		t.Fatalf("report %+v: want the 5 pages of Q3 sales at its URL", rep)
	}
	if st.Progress == nil || st.Progress.Percent != 100 || st.Progress.Message != "rendering page 5 of 5" {
		t.Fatalf("final progress %+v, want 100%%", st.Progress)
	}
	t.Logf("progress seen by polling: %v", progress)
}

// sse reads a text/event-stream.
type sse struct {
	resp *http.Response
	sc   *bufio.Scanner
}

func (b testBundle) events(t *testing.T, ctx context.Context, loc string) *sse {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", b.url+loc+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s/events: %d %s", loc, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return &sse{resp: resp, sc: sc}
}

// next returns the next state event's status, false at the end of the
// stream.
func (s *sse) next(t *testing.T) (taskhttp.Status, bool) {
	t.Helper()
	var event, data string
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "" && event != "":
			if event != "state" {
				t.Fatalf("event %q: %s", event, data)
			}
			var st taskhttp.Status
			if err := json.Unmarshal([]byte(data), &st); err != nil {
				t.Fatalf("event data %q: %v", data, err)
			}
			return st, true
		case strings.HasPrefix(line, "event: "):
			event = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = line[len("data: "):]
		}
	}
	return taskhttp.Status{}, false
}

func TestReportEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, 100*time.Millisecond, 0)
	loc := b.post(t, "Q4 forecast", 4)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	s := b.events(t, ctx, loc)
	first, ok := s.next(t)
	if !ok || (first.State != task.Pending && first.State != task.Active) {
		t.Fatalf("first event: %s, want the current state (pending or active)", first.State)
	}
	seen := []string{describe(first)}
	last := first
	for {
		st, ok := s.next(t)
		if !ok {
			break
		}
		if st.Updated.Before(last.Updated) {
			t.Fatalf("event of %s after one of %s: out of order", st.Updated, last.Updated)
		}
		seen = append(seen, describe(st))
		last = st
	}
	if last.State != task.Succeeded || last.Result == nil {
		t.Fatalf("events %v: want them to end with succeeded and the result", seen)
	}
	if len(seen) < 3 {
		t.Fatalf("events %v: want the changes along the way too", seen)
	}
	t.Logf("events: %v", seen)
	b.waitStream(t, loc+"/events")
}

func describe(st taskhttp.Status) string {
	if st.Progress == nil {
		return string(st.State)
	}
	return fmt.Sprintf("%s %v%%", st.State, st.Progress.Percent)
}

func TestCancelReport(t *testing.T) {
	t.Parallel()
	b := setup(t, 100*time.Millisecond, 0)

	t.Run("running", func(t *testing.T) {
		t.Parallel()
		loc := b.post(t, "Annual report", 600) // a minute's work
		b.until(t, loc, task.Active)
		began := time.Now()
		code, _, data := b.do(t, "DELETE", loc, "")
		if code != http.StatusAccepted {
			t.Fatalf("DELETE of a running report: got %d %s, want 202", code, data)
		}
		st := b.until(t, loc, task.Cancelled)
		t.Logf("a running report was cancelled %s after DELETE", time.Since(began))
		if st.Progress != nil && st.Progress.Percent >= 100 {
			t.Fatalf("a cancelled report got to %v%%", st.Progress.Percent)
		}
		if code, _, data := b.do(t, "DELETE", loc, ""); code != http.StatusConflict || !strings.Contains(string(data), `"state":"cancelled"`) {
			t.Fatalf("second DELETE: got %d %s, want 409 cancelled", code, data)
		}
	})
	t.Run("finished", func(t *testing.T) {
		t.Parallel()
		loc := b.post(t, "Memo", 1)
		b.until(t, loc, task.Succeeded)
		code, _, data := b.do(t, "DELETE", loc, "")
		var e taskhttp.ErrorBody
		_ = json.Unmarshal(data, &e)
		if code != http.StatusConflict || e.State != task.Succeeded || !strings.Contains(e.Error, "already finished") {
			t.Fatalf("DELETE of a finished report: got %d %s, want 409 saying it has finished", code, data)
		}
	})
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	b := setup(t, time.Millisecond, 1<<10)
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		msg                      string
	}{
		{"unknown ID", "GET", "/reports/no-such-report", "", 404, `no task \"no-such-report\"`},
		{"events of an unknown ID", "GET", "/reports/no-such-report/events", "", 404, `no task \"no-such-report\"`},
		{"cancel of an unknown ID", "DELETE", "/reports/no-such-report", "", 404, `no task \"no-such-report\"`},
		{"not JSON", "POST", "/reports", `title=Q3`, 400, `want {\"title\": \"...\", \"pages\": 1 to 1000}`},
		{"an unknown field", "POST", "/reports", `{"title":"Q3","pages":2,"color":"red"}`, 400, `unknown field \"color\"`},
		{"no pages", "POST", "/reports", `{"title":"Q3"}`, 400, "pages: want 1 to 1000, got 0"},
		{"too many pages", "POST", "/reports", `{"title":"Q3","pages":5000}`, 400, "pages: want 1 to 1000, got 5000"},
		{"no title", "POST", "/reports", `{"pages":2}`, 400, "title: want 1 to 200 bytes"},
		{"a body too large", "POST", "/reports", `{"title":"` + strings.Repeat("x", 5000) + `","pages":1}`, 413, "more than the 4096 allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, _, data := b.do(t, tc.method, tc.path, tc.body)
			if code != tc.code || !strings.Contains(string(data), tc.msg) {
				t.Fatalf("got %d %s, want %d with %s", code, data, tc.code, tc.msg)
			}
		})
	}
	t.Run("a report too large to keep", func(t *testing.T) {
		t.Parallel()
		loc := b.post(t, "Encyclopedia", 100) // ~3 KiB of contents, over the store's 1 KiB
		st := b.until(t, loc, task.Failed)
		if !strings.Contains(st.LastError, "task: result too large") || st.Attempt != 1 {
			t.Fatalf("got %q on attempt %d, want the result-size error, not retried", st.LastError, st.Attempt)
		}
	})
}

func TestLateEventClient(t *testing.T) {
	t.Parallel()
	b := setup(t, time.Millisecond, 0)
	loc := b.post(t, "Memo", 1)
	b.until(t, loc, task.Succeeded)
	s := b.events(t, t.Context(), loc)
	st, ok := s.next(t)
	if !ok || st.State != task.Succeeded {
		t.Fatalf("a late client's first event: %s, want succeeded", st.State)
	}
	if st, ok := s.next(t); ok {
		t.Fatalf("a second event (%s) after the final state, want the end of the stream", st.State)
	}
	b.waitStream(t, loc+"/events")
}

// TestEventClientGoesAway is not parallel: it counts the process's
// goroutines, which other tests would disturb.
func TestEventClientGoesAway(t *testing.T) {
	b := setup(t, 100*time.Millisecond, 0)
	loc := b.post(t, "Annual report", 600)
	b.until(t, loc, task.Active)
	// A first client that comes and goes, so the baseline has what a
	// connection leaves behind by design (idle HTTP connections).
	follow := func() {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		s := b.events(t, ctx, loc)
		if _, ok := s.next(t); !ok {
			t.Fatal("no first event")
		}
		cancel()
		b.waitStream(t, loc+"/events")
	}
	follow()
	before := runtime.NumGoroutine()
	follow()
	testutil.Eventually(t, 10*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > before {
			return fmt.Errorf("%d goroutines after the client went away, %d before it came", n, before)
		}
		return nil
	})
	if code, _, _ := b.do(t, "DELETE", loc, ""); code != http.StatusAccepted {
		t.Fatalf("DELETE: %d", code)
	}
}
