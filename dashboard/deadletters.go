package dashboard

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/dlq"
)

// Bulk actions on dead letters: a selection (checkboxes, or seqs in the
// API) or everything a filter matches. "Everything matching" is confirmed
// with its count: the confirmation carries the filter, the count and the
// dead-letter stream's last sequence at that moment (upto), and the action
// acts on exactly the entries the filter matches up to that sequence, and
// only if there are still as many as confirmed (otherwise it asks again).
// Entries whose Problem says they cannot be replayed are never replayed.

// bulkTimeout bounds a bulk action; it goes on when the browser leaves.
const bulkTimeout = 10 * time.Minute

// bulkDeleters is how many deletes a bulk delete runs at once.
const bulkDeleters = 8

// bulkResult is what a bulk action did: the API's answer and the page's
// flash message.
type bulkResult struct {
	Action   string `json:"action"`
	Selected int    `json:"selected"`
	Done     int    `json:"done"`
	// Skipped are entries not acted on: not replayable (their Problem), or
	// gone meanwhile.
	Skipped []bulkIssue `json:"skipped"`
	// Failed are entries the server refused.
	Failed []bulkIssue `json:"failed"`
}

type bulkIssue struct {
	Sequence uint64 `json:"seq"`
	Reason   string `json:"reason"`
}

// message sums a result up for the page.
func (br bulkResult) message() string {
	verb := map[string]string{"replay": "Replayed", "delete": "Deleted"}[br.Action]
	msg := fmt.Sprintf("%s %d of %d dead letters.", verb, br.Done, br.Selected)
	var notReplayable, gone int
	for _, s := range br.Skipped {
		if s.Reason == reasonGone {
			gone++
		} else {
			notReplayable++
		}
	}
	if notReplayable > 0 {
		msg += fmt.Sprintf(" %d not replayable were kept (see each entry's problem).", notReplayable)
	}
	if gone > 0 {
		msg += fmt.Sprintf(" %d were gone already.", gone)
	}
	if len(br.Failed) > 0 {
		msg += fmt.Sprintf(" %d failed; the first: #%d: %s", len(br.Failed), br.Failed[0].Sequence, br.Failed[0].Reason)
	}
	return msg
}

const reasonGone = "gone: replayed or deleted meanwhile"

// bulkTarget is an entry to act on, with the Problem known without I/O
// ("" when none is known yet; Replay checks with the server too).
type bulkTarget struct {
	seq     uint64
	problem string
}

// bulk replays or deletes the targets: replays one after the other, oldest
// first; deletes a few at a time.
func (s *Server) bulk(ctx context.Context, action string, targets []bulkTarget) bulkResult {
	br := bulkResult{Action: action, Selected: len(targets), Skipped: []bulkIssue{}, Failed: []bulkIssue{}}
	var mu sync.Mutex
	note := func(seq uint64, err error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			br.Done++
		case errors.Is(err, dlq.ErrNotFound):
			br.Skipped = append(br.Skipped, bulkIssue{seq, reasonGone})
		case errors.Is(err, dlq.ErrUntrusted):
			br.Skipped = append(br.Skipped, bulkIssue{seq, err.Error()})
		default:
			br.Failed = append(br.Failed, bulkIssue{seq, err.Error()})
		}
	}
	switch action {
	case "replay":
		for _, t := range targets {
			if ctx.Err() != nil {
				note(t.seq, ctx.Err())
				continue
			}
			if t.problem != "" {
				note(t.seq, fmt.Errorf("%w: %s", dlq.ErrUntrusted, t.problem))
				continue
			}
			_, err := s.dlq.Replay(ctx, t.seq)
			note(t.seq, err)
		}
	case "delete":
		work := make(chan uint64)
		var wg sync.WaitGroup
		for range min(bulkDeleters, len(targets)) {
			wg.Go(func() {
				for seq := range work {
					note(seq, s.dlq.Delete(ctx, seq))
				}
			})
		}
		for _, t := range targets {
			work <- t.seq
		}
		close(work)
		wg.Wait()
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "dead letters "+action+" (bulk)", slog.Int("selected", br.Selected),
		slog.Int("done", br.Done), slog.Int("skipped", len(br.Skipped)), slog.Int("failed", len(br.Failed)))
	return br
}

