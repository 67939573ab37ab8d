package schedule_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetworker/jetworker/schedule"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return loc
}

func TestNextAcrossDST(t *testing.T) {
	t.Parallel()
	ny := mustLoad(t, "America/New_York")
	berlin := mustLoad(t, "Europe/Berlin")
	tests := []struct {
		name  string
		spec  string
		zone  string
		after time.Time
		want  []string // RFC 3339 in the zone
	}{
		{
			name: "daily slot in skipped spring-forward hour fires once, at the transition instant",
			spec: "30 2 * * *", zone: "America/New_York",
			after: time.Date(2024, 3, 9, 12, 0, 0, 0, ny),
			want:  []string{"2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00"},
		},
		{
			name: "daily slot in repeated fall-back hour fires once",
			spec: "30 1 * * *", zone: "America/New_York",
			after: time.Date(2024, 11, 2, 12, 0, 0, 0, ny),
			want:  []string{"2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"},
		},
		{
			name: "Berlin daily slot in skipped hour fires at the transition instant",
			spec: "0 30 2 * * *", zone: "Europe/Berlin",
			after: time.Date(2024, 3, 30, 12, 0, 0, 0, berlin),
			want:  []string{"2024-03-31T03:00:00+02:00", "2024-04-01T02:30:00+02:00"},
		},
		{
			name: "Berlin daily slot in repeated hour",
			spec: "30 2 * * *", zone: "Europe/Berlin",
			after: time.Date(2024, 10, 26, 12, 0, 0, 0, berlin),
			want:  []string{"2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00"},
		},
		{
			name: "sub-hourly schedule fires in both passes of the repeated hour",
			spec: "*/30 * * * *", zone: "America/New_York",
			after: time.Date(2024, 11, 3, 0, 45, 0, 0, ny),
			want: []string{"2024-11-03T01:00:00-04:00", "2024-11-03T01:30:00-04:00",
				"2024-11-03T01:00:00-05:00", "2024-11-03T01:30:00-05:00", "2024-11-03T02:00:00-05:00"},
		},
		{
			name: "@every is unaffected by spring-forward",
			spec: "@every 1h", zone: "America/New_York",
			after: time.Date(2024, 3, 10, 0, 30, 0, 0, ny),
			want:  []string{"2024-03-10T01:00:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-10T04:00:00-04:00"},
		},
		{
			name: "@every is unaffected by fall-back",
			spec: "@every 1h", zone: "America/New_York",
			after: time.Date(2024, 11, 3, 0, 30, 0, 0, ny),
			want:  []string{"2024-11-03T01:00:00-04:00", "2024-11-03T01:00:00-05:00", "2024-11-03T02:00:00-05:00"},
		},
		{
			name: "@daily at midnight across fall-back",
			spec: "@daily", zone: "America/New_York",
			after: time.Date(2024, 11, 2, 12, 0, 0, 0, ny),
			want:  []string{"2024-11-03T00:00:00-04:00", "2024-11-04T00:00:00-05:00"},
		},
		{
			name: "seconds field",
			spec: "*/20 * * * * *", zone: "",
			after: time.Date(2024, 1, 1, 0, 0, 5, 0, time.UTC),
			want:  []string{"2024-01-01T00:00:20Z", "2024-01-01T00:00:40Z", "2024-01-01T00:01:00Z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := schedule.Entry{Name: "x", Spec: tt.spec, TimeZone: tt.zone, Subject: "tasks.x"}
			got, err := e.Next(tt.after, len(tt.want))
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			var gotS []string
			for _, g := range got {
				gotS = append(gotS, g.Format(time.RFC3339))
			}
			if strings.Join(gotS, " ") != strings.Join(tt.want, " ") {
				t.Errorf("got %v, want %v", gotS, tt.want)
			}
		})
	}
}

func TestNextHonoursStartAndEnd(t *testing.T) {
	t.Parallel()
	start := time.Date(2024, 1, 1, 0, 0, 3, 0, time.UTC)
	e := schedule.Entry{Name: "x", Spec: "@every 10s", Subject: "tasks.x",
		Start: start, End: start.Add(25 * time.Second)}
	got, err := e.Next(start.Add(-time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Time{start, start.Add(10 * time.Second), start.Add(20 * time.Second)}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("slot %d: got %s, want %s", i, got[i], want[i])
		}
	}
}

