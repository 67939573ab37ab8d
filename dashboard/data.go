package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dlq"
	"github.com/jetworker/jetworker/overview"
	"github.com/jetworker/jetworker/schedule"
)

// The JSON API's and the pages' view types. Their JSON form is the API's
// wire format.

type natsView struct {
	Connected bool   `json:"connected"`
	Status    string `json:"status"`
	Server    string `json:"server,omitempty"`
}

// overviewView is the overview page and GET /api/overview. When the
// state cannot be read (NATS is down), Known is false, the totals are null
// and Error says why: never zeros that look like an idle system.
type overviewView struct {
	NATS      natsView          `json:"nats"`
	Known     bool              `json:"known"`
	Error     string            `json:"error,omitempty"`
	Streams   []overview.Stream `json:"streams"`
	Consumers []overview.Load   `json:"consumers"`
	// Totals over the task streams' consumers, the dead letters, and the
	// live workers. Running counts handlers running now (from the
	// workers' presence records); Buffered counts messages delivered to a
	// worker and waiting for a free handler (overview.SplitDelivered).
	Pending     *uint64 `json:"pending"`
	Running     *int64  `json:"running"`
	Buffered    *int64  `json:"buffered"`
	DeadLetters *uint64 `json:"dead_letters"`
	Workers     *int    `json:"workers"`
	Leader      string  `json:"leader"`
	LeaderKnown bool    `json:"leader_known"`
	// Outbox is set when the dashboard is given one.
	Outbox *outboxView `json:"outbox,omitempty"`
}

func (s *Server) natsView() natsView {
	nc := s.js.Conn()
	v := natsView{Status: nc.Status().String(), Connected: nc.Status() == nats.CONNECTED}
	if v.Connected {
		v.Server = nc.ConnectedUrlRedacted()
	}
	return v
}

func (s *Server) overviewConfig() overview.Config {
	return overview.Config{TaskStreams: s.cfg.TaskStreams, DeadLetterStream: s.cfg.DeadLetterStream, Timeout: min(s.cfg.CheckTimeout, pageTimeout), NowFunc: s.cfg.NowFunc}
}

// pageTimeout bounds the reads behind one page or API read, so a slow or
// absent server makes the page say "unknown" quickly instead of hanging.
const pageTimeout = time.Second

// errNoAnswer is what a page reports when its reads ran out of
// pageTimeout: NATS is connected, but JetStream did not answer.
var errNoAnswer = errors.New("unknown for now: JetStream did not answer within " + pageTimeout.String() +
	" (is JetStream enabled for this account? is a stream stalled or the server overloaded?); the page tries again when it refreshes")

// readError explains an error of the reads behind a page: one that ran out
// of time wraps errNoAnswer.
func readError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, errNoAnswer) {
		return fmt.Errorf("%w: %w", errNoAnswer, err)
	}
	return err
}

// fullOverview reads the streams, the workers and the scheduler leader at
// once, within pageTimeout.
func (s *Server) fullOverview(ctx context.Context) overviewView {
	ov := overviewView{NATS: s.natsView(), Streams: []overview.Stream{}, Consumers: []overview.Load{}}
	if !ov.NATS.Connected {
		ov.Error = "NATS is " + strings.ToLower(ov.NATS.Status) + ": the state is unknown"
		return ov
	}
	ctx, cancel := context.WithTimeout(ctx, pageTimeout)
	defer cancel()
	var (
		wg      sync.WaitGroup
		state   overview.Overview
		serr    error
		ws      []consumer.WorkerInfo
		werr    error
		leader  string
		lerr    error
		leaders = !s.cfg.DisableSchedules
	)
	wg.Go(func() { state, serr = overview.Read(ctx, s.js, s.overviewConfig()) })
	wg.Go(func() { ws, werr = s.workers(ctx) })
	wg.Go(func() { ov.Outbox = s.outboxView(ctx) })
	if leaders {
		wg.Go(func() { leader, lerr = schedule.Leader(ctx, s.js, s.cfg.LeaseKey) })
	}
	wg.Wait()
	var errs []error
	if serr != nil {
		errs = append(errs, serr)
	} else {
		ov.Known = true
		ov.Streams = state.Streams
		ov.Pending = &state.Pending
		ov.DeadLetters = &state.DeadLetters
	}
	if werr != nil {
		errs = append(errs, werr)
	} else {
		n := len(ws)
		ov.Workers = &n
	}
	if serr == nil {
		d := overview.SplitDelivered(state.Consumers, ws, werr == nil)
		ov.Consumers, ov.Running, ov.Buffered = d.Consumers, d.Running, d.Buffered
	}
	if leaders {
		if lerr != nil {
			errs = append(errs, lerr)
		} else {
			ov.Leader, ov.LeaderKnown = leader, true
		}
	}
	if err := errors.Join(errs...); err != nil {
		ov.Error = readError(err).Error()
	}
	return ov
}

