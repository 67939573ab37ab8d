package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jetworker/jetworker/dlq"
)

// dlqEnv configures "jetworker dlq".
type dlqEnv struct {
	Base
	DLQStreamEnv
}

// dlqOpts are the options of one "jetworker dlq" call.
type dlqOpts struct {
	FromStream string `flag:"from-stream" meta:"NAME" desc:"only dead letters from this task stream"`
	Consumer   string `flag:"consumer" meta:"NAME" desc:"only dead letters of this durable consumer"`
	Subject    string `flag:"subject" meta:"FILTER" desc:"only dead letters whose original subject matches this (wildcards: tasks.email.>)"`
	TaskID     string `flag:"task-id" meta:"ID" desc:"only dead letters of this task ID"`
	Since      string `flag:"since" meta:"WHEN" desc:"only dead letters failed at or after this (RFC 3339, or a duration ago like 1h)"`
	Until      string `flag:"until" meta:"WHEN" desc:"only dead letters failed before this (RFC 3339, or a duration ago)"`
	Limit      int    `flag:"limit" desc:"ls: at most this many, newest first (0: all)"`
	All        bool   `flag:"all" desc:"replay: every dead letter the filters select"`
	Yes        bool   `flag:"yes" desc:"do not ask for confirmation"`
	JSON       bool   `flag:"json" desc:"ls, show: print JSON"`
}

// filter maps the options to the dlq package's Filter, at now.
func (o dlqOpts) filter(now time.Time) (dlq.Filter, error) {
	f := dlq.Filter{Stream: o.FromStream, Consumer: o.Consumer, Subject: o.Subject, TaskID: o.TaskID}
	var err error
	if f.Since, err = parseWhen(o.Since, now); err != nil {
		return f, usagef("--since: %v", err)
	}
	if f.Until, err = parseWhen(o.Until, now); err != nil {
		return f, usagef("--until: %v", err)
	}
	return f, nil
}

const dlqSynopsis = ` ls|show|replay|purge [args]`

const dlqAbout = `
Look at and act on the dead letters in the dead-letter stream.

  ls                       list dead letters (filters below)
  show SEQ                 show one dead letter: headers, error and payload
  replay SEQ... | --all    publish dead letters again on their subjects and remove them
  purge [SEQ...]           delete dead letters (SEQs, or every one the filters select)`

