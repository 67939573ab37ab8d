package schedule_test

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/schedule"
	"github.com/jetworker/jetworker/streams"
)

// at parses an RFC 3339 instant of a test table.
func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// showIn formats t as UTC and as the wall clock of loc.
func showIn(t time.Time, loc *time.Location) string {
	return t.UTC().Format(time.RFC3339) + " (" + t.In(loc).Format("2006-01-02 15:04:05 MST") + ")"
}

// TestNextAcrossDSTFollowsCronos checks the slots around both
// transitions of several zones against Cronos's rules: a skipped reading
// fires at the transition instant, a repeated one fires in both passes for
// interval specs and in the first pass for the others.
func TestNextAcrossDSTFollowsCronos(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		zone  string
		spec  string
		after time.Time
		want  []string // RFC 3339 with the zone's offset
	}{
		// New York: 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z);
		// 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z).
		{
			name: "New York 02:30 daily in the gap fires at the transition instant, then daily",
			zone: "America/New_York", spec: "30 2 * * *", after: at("2026-03-07T12:00:00-05:00"),
			want: []string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"},
		},
		{
			name: "New York 02:00 daily, the gap's first reading, fires at the transition instant",
			zone: "America/New_York", spec: "0 2 * * *", after: at("2026-03-07T12:00:00-05:00"),
			want: []string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00"},
		},
		{
			name: "New York 03:00 daily, the reading at the transition, fires there once",
			zone: "America/New_York", spec: "0 3 * * *", after: at("2026-03-07T12:00:00-05:00"),
			want: []string{"2026-03-08T03:00:00-04:00", "2026-03-09T03:00:00-04:00"},
		},
		{
			name: "New York */30 in the gap and at 03:00 collapse into one fire",
			zone: "America/New_York", spec: "*/30 * * * *", after: at("2026-03-08T01:15:00-05:00"),
			want: []string{"2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00"},
		},
		{
			name: "New York */15 fires once for the gap's four slots",
			zone: "America/New_York", spec: "*/15 * * * *", after: at("2026-03-08T01:40:00-05:00"),
			want: []string{"2026-03-08T01:45:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:15:00-04:00"},
		},
		{
			name: "New York hourly skips no hour and doubles none on spring forward",
			zone: "America/New_York", spec: "0 * * * *", after: at("2026-03-08T00:30:00-05:00"),
			want: []string{"2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"},
		},
		{
			name: "New York @hourly on spring forward",
			zone: "America/New_York", spec: "@hourly", after: at("2026-03-08T00:30:00-05:00"),
			want: []string{"2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"},
		},
		{
			name: "New York after 01:59:59 EST, just before the gap, the gap's slot is next",
			zone: "America/New_York", spec: "30 2 * * *", after: at("2026-03-08T01:59:59-05:00"),
			want: []string{"2026-03-08T03:00:00-04:00"},
		},
		{
			name: "New York after the transition instant itself, the gap has fired: next day",
			zone: "America/New_York", spec: "30 2 * * *", after: at("2026-03-08T03:00:00-04:00"),
			want: []string{"2026-03-09T02:30:00-04:00"},
		},
		{
			name: "New York first slot computed at 03:10 EDT is the next day, not none that day and not 03:30",
			zone: "America/New_York", spec: "30 2 * * *", after: at("2026-03-08T03:10:00-04:00"),
			want: []string{"2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"},
		},
		{
			name: "New York */30 computed at 03:10 EDT continues at 03:30",
			zone: "America/New_York", spec: "*/30 * * * *", after: at("2026-03-08T03:10:00-04:00"),
			want: []string{"2026-03-08T03:30:00-04:00"},
		},
		{
			name: "New York after 02:30 read at the old offset (03:30 EDT): the gap has fired",
			zone: "America/New_York", spec: "*/15 * * * *", after: at("2026-03-08T02:30:00-05:00"),
			want: []string{"2026-03-08T03:45:00-04:00"},
		},
		{
			name: "New York after time.Date(02:30) in the gap, which Go reads as 01:30 EST",
			zone: "America/New_York", spec: "30 2 * * *",
			after: time.Date(2026, 3, 8, 2, 30, 0, 0, mustLoad(t, "America/New_York")),
			want:  []string{"2026-03-08T03:00:00-04:00"},
		},
		{
			name: "New York six fields: every 20s of 02:30 in the gap is one fire",
			zone: "America/New_York", spec: "*/20 30 2 * * *", after: at("2026-03-08T01:59:00-05:00"),
			want: []string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00", "2026-03-09T02:30:20-04:00"},
		},
		{
			name: "New York six fields: 02:59:59 in the gap fires at the transition",
			zone: "America/New_York", spec: "59 59 2 * * *", after: at("2026-03-07T12:00:00-05:00"),
			want: []string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:59:59-04:00"},
		},
		{
			name: "New York 01:30 daily fires once on fall back, in the first pass",
			zone: "America/New_York", spec: "30 1 * * *", after: at("2026-10-31T12:00:00-04:00"),
			want: []string{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"},
		},
		{
			name: "New York */20 in hour 1 is interval (minute step): both passes",
			zone: "America/New_York", spec: "*/20 1 * * *", after: at("2026-11-01T00:50:00-04:00"),
			want: []string{
				"2026-11-01T01:00:00-04:00", "2026-11-01T01:20:00-04:00", "2026-11-01T01:40:00-04:00",
				"2026-11-01T01:00:00-05:00", "2026-11-01T01:20:00-05:00", "2026-11-01T01:40:00-05:00",
				"2026-11-02T01:00:00-05:00",
			},
		},
		{
			name: "New York 0,30 in hour 1 is a list, not interval: first pass only",
			zone: "America/New_York", spec: "0,30 1 * * *", after: at("2026-11-01T00:50:00-04:00"),
			want: []string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-02T01:00:00-05:00"},
		},
		{
			name: "New York 01:30 in an hour range is interval: both passes",
			zone: "America/New_York", spec: "30 1-2 * * *", after: at("2026-11-01T00:50:00-04:00"),
			want: []string{"2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00", "2026-11-01T02:30:00-05:00"},
		},
		{
			name: "New York */30 fires in both passes of the repeated hour",
			zone: "America/New_York", spec: "*/30 * * * *", after: at("2026-11-01T00:45:00-04:00"),
			want: []string{
				"2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00",
				"2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00",
			},
		},
		{
			name: "New York hourly fires 01:00 in both passes",
			zone: "America/New_York", spec: "0 * * * *", after: at("2026-11-01T00:30:00-04:00"),
			want: []string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"},
		},
		{
			name: "New York @hourly fires 01:00 in both passes",
			zone: "America/New_York", spec: "@hourly", after: at("2026-11-01T00:30:00-04:00"),
			want: []string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"},
		},
		{
			name: "New York @daily at midnight is untouched by fall back",
			zone: "America/New_York", spec: "@daily", after: at("2026-10-31T12:00:00-04:00"),
			want: []string{"2026-11-01T00:00:00-04:00", "2026-11-02T00:00:00-05:00"},
		},
		{
			name: "New York 02:00 daily, just after the repeated hour, fires once at 02:00 EST",
			zone: "America/New_York", spec: "0 2 * * *", after: at("2026-10-31T12:00:00-04:00"),
			want: []string{"2026-11-01T02:00:00-05:00", "2026-11-02T02:00:00-05:00"},
		},
		{
			name: "New York after 01:10 EDT, in the first pass, 01:30 EDT is next",
			zone: "America/New_York", spec: "30 1 * * *", after: at("2026-11-01T01:10:00-04:00"),
			want: []string{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"},
		},
		{
			name: "New York after 01:45 EDT, past the first pass's slot, the second pass does not fire",
			zone: "America/New_York", spec: "30 1 * * *", after: at("2026-11-01T01:45:00-04:00"),
			want: []string{"2026-11-02T01:30:00-05:00"},
		},
		{
			name: "New York after 01:10 EST, in the second pass, a non-interval spec does not fire again",
			zone: "America/New_York", spec: "30 1 * * *", after: at("2026-11-01T01:10:00-05:00"),
			want: []string{"2026-11-02T01:30:00-05:00"},
		},
		{
			name: "New York after 01:10 EST, in the second pass, an interval spec continues in it",
			zone: "America/New_York", spec: "*/20 1 * * *", after: at("2026-11-01T01:10:00-05:00"),
			want: []string{"2026-11-01T01:20:00-05:00", "2026-11-01T01:40:00-05:00", "2026-11-02T01:00:00-05:00"},
		},
		{
			name: "New York after 01:10 EST, in the second pass, 02:00 daily still fires at 02:00 EST",
			zone: "America/New_York", spec: "0 2 * * *", after: at("2026-11-01T01:10:00-05:00"),
			want: []string{"2026-11-01T02:00:00-05:00"},
		},
		{
			name: "New York six fields: 01:30:15 daily fires once on fall back",
			zone: "America/New_York", spec: "15 30 1 * * *", after: at("2026-10-31T12:00:00-04:00"),
			want: []string{"2026-11-01T01:30:15-04:00", "2026-11-02T01:30:15-05:00"},
		},
		{
			name: "New York six fields: second 30 of every hour's minute 0 is interval: both passes",
			zone: "America/New_York", spec: "30 0 * * * *", after: at("2026-11-01T00:59:00-04:00"),
			want: []string{"2026-11-01T01:00:30-04:00", "2026-11-01T01:00:30-05:00", "2026-11-01T02:00:30-05:00"},
		},
		{
			name: "New York six fields: a seconds step makes 01:30 interval: both passes",
			zone: "America/New_York", spec: "*/30 30 1 * * *", after: at("2026-11-01T01:00:00-04:00"),
			want: []string{
				"2026-11-01T01:30:00-04:00", "2026-11-01T01:30:30-04:00",
				"2026-11-01T01:30:00-05:00", "2026-11-01T01:30:30-05:00", "2026-11-02T01:30:00-05:00",
			},
		},

		// Berlin: 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z);
		// 2026-10-25 03:00 CEST -> 02:00 CET (01:00Z).
		{
			name: "Berlin 02:30 daily in the gap fires at 03:00 CEST",
			zone: "Europe/Berlin", spec: "30 2 * * *", after: at("2026-03-28T12:00:00+01:00"),
			want: []string{"2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"},
		},
		{
			name: "Berlin six fields 02:30:00 in the gap fires at 03:00 CEST",
			zone: "Europe/Berlin", spec: "0 30 2 * * *", after: at("2026-03-28T12:00:00+01:00"),
			want: []string{"2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"},
		},
		{
			name: "Berlin */30 collapses the gap into 03:00 CEST",
			zone: "Europe/Berlin", spec: "*/30 * * * *", after: at("2026-03-29T01:15:00+01:00"),
			want: []string{"2026-03-29T01:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T03:30:00+02:00"},
		},
		{
			name: "Berlin 02:30 daily fires once on fall back, in the first pass",
			zone: "Europe/Berlin", spec: "30 2 * * *", after: at("2026-10-24T12:00:00+02:00"),
			want: []string{"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"},
		},
		{
			name: "Berlin */30 fires in both passes of 02:00-03:00",
			zone: "Europe/Berlin", spec: "*/30 * * * *", after: at("2026-10-25T01:45:00+02:00"),
			want: []string{
				"2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00",
				"2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00", "2026-10-25T03:00:00+01:00",
			},
		},
		{
			name: "Berlin 03:00 daily, which occurs once on fall back, fires at 03:00 CET",
			zone: "Europe/Berlin", spec: "0 3 * * *", after: at("2026-10-24T12:00:00+02:00"),
			want: []string{"2026-10-25T03:00:00+01:00", "2026-10-26T03:00:00+01:00"},
		},

		// Sydney: 2026-04-05 03:00 AEDT -> 02:00 AEST (fall back, 16:00Z);
		// 2026-10-04 02:00 AEST -> 03:00 AEDT (spring forward, 16:00Z).
		{
			name: "Sydney 02:30 daily fires once on April fall back, in the first pass",
			zone: "Australia/Sydney", spec: "30 2 * * *", after: at("2026-04-04T12:00:00+11:00"),
			want: []string{"2026-04-05T02:30:00+11:00", "2026-04-06T02:30:00+10:00"},
		},
		{
			name: "Sydney */30 fires in both passes on April fall back",
			zone: "Australia/Sydney", spec: "*/30 * * * *", after: at("2026-04-05T01:45:00+11:00"),
			want: []string{
				"2026-04-05T02:00:00+11:00", "2026-04-05T02:30:00+11:00",
				"2026-04-05T02:00:00+10:00", "2026-04-05T02:30:00+10:00", "2026-04-05T03:00:00+10:00",
			},
		},
		{
			name: "Sydney 02:30 daily in the October gap fires at 03:00 AEDT",
			zone: "Australia/Sydney", spec: "30 2 * * *", after: at("2026-10-03T12:00:00+10:00"),
			want: []string{"2026-10-04T03:00:00+11:00", "2026-10-05T02:30:00+11:00"},
		},
		{
			name: "Sydney hourly on October spring forward fires 02:00's slot at 03:00 AEDT",
			zone: "Australia/Sydney", spec: "0 * * * *", after: at("2026-10-04T00:30:00+10:00"),
			want: []string{"2026-10-04T01:00:00+10:00", "2026-10-04T03:00:00+11:00", "2026-10-04T04:00:00+11:00"},
		},

		// Lord Howe, 30-minute shifts: 2026-04-05 02:00 +11 -> 01:30 +10:30
		// (15:00Z); 2026-10-04 02:00 +10:30 -> 02:30 +11 (15:30Z).
		{
			name: "Lord Howe 02:15 daily in the 30-minute gap fires at 02:30 +11",
			zone: "Australia/Lord_Howe", spec: "15 2 * * *", after: at("2026-10-03T12:00:00+10:30"),
			want: []string{"2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"},
		},
		{
			name: "Lord Howe 02:30 daily, the reading at the transition, fires there once",
			zone: "Australia/Lord_Howe", spec: "30 2 * * *", after: at("2026-10-03T12:00:00+10:30"),
			want: []string{"2026-10-04T02:30:00+11:00", "2026-10-05T02:30:00+11:00"},
		},
		{
			name: "Lord Howe */10 collapses 02:00, 02:10, 02:20 and 02:30 into one fire",
			zone: "Australia/Lord_Howe", spec: "*/10 * * * *", after: at("2026-10-04T01:45:00+10:30"),
			want: []string{"2026-10-04T01:50:00+10:30", "2026-10-04T02:30:00+11:00", "2026-10-04T02:40:00+11:00"},
		},
		{
			name: "Lord Howe 01:45 daily fires once in the repeated half hour",
			zone: "Australia/Lord_Howe", spec: "45 1 * * *", after: at("2026-04-04T12:00:00+11:00"),
			want: []string{"2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"},
		},
		{
			name: "Lord Howe */15 fires in both passes of the repeated half hour",
			zone: "Australia/Lord_Howe", spec: "*/15 * * * *", after: at("2026-04-05T01:20:00+11:00"),
			want: []string{
				"2026-04-05T01:30:00+11:00", "2026-04-05T01:45:00+11:00",
				"2026-04-05T01:30:00+10:30", "2026-04-05T01:45:00+10:30", "2026-04-05T02:00:00+10:30",
			},
		},
		{
			name: "Lord Howe 0,30 in hour 1: 01:00 once, the repeated 01:30 in the first pass only",
			zone: "Australia/Lord_Howe", spec: "0,30 1 * * *", after: at("2026-04-05T00:50:00+11:00"),
			want: []string{"2026-04-05T01:00:00+11:00", "2026-04-05T01:30:00+11:00", "2026-04-06T01:00:00+10:30"},
		},

		// Tokyo has no DST: the same specs on the same days are plain.
		{
			name: "Tokyo control: 02:30 daily on New York's spring-forward day",
			zone: "Asia/Tokyo", spec: "30 2 * * *", after: at("2026-03-07T12:00:00+09:00"),
			want: []string{"2026-03-08T02:30:00+09:00", "2026-03-09T02:30:00+09:00"},
		},
		{
			name: "Tokyo control: */30 on New York's fall-back day",
			zone: "Asia/Tokyo", spec: "*/30 * * * *", after: at("2026-11-01T00:45:00+09:00"),
			want: []string{"2026-11-01T01:00:00+09:00", "2026-11-01T01:30:00+09:00", "2026-11-01T02:00:00+09:00"},
		},
		{
			name: "Tokyo control: six fields 01:30:15 daily",
			zone: "Asia/Tokyo", spec: "15 30 1 * * *", after: at("2026-10-31T12:00:00+09:00"),
			want: []string{"2026-11-01T01:30:15+09:00", "2026-11-02T01:30:15+09:00"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			loc := mustLoad(t, tt.zone)
			e := schedule.Entry{Name: "x", Spec: tt.spec, TimeZone: tt.zone, Subject: "tasks.x"}
			got, err := e.Next(tt.after, len(tt.want))
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			for i, w := range tt.want {
				want := at(w)
				if i >= len(got) {
					t.Errorf("slot %d: got none, want %s", i, showIn(want, loc))
					continue
				}
				if !got[i].Equal(want) {
					t.Errorf("slot %d: got %s, want %s", i, showIn(got[i], loc), showIn(want, loc))
				}
			}
		})
	}
}

// TestNextMatchesBruteForceOracle compares Next with a reference that
// steps through the instants around each 2026 transition of several zones
// one by one (a minute, or a second for six-field specs) and applies the
// rules directly: an instant fires if its wall-clock reading matches and
// was not shown before (or the spec is an interval spec), or if a reading
// the clocks skipped just before it matches.
func TestNextMatchesBruteForceOracle(t *testing.T) {
	t.Parallel()
	specs := []struct {
		spec     string
		interval bool // written out here, not taken from the package
	}{
		{"30 2 * * *", false},
		{"0 2 * * *", false},
		{"0 3 * * *", false},
		{"30 1 * * *", false},
		{"0,30 1 * * *", false},
		{"45 1,2 * * *", false},
		{"@daily", false},
		{"*/15 * * * *", true},
		{"*/20 1 * * *", true},
		{"5-10 1,2 * * *", true},
		{"0 * * * *", true},
		{"@hourly", true},
		{"15 30 1,2 * * *", false},
		{"*/20 30 1,2 * * *", true},
		{"0 */7 * * * *", true},
	}
	zones := []string{"America/New_York", "Europe/Berlin", "Australia/Sydney", "Australia/Lord_Howe", "Asia/Tokyo"}
	for _, zone := range zones {
		loc := mustLoad(t, zone)
		days := transitions(loc, 2026)
		if len(days) == 0 {
			days = []time.Time{at("2026-03-08T07:00:00Z")} // the control: any day
		}
		for _, tr := range days {
			for _, sp := range specs {
				name := fmt.Sprintf("%s/%s/%s", zone, tr.In(loc).Format("2006-01-02"), sp.spec)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					checkAgainstOracle(t, loc, sp.spec, sp.interval, tr)
				})
			}
		}
	}
}