var errWorkersDisabled = errors.New("worker presence is disabled")

// errNATSUnreachable is returned by the reads behind the pages while the
// connection is not up, at once rather than after a request timeout.
var errNATSUnreachable = errors.New("NATS is not connected: this cannot be read now; the dashboard reconnects on its own")

// natsUp fails fast while the NATS connection is down.
func (s *Server) natsUp() error {
	if st := s.js.Conn().Status(); st != nats.CONNECTED {
		return fmt.Errorf("%w (the connection is %s)", errNATSUnreachable, strings.ToLower(st.String()))
	}
	return nil
}

func (s *Server) workers(ctx context.Context) ([]consumer.WorkerInfo, error) {
	if s.cfg.DisableWorkers {
		return []consumer.WorkerInfo{}, nil
	}
	if err := s.natsUp(); err != nil {
		return nil, err
	}
	return consumer.Presence{Bucket: s.cfg.PresenceBucket}.List(ctx, s.js)
}

// deadLetterQuery is a dead-letter listing request read from query
// parameters (or form fields): stream, consumer, subject (wildcards
// allowed), task_id, since and until (RFC 3339, or a datetime-local value
// read as UTC), before (the paging cursor) and limit.
type deadLetterQuery struct {
	Filter dlq.Filter
	Before uint64
	Limit  int
}

func (s *Server) deadLetterQuery(r *http.Request) (deadLetterQuery, error) {
	return s.parseDeadLetterQuery(r.URL.Query())
}

// timeLayouts are the times a filter accepts: RFC 3339, and what an HTML
// datetime-local input sends (read as UTC).
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04"}

func parseFilterTime(v string) (time.Time, error) {
	for _, layout := range timeLayouts {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", v)
}

func (s *Server) parseDeadLetterQuery(q url.Values) (deadLetterQuery, error) {
	dq := deadLetterQuery{
		Filter: dlq.Filter{
			Stream:   strings.TrimSpace(q.Get("stream")),
			Consumer: strings.TrimSpace(q.Get("consumer")),
			Subject:  strings.TrimSpace(q.Get("subject")),
			TaskID:   strings.TrimSpace(q.Get("task_id")),
		},
		Limit: s.cfg.DeadLetterLimit,
	}
	var errs []error
	for _, t := range []struct {
		key string
		dst *time.Time
	}{{"since", &dq.Filter.Since}, {"until", &dq.Filter.Until}} {
		if v := strings.TrimSpace(q.Get(t.key)); v != "" {
			at, err := parseFilterTime(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %w", t.key, err))
			}
			*t.dst = at
		}
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("before %q: want a sequence number", v))
		}
		dq.Before = n
	}
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 && n < dq.Limit {
		dq.Limit = n
	}
	if err := dq.Filter.Validate(); err != nil {
		errs = append(errs, err)
	}
	return dq, errors.Join(errs...)
}

// deadLetters lists a page of dead letters; a missing dead-letter stream is
// an empty page.
func (s *Server) deadLetters(ctx context.Context, q deadLetterQuery) (dlq.Page, error) {
	if err := s.natsUp(); err != nil {
		return dlq.Page{Entries: []dlq.Entry{}}, err
	}
	page, err := s.dlq.List(ctx, q.Filter, q.Before, q.Limit)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return dlq.Page{Entries: []dlq.Entry{}}, nil
	}
	if page.Entries == nil {
		page.Entries = []dlq.Entry{} // dlq.List returns nil for an empty page
	}
	return page, err
}

