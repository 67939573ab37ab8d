package schedule

// An internal test: catchUpSlot is unexported and pure, so it is tested
// directly, case by case, and in a synctest bubble where an outage is
// simulated on the bubble's clock.

import (
	"cmp"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// rfc parses an RFC 3339 instant of a test table.
func rfc(t *testing.T, s string) time.Time {
	t.Helper()
	if s == "" {
		return time.Time{}
	}
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v
}

func mustCompile(t *testing.T, e Entry) compiled {
	t.Helper()
	e.Name, e.Subject = cmp.Or(e.Name, "x"), cmp.Or(e.Subject, "tasks.x")
	c, err := e.compile()
	if err != nil {
		t.Fatalf("compile %+v: %v", e, err)
	}
	return c
}

// TestCatchUpSlot checks the first slot a new leader fires for every
// policy: never fired, nothing missed, several missed, End reached, Start
// in the future, and missed slots across both DST transitions.
func TestCatchUpSlot(t *testing.T) {
	t.Parallel()
	type want struct{ skip, once, all string } // "" = no slot at all
	tests := []struct {
		name      string
		e         Entry
		last, now string
		want      want
	}{
		{
			name: "never fired: the next slot after now, whatever the policy",
			e:    Entry{Spec: "@every 10s"},
			now:  "2026-05-01T12:00:05Z",
			want: want{"2026-05-01T12:00:10Z", "2026-05-01T12:00:10Z", "2026-05-01T12:00:10Z"},
		},
		{
			name: "never fired, now exactly on a slot: that slot is not fired late, the next one is",
			e:    Entry{Spec: "@every 10s"},
			now:  "2026-05-01T12:00:10Z",
			want: want{"2026-05-01T12:00:20Z", "2026-05-01T12:00:20Z", "2026-05-01T12:00:20Z"},
		},
		{
			name: "nothing missed: the slot after the last one, still in the future",
			e:    Entry{Spec: "@every 10s"},
			last: "2026-05-01T12:00:00Z", now: "2026-05-01T12:00:09Z",
			want: want{"2026-05-01T12:00:10Z", "2026-05-01T12:00:10Z", "2026-05-01T12:00:10Z"},
		},
		{
			name: "one missed, due exactly now: it counts as passed, so skip passes over it",
			e:    Entry{Spec: "@every 10s"},
			last: "2026-05-01T12:00:00Z", now: "2026-05-01T12:00:10Z",
			want: want{"2026-05-01T12:00:20Z", "2026-05-01T12:00:10Z", "2026-05-01T12:00:10Z"},
		},
		{
			name: "several missed: skip resumes after now, once fires the latest, all the oldest",
			e:    Entry{Spec: "@every 10s"},
			last: "2026-05-01T12:00:00Z", now: "2026-05-01T12:00:45Z",
			want: want{"2026-05-01T12:00:50Z", "2026-05-01T12:00:40Z", "2026-05-01T12:00:10Z"},
		},
		{
			name: "several cron slots missed over a day",
			e:    Entry{Spec: "0 */6 * * *"},
			last: "2026-05-01T00:00:00Z", now: "2026-05-02T01:00:00Z",
			want: want{"2026-05-02T06:00:00Z", "2026-05-02T00:00:00Z", "2026-05-01T06:00:00Z"},
		},
		{
			name: "End reached before now: skip has nothing left, once and all fire what End allows",
			e:    Entry{Spec: "@every 10s", End: time.Date(2026, 5, 1, 12, 0, 30, 0, time.UTC)},
			last: "2026-05-01T12:00:00Z", now: "2026-05-01T12:01:00Z",
			want: want{"", "2026-05-01T12:00:30Z", "2026-05-01T12:00:10Z"},
		},
		{
			name: "End reached at the last fired slot: nothing more for any policy",
			e:    Entry{Spec: "@every 10s", End: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)},
			last: "2026-05-01T12:00:00Z", now: "2026-05-01T12:01:00Z",
			want: want{"", "", ""},
		},
		{
			name: "End passed, never fired: nothing",
			e:    Entry{Spec: "@every 10s", End: time.Date(2026, 5, 1, 11, 0, 0, 0, time.UTC)},
			now:  "2026-05-01T12:00:00Z",
			want: want{"", "", ""},
		},
		{
			name: "Start in the future, never fired: @every starts at Start",
			e:    Entry{Spec: "@every 1h", Start: time.Date(2026, 6, 1, 9, 15, 0, 0, time.UTC)},
			now:  "2026-05-01T12:00:00Z",
			want: want{"2026-06-01T09:15:00Z", "2026-06-01T09:15:00Z", "2026-06-01T09:15:00Z"},
		},
		{
			name: "Start in the future, never fired: cron starts at its first slot from Start",
			e:    Entry{Spec: "0 * * * *", Start: time.Date(2026, 6, 1, 9, 15, 0, 0, time.UTC)},
			now:  "2026-05-01T12:00:00Z",
			want: want{"2026-06-01T10:00:00Z", "2026-06-01T10:00:00Z", "2026-06-01T10:00:00Z"},
		},
		{
			name: "Start in the future with a cursor before it (Start moved later): nothing missed",
			e:    Entry{Spec: "@every 1h", Start: time.Date(2026, 6, 1, 9, 15, 0, 0, time.UTC)},
			last: "2026-04-01T00:00:00Z", now: "2026-05-01T12:00:00Z",
			want: want{"2026-06-01T09:15:00Z", "2026-06-01T09:15:00Z", "2026-06-01T09:15:00Z"},
		},
		{
			name: "DST spring forward: 02:30 daily missed over the gap fires at 03:00 EDT (once and all)",
			e:    Entry{Spec: "30 2 * * *", TimeZone: "America/New_York"},
			last: "2026-03-07T02:30:00-05:00", now: "2026-03-08T12:00:00-04:00",
			want: want{"2026-03-09T02:30:00-04:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:00:00-04:00"},
		},
		{
			name: "DST fall back: */30 missed in both passes; once fires the second pass's 01:00 EST",
			e:    Entry{Spec: "*/30 * * * *", TimeZone: "America/New_York"},
			last: "2026-11-01T01:00:00-04:00", now: "2026-11-01T01:10:00-05:00",
			want: want{"2026-11-01T01:30:00-05:00", "2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-04:00"},
		},
		{
			name: "DST fall back: 01:30 daily is missed once, in the first pass, not again at 01:30 EST",
			e:    Entry{Spec: "30 1 * * *", TimeZone: "America/New_York"},
			last: "2026-10-31T01:30:00-04:00", now: "2026-11-01T01:45:00-05:00",
			want: want{"2026-11-02T01:30:00-05:00", "2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-04:00"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, p := range []struct {
				policy CatchUp
				want   string
			}{{CatchUpSkip, tt.want.skip}, {CatchUpOnce, tt.want.once}, {CatchUpAll, tt.want.all}} {
				e := tt.e
				e.CatchUp = p.policy
				c := mustCompile(t, e)
				got := catchUpSlot(c, rfc(t, tt.last), rfc(t, tt.now))
				if want := rfc(t, p.want); !got.Equal(want) {
					t.Errorf("%s: got %s, want %s", p.policy, show(got), show(want))
				}
			}
		})
	}
}

