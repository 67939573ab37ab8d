package dashboard

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetworker/jetworker/internal/outboxdata"
)

// Outbox is what the dashboard reads of a transactional outbox:
// *outbox.Relay implements it, so the dashboard needs no database
// connection of its own. Stats must respect ctx. The types are outbox.Stats,
// outbox.DeadFilter and outbox.DeadRow (aliases of internal types, so that
// the dashboard does not link the PostgreSQL driver).
type Outbox interface {
	Stats(ctx context.Context) (outboxdata.Stats, error)
}

// OutboxDeadFunc lists an outbox's dead rows, for example
//
//	func(ctx context.Context, f outbox.DeadFilter) ([]outbox.DeadRow, error) {
//		return relay.Outbox().ListDead(ctx, pool, f)
//	}
type OutboxDeadFunc func(ctx context.Context, f outboxdata.DeadFilter) ([]outboxdata.DeadRow, error)

// outboxDeadPage is how many dead rows the outbox page lists at once.
const outboxDeadPage = 50

// outboxCache keeps the last outbox stats: the query's cost grows with the
// rows waiting, so pages and probes share one read per SampleInterval.
type outboxCache struct {
	mu    sync.Mutex
	at    time.Time
	stats outboxdata.Stats
	err   error
}

// outboxStats returns the outbox's stats, read at most once per
// SampleInterval unless fresh (the sampler's reads). Concurrent callers
// wait for one read.
func (s *Server) outboxStats(ctx context.Context, fresh bool) (outboxdata.Stats, error) {
	c := &s.outboxCache
	c.mu.Lock()
	defer c.mu.Unlock()
	maxAge := s.cfg.SampleInterval
	if maxAge <= 0 {
		maxAge = DefaultSampleInterval
	}
	now := time.Now()
	if !fresh && !c.at.IsZero() && now.Sub(c.at) < maxAge {
		return c.stats, c.err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CheckTimeout)
	defer cancel()
	c.stats, c.err = s.cfg.Outbox.Stats(ctx)
	c.at = now
	return c.stats, c.err
}

// outboxView is the outbox in GET /api/overview and GET /api/outbox. When
// its stats cannot be read, Known is false, the counts are null (never
// zeros that look like an idle outbox) and Error says why.
type outboxView struct {
	Known   bool      `json:"known"`
	Error   string    `json:"error,omitempty"`
	Pending *int64    `json:"pending"`
	Due     *int64    `json:"due"`
	LagNS   *int64    `json:"lag_ns"`
	Dead    *int64    `json:"dead"`
	ReadAt  time.Time `json:"read_at,omitzero"`
}

func (s *Server) outboxView(ctx context.Context) *outboxView {
	if s.cfg.Outbox == nil {
		return nil
	}
	st, err := s.outboxStats(ctx, false)
	v := &outboxView{Known: err == nil}
	if err != nil {
		v.Error = err.Error()
		return v
	}
	s.outboxCache.mu.Lock()
	v.ReadAt = s.outboxCache.at.UTC()
	s.outboxCache.mu.Unlock()
	lag := int64(st.Lag)
	v.Pending, v.Due, v.LagNS, v.Dead = &st.Pending, &st.Due, &lag, &st.Dead
	return v
}

// Lag is the relay lag, for the pages: "unknown", "0s", "12s".
func (v outboxView) Lag() string {
	switch {
	case v.LagNS == nil:
		return "unknown"
	case *v.LagNS <= 0:
		return "0s"
	}
	return formatAge(time.Duration(*v.LagNS))
}

// deadRowView is an outbox dead row in the API.
type deadRowView struct {
	ID          int64       `json:"id"`
	MsgID       string      `json:"msg_id"`
	Subject     string      `json:"subject"`
	Key         string      `json:"key,omitempty"`
	Reason      string      `json:"reason"`
	FailedAt    time.Time   `json:"failed_at"`
	CreatedAt   time.Time   `json:"created_at"`
	AvailableAt time.Time   `json:"available_at"`
	Header      nats.Header `json:"header"`
	Data        []byte      `json:"data"`
}

// outboxPageView is the outbox page and GET /api/outbox.
type outboxPageView struct {
	outboxView
	// DeadListed says whether dead rows can be listed here
	// (Config.OutboxDeadFunc); without it only their count is known.
	DeadListed bool          `json:"dead_listed"`
	DeadRows   []deadRowView `json:"dead_rows"`
	DeadError  string        `json:"dead_error,omitempty"`
	// NextAfter is the cursor of the next page of dead rows, 0 on the
	// last.
	NextAfter int64 `json:"next_after,omitempty"`
	After     int64 `json:"-"`
}

func (s *Server) outboxPage(r *http.Request) outboxPageView {
	v := outboxPageView{outboxView: *s.outboxView(r.Context()), DeadListed: s.cfg.OutboxDeadFunc != nil, DeadRows: []deadRowView{}}
	if s.cfg.OutboxDeadFunc == nil {
		return v
	}
	v.After, _ = strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CheckTimeout)
	defer cancel()
	rows, err := s.cfg.OutboxDeadFunc(ctx, outboxdata.DeadFilter{AfterID: v.After, Limit: outboxDeadPage + 1})
	if err != nil {
		v.DeadError = err.Error()
		return v
	}
	if len(rows) > outboxDeadPage {
		rows = rows[:outboxDeadPage]
		v.NextAfter = rows[len(rows)-1].ID
	}
	for _, d := range rows {
		h := d.Header
		if h == nil {
			h = nats.Header{}
		}
		v.DeadRows = append(v.DeadRows, deadRowView{ID: d.ID, MsgID: d.MsgID, Subject: d.Subject, Key: d.Key, Reason: d.Reason,
			FailedAt: d.FailedAt, CreatedAt: d.CreatedAt, AvailableAt: d.AvailableAt, Header: h, Data: d.Data})
	}
	return v
}

func (s *Server) pageOutbox(w http.ResponseWriter, r *http.Request) {
	pd := s.newPage(r, "outbox", "Outbox", true)
	v := s.outboxPage(r)
	if !v.Known {
		pd.Err = "The outbox cannot be read: " + v.Error
	}
	pd.Data = v
	s.render(w, r, "outbox", http.StatusOK, pd)
}

func (s *Server) apiOutbox(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.outboxPage(r))
}
