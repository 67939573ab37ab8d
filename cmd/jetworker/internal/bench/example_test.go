package bench_test

import (
	"context"
	"fmt"
	"log"

	"github.com/jetworker/jetworker/cmd/jetworker/internal/bench"
	"github.com/jetworker/jetworker/embedded"
)

// Example runs a tiny benchmark of both sides on an embedded server.
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

	rep, err := bench.Run(context.Background(), js, bench.Config{N: 500, Concurrency: 2, Rounds: 1, BatchSize: 100})
	if err != nil {
		log.Fatal(err)
	}
	enq, _ := rep.Ratio(bench.FigureEnqueue, bench.SideJetworker, bench.SideRaw)
	fmt.Printf("raw processed %d, jetworker processed %d, enqueue ratio measured: %v\n",
		rep.Side(bench.SideRaw).Processed, rep.Side(bench.SideJetworker).Processed, enq.Median > 0)
	// Output: raw processed 500, jetworker processed 500, enqueue ratio measured: true
}
