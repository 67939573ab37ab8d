package schedule

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetworker/jetworker/internal/subject"
	"github.com/jetworker/jetworker/internal/wire"
)

// CatchUp says what the scheduler does with slots that passed while no
// scheduler was leading (an outage, a slow failover). It is applied when a
// scheduler gains leadership, from the last fired slot recorded for the
// entry; see the package documentation.
type CatchUp string

// Catch-up policies.
const (
	// CatchUpSkip fires none of the missed slots; the entry resumes with
	// its next slot in the future (Hangfire's Ignorable).
	CatchUpSkip CatchUp = "skip"
	// CatchUpOnce fires the latest missed slot once, then resumes
	// (Hangfire's Relaxed). The default.
	CatchUpOnce CatchUp = "once"
	// CatchUpAll fires every missed slot, oldest first, then resumes
	// (Hangfire's Strict).
	CatchUpAll CatchUp = "all"
)

// DefaultCatchUp is the policy of an entry whose CatchUp is empty.
const DefaultCatchUp = CatchUpOnce

// Entry is one schedule: what to publish, where and when. It is stored as
// JSON in the schedules bucket under its Name. The zero values of the
// optional fields are the defaults.
type Entry struct {
	// Name identifies the entry; it is the KV key and the first part of
	// every fire's message ID. Letters, digits, '-', '_', '=' and '/',
	// and '.' between them.
	Name string `json:"name"`
	// Spec says when the entry fires: a cron expression with five fields
	// (minute hour day-of-month month day-of-week) or six (seconds
	// first); a descriptor (@yearly, @monthly, @weekly, @daily, @hourly);
	// or "@every <duration>" with a whole number of seconds, at least 1s.
	Spec string `json:"spec"`
	// TimeZone is the IANA zone (e.g. "Europe/Berlin") cron fields are
	// evaluated in, with the daylight saving time rules of the package
	// documentation. Defaults to UTC. @every ignores it.
	TimeZone string `json:"time_zone,omitempty"`
	// Subject is the subject each fire publishes to: a task subject, by
	// the publisher's rule (no wildcards, nothing in the server's reserved
	// $ and _INBOX spaces, not jetworker's delay subjects), that a task
	// stream captures; [Store.Put] checks that.
	Subject string `json:"subject"`
	// Payload is the message data of each fire.
	Payload []byte `json:"payload,omitempty"`
	// Header holds extra headers for each fire, by the publisher's rule:
	// Nats- headers (server directives: Nats-Rollup: all would purge the
	// stream) and Jetworker- headers (jetworker's own: the scheduler sets
	// Nats-Msg-Id, Jetworker-Schedule and Jetworker-Fire-Time) are refused,
	// and so are malformed names and values with a line break.
	Header nats.Header `json:"header,omitempty"`
	// Paused stops the entry firing without deleting it. Slots that pass
	// while paused are never fired.
	Paused bool `json:"paused,omitempty"`
	// Jitter delays each fire by a pseudo-random amount in [0, Jitter),
	// fixed per entry and slot, to spread load. The message still carries
	// the slot time. Defaults to 0, no delay.
	Jitter time.Duration `json:"jitter,omitempty"`
	// CatchUp is the policy for missed slots. Defaults to [CatchUpOnce].
	CatchUp CatchUp `json:"catch_up,omitempty"`
	// Start, when set, is the earliest slot; for @every it is also the
	// anchor of the slots (Start + k*interval; otherwise the Unix epoch).
	Start time.Time `json:"start,omitzero"`
	// End, when set, is the latest slot; the entry fires no slot after it.
	End time.Time `json:"end,omitzero"`
}

// Validate reports every problem with e, joined; each wraps
// [ErrInvalidEntry] and names the field. It does no I/O.
func (e Entry) Validate() error {
	_, err := e.compile()
	return err
}

// Next returns up to n slots of e strictly after the given time, in the
// entry's time zone, honouring Start and End but not Paused. It returns an
// error wrapping [ErrInvalidEntry] if e is invalid.
func (e Entry) Next(after time.Time, n int) ([]time.Time, error) {
	c, err := e.compile()
	if err != nil {
		return nil, err
	}
	var out []time.Time
	t := after
	for len(out) < n {
		t = c.next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t)
	}
	return out, nil
}

// compiled is a validated entry with its spec parsed.
type compiled struct {
	Entry
	spec spec
}

// compile validates e and parses its spec.
func (e Entry) compile() (compiled, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalidEntry, fmt.Sprintf(format, args...)))
	}
	if err := validateName(e.Name); err != nil {
		bad("Name: %v", err)
	}
	loc := time.UTC
	if e.TimeZone != "" {
		l, err := time.LoadLocation(e.TimeZone)
		if err != nil || e.TimeZone == "Local" {
			bad("TimeZone %q: unknown IANA time zone", e.TimeZone)
		} else {
			loc = l
		}
	}
	sp, err := parseSpec(e.Spec, loc, e.Start)
	if err != nil {
		bad("Spec: %v", err)
	}
	// The publisher's rules: no reserved or delay subject, no Nats- or
	// Jetworker- header, nothing that breaks the header block.
	if err := subject.Validate(e.Subject); err != nil {
		errs = append(errs, fmt.Errorf("%w: Subject: %w", ErrInvalidEntry, err))
	}
	if err := wire.CheckHeader(e.Header); err != nil {
		errs = append(errs, fmt.Errorf("%w: Header: %w", ErrInvalidEntry, err))
	}
	if e.Jitter < 0 {
		bad("Jitter must be >= 0, got %s", e.Jitter)
	}
	switch e.CatchUp {
	case "", CatchUpSkip, CatchUpOnce, CatchUpAll:
	default:
		bad("CatchUp %q: want %q, %q or %q", e.CatchUp, CatchUpSkip, CatchUpOnce, CatchUpAll)
	}
	if !e.Start.IsZero() && !e.End.IsZero() && e.End.Before(e.Start) {
		bad("End %s is before Start %s", e.End.Format(time.RFC3339), e.Start.Format(time.RFC3339))
	}
	if err := errors.Join(errs...); err != nil {
		return compiled{}, err
	}
	if e.CatchUp == "" {
		e.CatchUp = DefaultCatchUp
	}
	return compiled{Entry: e, spec: sp}, nil
}

// next returns the first slot after t that lies in [Start, End], or the
// zero time.
func (c compiled) next(t time.Time) time.Time {
	if !c.Start.IsZero() && t.Before(c.Start) {
		t = c.Start.Add(-time.Nanosecond)
	}
	s := c.spec.next(t)
	if s.IsZero() || (!c.End.IsZero() && s.After(c.End)) {
		return time.Time{}
	}
	return s
}

// jitter returns the fire delay of slot: stable for a given entry and
// slot, so every scheduler computes the same one.
func (c compiled) jitter(slot time.Time) time.Duration {
	if c.Jitter <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(c.Name))
	h.Write([]byte(slot.UTC().Format(time.RFC3339)))
	return time.Duration(h.Sum64() % uint64(c.Jitter))
}

// validateName checks that name is a usable KV key without '@', which
// separates the name from the slot in message IDs.
func validateName(name string) error {
	if name == "" {
		return errors.New("empty")
	}
	if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, "..") {
		return fmt.Errorf("%q: '.' only between other characters", name)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			strings.ContainsRune("-_=/.", r)
		if !ok {
			return fmt.Errorf("%q: character %q not allowed (use letters, digits, '-', '_', '=', '/', '.')", name, r)
		}
	}
	return nil
}