// transitions returns the instants in year at which loc's offset changes.
func transitions(loc *time.Location, year int) []time.Time {
	var out []time.Time
	t := time.Date(year, 1, 1, 0, 0, 0, 0, loc)
	for {
		_, end := t.ZoneBounds()
		if end.IsZero() || end.Year() > year {
			return out
		}
		_, before := end.Add(-time.Nanosecond).Zone()
		if _, after := end.Zone(); after != before {
			out = append(out, end)
		}
		t = end
	}
}

func checkAgainstOracle(t *testing.T, loc *time.Location, spec string, interval bool, tr time.Time) {
	t.Helper()
	// step: the oracle's resolution; span: how far it looks either side
	// of the transition; stride: the distance between checked after times.
	step, span, stride := time.Minute, 26*time.Hour, 7*time.Minute
	if len(strings.Fields(spec)) == 6 {
		step, span, stride = time.Second, 3*time.Hour, 67*time.Second
	}
	lo, hi := tr.Add(-span), tr.Add(span)
	e := schedule.Entry{Name: "x", Spec: spec, TimeZone: loc.String(), Subject: "tasks.x"}

	// The readings the spec matches, as Unix seconds of the reading
	// written in UTC, from the spec evaluated in UTC, which has no DST.
	utc := e
	utc.TimeZone = ""
	matches := map[int64]bool{}
	for m := lo.Add(-6 * time.Hour); m.Before(hi.Add(18 * time.Hour)); {
		next, err := utc.Next(m, 1024)
		if err != nil {
			t.Fatalf("Next in UTC: %v", err)
		}
		if len(next) == 0 {
			break
		}
		for _, n := range next {
			matches[n.Unix()] = true
		}
		m = next[len(next)-1]
	}

	var want []time.Time
	shown := map[int64]bool{}
	_, prevOff := lo.Add(-step).In(loc).Zone()
	for i := lo; i.Before(hi); i = i.Add(step) {
		_, off := i.In(loc).Zone()
		reading := i.Unix() + int64(off)
		fire := matches[reading] && (interval || !shown[reading])
		for skipped := i.Unix() + int64(prevOff); skipped < reading; skipped += int64(step / time.Second) {
			fire = fire || matches[skipped]
		}
		shown[reading] = true
		prevOff = off
		if fire {
			want = append(want, i)
		}
	}

	// The whole window, slot by slot.
	got, err := e.Next(lo.Add(-time.Nanosecond), len(want)+1)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	for len(got) > 0 && !got[len(got)-1].Before(hi) {
		got = got[:len(got)-1]
	}
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			t.Fatalf("slot %d: got none, want %s", i, showIn(want[i], loc))
		case i >= len(want):
			t.Fatalf("slot %d: got %s, want none", i, showIn(got[i], loc))
		case !got[i].Equal(want[i]):
			t.Fatalf("slot %d: got %s, want %s", i, showIn(got[i], loc), showIn(want[i], loc))
		}
	}

	// Next from any point near the transition, on and between steps.
	for a := tr.Add(-2 * time.Hour); a.Before(tr.Add(2 * time.Hour)); a = a.Add(stride) {
		for _, after := range []time.Time{a, a.Add(step / 2)} {
			got, err := e.Next(after, 1)
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			k := sort.Search(len(want), func(k int) bool { return want[k].After(after) })
			switch {
			case k < len(want) && (len(got) == 0 || !got[0].Equal(want[k])):
				t.Fatalf("after %s: got %v, want %s", showIn(after, loc), got, showIn(want[k], loc))
			case k == len(want) && len(got) > 0 && got[0].Before(hi):
				t.Fatalf("after %s: got %s, want a slot after %s", showIn(after, loc), showIn(got[0], loc), showIn(hi, loc))
			}
		}
	}
}