func show(t time.Time) string {
	if t.IsZero() {
		return "no slot"
	}
	return t.UTC().Format(time.RFC3339)
}

// TestCatchUpAfterOutage runs, on a synctest bubble's clock, what a fire
// loop does with an entry: it fires every slot while leading, loses the
// leader for an outage, and then a new leader starts from catchUpSlot and
// fires on. It checks the slots fired across the outage per policy.
func TestCatchUpAfterOutage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		policy CatchUp
		want   []int // slots fired, in seconds after the first one
	}{
		// The leader fires 0..3, is gone from 3.5 to 8.5 (slots 4..8
		// pass), and a new leader runs until 11.
		{CatchUpSkip, []int{0, 1, 2, 3, 9, 10, 11}},
		{CatchUpOnce, []int{0, 1, 2, 3, 8, 9, 10, 11}},
		{CatchUpAll, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				c := mustCompile(t, Entry{Spec: "@every 1s", CatchUp: tt.policy})
				first := c.next(time.Now())
				var fired []time.Time
				// run fires from slot on until the clock passes until,
				// sleeping to each slot as the timer of the loop does.
				run := func(slot, until time.Time) time.Time {
					last := time.Time{}
					for ; !slot.IsZero() && !slot.After(until); slot = c.next(slot) {
						time.Sleep(time.Until(slot))
						fired = append(fired, slot)
						last = slot
					}
					return last
				}
				last := run(catchUpSlot(c, time.Time{}, time.Now()), first.Add(3500*time.Millisecond))
				time.Sleep(time.Until(first.Add(8500 * time.Millisecond))) // the outage
				run(catchUpSlot(c, last, time.Now()), first.Add(11*time.Second))

				var got []int
				for _, s := range fired {
					got = append(got, int(s.Sub(first)/time.Second))
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Fatalf("fired slots %v, want %v", got, tt.want)
				}
				// The late ones fired at once, the others on time.
				if now := time.Now(); !now.Equal(first.Add(11 * time.Second)) {
					t.Fatalf("the loop ended at %s, want at slot 11 (%s)", now, first.Add(11*time.Second))
				}
			})
		})
	}
}

// TestCatchUpAcrossFallBack runs the same on the bubble's clock moved to
// New York's 2026 fall back: a half-hourly entry whose leader is gone from
// 00:45 EDT to 01:10 EST catches up per policy, and an interval entry
// fires in both passes of the repeated hour.
func TestCatchUpAcrossFallBack(t *testing.T) {
	t.Parallel()
	tests := []struct {
		policy CatchUp
		want   []string
	}{
		{CatchUpSkip, []string{"04:30", "06:30", "07:00"}},
		{CatchUpOnce, []string{"04:30", "06:00", "06:30", "07:00"}},
		{CatchUpAll, []string{"04:30", "05:00", "05:30", "06:00", "06:30", "07:00"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.policy), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				c := mustCompile(t, Entry{Spec: "*/30 * * * *", TimeZone: "America/New_York", CatchUp: tt.policy})
				// 00:20 EDT; the bubble's clock starts in 2000, and
				// sleeping there takes no time.
				time.Sleep(time.Until(rfc(t, "2026-11-01T04:20:00Z")))
				var fired []string
				run := func(slot, until time.Time) time.Time {
					last := time.Time{}
					for ; !slot.IsZero() && !slot.After(until); slot = c.next(slot) {
						time.Sleep(time.Until(slot))
						fired = append(fired, slot.UTC().Format("15:04"))
						last = slot
					}
					return last
				}
				last := run(catchUpSlot(c, time.Time{}, time.Now()), rfc(t, "2026-11-01T04:45:00Z"))
				time.Sleep(time.Until(rfc(t, "2026-11-01T06:10:00Z"))) // down until 01:10 EST
				run(catchUpSlot(c, last, time.Now()), rfc(t, "2026-11-01T07:00:00Z"))
				if fmt.Sprint(fired) != fmt.Sprint(tt.want) {
					t.Fatalf("fired %v (UTC), want %v", fired, tt.want)
				}
			})
		})
	}
}