func TestValidateNamesTheProblem(t *testing.T) {
	t.Parallel()
	valid := schedule.Entry{Name: "report.daily", Spec: "0 3 * * *", Subject: "tasks.report"}
	tests := []struct {
		name   string
		modify func(*schedule.Entry)
		want   []string // all must appear in the message
	}{
		{"minute out of range", func(e *schedule.Entry) { e.Spec = "61 * * * *" }, []string{"Spec", "minute field", "61", "above maximum"}},
		{"hour out of range", func(e *schedule.Entry) { e.Spec = "0 25 * * *" }, []string{"Spec", "hour field", "25"}},
		{"bad day of week", func(e *schedule.Entry) { e.Spec = "0 0 * * FUNDAY" }, []string{"day-of-week field", "FUNDAY"}},
		{"seconds field out of range", func(e *schedule.Entry) { e.Spec = "60 0 0 * * *" }, []string{"second field", "60"}},
		{"wrong field count", func(e *schedule.Entry) { e.Spec = "* * *" }, []string{"Spec", "want 5 fields", "got 3"}},
		{"empty spec", func(e *schedule.Entry) { e.Spec = "" }, []string{"Spec", "empty"}},
		{"unknown descriptor", func(e *schedule.Entry) { e.Spec = "@fortnightly" }, []string{"Spec", "@fortnightly"}},
		{"every below 1s", func(e *schedule.Entry) { e.Spec = "@every 500ms" }, []string{"Spec", "at least 1s", "500ms"}},
		{"every not whole seconds", func(e *schedule.Entry) { e.Spec = "@every 1500ms" }, []string{"whole number of seconds"}},
		{"every without duration", func(e *schedule.Entry) { e.Spec = "@every soon" }, []string{"@every needs a duration"}},
		{"zone in spec", func(e *schedule.Entry) { e.Spec = "TZ=UTC 0 0 * * *" }, []string{"TimeZone"}},
		{"unknown zone", func(e *schedule.Entry) { e.TimeZone = "Mars/Olympus_Mons" }, []string{"TimeZone", "Mars/Olympus_Mons", "unknown"}},
		{"empty subject", func(e *schedule.Entry) { e.Subject = "" }, []string{"Subject", "empty"}},
		{"wildcard subject", func(e *schedule.Entry) { e.Subject = "tasks.*" }, []string{"Subject", "wildcard"}},
		{"subject with space", func(e *schedule.Entry) { e.Subject = "tasks. x" }, []string{"Subject", "white space"}},
		{"reserved subject", func(e *schedule.Entry) { e.Subject = "$JS.API.STREAM.PURGE.TASKS" }, []string{"Subject", "reserved", "$JS.API.STREAM.PURGE.TASKS"}},
		{"delay subject", func(e *schedule.Entry) { e.Subject = "jetworker.delay.TASKS.x" }, []string{"Subject", "jetworker.delay"}},
		{"jetworker header", func(e *schedule.Entry) { e.Header = nats.Header{"Jetworker-Unique": {"active"}} }, []string{"Header", "Jetworker-Unique"}},
		{"server directive header", func(e *schedule.Entry) { e.Header = nats.Header{"Nats-Rollup": {"all"}} }, []string{"Header", "Nats-Rollup", "server directives"}},
		{"header value with a line break", func(e *schedule.Entry) { e.Header = nats.Header{"X-A": {"1\r\nNats-Rollup: all"}} }, []string{"Header", "X-A", "line break"}},
		{"empty name", func(e *schedule.Entry) { e.Name = "" }, []string{"Name", "empty"}},
		{"name with @", func(e *schedule.Entry) { e.Name = "a@b" }, []string{"Name", "'@'"}},
		{"negative jitter", func(e *schedule.Entry) { e.Jitter = -time.Second }, []string{"Jitter"}},
		{"unknown catch-up", func(e *schedule.Entry) { e.CatchUp = "sometimes" }, []string{"CatchUp", "sometimes"}},
		{"end before start", func(e *schedule.Entry) {
			e.Start = time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)
			e.End = e.Start.Add(-time.Hour)
		}, []string{"End", "before Start"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := valid
			tt.modify(&e)
			err := e.Validate()
			if !errors.Is(err, schedule.ErrInvalidEntry) {
				t.Fatalf("got %v, want an error wrapping ErrInvalidEntry", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to contain %q", err, w)
				}
			}
		})
	}
	t.Run("all problems reported together", func(t *testing.T) {
		t.Parallel()
		err := schedule.Entry{Name: "", Spec: "@every 0s", TimeZone: "Nowhere/None", Subject: ">"}.Validate()
		for _, w := range []string{"Name", "Spec", "TimeZone", "Subject"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("got %q, want it to mention %s", err, w)
			}
		}
	})
	t.Run("valid entry", func(t *testing.T) {
		t.Parallel()
		if err := valid.Validate(); err != nil {
			t.Errorf("got %v, want nil", err)
		}
	})
}
