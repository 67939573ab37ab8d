package dashboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/internal/logkey"
	"github.com/jetworker/jetworker/internal/subject"
	"github.com/jetworker/jetworker/streams"
	"github.com/jetworker/jetworker/task"
)

// The task browser. Pending and delayed tasks are read from the task
// stream itself (task.Store.Queued), tracked or not; the other states come
// from the records of tracked tasks (task.Store.List).

// taskPageSize is how many tasks one page lists.
const taskPageSize = 50

// taskTab is one tab of the task browser.
type taskTab struct {
	State, Label string
	// Stream tabs list the stream's messages; the others list records.
	Stream bool
	States []task.State
}

var taskTabs = []taskTab{
	{State: "pending", Label: "Pending", Stream: true},
	{State: "delayed", Label: "Delayed", Stream: true},
	{State: "active", Label: "Active", States: []task.State{task.Active}},
	{State: "retrying", Label: "Retrying", States: []task.State{task.Retrying}},
	{State: "succeeded", Label: "Succeeded", States: []task.State{task.Succeeded}},
	{State: "failed", Label: "Failed", States: []task.State{task.Failed}},
	{State: "cancelled", Label: "Cancelled", States: []task.State{task.Cancelled}},
	{State: "tracked", Label: "All tracked"},
}

func findTab(state string) (taskTab, bool) {
	for _, t := range taskTabs {
		if t.State == state {
			return t, true
		}
	}
	return taskTab{}, false
}

// Statuses of a queued task.
const (
	statusPending   = "pending"   // no consumer it is routed to has delivered it
	statusDelivered = "delivered" // with a worker: running, buffered or waiting to retry
	statusDelayed   = "delayed"   // waiting for its release time
	statusUnrouted  = "unrouted"  // no consumer's filter selects it
)

// queuedView is a task read from its stream, with where it is.
type queuedView struct {
	task.Queued
	// Status is pending, delivered, delayed or unrouted (no consumer's
	// filter selects its subject).
	Status string `json:"status"`
	// Consumers are the consumers whose filters select it.
	Consumers []string `json:"consumers"`
}

// tasksQuery is a task listing request: state (a tab), subject (wildcards
// allowed), id, stream, before (the cursor) and limit.
type tasksQuery struct {
	Tab     taskTab
	Subject string
	ID      string
	Stream  string
	Before  uint64
	Limit   int
}

func (s *Server) tasksQuery(q url.Values) (tasksQuery, error) {
	tq := tasksQuery{Subject: strings.TrimSpace(q.Get("subject")), ID: strings.TrimSpace(q.Get("id")),
		Stream: q.Get("stream"), Limit: taskPageSize}
	var errs []error
	state := q.Get("state")
	if state == "" {
		state = "pending"
	}
	tab, ok := findTab(state)
	if !ok {
		errs = append(errs, fmt.Errorf("state %q: want one of pending, delayed, active, retrying, succeeded, failed, cancelled, tracked", state))
		tab = taskTabs[0]
	}
	tq.Tab = tab
	if tq.Stream == "" {
		tq.Stream = s.cfg.TaskStreams[0]
	} else if !slices.Contains(s.cfg.TaskStreams, tq.Stream) {
		errs = append(errs, fmt.Errorf("stream %q is not one of this dashboard's task streams (%s)", tq.Stream, strings.Join(s.cfg.TaskStreams, ", ")))
		tq.Stream = s.cfg.TaskStreams[0]
	}
	if tq.Subject != "" {
		if err := subject.ValidateFilter(tq.Subject); err != nil {
			errs = append(errs, fmt.Errorf("subject: %w", err))
		}
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("before %q: want a sequence number", v))
		}
		tq.Before = n
	}
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 && n < tq.Limit {
		tq.Limit = n
	}
	return tq, errors.Join(errs...)
}

// tasksList is one page of the task browser.
type tasksList struct {
	State     string
	Source    string // "stream" or "records"
	Stream    string
	Queued    []queuedView
	Records   []task.Info
	Next      uint64
	Retention string // the stream's, for stream tabs
	// NoBucket is set when no task is tracked yet (the bucket does not
	// exist).
	NoBucket bool
}

// tasksJSON is GET /api/tasks: tasks are queued tasks (source "stream")
// or task records (source "records").
type tasksJSON struct {
	State  string `json:"state"`
	Source string `json:"source"`
	Stream string `json:"stream,omitempty"`
	Tasks  any    `json:"tasks"`
	Next   uint64 `json:"next,omitempty"`
}

func (tl tasksList) json() tasksJSON {
	out := tasksJSON{State: tl.State, Source: tl.Source, Next: tl.Next, Tasks: tl.Records}
	if tl.Source == "stream" {
		out.Stream, out.Tasks = tl.Stream, tl.Queued
	}
	return out
}

