// Command jetworker runs and manages jetworker background work on NATS
// JetStream: an all-in-one dev mode on an embedded server, workers,
// schedulers, and tools for publishing, schedules, dead letters and status.
//
// Run "jetworker help" for the subcommands and "jetworker <cmd> --help"
// for each one's flags and JETWORKER_* environment variables.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// Version information, set with -ldflags "-X main.version=...".
var (
	version = "dev"
	commit  = "none"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, io *stdio, args []string) error
}

// stdio is where a command reads and writes; tests swap it.
type stdio struct {
	in       io.Reader
	out, err io.Writer
	isTTY    bool
}

// usageError marks an error in the command line (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func commands() map[string]command {
	return map[string]command{
		"dev":       {summary: "run everything on an embedded nats-server (the main job, no setup)", run: runDev},
		"worker":    {summary: "run consumers whose routes come from configuration", run: runWorker},
		"scheduler": {summary: "run the singleton scheduler (run two or more for HA)", run: runScheduler},
		"provision": {summary: "create or update the streams, buckets and route consumers (admin identity)", run: runProvision},
		"publish":   {summary: "publish one task: publish SUBJECT [DATA]", run: runPublish},
		"schedule":  {summary: "manage schedules: add|ls|get|rm|pause|resume|trigger", run: runSchedule},
		"dlq":       {summary: "manage dead letters: ls|show|replay|purge", run: runDLQ},
		"outbox":    {summary: "transactional outbox on PostgreSQL: migrate|relay|dead ls|retry|rm", run: runOutbox},
		"status":    {summary: "streams, consumers, live workers and the scheduler leader", run: runStatus},
		"bench":     {summary: "measure jetworker against raw nats.go on the same server", run: runBench},
		"version":   {summary: "print the version", run: runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	std := &stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr, isTTY: isTerminal(os.Stderr)}
	os.Exit(run(ctx, std, os.Args[1:]))
}

// run executes the command line args and returns the exit code.
func run(ctx context.Context, std *stdio, args []string) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(std.out, cmds)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(std.err, "jetworker: unknown command %q\n\n", args[0])
		printUsage(std.err, cmds)
		return exitUsage
	}
	err := cmd.run(ctx, std, args[1:])
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(std.err, "jetworker %s: %v\n", args[0], err)
		return exitUsage
	default:
		fmt.Fprintf(std.err, "jetworker %s: %v\n", args[0], err)
		return exitError
	}
}

func printUsage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "jetworker: background work on NATS JetStream")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: jetworker <command> [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "jetworker <command> --help" for its flags and JETWORKER_* environment variables.`)
}

func runVersion(_ context.Context, std *stdio, args []string) error {
	fs := newFlagSet("version", std, "", nil)
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Fprintf(std.out, "jetworker %s (commit %s)\n", version, commit)
	return nil
}