// scheduleView is an entry with what the schedulers recorded of it
// (schedule.State) and its next slot.
type scheduleView struct {
	schedule.Entry
	// StateKnown is false when the scheduler's record of the entry could
	// not be read (in the page's time): LastFired and the fire error are
	// then unknown, not empty, and StateError says why.
	StateKnown bool   `json:"state_known"`
	StateError string `json:"state_error,omitempty"`
	// LastFired is the last slot fired (or passed over).
	LastFired time.Time `json:"last_fired,omitzero"`
	// FireError is why the fires of the next slot keep failing (no stream
	// captures the subject, a permission is missing…), "" once one
	// succeeds; FireErrorAt is when it was recorded and FireFailures how
	// many fires of that slot had failed then. The scheduler keeps
	// retrying.
	FireError    string    `json:"fire_error,omitempty"`
	FireErrorAt  time.Time `json:"fire_error_at,omitzero"`
	FireFailures int       `json:"fire_failures,omitempty"`
	NextFire     time.Time `json:"next_fire,omitzero"`
	NextError    string    `json:"next_error,omitempty"`
}

type schedulesView struct {
	Leader    string         `json:"leader"`
	Schedules []scheduleView `json:"schedules"`
}

// schedulesProvisioned reports whether the schedules bucket exists, so that
// read-only views never create it.
func (s *Server) schedulesProvisioned(ctx context.Context) (bool, error) {
	_, err := s.js.KeyValue(ctx, schedule.SchedulesBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return false, nil
	}
	return err == nil, err
}

// scheduleViews adds to every entry the schedulers' state, read in one
// watch of the state bucket (schedule.Store.States) within ctx, the
// page's budget: when it cannot be read by then, every entry shows it as
// unknown.
func (s *Server) scheduleViews(ctx context.Context, entries []schedule.Entry) []scheduleView {
	out := make([]scheduleView, len(entries))
	for i, e := range entries {
		out[i] = scheduleView{Entry: e}
		if next, err := e.Next(s.cfg.NowFunc(), 1); err != nil {
			out[i].NextError = err.Error()
		} else if len(next) > 0 {
			out[i].NextFire = next[0]
		}
	}
	if len(entries) == 0 {
		return out
	}
	states, err := s.store.States(ctx)
	for i := range out {
		v := &out[i]
		if err != nil {
			v.StateError = readError(err).Error()
			continue
		}
		st := states[v.Name]
		v.StateKnown = true
		v.LastFired = st.LastSlot
		v.FireError, v.FireErrorAt, v.FireFailures = st.Error, st.ErrorAt, st.Failures
	}
	return out
}

func (s *Server) schedules(ctx context.Context) (schedulesView, error) {
	sv := schedulesView{Schedules: []scheduleView{}}
	if err := s.natsUp(); err != nil {
		return sv, err
	}
	leader, err := schedule.Leader(ctx, s.js, s.cfg.LeaseKey)
	if err != nil {
		return sv, err
	}
	sv.Leader = leader
	ok, err := s.schedulesProvisioned(ctx)
	if !ok || err != nil {
		return sv, err
	}
	entries, err := s.store.List(ctx)
	if err != nil {
		return sv, err
	}
	sv.Schedules = s.scheduleViews(ctx, entries)
	return sv, nil
}

func (s *Server) scheduleByName(ctx context.Context, name string) (scheduleView, error) {
	if err := s.natsUp(); err != nil {
		return scheduleView{}, err
	}
	ok, err := s.schedulesProvisioned(ctx)
	if err != nil {
		return scheduleView{}, err
	}
	if !ok {
		return scheduleView{}, fmt.Errorf("%w: %q", schedule.ErrNotFound, name)
	}
	e, err := s.store.Get(ctx, name)
	if err != nil {
		return scheduleView{}, err
	}
	return s.scheduleViews(ctx, []schedule.Entry{e})[0], nil
}