// tasksProvisioned reports whether the task bucket exists, so that views
// never create it.
func (s *Server) tasksProvisioned(ctx context.Context) (bool, error) {
	if err := s.natsUp(); err != nil {
		return false, err
	}
	_, err := s.js.KeyValue(ctx, s.tasks.Config().Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return false, nil
	}
	return err == nil, err
}

// listTasks reads a page of the task browser.
func (s *Server) listTasks(ctx context.Context, tq tasksQuery) (tasksList, error) {
	tl := tasksList{State: tq.Tab.State, Stream: tq.Stream, Source: "records", Queued: []queuedView{}, Records: []task.Info{}}
	if tq.Tab.Stream {
		tl.Source = "stream"
	}
	if err := s.natsUp(); err != nil {
		return tl, err
	}
	if tq.Tab.Stream {
		page, err := s.tasks.Queued(ctx, tq.Stream, task.QueuedFilter{Delayed: tq.Tab.State == "delayed", Subject: tq.Subject, ID: tq.ID}, tq.Before, tq.Limit)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return tl, fmt.Errorf("stream %q is not provisioned", tq.Stream)
		}
		if err != nil {
			return tl, err
		}
		pos, retention, err := s.consumerPositions(ctx, tq.Stream)
		if err != nil {
			return tl, err
		}
		tl.Retention, tl.Next = retention, page.Next
		for _, q := range page.Tasks {
			tl.Queued = append(tl.Queued, classify(q, pos))
		}
		return tl, nil
	}
	ok, err := s.tasksProvisioned(ctx)
	if err != nil || !ok {
		tl.NoBucket = !ok
		return tl, err
	}
	if tq.ID != "" {
		info, err := s.tasks.Get(ctx, tq.ID)
		if errors.Is(err, task.ErrNotFound) {
			return tl, nil
		}
		if err != nil {
			return tl, err
		}
		if len(tq.Tab.States) == 0 || slices.Contains(tq.Tab.States, info.State) {
			tl.Records = append(tl.Records, normalInfo(info))
		}
		return tl, nil
	}
	page, err := s.tasks.List(ctx, task.Filter{States: tq.Tab.States, Subject: tq.Subject}, tq.Before, tq.Limit)
	if err != nil {
		return tl, err
	}
	for _, info := range page.Tasks {
		tl.Records = append(tl.Records, normalInfo(info))
	}
	tl.Next = page.Next
	return tl, nil
}

// normalInfo gives a record's lists their empty value: JSON [] rather
// than null.
func normalInfo(info task.Info) task.Info {
	if info.History == nil {
		info.History = []task.Transition{}
	}
	return info
}

// consumerPosition is what a consumer has delivered of its stream.
type consumerPosition struct {
	name      string
	filters   []string
	delivered uint64
}

// consumerPositions reads the stream's consumers and its retention.
func (s *Server) consumerPositions(ctx context.Context, stream string) ([]consumerPosition, string, error) {
	st, err := s.js.Stream(ctx, stream)
	if err != nil {
		return nil, "", fmt.Errorf("stream %q: %w", stream, err)
	}
	var out []consumerPosition
	lister := st.ListConsumers(ctx)
	for ci := range lister.Info() {
		fs := slices.Clone(ci.Config.FilterSubjects)
		if ci.Config.FilterSubject != "" {
			fs = append(fs, ci.Config.FilterSubject)
		}
		out = append(out, consumerPosition{name: ci.Name, filters: fs, delivered: ci.Delivered.Stream})
	}
	if err := lister.Err(); err != nil {
		return nil, "", fmt.Errorf("consumers of %q: %w", stream, err)
	}
	return out, st.CachedInfo().Config.Retention.String(), nil
}

// classify says where a queued task is: a task above the delivered
// sequence of a consumer that selects it has not reached that consumer.
func classify(q task.Queued, pos []consumerPosition) queuedView {
	v := queuedView{Queued: q, Consumers: []string{}}
	if v.Header == nil {
		v.Header = map[string][]string{}
	}
	if q.Delayed {
		v.Status = statusDelayed
		return v
	}
	pending := false
	for _, c := range pos {
		selects := len(c.filters) == 0
		for _, f := range c.filters {
			if subject.Match(f, q.Subject) {
				selects = true
				break
			}
		}
		if !selects {
			continue
		}
		v.Consumers = append(v.Consumers, c.name)
		if q.Sequence > c.delivered {
			pending = true
		}
	}
	switch {
	case len(v.Consumers) == 0:
		v.Status = statusUnrouted
	case pending:
		v.Status = statusPending
	default:
		v.Status = statusDelivered
	}
	return v
}