func runDLQ(ctx context.Context, std *stdio, args []string) error {
	var (
		env  dlqEnv
		opts dlqOpts
	)
	c := newCLI("dlq", dlqSynopsis, dlqAbout).options("Dead letters", &opts).env(&env)
	pos, err := c.parse(std, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("missing subcommand: ls, show, replay or purge")
	}
	f, err := opts.filter(time.Now())
	if err != nil {
		return err
	}
	sub, rest := pos[0], pos[1:]
	seqs, err := parseSeqs(rest)
	if err != nil {
		return err
	}
	switch sub {
	case "ls", "show", "replay", "purge":
	default:
		return usagef("unknown dlq subcommand %q: want ls, show, replay or purge", sub)
	}
	if sub == "show" && len(seqs) != 1 {
		return usagef("show takes one SEQ")
	}
	if sub == "replay" && len(seqs) == 0 && !opts.All {
		return usagef("replay takes SEQ... or --all")
	}
	if err := f.Validate(); err != nil {
		return usagef("%v", err)
	}

	_, conn, err := env.open(ctx, std, "dlq")
	if err != nil {
		return err
	}
	defer conn.Close()
	store, err := dlq.New(conn.js, dlq.Config{Stream: env.DLQStream})
	if err != nil {
		return err
	}
	stream := inert(env.DLQStream)
	notFound := func(seq uint64, err error) error {
		if errors.Is(err, dlq.ErrNotFound) {
			return fmt.Errorf("dead letter %d not found in %s (replayed or deleted already?)", seq, stream)
		}
		return err
	}
	limit, all, yes, asJSON := opts.Limit, opts.All, opts.Yes, opts.JSON

	switch sub {
	case "ls":
		list, err := listAll(ctx, store, f, limit)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(std, list)
		}
		tw := tabwriter.NewWriter(std.out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tFAILED AT\tCONSUMER\tSUBJECT\tTASK\tATTEMPTS\tREPLAY\tERROR")
		refused := 0
		for _, d := range list {
			replay := "yes"
			if d.Problem != "" {
				replay, refused = "no", refused+1
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.Sequence, formatLocal(d.FailedAt), inert(d.OriginalStream+"/"+d.Consumer),
				inert(d.OriginalSubject), inert(cmp.Or(d.TaskID, d.OriginalRef)), d.Attempts, replay, excerpt(d.Error, 60))
		}
		_ = tw.Flush()
		fmt.Fprintf(std.out, "%s in %s\n", deadLetters(len(list)), stream)
		if refused > 0 {
			fmt.Fprintf(std.out, "%d cannot be replayed (not written by jetworker's dead-letter path, or cut to fit): \"jetworker dlq show SEQ\" says why\n", refused)
		}
		return nil
	case "show":
		d, err := store.Get(ctx, seqs[0])
		if err != nil {
			return notFound(seqs[0], err)
		}
		if asJSON {
			return printJSON(std, d)
		}
		printDeadLetter(std, d)
		return nil
	case "replay":
		if all {
			if err := store.Scan(ctx, f, func(e *dlq.Entry) bool { seqs = append(seqs, e.Sequence); return true }); err != nil {
				return err
			}
		}
		if len(seqs) == 0 {
			fmt.Fprintf(std.out, "no dead letters to replay in %s\n", stream)
			return nil
		}
		if ok, err := confirm(std, fmt.Sprintf("Replay %d dead letter(s) from %s?", len(seqs), stream), yes); !ok {
			return err
		}
		p := newProgress(std, "replay", len(seqs))
		var errs []error
		for _, seq := range seqs {
			res, err := store.Replay(ctx, seq)
			if err != nil {
				errs = append(errs, notFound(seq, err))
			} else if len(seqs) == 1 {
				fmt.Fprintf(std.out, "replayed dead letter %d as %s\n", seq, inert(res.Ref))
			}
			p.step()
		}
		summary := "replayed %d of %d dead letters from " + stream
		if len(seqs) == 1 {
			summary = "" // said above
		}
		p.done(len(seqs)-len(errs), summary)
		return errors.Join(errs...)
	case "purge":
		if len(seqs) > 0 {
			if ok, err := confirm(std, fmt.Sprintf("Delete %d dead letter(s) from %s?", len(seqs), stream), yes); !ok {
				return err
			}
			p := newProgress(std, "purge", len(seqs))
			var errs []error
			for _, seq := range seqs {
				if err := store.Delete(ctx, seq); err != nil {
					errs = append(errs, notFound(seq, err))
				}
				p.step()
			}
			p.done(len(seqs)-len(errs), "deleted %d of %d dead letters from "+stream)
			return errors.Join(errs...)
		}
		count, err := store.Count(ctx, f)
		if err != nil {
			return err
		}
		if count == 0 {
			fmt.Fprintf(std.out, "no dead letters to purge in %s\n", stream)
			return nil
		}
		if ok, err := confirm(std, fmt.Sprintf("Delete %d dead letter(s) from %s?", count, stream), yes); !ok {
			return err
		}
		n, err := store.Purge(ctx, f)
		if err != nil {
			return fmt.Errorf("purged %d of %d dead letters from %s, then: %w", n, count, stream, err)
		}
		fmt.Fprintf(std.out, "purged %s from %s\n", deadLetters(n), stream)
		return nil
	}
	return nil
}

// deadLetters counts dead letters in words: "1 dead letter", "3 dead
// letters".
func deadLetters(n int) string {
	if n == 1 {
		return "1 dead letter"
	}
	return fmt.Sprintf("%d dead letters", n)
}

