package outboxmetrics_test

import (
	"context"
	"log"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/metrics"
	"github.com/jetworker/jetworker/metrics/outboxmetrics"
	"github.com/jetworker/jetworker/outbox"
)

// Example serves a relay's metrics beside jetworker's others on /metrics.
func Example() {
	run := func(ctx context.Context, pool *pgxpool.Pool, js jetstream.JetStream) error {
		m, err := metrics.New(metrics.Config{})
		if err != nil {
			return err
		}
		om, err := outboxmetrics.New(m)
		if err != nil {
			return err
		}
		relay, err := outbox.NewRelay(pool, js, outbox.RelayConfig{Hooks: om.Hooks()})
		if err != nil {
			return err
		}
		if err := om.ObserveBacklog(relay.Stats, 0, nil); err != nil {
			return err
		}
		http.Handle("/metrics", m.Handler())
		go func() { log.Print(http.ListenAndServe("127.0.0.1:9090", nil)) }()
		return relay.Run(ctx)
	}
	_ = run
}
