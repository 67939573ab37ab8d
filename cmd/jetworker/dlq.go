package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jetworker/jetworker/dlq"
)

const dlqSynopsis = ` ls|show|replay|purge [args]

  ls                       list dead letters (filters below)
  show SEQ                 show one dead letter: headers, error and payload
  replay SEQ... | --all    publish dead letters again on their subjects and remove them
  purge [SEQ...]           delete dead letters (SEQs, or every one the filters select)`

func runDLQ(ctx context.Context, std *stdio, args []string) error {
	var b Base
	fs := newFlagSet("dlq", std, dlqSynopsis, &b)
	if err := b.bind(fs, &b); err != nil {
		return err
	}
	var (
		f            dlq.Filter
		limit        int
		since, until string
		all, yes     bool
		asJSON       bool
	)
	fs.StringVar(&f.Stream, "from-stream", "", "only dead letters from this task stream")
	fs.StringVar(&f.Consumer, "consumer", "", "only dead letters of this durable consumer")
	fs.StringVar(&f.Subject, "subject", "", "only dead letters whose original subject matches this (wildcards: tasks.email.>)")
	fs.StringVar(&f.TaskID, "task-id", "", "only dead letters of this task ID")
	fs.StringVar(&since, "since", "", "only dead letters failed at or after this (RFC 3339 or a duration ago, e.g. 1h)")
	fs.StringVar(&until, "until", "", "only dead letters failed before this (RFC 3339 or a duration ago)")
	fs.IntVar(&limit, "limit", 0, "ls: at most this many, newest first (0: all)")
	fs.BoolVar(&all, "all", false, "replay: every dead letter the filters select")
	fs.BoolVar(&yes, "yes", false, "do not ask for confirmation")
	fs.BoolVar(&asJSON, "json", false, "ls, show: print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return usagef("missing subcommand: ls, show, replay or purge")
	}
	if f.Since, err = parseWhen(since); err != nil {
		return usagef("--since: %v", err)
	}
	if f.Until, err = parseWhen(until); err != nil {
		return usagef("--until: %v", err)
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
	if sub == "replay" && len(seqs) == 0 && !all {
		return usagef("replay takes SEQ... or --all")
	}

	_, c, err := b.open(ctx, std, "dlq")
	if err != nil {
		return err
	}
	defer c.Close()
	store, err := dlq.New(c.js, dlq.Config{Stream: b.DLQStream})
	if err != nil {
		return err
	}

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
		fmt.Fprintln(tw, "SEQ\tFAILED AT\tCONSUMER\tSUBJECT\tATTEMPTS\tERROR")
		for _, d := range list {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", d.Seq, d.FailedAt.Local().Format(time.DateTime), d.OriginalStream+"/"+d.Consumer, d.OriginalSubject, d.Attempts, excerpt(d.Error, 60))
		}
		_ = tw.Flush()
		fmt.Fprintf(std.out, "%d dead letters\n", len(list))
		return nil
	case "show":
		d, err := store.Get(ctx, seqs[0])
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(std, d)
		}
		printDeadLetter(std, d)
		return nil
	case "replay":
		if all {
			if err := store.Scan(ctx, f, func(e *dlq.Entry) bool { seqs = append(seqs, e.Seq); return true }); err != nil {
				return err
			}
		}
		if len(seqs) == 0 {
			fmt.Fprintln(std.out, "no dead letters to replay")
			return nil
		}
		if ok, err := confirm(std, fmt.Sprintf("Replay %d dead letter(s)?", len(seqs)), yes); !ok {
			return err
		}
		p := newProgress(std, "replay", len(seqs))
		var errs []error
		for _, seq := range seqs {
			res, err := store.Replay(ctx, seq)
			if err != nil {
				errs = append(errs, err)
			} else if len(seqs) == 1 {
				fmt.Fprintf(std.out, "replayed dead letter %d as %s\n", seq, res.Ref)
			}
			p.step()
		}
		p.done(len(seqs) - len(errs))
		return errors.Join(errs...)
	case "purge":
		if len(seqs) > 0 {
			if ok, err := confirm(std, fmt.Sprintf("Delete %d dead letter(s)?", len(seqs)), yes); !ok {
				return err
			}
			p := newProgress(std, "purge", len(seqs))
			var errs []error
			for _, seq := range seqs {
				if err := store.Delete(ctx, seq); err != nil {
					errs = append(errs, err)
				}
				p.step()
			}
			p.done(len(seqs) - len(errs))
			return errors.Join(errs...)
		}
		count, err := store.Count(ctx, f)
		if err != nil {
			return err
		}
		if count == 0 {
			fmt.Fprintln(std.out, "no dead letters to purge")
			return nil
		}
		if ok, err := confirm(std, fmt.Sprintf("Delete %d dead letter(s)?", count), yes); !ok {
			return err
		}
		n, err := store.Purge(ctx, f)
		fmt.Fprintf(std.out, "purged %d dead letters\n", n)
		return err
	}
	return nil
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
	fmt.Fprintf(std.out, "Seq:       %d (%s)\n", d.Seq, d.Subject)
	fmt.Fprintf(std.out, "Task:      %s\n", cmp.Or(d.TaskID, "(no ID)"))
	fmt.Fprintf(std.out, "Origin:    %s, subject %s\n", d.OriginalRef, d.OriginalSubject)
	if d.Problem != "" {
		fmt.Fprintf(std.out, "Replay:    refused: %s\n", d.Problem)
	}
	fmt.Fprintf(std.out, "Consumer:  %s\n", d.Consumer)
	fmt.Fprintf(std.out, "Failed at: %s after %d attempt(s)\n", d.FailedAt.Format(time.RFC3339), d.Attempts)
	fmt.Fprintf(std.out, "Error:     %s\n", d.Error)
	fmt.Fprintln(std.out, "Headers:")
	keys := make([]string, 0, len(d.Header))
	for k := range d.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(std.out, "  %s: %s\n", k, strings.Join(d.Header[k], ", "))
	}
	fmt.Fprintf(std.out, "Payload (%d bytes):\n%s\n", len(d.Data), d.Data)
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
func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
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

func (p *progress) done(ok int) {
	if p.total >= 10 && p.std.isTTY {
		fmt.Fprintln(p.std.err)
	}
	if p.total > 1 {
		fmt.Fprintf(p.std.out, "%s: %d of %d done\n", p.what, ok, p.total)
	}
}

func printJSON(std *stdio, v any) error {
	enc := json.NewEncoder(std.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// excerpt shortens s to n runes on one line.
func excerpt(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