// queuedAt reads the task stored at stream/seq from its stream.
func (s *Server) queuedAt(ctx context.Context, stream string, seq uint64) (queuedView, error) {
	ref := jetworker.Ref(stream, seq)
	if !slices.Contains(s.cfg.TaskStreams, stream) {
		return queuedView{}, fmt.Errorf("%w: %s: %q is not one of this dashboard's task streams", task.ErrNotFound, ref, stream)
	}
	if err := s.natsUp(); err != nil {
		return queuedView{}, err
	}
	st, err := s.js.Stream(ctx, stream)
	if err != nil {
		return queuedView{}, fmt.Errorf("stream %q: %w", stream, err)
	}
	m, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return queuedView{}, fmt.Errorf("%w: %s is no longer stored (it finished, was cancelled, or was released)", task.ErrNotFound, ref)
	}
	if err != nil {
		return queuedView{}, fmt.Errorf("get %s: %w", ref, err)
	}
	delayed := strings.HasPrefix(m.Subject, streams.DelaySubjectPrefix(stream))
	page, err := s.tasks.Queued(ctx, stream, task.QueuedFilter{Delayed: delayed}, seq+1, 1)
	if err != nil {
		return queuedView{}, err
	}
	if len(page.Tasks) == 0 || page.Tasks[0].Sequence != seq {
		return queuedView{}, fmt.Errorf("%w: %s is not a task", task.ErrNotFound, ref)
	}
	pos, _, err := s.consumerPositions(ctx, stream)
	if err != nil {
		return queuedView{}, err
	}
	return classify(page.Tasks[0], pos), nil
}

func parseRef(r *http.Request) (string, uint64, error) {
	stream := r.PathValue("stream")
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		return "", 0, fmt.Errorf("%w: bad sequence %q", task.ErrNotFound, r.PathValue("seq"))
	}
	return stream, seq, nil
}

// errNotDelayed is returned by run-now for a task that is not waiting for
// its release.
var errNotDelayed = errors.New("the task is not delayed: only a delayed task can run now")

// cancelTask cancels a tracked task and says what happened.
func (s *Server) cancelTask(ctx context.Context, id string) (task.Info, string, error) {
	info, err := s.tasks.Cancel(ctx, id)
	if err != nil {
		return info, "", err
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "task cancelled", slog.String(logkey.TaskID, id), slog.String("state", string(info.State)))
	if info.State == task.Cancelled {
		return normalInfo(info), fmt.Sprintf("Task %s cancelled before it ran.", id), nil
	}
	return normalInfo(info), fmt.Sprintf("Cancel requested: the worker running %s stops it within a second.", id), nil
}

// runNowTask releases a tracked delayed task.
func (s *Server) runNowTask(ctx context.Context, id string) (string, error) {
	info, err := s.tasks.Get(ctx, id)
	if err != nil {
		return "", err
	}
	if info.State != task.Scheduled || info.Stream == "" || info.Sequence == 0 {
		return "", fmt.Errorf("%w (it is %s)", errNotDelayed, info.State)
	}
	return s.runNowRef(ctx, info.Stream, info.Sequence)
}

func (s *Server) runNowRef(ctx context.Context, stream string, seq uint64) (string, error) {
	if !slices.Contains(s.cfg.TaskStreams, stream) {
		return "", fmt.Errorf("%w: %q is not one of this dashboard's task streams", task.ErrNotFound, stream)
	}
	ref, err := s.tasks.RunNow(ctx, stream, seq)
	if err != nil {
		return "", err
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "delayed task released now", slog.String(logkey.Task, jetworker.Ref(stream, seq)), slog.String("released", ref))
	return ref, nil
}

// cancelRef removes the task stored at stream/seq, tracked or not, and
// tells a worker running it to stop.
func (s *Server) cancelRef(ctx context.Context, stream string, seq uint64) (bool, string, error) {
	if !slices.Contains(s.cfg.TaskStreams, stream) {
		return false, "", fmt.Errorf("%w: %q is not one of this dashboard's task streams", task.ErrNotFound, stream)
	}
	removed, err := s.tasks.CancelRef(ctx, stream, seq)
	if err != nil {
		return false, "", err
	}
	ref := jetworker.Ref(stream, seq)
	s.log.LogAttrs(ctx, slog.LevelInfo, "task cancelled by reference", slog.String(logkey.Task, ref), slog.Bool("removed", removed))
	if removed {
		return true, fmt.Sprintf("Task %s removed from its stream: it will not run.", ref), nil
	}
	return false, fmt.Sprintf("Task %s was not removed: a worker has it, or it ended. A worker running it was told to stop.", ref), nil
}
