package main

import (
	"context"
	"log/slog"

	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/schedule"
)

// web is the HTTP surface (health, metrics, dashboard) of a long-running
// command. It is nil when no address is configured.
type web struct{}

func newWeb(c *conn, addr string, b Base, log *slog.Logger) (*web, error) {
	if addr == "" {
		return nil, nil
	}
	return nil, usagef("the HTTP surface is not built yet")
}

func (w *web) schedulerHooks(cfg *schedule.Config)          {}
func (w *web) consumerHooks(cfg *consumer.Config)           {}
func (w *web) readyWhen(name string, ready <-chan struct{}) {}
func (w *web) Run(ctx context.Context) error                { return nil }