// lastDeadLetterSeq is the dead-letter stream's last sequence (0 when it
// does not exist).
func (s *Server) lastDeadLetterSeq(ctx context.Context) (uint64, error) {
	st, err := s.js.Stream(ctx, s.cfg.DeadLetterStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("stream %q: %w", s.cfg.DeadLetterStream, err)
	}
	return st.CachedInfo().State.LastSeq, nil
}

// countTimeout bounds counting the dead letters a filter matches, which
// scans them unless the server can count them (stream, consumer and
// subject filters).
const countTimeout = 30 * time.Second

// countMatching counts the dead letters f matches, and reads the last
// sequence first, so that a confirmation bounded by it never covers more
// than it counted. That first read gets pageTimeout, as pages do, so a
// JetStream that does not answer is reported after a second; the count
// then gets countTimeout, since it may scan every dead letter.
func (s *Server) countMatching(ctx context.Context, f dlq.Filter) (count int, upto uint64, err error) {
	qctx, cancel := context.WithTimeout(ctx, pageTimeout)
	upto, err = s.lastDeadLetterSeq(qctx)
	cancel()
	if err != nil || upto == 0 {
		return 0, upto, readError(err)
	}
	cctx, cancel := context.WithTimeout(ctx, countTimeout)
	defer cancel()
	count, err = s.dlq.Count(cctx, f)
	return count, upto, err
}

