package dashboard_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dashboard"
	"github.com/jetworker/jetworker/dlq"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/publisher"
)

// loadBundle is a dashboard with a consumer of tasks.load.> that
// dead-letters every task and acknowledges replayed ones (counting them).
type loadBundle struct {
	*testBundle
	dead     *dlq.Store
	replayed *atomic.Int64
	tok      string
}

func setupLoad(t *testing.T, cfg dashboard.Config) *loadBundle {
	t.Helper()
	b := setup(t, cfg)
	provision(t, b.js)
	lb := &loadBundle{testBundle: b, replayed: &atomic.Int64{}}
	lb.dead, _ = dlq.New(b.js, dlq.Config{})
	startConsumer(t, b.js, func(_ context.Context, tk *jetworker.Task) error {
		if tk.Header.Get(jetworker.HeaderReplayedFrom) != "" {
			lb.replayed.Add(1)
			return nil
		}
		return jetworker.Permanent(errors.New("broken load"))
	}, consumer.Config{Durable: "loader", FilterSubjects: []string{"tasks.load.>"}, Concurrency: 4})
	if cfg.BearerToken == "" {
		lb.tok = csrfToken(t, b)
	}
	return lb
}

// kill publishes tasks on each subject and waits until they are all
// dead letters.
func (lb *loadBundle) kill(t *testing.T, subjects ...string) {
	t.Helper()
	pub, _ := publisher.New(lb.js, publisher.Config{})
	before := lb.count(t, dlq.Filter{})
	for _, s := range subjects {
		if _, err := pub.Publish(t.Context(), s, []byte(`{"load":1}`), nil); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if n := lb.count(t, dlq.Filter{}); n != before+len(subjects) {
			return fmt.Errorf("%d dead letters, want %d", n, before+len(subjects))
		}
		return nil
	})
}

