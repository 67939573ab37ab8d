package main

import (
	"context"
	"log/slog"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/dashboard"
	"github.com/jetworker/jetworker/schedule"
)

// schedulerEnv configures "jetworker scheduler".
type schedulerEnv struct {
	LeaseKey string `envconfig:"JETWORKER_LEASE_KEY" flag:"lease-key" default:"scheduler" meta:"KEY" group:"Scheduler" desc:"lease key the schedulers of one deployment share"`
	LeaseTTLEnv
	Base
	MonitorEnv
	StreamEnv
	DLQStreamEnv
	ReplicasEnv
	HTTPEnv
	TaskBucketEnv
	MetricsEnv
}

// schedulerConfig maps the settings to the library's Config.
func (e schedulerEnv) schedulerConfig(log *slog.Logger) schedule.Config {
	return schedule.Config{
		LeaseKey: e.LeaseKey,
		LeaseTTL: e.LeaseTTL,
		Replicas: e.Replicas,
		Logger:   log,
	}
}

// dashboardConfig maps the HTTP and metrics settings.
func (e schedulerEnv) dashboardConfig(log *slog.Logger) (dashboard.Config, bool) {
	cfg, ok := dashboardConfig(e.HTTPEnv, e.MetricsEnv, e.Stream, e.DLQStream, log)
	cfg.LeaseKey = e.LeaseKey
	cfg.TaskBucket = e.TaskBucket
	return cfg, ok
}

func runScheduler(ctx context.Context, std *stdio, args []string) error {
	var e schedulerEnv
	c := newCLI("scheduler", "", `
Fire the schedules stored in the jetworker_schedules bucket. Run two or more
for high availability: one holds the lease and fires, the others wait to
take over.`).env(&e)
	if err := c.parseNoArgs(std, args); err != nil {
		return err
	}
	log, err := std.logger(e.LogEnv)
	if err != nil {
		return err
	}
	cfg := e.schedulerConfig(log)
	if err := cfg.Validate(); err != nil {
		return inTermsOf(err, "schedule", "", schedulerFields)
	}
	dcfg, serve := e.dashboardConfig(log)
	if serve {
		if err := dcfg.Validate(); err != nil {
			return inTermsOf(err, "dashboard", "http: ", dashboardFields)
		}
	}
	conn, err := connect(ctx, e.ConnEnv, "scheduler", log)
	if err != nil {
		return err
	}
	defer conn.Close()
	logConfig(ctx, log, c, slog.String("auth", e.authKind()))

	warnDurability(ctx, log, checkDurability(ctx, conn, e.MonitorURL, []string{e.Stream, "KV_jetworker_schedules", "KV_jetworker_schedule_state", "KV_jetworker_leases"}))
	parts := []jetworker.Runner{jetworker.RunnerFunc(conn.watch)}
	var w *web
	if serve {
		if w, err = newWeb(conn, dcfg); err != nil {
			return err
		}
		w.schedulerHooks(&cfg)
	}
	s, err := schedule.New(conn.js, cfg)
	if err != nil {
		return err
	}
	parts = append(parts, s)
	if w != nil {
		w.readyWhen("scheduler", s.Ready())
		parts = append(parts, w)
	}
	return runAll(ctx, parts...)
}
