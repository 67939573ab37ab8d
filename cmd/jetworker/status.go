package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/overview"
	"github.com/jetworker/jetworker/schedule"
)

// statusEnv configures "jetworker status".
type statusEnv struct {
	Base
	MonitorEnv
	StreamEnv
	DLQStreamEnv
}

// statusOpts are the options of one "jetworker status".
type statusOpts struct {
	JSON bool `flag:"json" desc:"print JSON"`
}

// statusReport is what "status" prints, also as JSON.
type statusReport struct {
	Streams    []overview.Stream     `json:"streams"`
	Consumers  []overview.Load       `json:"consumers"`
	Workers    []consumer.WorkerInfo `json:"workers"`
	WorkersErr string                `json:"workers_error,omitempty"`
	Leader     string                `json:"scheduler_leader"`
	LeaderErr  string                `json:"scheduler_leader_error,omitempty"`
	Durability durability            `json:"durability"`
}

// overviewConfig maps the settings to the overview package's Config.
func (e statusEnv) overviewConfig() overview.Config {
	return overview.Config{TaskStreams: []string{e.Stream}, DeadLetterStream: e.DLQStream, Timeout: 5 * time.Second}
}

func runStatus(ctx context.Context, std *stdio, args []string) error {
	var (
		env  statusEnv
		opts statusOpts
	)
	c := newCLI("status", "", `
Show the task and dead-letter streams, their consumers (pending, running,
delivered and waiting for a handler), the live workers, the scheduler
leader and the durability of the setup.`).options("Status", &opts).env(&env)
	if err := c.parseNoArgs(std, args); err != nil {
		return err
	}
	_, conn, err := env.open(ctx, std, "status")
	if err != nil {
		return err
	}
	defer conn.Close()
	rep, err := collectStatus(ctx, conn.js, env.overviewConfig())
	if err != nil {
		return err
	}
	var names []string
	for _, s := range rep.Streams {
		if !s.Missing {
			names = append(names, s.Name)
		}
	}
	rep.Durability = checkDurability(ctx, conn, env.MonitorURL, names)
	if opts.JSON {
		return printJSON(std, rep)
	}
	printStatus(std, rep)
	return nil
}

// collectStatus reads the streams and consumers with overview.Read, and
// the workers and the scheduler leader.
func collectStatus(ctx context.Context, js jetstream.JetStream, cfg overview.Config) (statusReport, error) {
	ov, err := overview.Read(ctx, js, cfg)
	if err != nil {
		return statusReport{}, err
	}
	rep := statusReport{Streams: ov.Streams, Workers: []consumer.WorkerInfo{}}
	// Presence and the lease are bookkeeping: when their buckets are
	// unavailable (an R1 bucket on a lost node), say so and show the rest.
	workers, werr := consumer.Presence{}.List(ctx, js)
	if werr != nil {
		rep.WorkersErr = werr.Error()
	} else if workers != nil {
		rep.Workers = workers
	}
	// Running and delivered-but-waiting, as the dashboard shows them.
	rep.Consumers = overview.SplitDelivered(ov.Consumers, workers, werr == nil).Consumers
	if rep.Leader, err = schedule.Leader(ctx, js, ""); err != nil {
		rep.LeaderErr = err.Error()
	}
	return rep, nil
}

func printStatus(std *stdio, rep statusReport) {
	tw := tabwriter.NewWriter(std.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tSUBJECTS\tRETENTION\tMESSAGES\tBYTES\tREPLICAS")
	for _, s := range rep.Streams {
		if s.Missing {
			fmt.Fprintf(tw, "%s\t(missing)\t\t\t\t\n", inert(s.Name))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\n", inert(s.Name), inert(strings.Join(s.Subjects, ",")), s.Retention, s.Messages, s.Bytes, s.Replicas)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "STREAM\tCONSUMER\tPENDING\tOLDEST PENDING\tRUNNING\tDELIVERED, WAITING\tREDELIVERED\tIDLE PULLS")
	for _, c := range rep.Consumers {
		oldest := "-"
		if c.OldestPending > 0 {
			oldest = c.OldestPending.Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%d\n", inert(c.Stream), inert(c.Name), c.Pending, oldest,
			count(c.Running), count(c.Buffered), c.Redelivered, c.Waiting)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "WORKER\tCONSUMER\tCONCURRENCY\tRUNNING\tPROCESSED\tFAILED\tUP SINCE")
	for _, w := range rep.Workers {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", inert(w.ID), inert(w.Stream+"/"+w.Consumer), w.Concurrency, w.InFlight,
			w.Processed, w.Failed, formatLocal(w.StartedAt))
	}
	_ = tw.Flush()
	if rep.WorkersErr != "" {
		fmt.Fprintf(std.out, "workers: unavailable: %s\n", inert(rep.WorkersErr))
	}
	leader := inert(rep.Leader)
	switch {
	case rep.LeaderErr != "":
		leader = "unavailable: " + inert(rep.LeaderErr)
	case leader == "":
		leader = "none"
	}
	fmt.Fprintf(std.out, "\nscheduler leader: %s\n", leader)
	d := rep.Durability
	cluster := inert(d.Cluster)
	if cluster == "" {
		cluster = "none (single server)"
	}
	fmt.Fprintf(std.out, "cluster: %s; server sync: %s\n", cluster, d.Sync)
	for _, w := range d.Warnings {
		fmt.Fprintf(std.out, "WARNING: %s\n", inert(w))
	}
}

// count prints a count that may be unknown.
func count(n *int64) string {
	if n == nil {
		return "?"
	}
	return fmt.Sprint(*n)
}
