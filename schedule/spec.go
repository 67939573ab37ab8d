package schedule

import (
	"fmt"
	"strings"
	"time"

	cron "github.com/netresearch/go-cron"
)

// cronParser accepts five fields (minute first) or six (seconds first),
// the @hourly family of descriptors, and uses the classic cron rule that a
// restricted day-of-month and day-of-week match when either matches.
func cronParser() cron.Parser {
	return cron.MustNewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom |
		cron.Month | cron.Dow | cron.Descriptor | cron.DowOrDom)
}

// spec is a compiled schedule spec: either a fixed interval anchored at
// an epoch, or a cron schedule evaluated in a time zone.
type spec struct {
	every  time.Duration // > 0 for @every
	anchor time.Time     // first @every slot; slots are anchor + k*every
	// cron matches wall-clock readings: its Location is UTC and it is
	// asked about a reading written as a UTC instant (see wall).
	cron *cron.SpecSchedule
	// interval is true when a time field (seconds, minutes or hours) is
	// '*' or '?' or has a range or a step: such a schedule fires in both
	// passes of a repeated fall-back interval (Cronos's Interval flag).
	interval bool
	loc      *time.Location
}

// parseSpec compiles s. Errors name the offending field; they do not wrap
// ErrInvalidEntry (the caller does).
func parseSpec(s string, loc *time.Location, anchor time.Time) (spec, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return spec{}, fmt.Errorf("empty")
	}
	if strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=") {
		return spec{}, fmt.Errorf("%q: set the time zone in TimeZone, not in the spec", s)
	}
	if rest, ok := strings.CutPrefix(s, "@every"); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		switch {
		case err != nil:
			return spec{}, fmt.Errorf("%q: @every needs a duration such as 30s or 5m: %w", s, err)
		case d < time.Second:
			return spec{}, fmt.Errorf("%q: @every interval must be at least 1s, got %s", s, d)
		case d%time.Second != 0:
			return spec{}, fmt.Errorf("%q: @every interval must be a whole number of seconds, got %s", s, d)
		}
		if anchor.IsZero() {
			anchor = time.Unix(0, 0)
		}
		return spec{every: d, anchor: anchor.Truncate(time.Second), loc: loc}, nil
	}
	sched, err := cronParser().Parse(s)
	if err != nil {
		return spec{}, describeParseError(s, err)
	}
	cs, ok := sched.(*cron.SpecSchedule)
	if !ok {
		return spec{}, fmt.Errorf("%q: unsupported schedule type %T", s, sched)
	}
	c := *cs
	c.Location = time.UTC
	return spec{cron: &c, interval: isInterval(s), loc: loc}, nil
}

// isInterval reports whether the parsed cron spec s fires at intervals
// through the day rather than at fixed times: one of its second, minute
// or hour fields is '*' or '?', or contains a range or a step. Of the
// descriptors only @hourly ("0 * * * *") is.
func isInterval(s string) bool {
	if strings.HasPrefix(s, "@") {
		return s == "@hourly"
	}
	fields := strings.Fields(s)
	timeFields := fields[:2] // minute, hour
	if len(fields) == 6 {
		timeFields = fields[:3] // second, minute, hour
	}
	for _, f := range timeFields {
		if strings.ContainsAny(f, "*?-/") {
			return true
		}
	}
	return false
}

// describeParseError finds which field of a failing cron spec is wrong by
// parsing each field on its own, with every other field a wildcard.
func describeParseError(s string, err error) error {
	if strings.HasPrefix(s, "@") {
		return fmt.Errorf("%q: %w (want @yearly, @monthly, @weekly, @daily, @hourly or @every <duration>)", s, err)
	}
	fields := strings.Fields(s)
	var names []string
	switch len(fields) {
	case 5:
		names = []string{"minute", "hour", "day-of-month", "month", "day-of-week"}
	case 6:
		names = []string{"second", "minute", "hour", "day-of-month", "month", "day-of-week"}
	default:
		return fmt.Errorf("%q: want 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), got %d", s, len(fields))
	}
	for i, f := range fields {
		probe := make([]string, len(fields))
		for j := range probe {
			probe[j] = "*"
		}
		probe[i] = f
		if _, perr := cronParser().Parse(strings.Join(probe, " ")); perr != nil {
			return fmt.Errorf("%q: %s field %q: %w", s, names[i], f, perr)
		}
	}
	return fmt.Errorf("%q: %w", s, err)
}

// maxPeriods bounds the zone offset periods nextCron walks through. The
// cron search itself gives up five years ahead (go-cron's limit), which
// no zone fills with this many offset changes.
const maxPeriods = 4096

// next returns the first slot strictly after t, in sp.loc, or the zero
// time if there is none. See the package documentation for the DST rules.
func (sp spec) next(t time.Time) time.Time {
	if sp.every > 0 {
		if t.Before(sp.anchor) {
			return sp.anchor
		}
		// Slots are whole seconds, so counting in seconds avoids the
		// Duration overflow of t.Sub for anchors centuries away.
		secs := t.Unix() - sp.anchor.Unix()
		step := int64(sp.every / time.Second)
		return time.Unix(sp.anchor.Unix()+(secs/step+1)*step, 0).In(sp.loc)
	}
	return sp.nextCron(t)
}

// nextCron walks the zone's offset periods (spans of constant UTC offset)
// from the one holding t. In each it looks for the first matching
// wall-clock reading after the cursor and before the period ends; a
// reading the period shows is fired at the instant that shows it. When
// the clocks go forward at the end of a period, a match in the skipped
// readings, or at the first reading after them, fires at the transition
// instant. When they go back, the readings at the start of the new period
// repeat those at the end of the old one; a non-interval spec skips them,
// having fired them in the first pass.
func (sp spec) nextCron(t time.Time) time.Time {
	z := t.Round(0).In(sp.loc) // no monotonic reading: compare wall clocks
	_, off := z.Zone()
	start, end := z.ZoneBounds()
	from := wall(z, off) // find matches strictly after from
	for range maxPeriods {
		if !sp.interval && !start.IsZero() {
			_, prevOff := start.Add(-time.Nanosecond).Zone()
			if repeatEnd := wall(start, prevOff); from.Before(repeatEnd) {
				from = repeatEnd.Add(-time.Nanosecond)
			}
		}
		m := sp.cron.Next(from)
		if m.IsZero() {
			return time.Time{}
		}
		if end.IsZero() || m.Before(wall(end, off)) {
			return instant(m, off).In(sp.loc)
		}
		_, nextOff := end.In(sp.loc).Zone()
		if nextOff > off && !m.After(wall(end, nextOff)) {
			return end.In(sp.loc) // the match was skipped or is the transition
		}
		start, off = end, nextOff
		_, end = end.In(sp.loc).ZoneBounds()
		from = wall(start, off).Add(-time.Nanosecond) // the period's first reading counts
	}
	return time.Time{}
}

// wall returns the wall-clock reading of t at UTC offset off (seconds
// east), written as a UTC instant so that go-cron sees no zone changes.
func wall(t time.Time, off int) time.Time {
	return t.UTC().Add(time.Duration(off) * time.Second)
}

// instant is the inverse of wall: the instant at which a clock at offset
// off shows the reading w.
func instant(w time.Time, off int) time.Time {
	return w.Add(-time.Duration(off) * time.Second)
}
