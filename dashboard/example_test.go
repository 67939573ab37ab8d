package dashboard_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"strings"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dashboard"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/metrics"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/streams"
)

// Example wires a worker's metrics and readiness into a dashboard and reads
// /readyz and /metrics.
func Example() {
	srv, err := embedded.Start(embedded.Config{Port: -1})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown()
	nc, js, err := srv.ConnectJetStream()
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := streams.Provision(ctx, js, streams.Config{}); err != nil {
		log.Fatal(err)
	}

	m, err := metrics.New(metrics.Config{})
	if err != nil {
		log.Fatal(err)
	}
	handled := make(chan struct{})
	c, err := consumer.New(js, jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
		close(handled)
		return nil
	}), consumer.Config{Durable: "example", Hooks: m.ConsumerHooks(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	dash, err := dashboard.New(js, dashboard.Config{Metrics: m, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	dash.AddReadyCheck("consumer", dashboard.ChanCheck(c.Ready()))
	web := httptest.NewServer(dash.Handler()) // or dash.Run(ctx) on Config.Addr
	defer web.Close()

	get := func(path string) string {
		res, err := web.Client().Get(web.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return fmt.Sprintf("%d %s", res.StatusCode, body)
	}
	fmt.Println(strings.Contains(get("/readyz"), `"failed": [
    "consumer"
  ]`))

	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	<-c.Ready()
	fmt.Println(get("/readyz")[:3])

	pub, _ := publisher.New(js, publisher.Config{})
	if _, err := pub.Publish(ctx, "tasks.email.welcome", []byte(`{}`), nil); err != nil {
		log.Fatal(err)
	}
	<-handled
	cancel()
	<-done // every settled task has been counted
	for _, line := range strings.Split(get("/metrics"), "\n") {
		if strings.HasPrefix(line, "jetworker_tasks_processed_total{") {
			fmt.Println(line)
		}
	}
	// Output:
	// true
	// 200
	// jetworker_tasks_processed_total{outcome="acked",subject="tasks.email.welcome"} 1
}
