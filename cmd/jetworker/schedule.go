package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetworker/jetworker/internal/payload"
	"github.com/jetworker/jetworker/schedule"
)

// scheduleEnv configures "jetworker schedule".
type scheduleEnv struct {
	Base
	// Replicas matters when this command is the first to use the buckets.
	ReplicasEnv
}

// scheduleOpts are the options of one "jetworker schedule" call.
type scheduleOpts struct {
	Spec        string        `flag:"spec" meta:"SPEC" desc:"add: cron spec ('0 8 * * *', '*/30 * * * * *'), @daily..., or '@every 5m'"`
	TimeZone    string        `flag:"tz" meta:"ZONE" desc:"add: IANA time zone of the cron fields (default UTC)"`
	Subject     string        `flag:"subject" meta:"SUBJECT" desc:"add: subject each fire publishes to"`
	Payload     string        `flag:"payload" meta:"DATA" desc:"add: payload of each fire"`
	PayloadFile string        `flag:"payload-file" meta:"FILE" desc:"add: read the payload from this file"`
	Header      []string      `flag:"header" meta:"KEY=VALUE" repeat:"true" desc:"add: extra header (repeatable)"`
	Paused      bool          `flag:"paused" desc:"add: create it paused"`
	Jitter      time.Duration `flag:"jitter" desc:"add: random delay in [0, jitter) per fire"`
	CatchUp     string        `flag:"catch-up" meta:"POLICY" desc:"add: missed slots after an outage: skip, once (default) or all"`
	Start       string        `flag:"start" meta:"TIME" desc:"add: earliest slot (RFC 3339)"`
	End         string        `flag:"end" meta:"TIME" desc:"add: latest slot (RFC 3339)"`
	JSON        bool          `flag:"json" desc:"ls: print JSON"`
}

// entryFields names the flags that set schedule.Entry's fields.
var entryFields = map[string]string{
	"Name": "NAME", "Spec": "--spec", "TimeZone": "--tz", "Subject": "--subject", "Header": "--header",
	"Jitter": "--jitter", "CatchUp": "--catch-up", "Start": "--start", "End": "--end",
}

// entry maps the options of "schedule add NAME" to the entry.
func (o scheduleOpts) entry(name string) (schedule.Entry, error) {
	e := schedule.Entry{
		Name: name, Spec: o.Spec, TimeZone: o.TimeZone, Subject: o.Subject,
		Paused: o.Paused, Jitter: o.Jitter, CatchUp: schedule.CatchUp(o.CatchUp),
	}
	switch {
	case o.PayloadFile != "" && o.Payload != "":
		return e, usagef("give --payload or --payload-file, not both")
	case o.PayloadFile != "":
		data, err := os.ReadFile(o.PayloadFile)
		if err != nil {
			return e, usagef("--payload-file: %v", err)
		}
		e.Payload = data
	case o.Payload != "":
		e.Payload = []byte(o.Payload)
	}
	var err error
	if e.Header, err = parseHeaders(o.Header); err != nil {
		return e, err
	}
	for _, tv := range []struct {
		s    string
		t    *time.Time
		flag string
	}{{o.Start, &e.Start, "--start"}, {o.End, &e.End, "--end"}} {
		if tv.s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, tv.s)
		if err != nil {
			return e, usagef("%s %q: want an RFC 3339 time like 2026-01-02T15:04:05Z", tv.flag, tv.s)
		}
		*tv.t = t
	}
	// An invalid spec fails here, before connecting, with the flag named.
	if err := e.Validate(); err != nil {
		return e, inTermsOf(err, "schedule: invalid entry", "", entryFields)
	}
	return e, nil
}

// entryView is how the command shows an entry, also as JSON: the payload
// as JSON or text where it is (base64 only otherwise), durations as text,
// times in the entry's zone, and what the schedulers recorded. The
// library's schedule.Entry keeps its own JSON form in the bucket.
type entryView struct {
	Name     string `json:"name"`
	Spec     string `json:"spec"`
	TimeZone string `json:"time_zone"`
	Subject  string `json:"subject"`
	// Payload is the payload itself when PayloadEncoding is "json", a
	// string when it is "text" (UTF-8 that is not JSON) and a base64
	// string when it is "base64".
	Payload         json.RawMessage `json:"payload,omitempty"`
	PayloadEncoding string          `json:"payload_encoding,omitempty"`
	Header          nats.Header     `json:"header,omitempty"`
	Paused          bool            `json:"paused"`
	Jitter          string          `json:"jitter,omitempty"`
	CatchUp         string          `json:"catch_up"`
	Start           time.Time       `json:"start,omitzero"`
	End             time.Time       `json:"end,omitzero"`
	LastFire        time.Time       `json:"last_fire,omitzero"`
	NextFire        time.Time       `json:"next_fire,omitzero"`
	// Error is why fires of the next slot keep failing, "" when the last
	// one succeeded; Failures counts them.
	Error    string    `json:"error,omitempty"`
	ErrorAt  time.Time `json:"error_at,omitzero"`
	Failures int       `json:"failures,omitempty"`
}

