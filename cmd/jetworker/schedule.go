package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/jetworker/jetworker/schedule"
)

const scheduleSynopsis = ` add|ls|get|rm|pause|resume|trigger [NAME]

  add NAME --spec SPEC --subject SUBJECT [--payload DATA] ...   create or replace a schedule
  ls                     list schedules: spec, zone, paused, last and next fire
  get NAME               print one schedule as JSON
  rm NAME                delete a schedule
  pause NAME | resume NAME
  trigger NAME           fire once now, outside the schedule`

func runSchedule(ctx context.Context, std *stdio, args []string) error {
	var b Base
	fs := newFlagSet("schedule", std, scheduleSynopsis, &b)
	if err := b.bind(fs, &b); err != nil {
		return err
	}
	var (
		e              schedule.Entry
		catchUp        string
		payload, pfile string
		start, end     string
		headers        multiFlag
		asJSON         bool
	)
	fs.StringVar(&e.Spec, "spec", "", `add: cron spec ("0 8 * * *", "*/30 * * * * *"), @daily..., or "@every 5m"`)
	fs.StringVar(&e.TimeZone, "tz", "", "add: IANA time zone for cron fields (default UTC)")
	fs.StringVar(&e.Subject, "subject", "", "add: subject each fire publishes to")
	fs.StringVar(&payload, "payload", "", "add: payload of each fire")
	fs.StringVar(&pfile, "payload-file", "", "add: read the payload from this file")
	fs.Var(&headers, "header", "add: extra header k=v (repeatable)")
	fs.BoolVar(&e.Paused, "paused", false, "add: create paused")
	fs.DurationVar(&e.Jitter, "jitter", 0, "add: random delay in [0, jitter) per fire")
	fs.StringVar(&catchUp, "catch-up", "", "add: missed slots after an outage: skip, once (default) or all")
	fs.StringVar(&start, "start", "", "add: earliest slot (RFC 3339)")
	fs.StringVar(&end, "end", "", "add: latest slot (RFC 3339)")
	fs.BoolVar(&asJSON, "json", false, "ls: print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
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
		return usagef("unknown schedule subcommand %q", sub)
	}
	if sub == "add" {
		e.Name = name
		e.CatchUp = schedule.CatchUp(catchUp)
		if pfile != "" {
			data, err := os.ReadFile(pfile)
			if err != nil {
				return usagef("--payload-file: %v", err)
			}
			e.Payload = data
		} else if payload != "" {
			e.Payload = []byte(payload)
		}
		if e.Header, err = headers.header(); err != nil {
			return err
		}
		for _, tv := range []struct {
			s string
			t *time.Time
			f string
		}{{start, &e.Start, "--start"}, {end, &e.End, "--end"}} {
			if tv.s == "" {
				continue
			}
			t, err := time.Parse(time.RFC3339, tv.s)
			if err != nil {
				return usagef("%s %q: want RFC 3339", tv.f, tv.s)
			}
			*tv.t = t
		}
		// Invalid specs fail here, before connecting, with the field named.
		if err := e.Validate(); err != nil {
			return usagef("%v", err)
		}
	}

	_, c, err := b.open(ctx, std, "schedule")
	if err != nil {
		return err
	}
	defer c.Close()
	store, err := schedule.NewStore(c.js, schedule.StoreConfig{})
	if err != nil {
		return err
	}
	switch sub {
	case "add":
		if _, err := store.Put(ctx, e); err != nil {
			return err
		}
		next, _ := e.Next(time.Now(), 1)
		fmt.Fprintf(std.out, "schedule %q saved; next fire %s\n", name, formatTimes(next))
	case "ls":
		entries, err := store.List(ctx)
		if err != nil {
			return err
		}
		type row struct {
			schedule.Entry
			LastFire time.Time `json:"last_fire,omitzero"`
			NextFire time.Time `json:"next_fire,omitzero"`
		}
		rows := make([]row, 0, len(entries))
		for _, e := range entries {
			r := row{Entry: e}
			if r.LastFire, err = store.LastFired(ctx, e.Name); err != nil && !errors.Is(err, schedule.ErrNotFound) {
				return err
			}
			if next, err := e.Next(time.Now(), 1); err == nil && len(next) > 0 && !e.Paused {
				r.NextFire = next[0]
			}
			rows = append(rows, r)
		}
		if asJSON {
			return printJSON(std, rows)
		}
		tw := tabwriter.NewWriter(std.out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSPEC\tZONE\tSUBJECT\tPAUSED\tLAST FIRE\tNEXT FIRE")
		for _, r := range rows {
			zone := r.TimeZone
			if zone == "" {
				zone = "UTC"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\t%s\n", r.Name, r.Spec, zone, r.Subject, r.Paused, formatTime(r.LastFire), formatTime(r.NextFire))
		}
		_ = tw.Flush()
	case "get":
		e, err := store.Get(ctx, name)
		if err != nil {
			return err
		}
		return printJSON(std, e)
	case "rm":
		if err := store.Delete(ctx, name); err != nil {
			return err
		}
		fmt.Fprintf(std.out, "schedule %q deleted\n", name)
	case "pause":
		if err := store.Pause(ctx, name); err != nil {
			return err
		}
		fmt.Fprintf(std.out, "schedule %q paused\n", name)
	case "resume":
		if err := store.Resume(ctx, name); err != nil {
			return err
		}
		fmt.Fprintf(std.out, "schedule %q resumed\n", name)
	case "trigger":
		id, err := store.Trigger(ctx, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(std.out, "schedule %q fired now as task %s\n", name, id)
	}
	return nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

func formatTimes(ts []time.Time) string {
	if len(ts) == 0 {
		return "never"
	}
	return formatTime(ts[0])
}
