package metrics_test

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
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/metrics"
	"github.com/jetworker/jetworker/overview"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/streams"
)

// Example instruments a worker and a publisher and serves their metrics,
// with the stream state read at scrape time, without the web dashboard.
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

	m, err := metrics.New(metrics.Config{Version: "v1.0.0", DisableRuntimeMetrics: true})
	if err != nil {
		log.Fatal(err)
	}
	if err := m.ObserveStreams(js, overview.Config{}, slog.New(slog.DiscardHandler)); err != nil {
		log.Fatal(err)
	}
	done := make(chan struct{})
	worker, _ := consumer.New(js, jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
		close(done)
		return nil
	}), consumer.Config{Durable: "mailer", Hooks: m.ConsumerHooks(), DisablePresence: true, Logger: slog.New(slog.DiscardHandler)})
	stopped := make(chan error, 1)
	go func() { stopped <- worker.Run(ctx) }()
	defer func() { cancel(); <-stopped }() // stop the worker and wait for it
	<-worker.Ready()

	pub, _ := publisher.New(js, publisher.Config{Hooks: m.PublisherHooks()})
	if _, err := pub.Publish(ctx, "tasks.email.welcome", []byte(`{}`), nil); err != nil {
		log.Fatal(err)
	}
	<-done

	web := httptest.NewServer(m.Handler())
	defer web.Close()
	res, err := web.Client().Get(web.URL)
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, line := range strings.Split(string(body), "\n") {
		switch {
		case strings.HasPrefix(line, "jetworker_tasks_published_total"):
			fmt.Println(line)
		case strings.HasPrefix(line, "jetworker_build_info"):
			fmt.Println("build info names v1.0.0:", strings.Contains(line, `version="v1.0.0"`))
		}
	}
	// Output:
	// build info names v1.0.0: true
	// jetworker_tasks_published_total{result="stored",subject="tasks.email.welcome"} 1
}
