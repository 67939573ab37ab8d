package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/schedule"
)

// schedulerEnv configures "jetworker scheduler".
type schedulerEnv struct {
	Base
	LeaseKey string        `envconfig:"LEASE_KEY" default:"scheduler" desc:"lease key the schedulers of one deployment share"`
	LeaseTTL time.Duration `envconfig:"LEASE_TTL" default:"10s" desc:"leader lease TTL; a crashed leader is replaced within about this"`
	Replicas int           `envconfig:"REPLICAS" default:"1" desc:"replicas of the streams and buckets it creates (3 in a cluster)"`
	HTTPEnv
	HTTPAddr string `envconfig:"HTTP_ADDR" desc:"serve health, metrics and the dashboard on this address (empty: off)"`
}

func (e *schedulerEnv) bind(std *stdio, name string) (*flagEnv, error) {
	fs := newFlagSet(name, std, "", e)
	if err := e.Base.bind(fs, e); err != nil {
		return nil, err
	}
	f := &flagEnv{fs}
	f.str(&e.LeaseKey, "lease-key", "LEASE_KEY", "lease key")
	f.dur(&e.LeaseTTL, "lease-ttl", "LEASE_TTL", "lease TTL")
	f.integer(&e.Replicas, "replicas", "REPLICAS", "replicas")
	f.str(&e.HTTPAddr, "http-addr", "HTTP_ADDR", "HTTP address")
	e.HTTPEnv.flags(*f)
	return f, nil
}

// schedulerConfig maps the environment to the library's Config.
func (e schedulerEnv) schedulerConfig(log *slog.Logger) schedule.Config {
	return schedule.Config{
		LeaseKey: e.LeaseKey,
		LeaseTTL: e.LeaseTTL,
		Replicas: e.Replicas,
		Logger:   log,
	}
}

func runScheduler(ctx context.Context, std *stdio, args []string) error {
	var e schedulerEnv
	f, err := e.bind(std, "scheduler")
	if err != nil {
		return err
	}
	if _, err := parseArgs(f.fs, args); err != nil {
		return err
	}
	log, c, err := e.open(ctx, std, "scheduler")
	if err != nil {
		return err
	}
	defer c.Close()
	logConfig(log, "scheduler", e.Base, slog.String("lease_key", e.LeaseKey), slog.Duration("lease_ttl", e.LeaseTTL))

	warnDurability(ctx, log, checkDurability(ctx, c, e.MonitorURL, []string{e.Stream, "KV_jetworker_schedules", "KV_jetworker_schedule_state", "KV_jetworker_leases"}))
	cfg := e.schedulerConfig(log)
	parts := []jetworker.Runner{jetworker.RunnerFunc(c.watch)}
	web, err := newWeb(c, e.HTTPAddr, e.Base, e.HTTPEnv, log)
	if err != nil {
		return err
	}
	if web != nil {
		web.schedulerHooks(&cfg)
	}
	s, err := schedule.New(c.js, cfg)
	if err != nil {
		return err
	}
	parts = append(parts, s)
	if web != nil {
		web.readyWhen("scheduler", s.Ready())
		parts = append(parts, web)
	}
	return jetworker.RunAll(ctx, parts...)
}
