package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/schedule"
)

// statusReport is what "status" prints, also as JSON.
type statusReport struct {
	Streams    []streamStatus        `json:"streams"`
	Consumers  []consumerStatus      `json:"consumers"`
	Workers    []consumer.WorkerInfo `json:"workers"`
	WorkersErr string                `json:"workers_error,omitempty"`
	Leader     string                `json:"scheduler_leader"`
	LeaderErr  string                `json:"scheduler_leader_error,omitempty"`
	Durability durability            `json:"durability"`
}

type streamStatus struct {
	Name      string   `json:"name"`
	Subjects  []string `json:"subjects"`
	Retention string   `json:"retention"`
	Msgs      uint64   `json:"msgs"`
	Bytes     uint64   `json:"bytes"`
	Replicas  int      `json:"replicas"`
}

type consumerStatus struct {
	Stream      string `json:"stream"`
	Name        string `json:"name"`
	Pending     uint64 `json:"pending"`
	AckPending  int    `json:"ack_pending"`
	Redelivered int    `json:"redelivered"`
	Waiting     int    `json:"waiting"`
}

func runStatus(ctx context.Context, std *stdio, args []string) error {
	var b Base
	fs := newFlagSet("status", std, "", &b)
	if err := b.bind(fs, &b); err != nil {
		return err
	}
	var asJSON bool
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	_, c, err := b.open(ctx, std, "status")
	if err != nil {
		return err
	}
	defer c.Close()
	rep, err := collectStatus(ctx, c.js)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(rep.Streams))
	for _, s := range rep.Streams {
		names = append(names, s.Name)
	}
	rep.Durability = checkDurability(ctx, c, b.MonitorURL, names)
	if asJSON {
		return printJSON(std, rep)
	}
	printStatus(std, rep)
	return nil
}

func collectStatus(ctx context.Context, js jetstream.JetStream) (statusReport, error) {
	var rep statusReport
	streams := js.ListStreams(ctx)
	for info := range streams.Info() {
		if strings.HasPrefix(info.Config.Name, "KV_") {
			continue // KV buckets are jetworker's bookkeeping, not work
		}
		rep.Streams = append(rep.Streams, streamStatus{
			Name:      info.Config.Name,
			Subjects:  info.Config.Subjects,
			Retention: info.Config.Retention.String(),
			Msgs:      info.State.Msgs,
			Bytes:     info.State.Bytes,
			Replicas:  info.Config.Replicas,
		})
	}
	if err := streams.Err(); err != nil {
		return rep, fmt.Errorf("list streams: %w", err)
	}
	for _, s := range rep.Streams {
		st, err := js.Stream(ctx, s.Name)
		if err != nil {
			return rep, fmt.Errorf("stream %q: %w", s.Name, err)
		}
		cl := st.ListConsumers(ctx)
		for ci := range cl.Info() {
			rep.Consumers = append(rep.Consumers, consumerStatus{
				Stream:      s.Name,
				Name:        ci.Name,
				Pending:     ci.NumPending,
				AckPending:  ci.NumAckPending,
				Redelivered: ci.NumRedelivered,
				Waiting:     ci.NumWaiting,
			})
		}
		if err := cl.Err(); err != nil {
			return rep, fmt.Errorf("consumers of %q: %w", s.Name, err)
		}
	}
	// Presence and the lease are bookkeeping: when their buckets are
	// unavailable (an R1 bucket on a lost node), say so and show the rest.
	workers, err := consumer.Presence{}.List(ctx, js)
	if err != nil {
		rep.WorkersErr = err.Error()
	}
	rep.Workers = workers
	if rep.Leader, err = schedule.Leader(ctx, js, ""); err != nil {
		rep.LeaderErr = err.Error()
	}
	return rep, nil
}

func printStatus(std *stdio, rep statusReport) {
	tw := tabwriter.NewWriter(std.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tSUBJECTS\tRETENTION\tMSGS\tBYTES\tREPLICAS")
	for _, s := range rep.Streams {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\n", s.Name, strings.Join(s.Subjects, ","), s.Retention, s.Msgs, s.Bytes, s.Replicas)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "STREAM\tCONSUMER\tPENDING\tACK PENDING\tREDELIVERED\tWAITING")
	for _, c := range rep.Consumers {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\n", c.Stream, c.Name, c.Pending, c.AckPending, c.Redelivered, c.Waiting)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "WORKER\tCONSUMER\tCONCURRENCY\tIN FLIGHT\tPROCESSED\tFAILED\tUP SINCE")
	for _, w := range rep.Workers {
		fmt.Fprintf(tw, "%s\t%s/%s\t%d\t%d\t%d\t%d\t%s\n", w.ID, w.Stream, w.Consumer, w.Concurrency, w.InFlight, w.Processed, w.Failed, w.StartedAt.Local().Format(time.DateTime))
	}
	_ = tw.Flush()
	if rep.WorkersErr != "" {
		fmt.Fprintf(std.out, "workers: unavailable: %s\n", rep.WorkersErr)
	}
	leader := rep.Leader
	switch {
	case rep.LeaderErr != "":
		leader = "unavailable: " + rep.LeaderErr
	case leader == "":
		leader = "none"
	}
	fmt.Fprintf(std.out, "\nscheduler leader: %s\n", leader)
	d := rep.Durability
	cluster := d.Cluster
	if cluster == "" {
		cluster = "none (single server)"
	}
	fmt.Fprintf(std.out, "cluster: %s; server sync: %s\n", cluster, d.Sync)
	for _, w := range d.Warnings {
		fmt.Fprintf(std.out, "WARNING: %s\n", w)
	}
}
