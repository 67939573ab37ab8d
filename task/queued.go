package task

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/internal/scan"
	"github.com/jetworker/jetworker/internal/subject"
	"github.com/jetworker/jetworker/streams"
)

// Queued is a task read from its stream rather than from its record: what
// the stream itself knows, for tasks tracked or not.
type Queued struct {
	// Ref, Stream and Sequence locate the stored message (for a delayed task,
	// its schedule message).
	Ref      string `json:"ref"`
	Stream   string `json:"stream"`
	Sequence uint64 `json:"seq"`
	// ID is the task's ID, "" when it has none.
	ID string `json:"id,omitempty"`
	// Subject is the task's subject (a delayed task's target).
	Subject string `json:"subject"`
	// Stored is when the server stored the message.
	Stored time.Time `json:"stored"`
	// Delayed is set for a task waiting for its release time, RunAt.
	Delayed bool      `json:"delayed,omitempty"`
	RunAt   time.Time `json:"run_at,omitzero"`
	// Tracked says the task has a record (get it by ID).
	Tracked bool `json:"tracked,omitempty"`
	// Size is the payload's size in bytes.
	Size   int         `json:"size"`
	Header nats.Header `json:"header,omitempty"`
	Data   []byte      `json:"data,omitempty"`
}

// QueuedFilter selects queued tasks.
type QueuedFilter struct {
	// Delayed lists the stream's delayed tasks instead of its stored ones.
	Delayed bool
	// Subject selects by task subject; wildcards are allowed. For delayed
	// tasks it is matched against the target subject.
	Subject string
	// ID selects one task ID.
	ID string
}

// QueuedPage is one page of [Store.Queued].
type QueuedPage struct {
	Tasks []Queued `json:"tasks"`
	// Next is the cursor of the next (older) page, 0 on the last.
	Next uint64 `json:"next,omitempty"`
}

// Queued lists the tasks stored in the task stream (on a work-queue
// stream: every task not yet finished, pending or delivered) or, with
// f.Delayed, the delayed tasks waiting for their release, newest first,
// below the cursor before. It reads the stream with batched direct gets:
// it needs no record and creates no consumer.
func (s *Store) Queued(ctx context.Context, stream string, f QueuedFilter, before uint64, limit int) (QueuedPage, error) {
	page := QueuedPage{Tasks: []Queued{}}
	if err := subject.ValidateName("stream", stream); err != nil {
		return page, fmt.Errorf("task: %w", err)
	}
	if f.Subject != "" {
		if err := subject.ValidateFilter(f.Subject); err != nil {
			return page, fmt.Errorf("task: queued filter: %w", err)
		}
	}
	if limit <= 0 {
		limit = DefaultPageSize
	}
	limit = min(limit, MaxPageSize)
	subj := ">"
	if f.Delayed {
		subj = streams.DelaySubject(stream)
	} else if f.Subject != "" {
		subj = f.Subject
	}
	var out []Queued
	r := scan.Reader{JS: s.js, Stream: stream, Timeout: s.cfg.RequestTimeout}
	err := r.Backward(ctx, before, subj, func(m *jetstream.RawStreamMsg) bool {
		q, ok := queued(stream, m)
		if !ok || q.Delayed != f.Delayed {
			return true
		}
		if f.Delayed && f.Subject != "" && !subject.Match(f.Subject, q.Subject) {
			return true
		}
		if f.ID != "" && q.ID != f.ID {
			return true
		}
		out = append(out, q)
		return len(out) <= limit
	})
	if err != nil {
		return page, fmt.Errorf("task: queued in %q: %w", stream, err)
	}
	if len(out) > limit {
		out = out[:limit]
		page.Next = out[limit-1].Sequence
	}
	page.Tasks = out
	return page, nil
}

// queued reads a stored message as a queued task; it reports false for a
// message that is not one.
func queued(stream string, m *jetstream.RawStreamMsg) (Queued, bool) {
	h := m.Header
	for _, k := range []string{jetstream.StreamHeader, jetstream.SequenceHeader, jetstream.TimeStampHeaer, jetstream.SubjectHeader,
		"Nats-Num-Pending", "Nats-Last-Sequence", "Nats-UpTo-Sequence"} {
		delete(h, k)
	}
	q := Queued{
		Ref: jetworker.Ref(stream, m.Sequence), Stream: stream, Sequence: m.Sequence,
		ID: jetworker.TaskID(h), Subject: m.Subject, Stored: m.Time, Size: len(m.Data),
		Tracked: h.Get(jetworker.HeaderTrack) != "", Header: h, Data: m.Data,
	}
	if strings.HasPrefix(m.Subject, streams.DelaySubjectPrefix(stream)) {
		target := h.Get(jetstream.ScheduleTargetHeader)
		if target == "" {
			return q, false
		}
		q.Delayed, q.Subject = true, target
		if at, ok := strings.CutPrefix(h.Get(jetstream.ScheduleHeader), "@at "); ok {
			q.RunAt, _ = time.Parse(time.RFC3339Nano, at)
		}
	}
	return q, true
}

// RunNow releases the delayed task whose schedule message is stream/seq at
// once: it removes the schedule message (so the server cannot release it
// too) and publishes the task on its target subject, with its headers but
// the schedule's. It returns the released task's location. A task already
// released, or not delayed, returns an error wrapping [ErrNotFound]. If the
// publish fails, the schedule message is stored again.
func (s *Store) RunNow(ctx context.Context, stream string, seq uint64) (string, error) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	st, err := s.js.Stream(rctx, stream)
	if err != nil {
		return "", fmt.Errorf("task: stream %q: %w", stream, err)
	}
	m, err := st.GetMsg(rctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return "", fmt.Errorf("%w: %s is gone (released already?)", ErrNotFound, jetworker.Ref(stream, seq))
	}
	if err != nil {
		return "", fmt.Errorf("task: get %s: %w", jetworker.Ref(stream, seq), err)
	}
	q, ok := queued(stream, m)
	if !ok || !q.Delayed {
		return "", fmt.Errorf("%w: %s is not a delayed task", ErrNotFound, q.Ref)
	}
	if err := subject.Validate(q.Subject); err != nil {
		return "", fmt.Errorf("task: run %s now: %w", q.Ref, err)
	}
	h := nats.Header{}
	for k, vs := range q.Header {
		if !strings.HasPrefix(k, "Nats-") {
			h[k] = vs
		}
	}
	h.Set(jetworker.HeaderMsgID, "run-now-"+stream+"-"+fmt.Sprint(seq)) // a second RunNow stores it once
	h.Set(jetstream.ExpectedStreamHeader, stream)
	removed, err := s.removeMessage(ctx, stream, seq)
	if err != nil {
		return "", err
	}
	if !removed {
		return "", fmt.Errorf("%w: %s was released meanwhile", ErrNotFound, q.Ref)
	}
	ack, err := s.js.PublishMsg(rctx, &nats.Msg{Subject: q.Subject, Data: m.Data, Header: h})
	if err != nil {
		if _, rerr := s.js.PublishMsg(context.WithoutCancel(ctx), &nats.Msg{Subject: m.Subject, Data: m.Data, Header: m.Header}); rerr != nil {
			return "", fmt.Errorf("task: run %s now: %w; and restoring its schedule failed: %w", q.Ref, err, rerr)
		}
		return "", fmt.Errorf("task: run %s now (its schedule is kept): %w", q.Ref, err)
	}
	return jetworker.Ref(ack.Stream, ack.Sequence), nil
}
