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
	"runtime/debug"
	"sort"
	"syscall"
)

// Version information, set with
// -ldflags "-X main.version=v1.2.3 -X main.commit=abc1234". Without them
// the binary reports what the Go toolchain recorded (see buildVersion).
var (
	version = "dev"
	commit  = "none"
)

// buildVersion returns the version and commit to report: those set with
// -ldflags, else the module version "go install ...@v1.2.3" records and
// the VCS revision "go build" in a checkout records (with "+dirty" for
// uncommitted changes).
func buildVersion(bi *debug.BuildInfo, ok bool) (string, string) {
	v, c := version, commit
	if !ok {
		return v, c
	}
	if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	if c == "none" {
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+dirty"
				}
			}
		}
		if rev != "" {
			c = rev[:min(len(rev), 12)] + dirty
		}
	}
	return v, c
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, std *stdio, args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"dev":         {summary: "run everything on an embedded nats-server (the main job, no setup)", run: runDev},
		"worker":      {summary: "run consumers whose routes come from configuration", run: runWorker},
		"scheduler":   {summary: "run the singleton scheduler (run two or more for HA)", run: runScheduler},
		"provision":   {summary: "create or update the streams, buckets and route consumers (admin identity)", run: runProvision},
		"publish":     {summary: "publish one task: publish SUBJECT [DATA]", run: runPublish},
		"schedule":    {summary: "manage schedules: add|ls|get|rm|pause|resume|trigger", run: runSchedule},
		"dlq":         {summary: "manage dead letters: ls|show|replay|purge", run: runDLQ},
		"outbox":      {summary: "transactional outbox on PostgreSQL: migrate|relay|dead ls|retry|rm", run: runOutbox},
		"status":      {summary: "streams, consumers, live workers and the scheduler leader", run: runStatus},
		"task":        {summary: "look at and steer tasks: get|wait|cancel|ls|run-now", run: runTask},
		"healthcheck": {summary: "exit 0 if a readiness URL answers 2xx (a container healthcheck without a shell)", run: runHealthcheck},
		"bench":       {summary: "measure jetworker against raw nats.go on the same server", run: runBench},
		"version":     {summary: "print the version (also: jetworker --version)", run: runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	std := newStdio(os.Stdin, os.Stdout, os.Stderr, isTerminal(os.Stderr))
	code := run(ctx, std, os.Args[1:])
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit code.
func run(ctx context.Context, std *stdio, args []string) int {
	cmds := commands()
	if len(args) == 0 {
		printUsage(std.err, cmds)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		printUsage(std.out, cmds)
		return exitOK
	case "-version", "--version":
		printVersion(std.out)
		return exitOK
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(std.err, "jetworker: unknown command %q\n\n", inert(args[0]))
		printUsage(std.err, cmds)
		return exitUsage
	}
	err := cmd.run(ctx, std, args[1:])
	var (
		ue *usageError
		ce *codeError
	)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		std.fatal(args[0], err, exitUsage, args[1:])
		return exitUsage
	case errors.As(err, &ce):
		std.fatal(args[0], err, ce.code, args[1:])
		return ce.code
	default:
		std.fatal(args[0], err, exitError, args[1:])
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
		fmt.Fprintf(w, "  %-12s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "jetworker <command> --help" for its flags and JETWORKER_* environment variables,`)
	fmt.Fprintln(w, `"jetworker <command> --help-all" for every one of them.`)
}

func runVersion(_ context.Context, std *stdio, args []string) error {
	if err := newCLI("version", "", "Print the version and the commit it was built from.").parseNoArgs(std, args); err != nil {
		return err
	}
	printVersion(std.out)
	return nil
}

func printVersion(w io.Writer) {
	v, c := buildVersion(debug.ReadBuildInfo())
	fmt.Fprintf(w, "jetworker %s (commit %s)\n", v, c)
}
