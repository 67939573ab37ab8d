package dashboard

import (
	"bytes"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dlq"
	"github.com/jetworker/jetworker/internal/logkey"
	"github.com/jetworker/jetworker/schedule"
)

//go:embed templates static
var assets embed.FS

var pageNames = []string{"overview", "deadletters", "deadletter", "confirm", "schedules", "schedule", "workers", "tasks", "task", "outbox"}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"ts":          formatTime,
		"bytes":       formatBytes,
		"payload":     formatPayload,
		"trunc":       truncate,
		"pathEscape":  url.PathEscape,
		"queryEscape": url.QueryEscape,
		"join":        strings.Join,
		"dur": func(d time.Duration) string {
			if d == 0 {
				return ""
			}
			return d.String()
		},
		"headerLines": headerLines,
		"num":         formatCount,
		"nonzero":     nonzero,
		"age":         formatAge,
		"rel":         relTime,
		"stateClass":  stateClass,
		"u64":         func(n int) uint64 { return uint64(max(n, 0)) },
		"percent":     func(p float64) string { return strconv.FormatFloat(p, 'f', 0, 64) + "%" },
		"rfc3339": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.Format(time.RFC3339)
		},
	}
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/partials.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard: parse template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// pageData is what every page template gets.
type pageData struct {
	Title      string
	Nav        string
	ReadOnly   bool
	CSRF       string
	CSRFField  string
	Refresh    int64 // milliseconds; 0: no auto-refresh
	Flash      string
	FlashError string
	Err        string
	NATS       natsView
	Now        time.Time
	Show       shownPages
	// Session is set when the request was authenticated by a session
	// cookie: the page offers to sign out.
	Session bool
	Data    any
}

// shownPages says which optional pages the navigation links to.
type shownPages struct {
	Tasks, Schedules, Workers, Outbox bool
}

func (s *Server) newPage(r *http.Request, nav, title string, live bool) pageData {
	pd := pageData{
		Title: title, Nav: nav, ReadOnly: s.cfg.ReadOnly, CSRF: s.csrf, CSRFField: CSRFField,
		Flash: r.URL.Query().Get("flash"), FlashError: r.URL.Query().Get("error"),
		NATS: s.natsView(), Now: s.cfg.NowFunc(),
		Show:    shownPages{Tasks: !s.cfg.DisableTasks, Schedules: !s.cfg.DisableSchedules, Workers: !s.cfg.DisableWorkers, Outbox: s.cfg.Outbox != nil},
		Session: authOf(r) == authSession,
	}
	if live && s.cfg.RefreshInterval > 0 {
		pd.Refresh = s.cfg.RefreshInterval.Milliseconds()
	}
	return pd
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, page string, code int, pd pageData) {
	s.writeHTML(w, r, s.pages[page], "layout", code, pd)
}

// writeHTML executes the template name of t with data into a buffer and
// answers with it and code, uncached; a template that fails is logged and
// answered with 500 instead of half a page.
func (s *Server) writeHTML(w http.ResponseWriter, r *http.Request, t *template.Template, name string, code int, data any) {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelError, "render page", slog.String("page", t.Name()), slog.Any(logkey.Err, err))
		http.Error(w, "render page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = buf.WriteTo(w)
}

// queryURL is v encoded for an href after "?": html/template would
// otherwise escape its = and & as data.
func queryURL(v url.Values) template.URL { return template.URL(v.Encode()) }

// redirect answers a form post with 303 to next, carrying a flash message.
func redirect(w http.ResponseWriter, r *http.Request, next, flash string, err error) {
	q := url.Values{}
	if err != nil {
		q.Set("error", err.Error())
	} else if flash != "" {
		q.Set("flash", flash)
	}
	sep := "?"
	if strings.Contains(next, "?") {
		sep = "&"
	}
	http.Redirect(w, r, next+sep+q.Encode(), http.StatusSeeOther)
}

