package dashboard_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/jetworker/jetworker/dashboard"
	"github.com/jetworker/jetworker/dlq"
	"github.com/jetworker/jetworker/schedule"
)

func TestPagesRender(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{})
	// Before provisioning: pages still render, and say what is missing.
	r := b.get(t, "/")
	if r.code != http.StatusOK || !strings.Contains(r.body, "not provisioned") {
		t.Errorf("overview before provisioning: got %d, want 200 saying not provisioned", r.code)
	}
	provision(t, b.js)
	for _, path := range []string{"/", "/dead-letters", "/schedules", "/schedules/+new", "/workers", "/static/app.js", "/static/app.css"} {
		if r := b.get(t, path); r.code != http.StatusOK {
			t.Errorf("GET %s: got %d %s, want 200", path, r.code, r.body)
		}
	}
	if r := b.get(t, "/"); !strings.Contains(r.hdr.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("CSP: got %q", r.hdr.Get("Content-Security-Policy"))
	}
	for _, path := range []string{"/dead-letters/999", "/schedules/nope", "/api/dead-letters/999", "/api/schedules/nope"} {
		if r := b.get(t, path); r.code != http.StatusNotFound {
			t.Errorf("GET %s: got %d, want 404", path, r.code)
		}
	}
	// Listing schedules does not create the buckets.
	if _, err := b.js.KeyValue(t.Context(), schedule.SchedulesBucket); err == nil {
		t.Error("schedules bucket created by a read-only view")
	}
}

func TestScheduleFormAndDeadLetterForms(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{})
	provision(t, b.js)
	tok := csrfToken(t, b)
	store, _ := schedule.NewStore(b.js, schedule.StoreConfig{})

	form := func(path string, v url.Values) response {
		v.Set(dashboard.CSRFField, tok)
		return b.do(t, http.MethodPost, path, strings.NewReader(v.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	}
	// Create: a name with a slash, headers, jitter.
	r := form("/schedules/+new", url.Values{
		"name": {"reports/daily"}, "spec": {"0 9 * * 1-5"}, "time_zone": {"Europe/Berlin"},
		"subject": {"tasks.reports.daily"}, "payload": {`{"kind":"daily"}`},
		"headers": {"X-Tenant: acme\n"}, "jitter": {"30s"}, "catch_up": {"skip"},
	})
	if r.code != http.StatusOK || !strings.Contains(r.body, "Schedule reports/daily saved.") {
		t.Fatalf("create: got %d, want the schedule page with a saved message", r.code)
	}
	e, err := store.Get(t.Context(), "reports/daily")
	if err != nil {
		t.Fatal(err)
	}
	if e.Spec != "0 9 * * 1-5" || e.TimeZone != "Europe/Berlin" || string(e.Payload) != `{"kind":"daily"}` ||
		e.Header.Get("X-Tenant") != "acme" || e.Jitter.String() != "30s" || e.CatchUp != schedule.CatchUpSkip {
		t.Errorf("stored entry: got %+v", e)
	}
	// Edit through the %2F-escaped path.
	r = form("/schedules/reports%2Fdaily/save", url.Values{"spec": {"@every 10s"}, "subject": {"tasks.reports.daily"}, "paused": {"on"}})
	if r.code != http.StatusOK {
		t.Fatalf("edit: got %d %s", r.code, r.body)
	}
	if e, _ = store.Get(t.Context(), "reports/daily"); e.Spec != "@every 10s" || !e.Paused {
		t.Errorf("edited entry: got spec %q paused %v, want @every 10s paused", e.Spec, e.Paused)
	}
	// An invalid edit re-renders the form with 422 and changes nothing.
	r = form("/schedules/reports%2Fdaily/save", url.Values{"spec": {"every day"}, "subject": {"tasks.reports.daily"}})
	if r.code != http.StatusUnprocessableEntity || !strings.Contains(r.body, "Spec") {
		t.Errorf("invalid edit: got %d, want 422 naming Spec", r.code)
	}
	// Trigger publishes a message.
	r = form("/schedules/reports%2Fdaily/trigger", url.Values{})
	if r.code != http.StatusOK || !strings.Contains(r.body, "triggered") {
		t.Errorf("trigger: got %d", r.code)
	}
	if st, _ := b.js.Stream(t.Context(), "TASKS"); st.CachedInfo().State.Msgs != 1 {
		t.Errorf("messages after trigger: got %d, want 1", st.CachedInfo().State.Msgs)
	}
	// Delete.
	if r = form("/schedules/reports%2Fdaily/delete", url.Values{}); r.code != http.StatusOK {
		t.Errorf("delete: got %d", r.code)
	}
	if _, err := store.Get(t.Context(), "reports/daily"); err == nil {
		t.Error("entry still there after delete")
	}

	// Dead letters: delete through the form.
	seq := deadLetter(t, b)
	r = form("/dead-letters/"+itoa(seq)+"/delete", url.Values{"next": {"/dead-letters?stream=TASKS"}})
	if r.code != http.StatusOK || !strings.Contains(r.body, "deleted") {
		t.Errorf("delete dead letter: got %d", r.code)
	}
	dead, _ := dlq.New(b.js, dlq.Config{})
	if page, _ := dead.List(t.Context(), dlq.Filter{}, 0, 0); len(page.Entries) != 0 {
		t.Errorf("dead letters after delete: got %d, want 0", len(page.Entries))
	}
	// The API replays.
	seq = deadLetter(t, b)
	if r := b.do(t, http.MethodPost, "/api/dead-letters/"+itoa(seq)+"/replay", nil, dashboard.CSRFHeader, tok); r.code != http.StatusOK || !strings.Contains(r.body, `"ref": "TASKS/`) {
		t.Errorf("API replay: got %d %s", r.code, r.body)
	}
	if r := b.do(t, http.MethodPost, "/api/dead-letters/"+itoa(seq)+"/replay", nil, dashboard.CSRFHeader, tok); r.code != http.StatusNotFound {
		t.Errorf("second API replay: got %d, want 404", r.code)
	}
}
