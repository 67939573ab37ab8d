package schedule

import "time"

// catchUpSlot returns the first slot to fire for an entry whose last
// fired slot is last, at time now, under its catch-up policy (see the
// package documentation). It is a pure function of its arguments.
func catchUpSlot(c compiled, last, now time.Time) time.Time {
	if last.IsZero() {
		return c.next(now) // never fired: start with the next slot
	}
	first := c.next(last)
	if first.IsZero() || first.After(now) {
		return first // nothing missed
	}
	switch c.CatchUp {
	case CatchUpAll:
		return first
	case CatchUpOnce:
		latest := first
		for s := c.next(first); !s.IsZero() && !s.After(now); s = c.next(s) {
			latest = s
		}
		return latest
	default: // skip
		return c.next(now)
	}
}
