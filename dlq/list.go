package dlq

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/internal/scan"
	"github.com/jetworker/jetworker/internal/subject"
)

// Paging bounds for [Store.List].
const (
	// DefaultPageSize is the page size of a List call with limit 0.
	DefaultPageSize = 50
	// MaxPageSize is the largest page List returns.
	MaxPageSize = 1000
)

// Filter selects dead letters. Zero fields match everything.
type Filter struct {
	// Stream and Consumer select by origin: the task stream and the
	// durable consumer that gave up.
	Stream   string `json:"stream,omitempty"`
	Consumer string `json:"consumer,omitempty"`
	// Subject selects by original subject; NATS wildcards are allowed
	// ("tasks.load.*.broken", "tasks.email.>"). The server applies it.
	Subject string `json:"subject,omitempty"`
	// TaskID selects the dead letters of one task ID.
	TaskID string `json:"task_id,omitempty"`
	// Since and Until bound the time a task was dead-lettered: at or
	// after Since, before Until.
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
}

// Validate checks the filter's fields.
func (f Filter) Validate() error {
	var errs []error
	if f.Stream != "" {
		if err := subject.ValidateName("stream", f.Stream); err != nil {
			errs = append(errs, fmt.Errorf("dlq filter: %w", err))
		}
	}
	if f.Consumer != "" {
		if err := subject.ValidateName("consumer", f.Consumer); err != nil {
			errs = append(errs, fmt.Errorf("dlq filter: %w", err))
		}
	}
	if f.Subject != "" {
		if err := subject.ValidateFilter(f.Subject); err != nil {
			errs = append(errs, fmt.Errorf("dlq filter: subject: %w", err))
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		errs = append(errs, errors.New("dlq filter: Until must be after Since"))
	}
	return errors.Join(errs...)
}

// serverSide reports whether the server alone applies f.
func (f Filter) serverSide() bool {
	return f.TaskID == "" && f.Since.IsZero() && f.Until.IsZero()
}

func (f Filter) match(e *Entry) bool {
	return (f.TaskID == "" || e.TaskID == f.TaskID) &&
		(f.Since.IsZero() || !e.FailedAt.Before(f.Since)) &&
		(f.Until.IsZero() || e.FailedAt.Before(f.Until))
}

// subjectFilter is the subject filter the server applies for f. Without a
// consumer or subject it also matches entries of the older layout
// (<prefix>.<stream>.<consumer>).
func (s *Store) subjectFilter(f Filter) string {
	star := func(v string) string {
		if v == "" {
			return "*"
		}
		return v
	}
	switch {
	case f.Subject != "":
		return s.cfg.Prefix + "." + star(f.Stream) + "." + star(f.Consumer) + "." + f.Subject
	case f.Consumer != "":
		return s.cfg.Prefix + "." + star(f.Stream) + "." + f.Consumer + ".>"
	case f.Stream != "":
		return s.cfg.Prefix + "." + f.Stream + ".>"
	}
	return s.cfg.Prefix + ".>"
}

// Page is one page of a newest-first listing.
type Page struct {
	// Entries are the dead letters, newest first.
	Entries []Entry `json:"entries"`
	// Next is the cursor of the next (older) page: pass it as before to
	// [Store.List]. It is 0 on the last page.
	Next uint64 `json:"next,omitempty"`
}

// List returns up to limit dead letters f selects, newest first, among
// those with a sequence below before (0: from the newest). limit 0 means
// [DefaultPageSize]; it is capped at [MaxPageSize]. Entries carry only the
// Problems found without I/O; [Store.Get] checks against the server too.
// It reads with batched direct gets and creates no consumer.
func (s *Store) List(ctx context.Context, f Filter, before uint64, limit int) (Page, error) {
	page := Page{Entries: []Entry{}}
	if err := f.Validate(); err != nil {
		return page, err
	}
	if limit <= 0 {
		limit = DefaultPageSize
	}
	limit = min(limit, MaxPageSize)
	var found []Entry // one more than limit tells there is more
	err := s.reader().Backward(ctx, before, s.subjectFilter(f), func(m *jetstream.RawStreamMsg) bool {
		if !f.Since.IsZero() && m.Time.Before(f.Since.Add(-sinceSlack)) {
			return false // stored before Since: so is everything before it
		}
		e := s.entry(m)
		if f.match(e) {
			found = append(found, *e)
		}
		return len(found) <= limit
	})
	if err != nil {
		return page, fmt.Errorf("dlq: %w", err)
	}
	if len(found) > limit {
		found = found[:limit]
		page.Next = found[limit-1].Sequence
	}
	page.Entries = append(page.Entries, found...) // never nil: JSON []
	return page, nil
}

// sinceSlack allows for workers' clocks (Failed-At) running behind the
// server's (the stored time, which grows with the sequence).
const sinceSlack = time.Minute

func (s *Store) reader() scan.Reader {
	return scan.Reader{JS: s.js, Stream: s.cfg.Stream, Timeout: s.cfg.RequestTimeout}
}

// Scan calls fn for every dead letter f selects, oldest first, until fn
// returns false. Entries carry only the Problems found without I/O.
func (s *Store) Scan(ctx context.Context, f Filter, fn func(*Entry) bool) error {
	if err := f.Validate(); err != nil {
		return err
	}
	first, last, err := s.reader().Bounds(ctx)
	if err != nil || last == 0 {
		return err
	}
	return s.reader().Forward(ctx, first, last+1, s.subjectFilter(f), func(m *jetstream.RawStreamMsg) bool {
		e := s.entry(m)
		if !f.match(e) {
			return true
		}
		return fn(e)
	})
}

// Count returns how many dead letters f selects. Filters by stream,
// consumer and subject are counted by the server; the others by a scan.
func (s *Store) Count(ctx context.Context, f Filter) (int, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	if f.serverSide() {
		st, err := s.stream(ctx)
		if err != nil {
			return 0, err
		}
		rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		defer cancel()
		info, err := st.Info(rctx, jetstream.WithSubjectFilter(s.subjectFilter(f)))
		if err != nil {
			return 0, fmt.Errorf("dlq: count: %w", err)
		}
		var n uint64
		for _, c := range info.State.Subjects {
			n += c
		}
		return int(n), nil
	}
	n := 0
	err := s.Scan(ctx, f, func(*Entry) bool { n++; return true })
	return n, err
}

// Purge deletes every dead letter f selects and returns how many it
// deleted. A filter by stream, consumer and subject only is one
// server-side purge; other filters delete entries one by one.
func (s *Store) Purge(ctx context.Context, f Filter) (int, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	if f.serverSide() {
		n, err := s.Count(ctx, f)
		if err != nil {
			return 0, err
		}
		st, err := s.stream(ctx)
		if err != nil {
			return 0, err
		}
		rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		defer cancel()
		if err := st.Purge(rctx, jetstream.WithPurgeSubject(s.subjectFilter(f))); err != nil {
			return 0, fmt.Errorf("dlq: purge %q: %w", s.subjectFilter(f), err)
		}
		return n, nil
	}
	var seqs []uint64
	if err := s.Scan(ctx, f, func(e *Entry) bool { seqs = append(seqs, e.Sequence); return true }); err != nil {
		return 0, err
	}
	n := 0
	for _, seq := range seqs {
		if err := s.Delete(ctx, seq); err != nil {
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return n, err
		}
		n++
	}
	return n, nil
}
