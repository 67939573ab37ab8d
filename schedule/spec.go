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

// allHours has the bits of hours 0-23 set.
const allHours = 1<<24 - 1

// spec is a compiled schedule spec: either a fixed interval anchored at
// an epoch, or a cron schedule evaluated in a time zone.
type spec struct {
	every  time.Duration // > 0 for @every
	anchor time.Time     // first @every slot; slots are anchor + k*every
	cron   *cron.SpecSchedule
	// hourly is true when the cron hour field matches every hour: such a
	// schedule fires in both passes of a repeated fall-back hour.
	hourly bool
	loc    *time.Location
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
	c.Location = loc
	return spec{cron: &c, hourly: c.Hour&allHours == allHours, loc: loc}, nil
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

// next returns the first slot strictly after t, or the zero time if there
// is none. See the package documentation for the DST rules.
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
	t = t.In(sp.loc)
	// A bounded number of skips: at most one per repeated-hour slot.
	for range 4096 {
		t = sp.cron.Next(t)
		if t.IsZero() {
			return t
		}
		if sp.hourly || !secondPass(t) {
			return t
		}
	}
	return time.Time{}
}

// secondPass reports whether t's wall-clock reading already occurred
// earlier, that is, t lies in the second pass of a repeated hour after
// the clocks went back.
func secondPass(t time.Time) bool {
	// The clock changes in the IANA database: Lord Howe Island 30 minutes,
	// most zones 1 hour, Troll 2 hours.
	for _, d := range [...]time.Duration{30 * time.Minute, time.Hour, 2 * time.Hour} {
		e := t.Add(-d)
		if sameWallClock(e, t) {
			return true
		}
	}
	return false
}

func sameWallClock(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd &&
		a.Hour() == b.Hour() && a.Minute() == b.Minute() && a.Second() == b.Second()
}
