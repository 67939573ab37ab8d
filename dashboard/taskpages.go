package dashboard

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/task"
)

// tasksPage is the task browser page.
type tasksPage struct {
	tasksList
	Tabs     []tabLink
	Query    tasksQuery
	Streams  []string
	Older    template.URL
	Newest   template.URL
	Here     string // this page, for forms that come back
	Filtered bool
	Bucket   string
}

type tabLink struct {
	Label  string
	Query  template.URL
	Active bool
}

func (s *Server) pageTasks(w http.ResponseWriter, r *http.Request) {
	pd := s.newPage(r, "tasks", "Tasks", true)
	q := r.URL.Query()
	tq, err := s.tasksQuery(q)
	// An ID of a tracked task opens its page.
	if tq.ID != "" && err == nil {
		if ok, _ := s.tasksProvisioned(r.Context()); ok {
			if _, gerr := s.tasks.Get(r.Context(), tq.ID); gerr == nil {
				http.Redirect(w, r, "/tasks/"+url.PathEscape(tq.ID), http.StatusSeeOther)
				return
			}
		}
	}
	var tl tasksList
	if err == nil {
		tl, err = s.listTasks(r.Context(), tq)
	}
	if err != nil {
		pd.Err = readError(err).Error()
	}
	if tl.State == "" {
		tl.State = tq.Tab.State
	}
	tp := tasksPage{tasksList: tl, Query: tq, Streams: s.cfg.TaskStreams, Here: "/tasks?" + r.URL.RawQuery,
		Filtered: tq.Subject != "" || tq.ID != "", Bucket: s.tasks.Config().Bucket}
	for _, tab := range taskTabs {
		v := url.Values{"state": {tab.State}}
		for _, k := range []string{"subject", "id", "stream"} {
			if x := q.Get(k); x != "" {
				v.Set(k, x)
			}
		}
		tp.Tabs = append(tp.Tabs, tabLink{Label: tab.Label, Query: queryURL(v), Active: tab.State == tq.Tab.State})
	}
	older, newest := url.Values{}, url.Values{}
	for k, vs := range q {
		older[k], newest[k] = vs, vs
	}
	older.Set("before", strconv.FormatUint(tl.Next, 10))
	newest.Del("before")
	tp.Older, tp.Newest = queryURL(older), queryURL(newest)
	pd.Data = tp
	s.render(w, r, "tasks", http.StatusOK, pd)
}

// taskPage is the page of one task: tracked (Info) or read from its
// stream only (Ref).
type taskPage struct {
	Tracked bool
	Info    task.Info
	// Message is the task as stored in its stream, when it still is.
	Message *queuedView
	// MessageErr says why the stored message is not shown.
	MessageErr string
	// Events is the URL of the live updates, "" when there is nothing
	// left to follow.
	Events    string
	CanCancel bool
	CanRunNow bool
	CanDelete bool
	Path      string // the page's path, for forms
}

func (s *Server) pageTask(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	pd := s.newPage(r, "tasks", "Task "+id, false)
	tp := taskPage{Tracked: true, Path: "/tasks/" + url.PathEscape(id)}
	code := http.StatusOK
	ok, err := s.tasksProvisioned(r.Context())
	if err == nil && !ok {
		err = errNoBucket(s.tasks.Config().Bucket, id)
	}
	if err == nil {
		tp.Info, err = s.tasks.Get(r.Context(), id)
	}
	if err != nil {
		pd.Err, code = readError(err).Error(), statusOf(err)
		pd.Data = tp
		s.render(w, r, "task", code, pd)
		return
	}
	tp.Info = normalInfo(tp.Info)
	terminal := tp.Info.State.Terminal()
	if !terminal {
		tp.Events = "/api/tasks/" + url.PathEscape(id) + "/events"
	}
	tp.CanCancel = !terminal
	tp.CanRunNow = tp.Info.State == task.Scheduled && tp.Info.Stream != "" && tp.Info.Sequence > 0
	if tp.Info.Stream != "" && tp.Info.Sequence > 0 {
		m, err := s.queuedAt(r.Context(), tp.Info.Stream, tp.Info.Sequence)
		switch {
		case errors.Is(err, task.ErrNotFound):
			tp.MessageErr = "Its stream no longer holds it (" + tp.Info.Ref + ")."
		case err != nil:
			tp.MessageErr = "Its stored message cannot be read: " + readError(err).Error() + "."
		default:
			tp.Message = &m
		}
	}
	pd.Data = tp
	s.render(w, r, "task", code, pd)
}

func errNoBucket(bucket, id string) error {
	return &noBucketError{bucket: bucket, id: id}
}

// noBucketError says that no task is tracked yet.
type noBucketError struct{ bucket, id string }

func (e *noBucketError) Error() string {
	return "no tracked task " + strconv.Quote(e.id) + ": nothing is tracked yet (the bucket " + e.bucket + " does not exist)"
}

func (e *noBucketError) Unwrap() error { return task.ErrNotFound }

func (s *Server) pageTaskRef(w http.ResponseWriter, r *http.Request) {
	stream, seq, err := parseRef(r)
	ref := jetworker.Ref(stream, seq)
	pd := s.newPage(r, "tasks", "Task "+ref, false)
	tp := taskPage{Path: "/tasks/ref/" + url.PathEscape(stream) + "/" + strconv.FormatUint(seq, 10)}
	var m queuedView
	if err == nil {
		m, err = s.queuedAt(r.Context(), stream, seq)
	}
	code := http.StatusOK
	if err != nil {
		pd.Err, code = readError(err).Error(), statusOf(err)
	} else {
		tp.Message = &m
		tp.CanRunNow = m.Delayed
		tp.CanDelete = m.Status == statusPending || m.Status == statusUnrouted
		tp.CanCancel = m.Status == statusDelivered || m.Delayed
	}
	pd.Data = tp
	s.render(w, r, "task", code, pd)
}

// formTaskAction runs cancel or run-now on a tracked task.
func (s *Server) formTaskAction(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	back := "/tasks/" + url.PathEscape(id)
	var msg string
	var err error
	switch r.PathValue("action") {
	case "cancel":
		_, msg, err = s.cancelTask(r.Context(), id)
	case "run-now":
		var ref string
		if ref, err = s.runNowTask(r.Context(), id); err == nil {
			msg = "Released now as " + ref + "."
		}
	default:
		err = errors.New("unknown action " + strconv.Quote(r.PathValue("action")))
	}
	redirect(w, r, localNext(r, back), msg, err)
}

// formTaskRefAction runs cancel, delete or run-now on a task known by its
// stream and sequence.
func (s *Server) formTaskRefAction(w http.ResponseWriter, r *http.Request) {
	stream, seq, err := parseRef(r)
	back := "/tasks/ref/" + url.PathEscape(stream) + "/" + strconv.FormatUint(seq, 10)
	var msg string
	if err == nil {
		switch r.PathValue("action") {
		case "cancel", "delete":
			var removed bool
			removed, msg, err = s.cancelRef(r.Context(), stream, seq)
			if removed && err == nil {
				back = "/tasks?stream=" + url.QueryEscape(stream)
			}
		case "run-now":
			var ref string
			if ref, err = s.runNowRef(r.Context(), stream, seq); err == nil {
				msg, back = "Released now as "+ref+".", "/tasks?stream="+url.QueryEscape(stream)
			}
		default:
			err = errors.New("unknown action " + strconv.Quote(r.PathValue("action")))
		}
	}
	redirect(w, r, localNext(r, back), msg, err)
}
