package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/task"
)

// publishEnv configures "jetworker publish".
type publishEnv struct {
	Base
	// The task store and its replicas matter for --track, when this
	// command is the first to use the bucket.
	TaskStoreEnv
	ReplicasEnv
}

// publishOpts are the options of one "jetworker publish".
type publishOpts struct {
	ID     string        `flag:"id" meta:"ID" desc:"task ID (Nats-Msg-Id): the server drops a second task with this ID within its duplicate window"`
	Track  bool          `flag:"track" desc:"track the task: its state, attempts, progress and result are recorded (jetworker task get ID); without --id it gets one"`
	File   string        `flag:"file" meta:"FILE" desc:"read DATA from this file"`
	Header []string      `flag:"header" meta:"KEY=VALUE" repeat:"true" desc:"extra header (repeatable)"`
	Delay  time.Duration `flag:"delay" desc:"release the task after this delay"`
	At     string        `flag:"at" meta:"TIME" desc:"release the task at this RFC 3339 time"`
	TTL    time.Duration `flag:"ttl" desc:"remove the task if still stored this long after release"`
}

// publishOptions maps the options to the publisher's.
func (o publishOpts) publishOptions() (*publisher.PublishOpts, error) {
	opts := &publisher.PublishOpts{ID: o.ID, Track: o.Track, Delay: o.Delay, TTL: o.TTL}
	if o.At != "" {
		t, err := time.Parse(time.RFC3339, o.At)
		if err != nil {
			return nil, usagef("--at %q: want an RFC 3339 time like 2026-01-02T15:04:05Z", o.At)
		}
		opts.At = t
	}
	var err error
	if opts.Header, err = parseHeaders(o.Header); err != nil {
		return nil, err
	}
	return opts, nil
}

func runPublish(ctx context.Context, std *stdio, args []string) error {
	var (
		e    publishEnv
		opts publishOpts
	)
	c := newCLI("publish", " SUBJECT [DATA]", `
Publish one task on SUBJECT. DATA comes from the argument, --file, or
standard input (also with DATA "-").`).options("Publish", &opts).env(&e)
	pos, err := c.parse(std, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usagef("want SUBJECT [DATA], got %d arguments", len(pos))
	}
	subject := pos[0]
	data, err := publishData(std, pos[1:], opts.File)
	if err != nil {
		return err
	}
	popts, err := opts.publishOptions()
	if err != nil {
		return err
	}

	tcfg := e.taskConfig(e.ReplicasEnv, nil)
	if err := tcfg.Validate(); err != nil {
		return inTermsOf(err, "task", "", taskFields)
	}

	log, conn, err := e.open(ctx, std, "publish")
	if err != nil {
		return err
	}
	defer conn.Close()
	tcfg.Logger = log
	store, err := task.New(conn.js, tcfg)
	if err != nil {
		return err
	}
	pub, err := publisher.New(conn.js, publisher.Config{Tasks: store, Logger: log})
	if err != nil {
		return err
	}
	res, err := pub.Publish(ctx, subject, data, popts)
	if err != nil {
		return err
	}
	switch {
	case res.Duplicate:
		fmt.Fprintf(std.out, "duplicate: task %s was already stored as %s\n", inert(res.ID), res.Ref())
	case res.ID != "" && opts.Track:
		fmt.Fprintf(std.out, "published task %s as %s, tracked (jetworker task get %s)\n", inert(res.ID), res.Ref(), inert(res.ID))
	case res.ID != "":
		fmt.Fprintf(std.out, "published task %s as %s\n", inert(res.ID), res.Ref())
	default:
		fmt.Fprintf(std.out, "published task %s\n", res.Ref())
	}
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
