package main

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/schedule"
	"github.com/jetworker/jetworker/streams"
)

// provisionEnv configures "jetworker provision".
type provisionEnv struct {
	Base
	Routes   string `envconfig:"ROUTES" desc:"routes file: also create each route's durable consumer"`
	Durable  string `envconfig:"DURABLE" default:"worker" desc:"durable consumer name prefix of the routes"`
	Replicas int    `envconfig:"REPLICAS" default:"1" desc:"replicas of the streams and buckets (3 in a cluster)"`
}

func runProvision(ctx context.Context, std *stdio, args []string) error {
	var e provisionEnv
	fs := newFlagSet("provision", std, "\n\nCreates or updates the task and dead-letter streams, the schedule and presence buckets and,\nwith a routes file, the routes' durable consumers, so workers can run with\nconsume-only permissions (JETWORKER_PROVISION=false).", &e)
	if err := e.Base.bind(fs, &e); err != nil {
		return err
	}
	f := flagEnv{fs}
	f.str(&e.Routes, "routes", "ROUTES", "routes file")
	f.str(&e.Durable, "durable", "DURABLE", "durable name prefix")
	f.integer(&e.Replicas, "replicas", "REPLICAS", "replicas")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	var rs []route
	if e.Routes != "" {
		var err error
		if rs, err = loadRoutes(e.Routes); err != nil {
			return err
		}
	}
	log, c, err := e.open(ctx, std, "provision")
	if err != nil {
		return err
	}
	defer c.Close()
	if err := streams.Provision(ctx, c.js, streams.Config{Tasks: streams.Tasks{Name: e.Stream}, DeadLetters: streams.DeadLetters{Name: e.DLQStream}, Replicas: e.Replicas}); err != nil {
		return err
	}
	fmt.Fprintf(std.out, "streams %s and %s ok\n", e.Stream, e.DLQStream)
	store, err := schedule.NewStore(c.js, schedule.StoreConfig{Replicas: e.Replicas})
	if err != nil {
		return err
	}
	if err := store.Provision(ctx); err != nil {
		return err
	}
	if err := (consumer.Presence{Replicas: e.Replicas}).Provision(ctx, c.js); err != nil {
		return err
	}
	fmt.Fprintf(std.out, "buckets %s, %s and %s ok\n", schedule.SchedulesBucket, schedule.StateBucket, consumer.DefaultPresenceBucket)
	w := workerEnv{Base: e.Base, Durable: e.Durable}
	for _, r := range rs {
		cfg := w.consumerConfig(r, log)
		if _, err := consumer.Provision(ctx, c.js, cfg); err != nil {
			return fmt.Errorf("route %s: %w", r.Name, err)
		}
		fmt.Fprintf(std.out, "consumer %s on %s ok\n", cfg.Durable, cfg.Stream)
	}
	return nil
}

// noJetStream satisfies jetstream.JetStream for validating a consumer
// Config without a connection; calling it panics.
type noJetStream struct{ jetstream.JetStream }