// localNext returns the form's "next" field if it is a local path, else
// fallback.
func localNext(r *http.Request, fallback string) string {
	n := r.PostFormValue("next")
	if strings.HasPrefix(n, "/") && !strings.HasPrefix(n, "//") && !strings.Contains(n, `\`) {
		return n
	}
	return fallback
}

func (s *Server) pageOverview(w http.ResponseWriter, r *http.Request) {
	pd := s.newPage(r, "overview", "Overview", true)
	ov := s.fullOverview(r.Context())
	pd.Err = ov.Error
	pd.Data = overviewPage{overviewView: ov, Charts: s.charts(s.parseWindow(r.URL.Query().Get("window")))}
	s.render(w, r, "overview", http.StatusOK, pd)
}

// overviewPage is the overview with its charts.
type overviewPage struct {
	overviewView
	Charts chartsView
}

type deadLettersPage struct {
	Filter  dlq.Filter
	Letters []dlq.Entry
	Next    uint64       // cursor of the older page; 0 on the last
	Before  uint64       // this page's cursor; 0 on the newest
	Query   string       // the request's query, for forms that come back here
	Older   template.URL // query of the older page
	Newest  template.URL // query of the newest page
	// Filtered is set when any filter is set; Matching is the filter's
	// query, for the "everything matching" links.
	Filtered   bool
	Matching   template.URL
	Describe   string
	Ranges     []rangeLink
	SinceLocal string
	UntilLocal string
}

func (s *Server) pageDeadLetters(w http.ResponseWriter, r *http.Request) {
	pd := s.newPage(r, "dead-letters", "Dead letters", true)
	q, err := s.deadLetterQuery(r)
	var page dlq.Page
	if err == nil {
		page, err = s.deadLetters(r.Context(), q)
	}
	if err != nil {
		pd.Err = readError(err).Error()
	}
	older, newest := r.URL.Query(), r.URL.Query()
	older.Set("before", strconv.FormatUint(page.Next, 10))
	newest.Del("before")
	fv := filterValues(q.Filter)
	pd.Data = deadLettersPage{
		Filter: q.Filter, Letters: page.Entries, Next: page.Next, Before: q.Before,
		Query: r.URL.RawQuery, Older: queryURL(older), Newest: queryURL(newest),
		Filtered: len(fv) > 0, Matching: queryURL(fv), Describe: describeFilter(q.Filter),
		Ranges:     quickRanges(fv, s.cfg.NowFunc()),
		SinceLocal: datetimeLocal(q.Filter.Since), UntilLocal: datetimeLocal(q.Filter.Until),
	}
	s.render(w, r, "deadletters", http.StatusOK, pd)
}

func (s *Server) pageDeadLetter(w http.ResponseWriter, r *http.Request) {
	pd := s.newPage(r, "dead-letters", "Dead letter", false)
	seq, err := parseSeq(r)
	var dl *dlq.Entry
	if err == nil {
		dl, err = s.dlq.Get(r.Context(), seq)
	}
	code := http.StatusOK
	if err != nil {
		pd.Err = readError(err).Error()
		code = statusOf(err)
	} else {
		pd.Title = fmt.Sprintf("Dead letter #%d", dl.Sequence)
	}
	pd.Data = dl
	s.render(w, r, "deadletter", code, pd)
}

func (s *Server) formReplay(w http.ResponseWriter, r *http.Request) {
	seq, err := parseSeq(r)
	var msg string
	if err == nil {
		var res dlq.Replayed
		res, err = s.dlq.Replay(r.Context(), seq)
		msg = fmt.Sprintf("Dead letter #%d replayed as %s.", seq, res.Ref)
		if err == nil {
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "dead letter replayed", slog.Uint64(logkey.Seq, seq), slog.String(logkey.TaskID, res.TaskID), slog.String(logkey.Task, res.Ref))
		}
	}
	redirect(w, r, localNext(r, "/dead-letters"), msg, err)
}

func (s *Server) formDeleteDeadLetter(w http.ResponseWriter, r *http.Request) {
	seq, err := parseSeq(r)
	if err == nil {
		err = s.dlq.Delete(r.Context(), seq)
	}
	if err == nil {
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "dead letter deleted", slog.Uint64(logkey.Seq, seq))
	}
	redirect(w, r, localNext(r, "/dead-letters"), fmt.Sprintf("Dead letter #%d deleted.", seq), err)
}

func (s *Server) pageWorkers(w http.ResponseWriter, r *http.Request) {
	pd := s.newPage(r, "workers", "Workers", true)
	ws, err := s.workers(r.Context())
	if err != nil {
		pd.Err = readError(err).Error()
	}
	pd.Data = struct {
		Workers  []consumer.WorkerInfo
		Disabled bool
	}{ws, s.cfg.DisableWorkers}
	s.render(w, r, "workers", http.StatusOK, pd)
}

func (s *Server) pageSchedules(w http.ResponseWriter, r *http.Request) {
	pd := s.newPage(r, "schedules", "Schedules", true)
	sv, err := s.schedules(r.Context())
	if err != nil {
		pd.Err = readError(err).Error()
	}
	pd.Data = sv
	s.render(w, r, "schedules", http.StatusOK, pd)
}

// scheduleForm is the edit form's state.
type scheduleForm struct {
	New      bool
	View     scheduleView
	CatchUps []schedule.CatchUp
	Leader   string
}

func (s *Server) pageNewSchedule(w http.ResponseWriter, r *http.Request) {
	pd := s.newPage(r, "schedules", "New schedule", false)
	pd.Data = scheduleForm{New: true, CatchUps: catchUps, View: scheduleView{Entry: schedule.Entry{Spec: "@every 1m", TimeZone: "UTC"}}}
	s.render(w, r, "schedule", http.StatusOK, pd)
}

var catchUps = []schedule.CatchUp{schedule.CatchUpOnce, schedule.CatchUpSkip, schedule.CatchUpAll}

func (s *Server) pageSchedule(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	pd := s.newPage(r, "schedules", "Schedule "+name, false)
	v, err := s.scheduleByName(r.Context(), name)
	code := http.StatusOK
	if err != nil {
		pd.Err = readError(err).Error()
		code = statusOf(err)
	}
	leader, _ := schedule.Leader(r.Context(), s.js, s.cfg.LeaseKey)
	pd.Data = scheduleForm{View: v, CatchUps: catchUps, Leader: leader}
	s.render(w, r, "schedule", code, pd)
}

func (s *Server) formScheduleAction(w http.ResponseWriter, r *http.Request) {
	name, action := r.PathValue("name"), r.PathValue("action")
	switch action {
	case "save":
		s.formSaveSchedule(w, r)
		return
	case "delete":
		err := s.store.Delete(r.Context(), name)
		if err == nil {
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "schedule deleted", slog.String(logkey.Schedule, name))
		}
		redirect(w, r, "/schedules", fmt.Sprintf("Schedule %s deleted.", name), err)
		return
	}
	id, err := s.scheduleAction(r, name, action)
	msg := map[string]string{
		"pause":   fmt.Sprintf("Schedule %s paused.", name),
		"resume":  fmt.Sprintf("Schedule %s resumed.", name),
		"trigger": fmt.Sprintf("Schedule %s triggered: message %s.", name, id),
	}[action]
	redirect(w, r, localNext(r, "/schedules"), msg, err)
}

// formSaveSchedule creates (POST /schedules/+new) or replaces (POST
// /schedules/{name}/save) an entry from the edit form.
func (s *Server) formSaveSchedule(w http.ResponseWriter, r *http.Request) {
	isNew := r.PathValue("name") == ""
	e, ferr := entryFromForm(r)
	if !isNew {
		e.Name = r.PathValue("name")
	}
	var err error
	if ferr != nil {
		err = fmt.Errorf("%w: %w", schedule.ErrInvalidEntry, ferr)
	} else {
		_, err = s.store.Put(r.Context(), e)
	}
	if err != nil {
		pd := s.newPage(r, "schedules", "Edit schedule", false)
		pd.Err = readError(err).Error()
		pd.Data = scheduleForm{New: isNew, View: scheduleView{Entry: e}, CatchUps: catchUps}
		s.render(w, r, "schedule", statusOf(err), pd)
		return
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "schedule saved", slog.String(logkey.Schedule, e.Name))
	redirect(w, r, "/schedules/"+url.PathEscape(e.Name), fmt.Sprintf("Schedule %s saved.", e.Name), nil)
}

// entryFromForm reads an entry from the edit form's fields.
func entryFromForm(r *http.Request) (schedule.Entry, error) {
	f := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	e := schedule.Entry{
		Name:     f("name"),
		Spec:     f("spec"),
		TimeZone: f("time_zone"),
		Subject:  f("subject"),
		Payload:  []byte(r.PostFormValue("payload")),
		CatchUp:  schedule.CatchUp(f("catch_up")),
		Paused:   r.PostFormValue("paused") != "",
	}
	if len(e.Payload) == 0 {
		e.Payload = nil
	}
	var errs []error
	if j := f("jitter"); j != "" {
		d, err := time.ParseDuration(j)
		if err != nil {
			errs = append(errs, fmt.Errorf("jitter: %w", err))
		}
		e.Jitter = d
	}
	for _, field := range []struct {
		name string
		dst  *time.Time
	}{{"start", &e.Start}, {"end", &e.End}} {
		if v := f(field.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: want RFC 3339 (2026-01-02T15:04:05Z): %w", field.name, err))
			}
			*field.dst = t
		}
	}
	for i, line := range strings.Split(r.PostFormValue("headers"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) == "" {
			errs = append(errs, fmt.Errorf("headers line %d: want \"Name: value\"", i+1))
			continue
		}
		if e.Header == nil {
			e.Header = nats.Header{}
		}
		e.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return e, errors.Join(errs...)
}

// stateClass is the tag class of a task state or a queued task's status.
func stateClass(state any) string {
	switch fmt.Sprint(state) {
	case "succeeded":
		return "ok"
	case "failed":
		return "bad"
	case "cancelled", "retrying", "unrouted":
		return "warn"
	}
	return ""
}

func headerLines(h nats.Header) string {
	var b strings.Builder
	for k, vs := range h {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	return b.String()
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// formatPayload shows JSON indented, other text as it is and binary data
// as a hex dump, cut at 64 KiB.
func formatPayload(b []byte) string {
	const max = 64 << 10
	cut := ""
	if len(b) > max {
		b, cut = b[:max], fmt.Sprintf("\n… (%d bytes more)", len(b)-max)
	}
	if len(b) == 0 {
		return "(empty)"
	}
	var out bytes.Buffer
	if json.Valid(b) && json.Indent(&out, b, "", "  ") == nil {
		return out.String() + cut
	}
	if utf8.Valid(b) {
		return string(b) + cut
	}
	return hex.Dump(b) + cut
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// relTime says how far t is from now: "12s ago", "in 3m".
func relTime(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := t.Sub(now)
	future := d > 0
	if !future {
		d = -d
	}
	var v string
	switch {
	case d < time.Second:
		return "now"
	case d < time.Minute:
		v = fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		v = fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		v = fmt.Sprintf("%dh", int(d.Hours()))
	default:
		v = fmt.Sprintf("%dd", int(d.Hours()/24))
	}
	if future {
		return "in " + v
	}
	return v + " ago"
}

// formatCount shows a count that may be unknown (nil) as "unknown".
func formatCount(v any) string {
	switch n := v.(type) {
	case *uint64:
		if n != nil {
			return strconv.FormatUint(*n, 10)
		}
	case *int64:
		if n != nil {
			return strconv.FormatInt(*n, 10)
		}
	case *int:
		if n != nil {
			return strconv.Itoa(*n)
		}
	default:
		return fmt.Sprint(v)
	}
	return "unknown"
}

// nonzero reports whether a count that may be unknown is known and not 0.
func nonzero(v any) bool {
	s := formatCount(v)
	return s != "unknown" && s != "0"
}

// formatAge shows a duration the way people read ages: 45s, 12m, 3h, 2d.
func formatAge(d time.Duration) string {
	switch {
	case d < time.Second:
		return "<1s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
