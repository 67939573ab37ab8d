package dlq_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetworker/jetworker/dlq"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/streams"
)

// BenchmarkList100k stores 100,000 dead letters (file storage) over 100
// subjects tasks.load.<n>.ok|broken, 1 in 50 of them broken, and times
// the dashboard's and CLI's read: the newest-first page of 50 filtered by
// the subject wildcard tasks.load.*.broken, then the next page by its
// cursor. One op is both pages. Read the ms/page metric (target: 50ms).
func BenchmarkList100k(b *testing.B) {
	const n = 100_000
	srv := embeddedtest.Start(b, embedded.Config{})
	_, js := embeddedtest.Connect(b, srv)
	if err := streams.Provision(b.Context(), js, streams.Config{}); err != nil {
		b.Fatal(err)
	}
	maxPayload := js.Conn().MaxPayload()
	for i := range n {
		kind := "ok"
		if i%50 == 0 {
			kind = "broken"
		}
		m := dlq.Message(dlq.Letter{
			Stream: "TASKS", Consumer: "worker", Sequence: uint64(i + 1),
			Subject: fmt.Sprintf("tasks.load.%d.%s", i%100, kind), Header: nats.Header{"Jetworker-Task-Id": {fmt.Sprint("t", i)}},
			Data: make([]byte, 256), Attempts: 5, Reason: "boom", FailedAt: time.Now(),
		}, maxPayload)
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		b.Fatal("filling the DLQ did not complete")
	}
	store, err := dlq.New(js, dlq.Config{})
	if err != nil {
		b.Fatal(err)
	}
	f := dlq.Filter{Subject: "tasks.load.*.broken"}
	b.ResetTimer()
	for b.Loop() {
		page, err := store.List(b.Context(), f, 0, 50)
		if err != nil || len(page.Entries) != 50 || page.Next == 0 {
			b.Fatalf("first page: %d entries, next %d, %v", len(page.Entries), page.Next, err)
		}
		next, err := store.List(b.Context(), f, page.Next, 50)
		if err != nil || len(next.Entries) != 50 || next.Entries[0].Sequence >= page.Entries[49].Sequence {
			b.Fatalf("second page: %d entries, %v", len(next.Entries), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(2*b.N), "ms/page")
}