func (lb *loadBundle) count(t *testing.T, f dlq.Filter) int {
	t.Helper()
	n, err := lb.dead.Count(t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// plant stores an entry the dead-letter path could not have written (its
// Nats-Msg-Id is wrong), so it is not replayable.
func (lb *loadBundle) plant(t *testing.T, subject string) uint64 {
	t.Helper()
	h := nats.Header{}
	h.Set(jetworker.HeaderOriginalStream, "TASKS")
	h.Set(jetworker.HeaderConsumer, "loader")
	h.Set(jetworker.HeaderOriginalSubject, subject)
	h.Set(jetworker.HeaderOriginalSeq, "1")
	h.Set(jetworker.HeaderError, "planted")
	ack, err := lb.js.PublishMsg(t.Context(), &nats.Msg{Subject: "dlq.TASKS.loader." + subject, Header: h, Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

func (lb *loadBundle) form(t *testing.T, path string, v url.Values) response {
	t.Helper()
	v.Set(dashboard.CSRFField, lb.tok)
	return lb.do(t, http.MethodPost, path, strings.NewReader(v.Encode()), "Content-Type", "application/x-www-form-urlencoded")
}

// TestBulkReplayMatching: "replay everything matching" is confirmed with
// the count, acts on exactly what was counted (not on dead letters that
// arrive later), refuses a stale count, and never replays an untrusted
// entry.
func TestBulkReplayMatching(t *testing.T) {
	t.Parallel()
	lb := setupLoad(t, dashboard.Config{})
	lb.kill(t, "tasks.load.a.broken", "tasks.load.b.broken", "tasks.load.b.broken", "tasks.load.c.fine")
	planted := lb.plant(t, "tasks.load.z.broken")
	broken := dlq.Filter{Subject: "tasks.load.*.broken"}
	if n := lb.count(t, broken); n != 4 {
		t.Fatalf("dead letters matching: got %d, want 4 (3 real, 1 planted)", n)
	}

	// The confirmation names the count and the filter.
	r := lb.get(t, "/dead-letters/confirm?action=replay&subject="+url.QueryEscape("tasks.load.*.broken"))
	if r.code != http.StatusOK || !strings.Contains(r.body, "Replay 4 dead letters matching subject tasks.load.*.broken?") {
		t.Fatalf("confirmation: got %d, want it to ask to replay 4 matching subject tasks.load.*.broken:\n%s", r.code, r.body)
	}
	cnt := decode[map[string]uint64](t, lb.get(t, "/api/dead-letters/count?subject="+url.QueryEscape("tasks.load.*.broken")))
	if cnt["count"] != 4 || cnt["upto"] == 0 {
		t.Fatalf("GET /api/dead-letters/count: got %v, want count 4 and upto", cnt)
	}
	upto := strconv.FormatUint(cnt["upto"], 10)

	// A stale count is refused and asked again; nothing changes.
	r = lb.form(t, "/dead-letters/matching", url.Values{"action": {"replay"}, "subject": {"tasks.load.*.broken"}, "expect": {"3"}, "upto": {upto}})
	if r.code != http.StatusConflict || !strings.Contains(r.body, "Replay 4 dead letters matching") || !strings.Contains(r.body, "confirm again") {
		t.Errorf("stale count: got %d, want 409 asking again with the new count", r.code)
	}
	if n := lb.count(t, broken); n != 4 {
		t.Fatalf("after a refused confirmation: %d dead letters match, want 4", n)
	}

	// A dead letter arriving after the count is not covered.
	lb.kill(t, "tasks.load.late.broken")
	r = lb.form(t, "/dead-letters/matching", url.Values{"action": {"replay"}, "subject": {"tasks.load.*.broken"}, "expect": {"4"}, "upto": {upto}})
	if r.code != http.StatusOK || !strings.Contains(r.body, "Replayed 3 of 4 dead letters. 1 not replayable were kept") {
		t.Fatalf("replay matching: got %d, want 3 of 4 replayed and the untrusted one kept:\n%s", r.code, r.body)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if n := lb.replayed.Load(); n != 3 {
			return fmt.Errorf("replayed tasks run: %d, want 3", n)
		}
		return nil
	})
	page, _ := lb.dead.List(t.Context(), broken, 0, 0)
	if len(page.Entries) != 2 {
		t.Fatalf("left matching: %d, want 2 (the late one and the planted one)", len(page.Entries))
	}
	for _, e := range page.Entries {
		if e.Sequence != planted && e.OriginalSubject != "tasks.load.late.broken" {
			t.Errorf("left %d (%s), want only the late and the planted entries", e.Sequence, e.OriginalSubject)
		}
	}
	if n := lb.count(t, dlq.Filter{Subject: "tasks.load.c.fine"}); n != 1 {
		t.Errorf("an entry the filter does not match: %d left, want 1", n)
	}

	// Nothing matching: the confirmation says so and offers no button.
	r = lb.get(t, "/dead-letters/confirm?action=delete&subject=tasks.none.>")
	if !strings.Contains(r.body, `data-testid="confirm-none"`) || strings.Contains(r.body, `data-testid="confirm-bulk"`) {
		t.Error("confirmation with nothing matching: want a note and no button")
	}
}

// TestBulkSelection: replay and delete a selection; an untrusted entry in a
// replay selection is skipped, never replayed.
func TestBulkSelection(t *testing.T) {
	t.Parallel()
	lb := setupLoad(t, dashboard.Config{})
	lb.kill(t, "tasks.load.1.x", "tasks.load.2.x", "tasks.load.3.x")
	planted := lb.plant(t, "tasks.load.4.x")
	page, _ := lb.dead.List(t.Context(), dlq.Filter{}, 0, 0)
	var seqs []string
	for _, e := range page.Entries {
		if e.Sequence != planted {
			seqs = append(seqs, itoa(e.Sequence))
		}
	}
	// Replay the first real one and the planted one.
	r := lb.form(t, "/dead-letters/bulk", url.Values{"action": {"replay"}, "seq": {seqs[0], itoa(planted)}, "next": {"/dead-letters"}})
	if r.code != http.StatusOK || !strings.Contains(r.body, "Replayed 1 of 2 dead letters. 1 not replayable were kept") {
		t.Errorf("replay a selection with an untrusted entry: got %d, want 1 of 2 replayed:\n%s", r.code, r.body)
	}
	if _, err := lb.dead.Get(t.Context(), planted); err != nil {
		t.Errorf("the untrusted entry: %v, want it kept", err)
	}
	// Delete the other two and the planted one.
	r = lb.form(t, "/dead-letters/bulk", url.Values{"action": {"delete"}, "seq": {seqs[1], seqs[2], itoa(planted)}})
	if r.code != http.StatusOK || !strings.Contains(r.body, "Deleted 3 of 3 dead letters.") {
		t.Errorf("delete a selection: got %d, want 3 of 3 deleted", r.code)
	}
	if n := lb.count(t, dlq.Filter{}); n != 0 {
		t.Errorf("dead letters left: %d, want 0", n)
	}
	// Nothing ticked: an error, nothing done.
	if r := lb.form(t, "/dead-letters/bulk", url.Values{"action": {"delete"}}); !strings.Contains(r.body, "no dead letters selected") {
		t.Error("a bulk action with nothing selected: want an error saying so")
	}
}

// TestBulkAPI: the API's bulk actions take seqs, or a filter with the
// count confirmed.
func TestBulkAPI(t *testing.T) {
	t.Parallel()
	lb := setupLoad(t, dashboard.Config{BearerToken: "tok"})
	lb.kill(t, "tasks.load.a.x", "tasks.load.b.x", "tasks.load.c.y")
	planted := lb.plant(t, "tasks.load.d.x")
	bearer := []string{"Authorization", "Bearer tok", "Content-Type", "application/json"}
	post := func(path, body string) response {
		return lb.do(t, http.MethodPost, path, strings.NewReader(body), bearer...)
	}
	if r := post("/api/dead-letters/replay", `{"filter":{"subject":"tasks.load.*.x"}}`); r.code != http.StatusBadRequest || !strings.Contains(r.body, "expect") {
		t.Errorf("a filter without expect: got %d %s, want 400 naming expect", r.code, r.body)
	}
	r := post("/api/dead-letters/replay", `{"filter":{"subject":"tasks.load.*.x"},"expect":2}`)
	if r.code != http.StatusConflict || decode[map[string]any](t, r)["count"] != float64(3) {
		t.Errorf("a stale expect: got %d %s, want 409 with count 3", r.code, r.body)
	}
	r = post("/api/dead-letters/replay", `{"filter":{"subject":"tasks.load.*.x"},"expect":3}`)
	res := decode[struct {
		Action   string `json:"action"`
		Selected int    `json:"selected"`
		Done     int    `json:"done"`
		Skipped  []struct {
			Sequence uint64 `json:"seq"`
			Reason   string `json:"reason"`
		} `json:"skipped"`
		Failed []any `json:"failed"`
	}](t, r)
	if r.code != http.StatusOK || res.Action != "replay" || res.Selected != 3 || res.Done != 2 || len(res.Skipped) != 1 || res.Skipped[0].Sequence != planted || res.Failed == nil {
		t.Errorf("replay by filter: got %d %s, want 2 of 3 replayed, the planted one skipped, failed []", r.code, r.body)
	}
	r = post("/api/dead-letters/delete", fmt.Sprintf(`{"seqs":[%d]}`, planted))
	if r.code != http.StatusOK || !strings.Contains(r.body, `"done": 1`) {
		t.Errorf("delete by seqs: got %d %s", r.code, r.body)
	}
	if r := post("/api/dead-letters/delete", `{}`); r.code != http.StatusBadRequest {
		t.Errorf("a bulk request with neither seqs nor filter: got %d, want 400", r.code)
	}
}

// TestDeadLetterPagingAndTimeRange: the older link pages with the cursor
// and keeps the filter; since and until take datetime-local values (UTC).
func TestDeadLetterPagingAndTimeRange(t *testing.T) {
	t.Parallel()
	lb := setupLoad(t, dashboard.Config{DeadLetterLimit: 2})
	lb.kill(t, "tasks.load.1.broken", "tasks.load.2.broken", "tasks.load.3.broken", "tasks.load.4.fine", "tasks.load.5.broken")
	q := "subject=" + url.QueryEscape("tasks.load.*.broken")
	var seen []string
	next := "/dead-letters?" + q
	for range 3 {
		r := lb.get(t, next)
		for _, line := range strings.Split(r.body, "\n") {
			if i := strings.Index(line, `<tr data-testid="dead-letter-`); i >= 0 {
				seen = append(seen, line[i+len(`<tr data-testid="dead-letter-`):strings.Index(line[i:], `">`)+i])
			}
		}
		i := strings.Index(r.body, `data-testid="older" href="?`)
		if i < 0 {
			break
		}
		rest := r.body[i+len(`data-testid="older" href="?`):]
		next = "/dead-letters?" + strings.ReplaceAll(rest[:strings.Index(rest, `"`)], "&amp;", "&")
		if !strings.Contains(next, "subject=") || !strings.Contains(next, "before=") {
			t.Fatalf("older link %q: want the filter and the cursor", next)
		}
	}
	if len(seen) != 4 {
		t.Errorf("dead letters paged through: got %v, want the 4 broken ones over 2 pages", seen)
	}
	future := time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04")
	if r := lb.get(t, "/dead-letters?since="+future); !strings.Contains(r.body, `data-testid="dl-empty"`) {
		t.Error("since an hour from now: want no dead letters")
	}
	past := time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04:05")
	if r := lb.get(t, "/api/dead-letters?since="+past); r.code != http.StatusOK || len(decode[dlq.Page](t, r).Entries) != 2 {
		t.Errorf("since an hour ago (datetime-local): got %d, want the first page of 2", r.code)
	}
}

// TestDeadLetterTaskIDFilter: task_id selects the dead letters of one
// task, in the API, its count and the page, with and without other
// filters; an ID no dead letter has matches none.
func TestDeadLetterTaskIDFilter(t *testing.T) {
	t.Parallel()
	lb := setupLoad(t, dashboard.Config{})
	pub, _ := publisher.New(lb.js, publisher.Config{})
	for _, task := range []struct{ subject, id string }{
		{"tasks.load.orders.x", "order-1"}, {"tasks.load.orders.x", "order-2"}, {"tasks.load.invoices.x", "invoice-2"}, {"tasks.load.orders.x", ""},
	} {
		opts := &publisher.PublishOpts{ID: task.id}
		if task.id == "" {
			opts = nil
		}
		if _, err := pub.Publish(t.Context(), task.subject, []byte(`{}`), opts); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if n := lb.count(t, dlq.Filter{}); n != 4 {
			return fmt.Errorf("%d dead letters, want 4", n)
		}
		return nil
	})
	for _, c := range []struct {
		query string
		want  []string // task IDs listed
	}{
		{"task_id=order-2", []string{"order-2"}},
		{"task_id=order-2&subject=tasks.load.orders.>", []string{"order-2"}},
		{"task_id=order-2&subject=tasks.load.invoices.>", nil},
		{"task_id=invoice-2", []string{"invoice-2"}},
		{"task_id=order", nil}, // the whole ID, not a prefix
		{"task_id=nope", nil},
	} {
		r := lb.get(t, "/api/dead-letters?"+c.query)
		if r.code != http.StatusOK {
			t.Errorf("GET /api/dead-letters?%s: got %d %s", c.query, r.code, r.body)
			continue
		}
		var got []string
		for _, e := range decode[dlq.Page](t, r).Entries {
			got = append(got, e.TaskID)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("GET /api/dead-letters?%s: task IDs %v, want %v", c.query, got, c.want)
		}
		if n := decode[map[string]int](t, lb.get(t, "/api/dead-letters/count?"+c.query))["count"]; n != len(c.want) {
			t.Errorf("GET /api/dead-letters/count?%s: got %d, want %d", c.query, n, len(c.want))
		}
	}
	page := lb.get(t, "/dead-letters?task_id=order-2")
	if rows := strings.Count(page.body, `<tr data-testid="dead-letter-`); rows != 1 {
		t.Errorf("page filtered by task ID order-2: got %d rows, want 1", rows)
	}
	for _, want := range []string{`name="task_id" value="order-2"`, "matching task ID order-2"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("page filtered by task ID order-2: want %s", want)
		}
	}
	if page := lb.get(t, "/dead-letters?task_id=nope"); !strings.Contains(page.body, `data-testid="dl-empty"`) || !strings.Contains(page.body, "No dead letters match") {
		t.Error("page filtered by an unknown task ID: want the empty state that says nothing matches")
	}
}
