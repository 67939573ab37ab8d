package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/schedule"
	"github.com/jetworker/jetworker/streams"
	"github.com/jetworker/jetworker/task"
)

// provisionEnv configures "jetworker provision".
type provisionEnv struct {
	RoutesEnv
	ConsumerEnv
	LeaseTTLEnv
	TaskStoreEnv
	Base
	StreamEnv
	DLQStreamEnv
	ReplicasEnv
}

// step is one thing provision creates or updates.
type step struct {
	what string
	do   func(ctx context.Context) error
}

func runProvision(ctx context.Context, std *stdio, args []string) error {
	var e provisionEnv
	c := newCLI("provision", "", `
Create or update the task and dead-letter streams, the schedule, lease,
presence and task status buckets and, with a routes file, the routes'
durable consumers, so workers and schedulers can run with least-privilege
permissions (JETWORKER_PROVISION=false). The lease bucket's TTL is the
schedulers' --lease-ttl, the status bucket's the --task-ttl: give them the
values the schedulers and workers use. It is idempotent: run it again after
changing the settings.`).env(&e)
	if err := c.parseNoArgs(std, args); err != nil {
		return err
	}
	var rs []route
	if e.Routes != "" {
		var err error
		if rs, err = loadRoutes(e.Routes); err != nil {
			return err
		}
	}
	log, err := std.logger(e.LogEnv)
	if err != nil {
		return err
	}
	if err := (schedule.Config{LeaseTTL: e.LeaseTTL, Replicas: e.Replicas}).Validate(); err != nil {
		return inTermsOf(err, "schedule", "", schedulerFields)
	}
	tcfg := e.taskConfig(e.ReplicasEnv, log)
	if err := tcfg.Validate(); err != nil {
		return inTermsOf(err, "task", "", taskFields)
	}
	scfg := streamsConfig(e.StreamEnv, e.DLQStreamEnv, e.ReplicasEnv)
	ccfgs := make([]consumer.Config, len(rs))
	for i, r := range rs {
		ccfgs[i] = routeConsumerConfig(e.StreamEnv, e.DLQStreamEnv, e.RoutesEnv, e.ConsumerEnv, r, log)
		if err := ccfgs[i].Validate(); err != nil {
			return inTermsOf(err, "consumer", "route "+r.Name+": ", consumerFields)
		}
	}
	conn, err := connect(ctx, e.ConnEnv, "provision", log)
	if err != nil {
		return err
	}
	defer conn.Close()
	store, err := schedule.NewStore(conn.js, schedule.StoreConfig{Replicas: e.Replicas})
	if err != nil {
		return err
	}
	tasks, err := task.New(conn.js, tcfg)
	if err != nil {
		return err
	}
	scfg.Tasks.Replicas, scfg.DeadLetters.Replicas = e.Replicas, e.Replicas
	steps := []step{
		{"stream " + e.Stream, func(ctx context.Context) error {
			_, err := streams.Ensure(ctx, conn.js, scfg.Tasks.StreamConfig())
			return err
		}},
		{"stream " + e.DLQStream, func(ctx context.Context) error {
			_, err := streams.Ensure(ctx, conn.js, scfg.DeadLetters.StreamConfig())
			return err
		}},
		{"buckets " + schedule.SchedulesBucket + " and " + schedule.StateBucket, store.Provision},
		{"bucket " + schedule.LeaseBucket, func(ctx context.Context) error {
			return schedule.ProvisionLeases(ctx, conn.js, schedule.LeaseConfig{TTL: e.LeaseTTL, Replicas: e.Replicas})
		}},
		{"bucket " + consumer.DefaultPresenceBucket, func(ctx context.Context) error {
			return consumer.Presence{Replicas: e.Replicas}.Provision(ctx, conn.js)
		}},
		{"bucket " + e.TaskBucket, tasks.Provision},
	}
	for _, cfg := range ccfgs {
		steps = append(steps, step{"consumer " + cfg.Durable + " on " + cfg.Stream, func(ctx context.Context) error {
			_, err := consumer.Provision(ctx, conn.js, cfg)
			return err
		}})
	}
	return runSteps(ctx, std, steps)
}

// runSteps runs the steps in order and prints "ok" for each one that
// succeeded. The first failure stops it, with an error naming the step
// and the ones left undone.
func runSteps(ctx context.Context, std *stdio, steps []step) error {
	for i, s := range steps {
		if err := s.do(ctx); err != nil {
			var left []string
			for _, l := range steps[i+1:] {
				left = append(left, l.what)
			}
			msg := fmt.Sprintf("%s: %v", s.what, err)
			if len(left) > 0 {
				msg += fmt.Sprintf(" (not attempted: %s)", strings.Join(left, ", "))
			}
			return fmt.Errorf("failed at step %d of %d, %s", i+1, len(steps), msg)
		}
		fmt.Fprintf(std.out, "ok  %s\n", inert(s.what))
	}
	return nil
}