// heldClock is a scheduler's NowFunc that reads a fixed instant until
// run is called, and then moves on from it with the real clock. A test
// sets it a few seconds before an instant of interest and starts it once
// the scheduler leads, however long leading took.
type heldClock struct {
	mu    sync.Mutex
	at    time.Time
	since time.Time // when run was called; zero while held
}

func newHeldClock(at time.Time) *heldClock { return &heldClock{at: at} }

func (c *heldClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.since.IsZero() {
		return c.at
	}
	return c.at.Add(time.Since(c.since))
}

func (c *heldClock) run() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.since = time.Now()
}

// TestSchedulerFiresSkippedSlotAtTransition runs a scheduler whose clock
// reads two seconds before New York's 2026 spring forward and checks that
// a 02:30 daily entry, whose slot does not exist that day, fires once, at
// 03:00 EDT.
func TestSchedulerFiresSkippedSlotAtTransition(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	b.put(t, schedule.Entry{Name: "nightly", Spec: "30 2 * * *", TimeZone: "America/New_York", Subject: "tasks.nightly"})
	st, err := b.js.Stream(ctx, streams.DefaultTaskStream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	cons, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{FilterSubject: "tasks.nightly", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("create consumer: %v", err)
	}

	transition := at("2026-03-08T07:00:00Z") // 02:00 EST becomes 03:00 EDT
	clock := newHeldClock(transition.Add(-2 * time.Second))
	r := b.start(t, "s", schedule.Config{LeaseTTL: 2 * time.Second, NowFunc: clock.now})
	waitGain(t, r, 10*time.Second)
	clock.run()

	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	var fired []string
	for m := range batch.Messages() {
		fired = append(fired, m.Headers().Get(jetworker.HeaderFireTime))
	}
	if err := batch.Error(); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	want := transition.Format(time.RFC3339)
	if len(fired) != 1 || fired[0] != want {
		t.Fatalf("fired %v within 10s, want one fire at %s", fired, want)
	}

	// Nothing more: the next slot is 02:30 EDT the following day.
	batch, err = cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	for m := range batch.Messages() {
		t.Errorf("second fire at %s, want none", m.Headers().Get(jetworker.HeaderFireTime))
	}
	slots, _ := storedFires(t, b.js, "nightly")
	if len(slots) != 1 || slots[want] != 1 {
		t.Errorf("stored fires %v, want one at %s", slots, want)
	}
	fires := r.firesOf("nightly")
	if len(fires) != 1 || !fires[0].Slot.Equal(transition) {
		t.Errorf("FiredFunc saw %v, want one fire of slot %s", fires, want)
	}
}

// TestSchedulerFiresRepeatedHourAtFallBack runs a scheduler whose clock
// reads three seconds before New York's 2026 fall back (01:59:57 EDT;
// at 06:00Z the clocks show 01:00 EST again) until the fires of 06:00:04Z
// are in. Interval specs fire in both passes of the repeated hour: one
// every 2 seconds of hour 1 fires at 01:59:58 EDT and on at 01:00:00 EST,
// and a half-hourly one fires 01:00 EST, whose reading it fired an hour
// before in EDT. Fixed specs fire once, before the shift: 01:59:59 daily
// fires at 01:59:59 EDT, and 01:00 daily, fired at 01:00 EDT, does not
// fire again at 01:00 EST.
func TestSchedulerFiresRepeatedHourAtFallBack(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const zone = "America/New_York"
	want := map[string][]string{ // entry -> slots in UTC
		"every2s":     {"2026-11-01T05:59:58Z", "2026-11-01T06:00:00Z", "2026-11-01T06:00:02Z", "2026-11-01T06:00:04Z"},
		"halfhourly":  {"2026-11-01T06:00:00Z"},
		"last-second": {"2026-11-01T05:59:59Z"},
		"one-am":      nil,
	}
	specs := map[string]string{
		"every2s":     "*/2 * 1 * * *",
		"halfhourly":  "*/30 * * * *",
		"last-second": "59 59 1 * * *",
		"one-am":      "0 1 * * *",
	}
	for name, spec := range specs {
		b.put(t, schedule.Entry{Name: name, Spec: spec, TimeZone: zone, Subject: "tasks.fallback." + name})
	}

	transition := at("2026-11-01T06:00:00Z") // 02:00 EDT becomes 01:00 EST
	clock := newHeldClock(transition.Add(-3 * time.Second))
	r := b.start(t, "s", schedule.Config{LeaseTTL: 2 * time.Second, NowFunc: clock.now})
	waitGain(t, r, 10*time.Second)
	clock.run()

	// Fires are sent in slot order and reported in the order sent, so
	// once 06:00:04Z is reported every earlier slot has been too.
	last := at("2026-11-01T06:00:04Z")
	testutil.Eventually(t, 20*time.Second, func() error {
		for _, f := range r.firesOf("every2s") {
			if !f.Slot.Before(last) {
				return nil
			}
		}
		return fmt.Errorf("slot %s of every2s not fired yet (clock at %s)", last.Format(time.RFC3339), clock.now().UTC().Format(time.RFC3339))
	})
	loc := mustLoad(t, zone)
	for name, slots := range want {
		var got []string
		for _, f := range r.firesOf(name) {
			if !f.Slot.After(last) {
				got = append(got, f.Slot.UTC().Format(time.RFC3339))
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(slots) {
			var shown []string
			for _, s := range got {
				shown = append(shown, showIn(at(s), loc))
			}
			t.Errorf("%s (%s): fired %v, want %v", name, specs[name], shown, slots)
		}
		stored, _ := storedFires(t, b.js, name)
		for _, s := range slots {
			if stored[s] != 1 {
				t.Errorf("%s: slot %s stored %d times, want once", name, s, stored[s])
			}
		}
	}
}
