package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

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

// Filter selects task records. Zero fields match everything.
type Filter struct {
	// States selects records in one of these states.
	States []State `json:"states,omitempty"`
	// Subject selects by subject; NATS wildcards are allowed.
	Subject string `json:"subject,omitempty"`
}

// Validate checks the filter's fields.
func (f Filter) Validate() error {
	var errs []error
	for _, s := range f.States {
		if !s.Valid() {
			errs = append(errs, fmt.Errorf("task filter: unknown state %q", s))
		}
	}
	if f.Subject != "" {
		if err := subject.ValidateFilter(f.Subject); err != nil {
			errs = append(errs, fmt.Errorf("task filter: subject: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (f Filter) match(info *Info) bool {
	return (len(f.States) == 0 || slices.Contains(f.States, info.State)) &&
		(f.Subject == "" || subject.Match(f.Subject, info.Subject))
}

// Page is one page of a newest-first listing.
type Page struct {
	// Tasks are the records, the most recently updated first.
	Tasks []Info `json:"tasks"`
	// Next is the cursor of the next (older) page: pass it as before to
	// [Store.List]. It is 0 on the last page.
	Next uint64 `json:"next,omitempty"`
}

// List returns up to limit task records f selects, the most recently
// updated first, among those written before the cursor before (0: from
// the newest). limit 0 means [DefaultPageSize]; it is capped at
// [MaxPageSize]. It reads the bucket's stream with batched direct gets.
func (s *Store) List(ctx context.Context, f Filter, before uint64, limit int) (Page, error) {
	page := Page{Tasks: []Info{}}
	if err := f.Validate(); err != nil {
		return page, err
	}
	if limit <= 0 {
		limit = DefaultPageSize
	}
	limit = min(limit, MaxPageSize)
	if _, err := s.bucket(ctx, false); err != nil {
		return page, err
	}
	type found struct {
		info Info
		seq  uint64
	}
	var out []found
	r := scan.Reader{JS: s.js, Stream: "KV_" + s.cfg.Bucket, Timeout: s.cfg.RequestTimeout}
	err := r.Backward(ctx, before, "$KV."+s.cfg.Bucket+"."+recordPrefix+">", func(m *jetstream.RawStreamMsg) bool {
		if op := m.Header.Get("KV-Operation"); op != "" { // a delete or purge marker
			return true
		}
		var info Info
		if json.Unmarshal(m.Data, &info) != nil || !f.match(&info) {
			return true
		}
		out = append(out, found{info, m.Sequence})
		return len(out) <= limit
	})
	if err != nil {
		return page, fmt.Errorf("task: list: %w", err)
	}
	if len(out) > limit {
		out = out[:limit]
		page.Next = out[limit-1].seq
	}
	for _, f := range out {
		page.Tasks = append(page.Tasks, f.info)
	}
	return page, nil
}