// matching lists the dead letters f matches with a sequence up to upto,
// oldest first.
func (s *Server) matching(ctx context.Context, f dlq.Filter, upto uint64) ([]bulkTarget, error) {
	var out []bulkTarget
	err := s.dlq.Scan(ctx, f, func(e *dlq.Entry) bool {
		if e.Sequence > upto {
			return false
		}
		out = append(out, bulkTarget{seq: e.Sequence, problem: e.Problem})
		return true
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	return out, err
}

// errCountChanged is returned when the dead letters a filter matches are
// no longer the number confirmed.
var errCountChanged = errors.New("the dead letters matching the filter changed since the count was confirmed")

// actMatching acts on the dead letters f matches up to upto, if they are
// still expect of them.
func (s *Server) actMatching(ctx context.Context, action string, f dlq.Filter, expect int, upto uint64) (bulkResult, int, error) {
	targets, err := s.matching(ctx, f, upto)
	if err != nil {
		return bulkResult{}, 0, err
	}
	if len(targets) != expect {
		return bulkResult{}, len(targets), fmt.Errorf("%w: %d confirmed, %d now", errCountChanged, expect, len(targets))
	}
	return s.bulk(ctx, action, targets), len(targets), nil
}

func validAction(a string) bool { return a == "replay" || a == "delete" }

// filterValues is f as query parameters (the inverse of
// parseDeadLetterQuery).
func filterValues(f dlq.Filter) url.Values {
	v := url.Values{}
	for k, x := range map[string]string{"stream": f.Stream, "consumer": f.Consumer, "subject": f.Subject, "task_id": f.TaskID} {
		if x != "" {
			v.Set(k, x)
		}
	}
	if !f.Since.IsZero() {
		v.Set("since", f.Since.UTC().Format(time.RFC3339))
	}
	if !f.Until.IsZero() {
		v.Set("until", f.Until.UTC().Format(time.RFC3339))
	}
	return v
}

// describeFilter says in words what f selects, "" for everything.
func describeFilter(f dlq.Filter) string {
	var parts []string
	if f.Subject != "" {
		parts = append(parts, "subject "+f.Subject)
	}
	if f.Stream != "" {
		parts = append(parts, "stream "+f.Stream)
	}
	if f.Consumer != "" {
		parts = append(parts, "consumer "+f.Consumer)
	}
	if f.TaskID != "" {
		parts = append(parts, "task ID "+f.TaskID)
	}
	if !f.Since.IsZero() {
		parts = append(parts, "failed since "+formatTime(f.Since))
	}
	if !f.Until.IsZero() {
		parts = append(parts, "failed before "+formatTime(f.Until))
	}
	return strings.Join(parts, ", ")
}

// confirmPage is the confirmation of a bulk action on everything a filter
// matches.
type confirmPage struct {
	Action   string
	Filter   dlq.Filter
	Describe string
	Count    int
	Upto     uint64
	// Changed is set when the count changed since the previous
	// confirmation.
	Changed  bool
	Previous int
	Query    template.URL // the filter, for links back
	Fields   url.Values
}

// Question is the confirmation's question: "Replay 412 dead letters
// matching subject tasks.load.*.broken?".
func (c confirmPage) Question() string {
	verb := map[string]string{"replay": "Replay", "delete": "Delete"}[c.Action]
	noun := "dead letters"
	if c.Count == 1 {
		noun = "dead letter"
	}
	if c.Describe == "" {
		return fmt.Sprintf("%s all %d %s?", verb, c.Count, noun)
	}
	return fmt.Sprintf("%s %d %s matching %s?", verb, c.Count, noun, c.Describe)
}

func (s *Server) renderConfirm(w http.ResponseWriter, r *http.Request, code int, cp confirmPage, errMsg string) {
	pd := s.newPage(r, "dead-letters", "Confirm", false)
	pd.Err = errMsg
	cp.Describe = describeFilter(cp.Filter)
	fv := filterValues(cp.Filter)
	cp.Query, cp.Fields = queryURL(fv), fv
	pd.Data = cp
	s.render(w, r, "confirm", code, pd)
}

// pageConfirmMatching asks to confirm a bulk action on everything the
// filter matches, naming the count.
func (s *Server) pageConfirmMatching(w http.ResponseWriter, r *http.Request) {
	action := r.URL.Query().Get("action")
	q, err := s.deadLetterQuery(r)
	cp := confirmPage{Action: action, Filter: q.Filter}
	if !validAction(action) {
		err = errors.Join(err, fmt.Errorf("action %q: want replay or delete", action))
	}
	code := http.StatusBadRequest
	if err == nil {
		cp.Count, cp.Upto, err = s.countMatching(r.Context(), q.Filter)
		code = statusOf(err)
	}
	if err != nil {
		s.renderConfirm(w, r, code, cp, readError(err).Error())
		return
	}
	s.renderConfirm(w, r, http.StatusOK, cp, "")
}

// formMatching acts on everything the confirmed filter matches.
func (s *Server) formMatching(w http.ResponseWriter, r *http.Request) {
	action := r.PostFormValue("action")
	q, err := s.parseDeadLetterQuery(r.PostForm)
	expect, cerr := strconv.Atoi(r.PostFormValue("expect"))
	upto, uerr := strconv.ParseUint(r.PostFormValue("upto"), 10, 64)
	cp := confirmPage{Action: action, Filter: q.Filter}
	if err = errors.Join(err, cerr, uerr); err == nil && !validAction(action) {
		err = fmt.Errorf("action %q: want replay or delete", action)
	}
	if err != nil {
		s.renderConfirm(w, r, http.StatusBadRequest, cp, "bad confirmation: "+err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), bulkTimeout)
	defer cancel()
	br, now, err := s.actMatching(ctx, action, q.Filter, expect, upto)
	if errors.Is(err, errCountChanged) {
		cp.Changed, cp.Previous = true, expect
		cp.Count, cp.Upto, err = s.countMatching(r.Context(), q.Filter)
		if err == nil && cp.Count != now {
			// Still moving: confirm what the bounded scan found.
			cp.Count, cp.Upto = now, upto
		}
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		s.renderConfirm(w, r, http.StatusConflict, cp, msg)
		return
	}
	back := "/dead-letters"
	if fq := filterValues(q.Filter).Encode(); fq != "" {
		back += "?" + fq
	}
	if err != nil {
		redirect(w, r, back, "", err)
		return
	}
	redirect(w, r, back, br.message(), nil)
}

// formBulk acts on the dead letters ticked on the list page.
func (s *Server) formBulk(w http.ResponseWriter, r *http.Request) {
	action := r.PostFormValue("action")
	next := localNext(r, "/dead-letters")
	if !validAction(action) {
		redirect(w, r, next, "", fmt.Errorf("action %q: want replay or delete", action))
		return
	}
	var targets []bulkTarget
	for _, v := range r.PostForm["seq"] {
		seq, err := strconv.ParseUint(v, 10, 64)
		if err != nil || seq == 0 {
			redirect(w, r, next, "", fmt.Errorf("bad sequence %q", v))
			return
		}
		targets = append(targets, bulkTarget{seq: seq})
	}
	if len(targets) == 0 {
		redirect(w, r, next, "", errors.New("no dead letters selected: tick the ones to act on"))
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), bulkTimeout)
	defer cancel()
	redirect(w, r, next, s.bulk(ctx, action, sortSeqs(targets)).message(), nil)
}

// sortSeqs orders targets oldest first, without duplicates.
func sortSeqs(ts []bulkTarget) []bulkTarget {
	seen := map[uint64]bool{}
	out := ts[:0]
	for _, t := range ts {
		if !seen[t.seq] {
			seen[t.seq] = true
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b bulkTarget) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

// countView is GET /api/dead-letters/count.
type countView struct {
	Count int    `json:"count"`
	Upto  uint64 `json:"upto"`
}

func (s *Server) apiCountDeadLetters(w http.ResponseWriter, r *http.Request) error {
	q, err := s.deadLetterQuery(r)
	if err != nil {
		return badRequest(err)
	}
	n, upto, err := s.countMatching(r.Context(), q.Filter)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, countView{Count: n, Upto: upto})
	return nil
}

// bulkRequest is the body of POST /api/dead-letters/replay and /delete:
// either seqs, or a filter with the count confirmed (expect) and,
// optionally, the last sequence it was counted up to (upto, from
// GET /api/dead-letters/count; 0: the stream's last now).
type bulkRequest struct {
	Seqs   []uint64    `json:"seqs"`
	Filter *dlq.Filter `json:"filter"`
	Expect *int        `json:"expect"`
	Upto   uint64      `json:"upto"`
}

// apiBulk answers POST /api/dead-letters/{action} (replay, delete).
func (s *Server) apiBulk(action string) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req bulkRequest
		dec := json.NewDecoder(io.LimitReader(r.Body, 4<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return badRequest(fmt.Errorf("decode request: %w", err))
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), bulkTimeout)
		defer cancel()
		switch {
		case req.Filter != nil && len(req.Seqs) > 0:
			return badRequest(errors.New("give seqs or a filter, not both"))
		case req.Filter != nil:
			if req.Expect == nil {
				return badRequest(errors.New("a filter needs expect: the count confirmed (GET /api/dead-letters/count)"))
			}
			if err := req.Filter.Validate(); err != nil {
				return badRequest(err)
			}
			upto := req.Upto
			if upto == 0 {
				var err error
				if upto, err = s.lastDeadLetterSeq(ctx); err != nil {
					return err
				}
			}
			br, now, err := s.actMatching(ctx, action, *req.Filter, *req.Expect, upto)
			if errors.Is(err, errCountChanged) {
				writeJSON(w, http.StatusConflict, map[string]any{"error": err.Error(), "count": now, "upto": upto})
				return nil
			}
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, br)
		case len(req.Seqs) > 0:
			targets := make([]bulkTarget, 0, len(req.Seqs))
			for _, seq := range req.Seqs {
				targets = append(targets, bulkTarget{seq: seq})
			}
			writeJSON(w, http.StatusOK, s.bulk(ctx, action, sortSeqs(targets)))
		default:
			return badRequest(errors.New("give seqs, or a filter with expect"))
		}
		return nil
	}
}

// rangeLink is a quick time range on the dead-letter page.
type rangeLink struct {
	Label string
	Query template.URL
}

// quickRanges are links to the last 15 minutes, hour, day and week,
// keeping the other filters.
func quickRanges(q url.Values, now time.Time) []rangeLink {
	var out []rangeLink
	for _, r := range []struct {
		label string
		d     time.Duration
	}{{"15m", 15 * time.Minute}, {"1h", time.Hour}, {"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}} {
		v := url.Values{}
		for k, vs := range q {
			v[k] = vs
		}
		v.Del("before")
		v.Del("until")
		v.Set("since", now.Add(-r.d).UTC().Format(time.RFC3339))
		out = append(out, rangeLink{Label: r.label, Query: queryURL(v)})
	}
	return out
}

// datetimeLocal formats t for an HTML datetime-local input, in UTC.
func datetimeLocal(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05")
}
