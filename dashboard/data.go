package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dlq"
	"github.com/jetworker/jetworker/schedule"
)

// The JSON API's and the pages' view types. Their JSON form is the API's
// wire format.

type natsView struct {
	Connected bool   `json:"connected"`
	Status    string `json:"status"`
	Server    string `json:"server,omitempty"`
}

type streamView struct {
	Name        string    `json:"name"`
	Subjects    []string  `json:"subjects,omitempty"`
	DeadLetters bool      `json:"dead_letters"`
	Missing     bool      `json:"missing"`
	Messages    uint64    `json:"messages"`
	Bytes       uint64    `json:"bytes"`
	FirstSeq    uint64    `json:"first_seq"`
	LastSeq     uint64    `json:"last_seq"`
	LastTime    time.Time `json:"last_time,omitzero"`
	Consumers   int       `json:"consumers"`
}

type consumerView struct {
	Stream         string    `json:"stream"`
	Name           string    `json:"name"`
	FilterSubjects []string  `json:"filter_subjects,omitempty"`
	Pending        uint64    `json:"pending"`
	AckPending     int       `json:"ack_pending"`
	Redelivered    int       `json:"redelivered"`
	Waiting        int       `json:"waiting"`
	Delivered      uint64    `json:"delivered_seq"`
	AckFloor       uint64    `json:"ack_floor_seq"`
	LastActive     time.Time `json:"last_active,omitzero"`
}

type overviewView struct {
	NATS      natsView       `json:"nats"`
	Streams   []streamView   `json:"streams"`
	Consumers []consumerView `json:"consumers"`
	// Totals over the task streams' consumers, and the dead letters.
	Pending     uint64 `json:"pending"`
	AckPending  int    `json:"ack_pending"`
	DeadLetters uint64 `json:"dead_letters"`
	Workers     int    `json:"workers"`
	Leader      string `json:"leader"`
}

func (s *Server) natsView() natsView {
	nc := s.js.Conn()
	v := natsView{Status: nc.Status().String(), Connected: nc.Status() == nats.CONNECTED}
	if v.Connected {
		v.Server = nc.ConnectedUrlRedacted()
	}
	return v
}

// overview reads the configured streams and their consumers. A missing
// stream is reported as Missing, not as an error.
func (s *Server) overview(ctx context.Context) (overviewView, error) {
	ov := overviewView{NATS: s.natsView(), Streams: []streamView{}, Consumers: []consumerView{}}
	var errs []error
	names := append(append([]string(nil), s.cfg.TaskStreams...), s.cfg.DeadLetterStream)
	for i, name := range names {
		dead := i == len(names)-1
		sv := streamView{Name: name, DeadLetters: dead}
		st, err := s.js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			sv.Missing = true
			ov.Streams = append(ov.Streams, sv)
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("stream %q: %w", name, err))
			continue
		}
		info := st.CachedInfo()
		sv.Subjects = info.Config.Subjects
		sv.Messages, sv.Bytes = info.State.Msgs, info.State.Bytes
		sv.FirstSeq, sv.LastSeq, sv.LastTime = info.State.FirstSeq, info.State.LastSeq, info.State.LastTime
		sv.Consumers = info.State.Consumers
		ov.Streams = append(ov.Streams, sv)
		if dead {
			ov.DeadLetters = sv.Messages
			continue
		}
		lister := st.ListConsumers(ctx)
		for ci := range lister.Info() {
			cv := consumerView{
				Stream: name, Name: ci.Name,
				Pending: ci.NumPending, AckPending: ci.NumAckPending,
				Redelivered: ci.NumRedelivered, Waiting: ci.NumWaiting,
				Delivered: ci.Delivered.Stream, AckFloor: ci.AckFloor.Stream,
			}
			if ci.Delivered.Last != nil {
				cv.LastActive = *ci.Delivered.Last
			}
			cv.FilterSubjects = ci.Config.FilterSubjects
			if ci.Config.FilterSubject != "" {
				cv.FilterSubjects = append(cv.FilterSubjects, ci.Config.FilterSubject)
			}
			ov.Consumers = append(ov.Consumers, cv)
			ov.Pending += cv.Pending
			ov.AckPending += cv.AckPending
		}
		if err := lister.Err(); err != nil {
			errs = append(errs, fmt.Errorf("list consumers of %q: %w", name, err))
		}
	}
	sort.Slice(ov.Consumers, func(i, j int) bool {
		a, b := ov.Consumers[i], ov.Consumers[j]
		return a.Stream < b.Stream || a.Stream == b.Stream && a.Name < b.Name
	})
	return ov, errors.Join(errs...)
}

// fullOverview adds workers and the scheduler leader to overview.
func (s *Server) fullOverview(ctx context.Context) (overviewView, error) {
	ov, err := s.overview(ctx)
	if ws, werr := s.workers(ctx); werr == nil {
		ov.Workers = len(ws)
	} else {
		err = errors.Join(err, werr)
	}
	if !s.cfg.DisableSchedules {
		l, lerr := schedule.Leader(ctx, s.js, s.cfg.LeaseKey)
		ov.Leader = l
		err = errors.Join(err, lerr)
	}
	return ov, err
}

func (s *Server) workers(ctx context.Context) ([]consumer.WorkerInfo, error) {
	if s.cfg.DisableWorkers {
		return []consumer.WorkerInfo{}, nil
	}
	return consumer.Presence{Bucket: s.cfg.PresenceBucket}.List(ctx, s.js)
}

// deadLetterQuery is a dead-letter listing request read from query
// parameters: stream, consumer, subject (wildcards allowed), task_id,
// since and until (RFC 3339), before (the paging cursor) and limit.
type deadLetterQuery struct {
	Filter dlq.Filter
	Before uint64
	Limit  int
}

func (s *Server) deadLetterQuery(r *http.Request) (deadLetterQuery, error) {
	q := r.URL.Query()
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
			at, err := time.Parse(time.RFC3339, v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", t.key, v))
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
	page, err := s.dlq.List(ctx, q.Filter, q.Before, q.Limit)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return dlq.Page{Entries: []dlq.Entry{}}, nil
	}
	return page, err
}

type scheduleView struct {
	schedule.Entry
	LastFired time.Time `json:"last_fired,omitzero"`
	NextFire  time.Time `json:"next_fire,omitzero"`
	NextError string    `json:"next_error,omitempty"`
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

func (s *Server) scheduleView(ctx context.Context, e schedule.Entry) scheduleView {
	v := scheduleView{Entry: e}
	v.LastFired, _ = s.store.LastFired(ctx, e.Name)
	if next, err := e.Next(s.cfg.NowFunc(), 1); err != nil {
		v.NextError = err.Error()
	} else if len(next) > 0 {
		v.NextFire = next[0]
	}
	return v
}

func (s *Server) schedules(ctx context.Context) (schedulesView, error) {
	sv := schedulesView{Schedules: []scheduleView{}}
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
	for _, e := range entries {
		sv.Schedules = append(sv.Schedules, s.scheduleView(ctx, e))
	}
	return sv, nil
}

func (s *Server) scheduleByName(ctx context.Context, name string) (scheduleView, error) {
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
	return s.scheduleView(ctx, e), nil
}