// newEntryView shows e with its recorded state, at now.
func newEntryView(e schedule.Entry, st schedule.State, now time.Time) entryView {
	loc := entryLocation(e)
	v := entryView{
		Name: e.Name, Spec: e.Spec, TimeZone: loc.String(), Subject: e.Subject,
		Header: e.Header, Paused: e.Paused, CatchUp: string(cmp.Or(e.CatchUp, schedule.DefaultCatchUp)),
		Error: st.Error, Failures: st.Failures,
	}
	v.Payload, v.PayloadEncoding = payload.View(e.Payload)
	if e.Jitter > 0 {
		v.Jitter = e.Jitter.String()
	}
	for _, t := range []struct{ from, to *time.Time }{
		{&e.Start, &v.Start}, {&e.End, &v.End}, {&st.LastSlot, &v.LastFire}, {&st.ErrorAt, &v.ErrorAt},
	} {
		if !t.from.IsZero() {
			*t.to = t.from.In(loc)
		}
	}
	if next, err := e.Next(now, 1); err == nil && len(next) > 0 && !e.Paused {
		v.NextFire = next[0].In(loc)
	}
	return v
}

// entryLocation is the entry's time zone, UTC when it has none (or an
// unknown one, which Validate refuses).
func entryLocation(e schedule.Entry) *time.Location {
	if e.TimeZone == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(e.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// formatZoned prints a time in its own zone, with the zone: "-" for none.
func formatZoned(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format("2006-01-02 15:04:05 MST")
}

const scheduleSynopsis = ` add|ls|get|rm|pause|resume|trigger [NAME]`

const scheduleAbout = `
Manage the schedules stored in the jetworker_schedules bucket; a running
scheduler picks changes up within a second.

  add NAME --spec SPEC --subject SUBJECT [--payload DATA] ...   create or replace a schedule
  ls                     list schedules: spec, zone, last and next fire, failing fires
  get NAME               print one schedule as JSON
  rm NAME                delete a schedule
  pause NAME | resume NAME
  trigger NAME           fire once now, outside the schedule`

func runSchedule(ctx context.Context, std *stdio, args []string) error {
	var (
		env  scheduleEnv
		opts scheduleOpts
	)
	c := newCLI("schedule", scheduleSynopsis, scheduleAbout).options("Schedule", &opts).env(&env)
	pos, err := c.parse(std, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("missing subcommand: add, ls, get, rm, pause, resume or trigger")
	}
	sub := pos[0]
	name := ""
	switch sub {
	case "ls":
		if len(pos) != 1 {
			return usagef("ls takes no arguments")
		}
	case "add", "get", "rm", "pause", "resume", "trigger":
		if len(pos) != 2 {
			return usagef("%s takes one NAME", sub)
		}
		name = pos[1]
	default:
		return usagef("unknown schedule subcommand %q: want add, ls, get, rm, pause, resume or trigger", sub)
	}
	var e schedule.Entry
	if sub == "add" {
		if e, err = opts.entry(name); err != nil {
			return err
		}
	}

	_, conn, err := env.open(ctx, std, "schedule")
	if err != nil {
		return err
	}
	defer conn.Close()
	store, err := schedule.NewStore(conn.js, schedule.StoreConfig{Replicas: env.Replicas})
	if err != nil {
		return err
	}
	notFound := func(err error) error {
		if errors.Is(err, schedule.ErrNotFound) {
			return fmt.Errorf("schedule %q not found", name)
		}
		return err
	}
	switch sub {
	case "add":
		if _, err := store.Put(ctx, e); err != nil {
			return err
		}
		v := newEntryView(e, schedule.State{}, time.Now())
		next := "never"
		if e.Paused {
			next = "none while paused"
		} else if !v.NextFire.IsZero() {
			next = formatZoned(v.NextFire)
		}
		fmt.Fprintf(std.out, "schedule %q saved; next fire %s\n", inert(name), next)
	case "ls":
		entries, err := store.List(ctx)
		if err != nil {
			return err
		}
		states, err := store.States(ctx)
		if err != nil {
			return err
		}
		now := time.Now()
		views := make([]entryView, 0, len(entries))
		for _, e := range entries {
			views = append(views, newEntryView(e, states[e.Name], now))
		}
		if opts.JSON {
			return printJSON(std, views)
		}
		printEntries(std, views)
	case "get":
		e, err := store.Get(ctx, name)
		if err != nil {
			return notFound(err)
		}
		st, err := store.State(ctx, name)
		if err != nil {
			return err
		}
		return printJSON(std, newEntryView(e, st, time.Now()))
	case "rm":
		if err := store.Delete(ctx, name); err != nil {
			return notFound(err)
		}
		fmt.Fprintf(std.out, "schedule %q deleted\n", inert(name))
	case "pause":
		if err := store.Pause(ctx, name); err != nil {
			return notFound(err)
		}
		fmt.Fprintf(std.out, "schedule %q paused\n", inert(name))
	case "resume":
		if err := store.Resume(ctx, name); err != nil {
			return notFound(err)
		}
		fmt.Fprintf(std.out, "schedule %q resumed\n", inert(name))
	case "trigger":
		id, err := store.Trigger(ctx, name)
		if err != nil {
			return notFound(err)
		}
		fmt.Fprintf(std.out, "schedule %q fired now as task %s\n", inert(name), inert(id))
	}
	return nil
}

// printEntries prints the schedule table.
func printEntries(std *stdio, views []entryView) {
	tw := tabwriter.NewWriter(std.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSPEC\tZONE\tSUBJECT\tPAUSED\tLAST FIRE\tNEXT FIRE\tFIRES FAILING")
	for _, v := range views {
		failing := "-"
		if v.Error != "" {
			failing = fmt.Sprintf("%d failures, latest %s: %s", max(v.Failures, 1), formatZoned(v.ErrorAt), excerpt(v.Error, 80))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\t%s\t%s\n", inert(v.Name), inert(v.Spec), inert(v.TimeZone), inert(v.Subject),
			v.Paused, formatZoned(v.LastFire), formatZoned(v.NextFire), failing)
	}
	_ = tw.Flush()
}