// listAll returns the dead letters f selects, newest first, up to limit
// (0: all).
func listAll(ctx context.Context, store *dlq.Store, f dlq.Filter, limit int) ([]dlq.Entry, error) {
	out := []dlq.Entry{}
	var before uint64
	for {
		n := dlq.MaxPageSize
		if limit > 0 {
			n = min(n, limit-len(out))
		}
		page, err := store.List(ctx, f, before, n)
		if err != nil {
			return out, err
		}
		out = append(out, page.Entries...)
		if page.Next == 0 || (limit > 0 && len(out) >= limit) {
			return out, nil
		}
		before = page.Next
	}
}

func printDeadLetter(std *stdio, d *dlq.Entry) {
	fmt.Fprintf(std.out, "Sequence:       %d (%s)\n", d.Sequence, inert(d.Subject))
	fmt.Fprintf(std.out, "Task:      %s\n", inert(cmp.Or(d.TaskID, "(no ID)")))
	fmt.Fprintf(std.out, "Origin:    %s, subject %s\n", inert(d.OriginalRef), inert(d.OriginalSubject))
	if d.Problem != "" {
		fmt.Fprintf(std.out, "Replay:    refused: %s\n", inert(d.Problem))
	}
	fmt.Fprintf(std.out, "Consumer:  %s\n", inert(d.Consumer))
	fmt.Fprintf(std.out, "Failed at: %s after %d attempt(s)\n", formatLocal(d.FailedAt), d.Attempts)
	fmt.Fprintf(std.out, "Error:     %s\n", inert(d.Error))
	fmt.Fprintln(std.out, "Headers:")
	keys := make([]string, 0, len(d.Header))
	for k := range d.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(std.out, "  %s: %s\n", inert(k), inert(strings.Join(d.Header[k], ", ")))
	}
	fmt.Fprintf(std.out, "Payload (%d bytes):\n%s\n", len(d.Data), inertText(string(d.Data)))
}

// formatLocal prints a time in the local zone, with the zone.
func formatLocal(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

func parseSeqs(args []string) ([]uint64, error) {
	var out []uint64
	for _, a := range args {
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil || n == 0 {
			return nil, usagef("%q is not a dead-letter sequence number", a)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseWhen reads an RFC 3339 time or a duration before now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration", s)
	}
	return t, nil
}

// confirm asks a yes/no question on stdin unless yes is set. Without an
// answer it refuses and says how to confirm.
func confirm(std *stdio, question string, yes bool) (bool, error) {
	if yes {
		return true, nil
	}
	fmt.Fprintf(std.err, "%s [y/N] ", question)
	line, err := bufio.NewReader(std.in).ReadString('\n')
	answer := strings.ToLower(strings.TrimSpace(line))
	if answer == "y" || answer == "yes" {
		return true, nil
	}
	if err != nil && answer == "" {
		return false, usagef("not confirmed (no answer on standard input): pass --yes")
	}
	fmt.Fprintln(std.err, "cancelled")
	return false, nil
}

// progress reports a long operation on stderr: a line rewritten in place
// on a terminal, a line every 10% otherwise.
type progress struct {
	std        *stdio
	what       string
	total, n   int
	lastReport int
}

func newProgress(std *stdio, what string, total int) *progress {
	return &progress{std: std, what: what, total: total}
}

func (p *progress) step() {
	p.n++
	if p.total < 10 {
		return
	}
	if p.std.isTTY {
		fmt.Fprintf(p.std.err, "\r%s %d/%d", p.what, p.n, p.total)
		return
	}
	if pct := p.n * 10 / p.total; pct > p.lastReport {
		p.lastReport = pct
		fmt.Fprintf(p.std.err, "%s %d/%d\n", p.what, p.n, p.total)
	}
}

// done ends the report with summary, a format taking the done and total
// counts; "" prints none.
func (p *progress) done(ok int, summary string) {
	if p.total >= 10 && p.std.isTTY {
		fmt.Fprintln(p.std.err)
	}
	if summary != "" {
		fmt.Fprintf(p.std.out, summary+"\n", ok, p.total)
	}
}
