package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jetworker/jetworker/publisher"
)

func runPublish(ctx context.Context, std *stdio, args []string) error {
	var b Base
	fs := newFlagSet("publish", std, " SUBJECT [DATA]\n\nDATA comes from the argument, --file, or standard input (also with DATA \"-\")", &b)
	if err := b.bind(fs, &b); err != nil {
		return err
	}
	var (
		id, file, at string
		delay, ttl   time.Duration
		headers      multiFlag
	)
	fs.StringVar(&id, "id", "", "task ID (Nats-Msg-Id); a new time-ordered ID when empty")
	fs.StringVar(&file, "file", "", "read DATA from this file")
	fs.Var(&headers, "header", "extra header k=v (repeatable)")
	fs.DurationVar(&delay, "delay", 0, "release the task after this delay")
	fs.StringVar(&at, "at", "", "release the task at this RFC 3339 time")
	fs.DurationVar(&ttl, "ttl", 0, "remove the task if still stored this long after release")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usagef("want SUBJECT [DATA], got %d arguments", len(pos))
	}
	subject := pos[0]
	data, err := publishData(std, pos[1:], file)
	if err != nil {
		return err
	}
	opts := &publisher.PublishOpts{ID: id, Delay: delay, TTL: ttl}
	if at != "" {
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return usagef("--at %q: want an RFC 3339 time like 2026-01-02T15:04:05Z", at)
		}
		opts.At = t
	}
	if opts.Header, err = headers.header(); err != nil {
		return err
	}

	log, c, err := b.open(ctx, std, "publish")
	if err != nil {
		return err
	}
	defer c.Close()
	_ = log
	pub, err := publisher.New(c.js, publisher.Config{Logger: log})
	if err != nil {
		return err
	}
	res, err := pub.Publish(ctx, subject, data, opts)
	if err != nil {
		return err
	}
	if res.Duplicate {
		fmt.Fprintf(std.out, "duplicate: task %s was already stored in %s at seq %d\n", res.ID, res.Stream, res.Sequence)
		return nil
	}
	fmt.Fprintf(std.out, "published task %s to %s seq %d\n", res.ID, res.Stream, res.Sequence)
	return nil
}

// publishData picks the payload: the argument, the file, or stdin.
func publishData(std *stdio, pos []string, file string) ([]byte, error) {
	switch {
	case file != "" && len(pos) > 0:
		return nil, usagef("give DATA or --file, not both")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, usagef("--file: %v", err)
		}
		return b, nil
	case len(pos) == 1 && pos[0] != "-":
		return []byte(pos[0]), nil
	case std.in != nil:
		if f, ok := std.in.(*os.File); ok && len(pos) == 0 && isTerminal(f) {
			return nil, nil // nothing piped in: empty payload
		}
		b, err := io.ReadAll(std.in)
		if err != nil {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
		return b, nil
	}
	return nil, nil
}
