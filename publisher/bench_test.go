package publisher_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/streams"
)

const benchPayload = 256

// benchSetup starts a server with a task stream. The stream's duplicate
// window is kept small so the de-duplication index stays small during
// long runs, alike for both sides.
func benchSetup(b *testing.B) (jetstream.JetStream, *publisher.Publisher) {
	b.Helper()
	srv := embeddedtest.Start(b, embedded.Config{})
	_, js := embeddedtest.Connect(b, srv)
	if err := streams.Provision(b.Context(), js, streams.Config{Tasks: streams.Tasks{Duplicates: 10 * time.Second, Retention: streams.Limits}}); err != nil {
		b.Fatal(err)
	}
	pub, err := publisher.New(js, publisher.Config{})
	if err != nil {
		b.Fatal(err)
	}
	return js, pub
}

// BenchmarkPublish compares the synchronous path: jetworker's Publish
// without a task ID (no headers) against raw js.Publish, and with an ID
// (a Nats-Msg-Id header) against raw with the same header, on the same
// server.
func BenchmarkPublish(b *testing.B) {
	js, pub := benchSetup(b)
	data := make([]byte, benchPayload)
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := js.Publish(b.Context(), "tasks.bench", data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw-msgid", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := js.Publish(b.Context(), "tasks.bench", data, jetstream.WithMsgID(newBenchID())); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jetworker", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := pub.Publish(b.Context(), "tasks.bench", data, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jetworker-id", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := pub.Publish(b.Context(), "tasks.bench", data, &publisher.PublishOpts{ID: newBenchID()}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPublishAsync compares the async path: jetworker's PublishAsync
// with its bounded window and Wait, against raw js.PublishAsync and
// PublishAsyncComplete.
func BenchmarkPublishAsync(b *testing.B) {
	js, pub := benchSetup(b)
	data := make([]byte, benchPayload)
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := js.PublishAsync("tasks.bench", data); err != nil {
				b.Fatal(err)
			}
		}
		<-js.PublishAsyncComplete()
	})
	b.Run("raw-msgid", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := js.PublishAsync("tasks.bench", data, jetstream.WithMsgID(newBenchID())); err != nil {
				b.Fatal(err)
			}
		}
		<-js.PublishAsyncComplete()
	})
	// A header the server does not de-duplicate on: what carrying a
	// header costs, apart from de-duplication.
	b.Run("raw-header", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m := &nats.Msg{Subject: "tasks.bench", Data: data, Header: nats.Header{"X-Id": {newBenchID()}}}
			if _, err := js.PublishMsgAsync(m); err != nil {
				b.Fatal(err)
			}
		}
		<-js.PublishAsyncComplete()
	})
	b.Run("jetworker", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := pub.PublishAsync(b.Context(), "tasks.bench", data, nil); err != nil {
				b.Fatal(err)
			}
		}
		if err := pub.Wait(b.Context()); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkPublishAsyncInterleaved publishes batches of 1,000 tasks
// through raw js.PublishAsync and jetworker's PublishAsync without IDs,
// then raw with a Nats-Msg-Id and jetworker with task IDs, in turn, each
// batch until its last ack, so that drift on a noisy machine weighs on all
// sides alike. Read the ratio metrics: jetworker's throughput over its
// raw counterpart's (ratio-raw: no ID; ratio-raw-msgid: with IDs).
func BenchmarkPublishAsyncInterleaved(b *testing.B) {
	js, pub := benchSetup(b)
	data := make([]byte, benchPayload)
	const batch = 1000
	var raw, rawID, jw, jwID time.Duration
	timed := func(total *time.Duration, publish func() error, wait func() error) {
		began := time.Now()
		for range batch {
			if err := publish(); err != nil {
				b.Fatal(err)
			}
		}
		if err := wait(); err != nil {
			b.Fatal(err)
		}
		*total += time.Since(began)
	}
	rawWait := func() error { <-js.PublishAsyncComplete(); return nil }
	b.ReportAllocs()
	for b.Loop() {
		timed(&raw, func() error { _, err := js.PublishAsync("tasks.bench", data); return err }, rawWait)
		timed(&rawID, func() error {
			_, err := js.PublishAsync("tasks.bench", data, jetstream.WithMsgID(newBenchID()))
			return err
		}, rawWait)
		jwWait := func() error { return pub.Wait(b.Context()) }
		timed(&jw, func() error { _, err := pub.PublishAsync(b.Context(), "tasks.bench", data, nil); return err }, jwWait)
		timed(&jwID, func() error {
			_, err := pub.PublishAsync(b.Context(), "tasks.bench", data, &publisher.PublishOpts{ID: newBenchID()})
			return err
		}, jwWait)
	}
	b.ReportMetric(raw.Seconds()/jw.Seconds(), "ratio-raw")
	b.ReportMetric(rawID.Seconds()/jwID.Seconds(), "ratio-raw-msgid")
}

// BenchmarkPublishBatch compares bulk loads of 10,000 tasks: jetworker's
// PublishBatch (fast-ingest batches) against raw js.PublishAsync until
// the last ack, interleaved. ratio-raw is PublishBatch's throughput over
// raw PublishAsync's: above 1 the bulk path is faster than the raw async
// one, which is what it is for.
func BenchmarkPublishBatch(b *testing.B) {
	js, pub := benchSetup(b)
	data := make([]byte, benchPayload)
	const n = 10_000
	tasks := make([]publisher.BatchTask, n)
	for i := range tasks {
		tasks[i] = publisher.BatchTask{Subject: "tasks.bench", Data: data}
	}
	var raw, bulk time.Duration
	b.ReportAllocs()
	for b.Loop() {
		began := time.Now()
		for range n {
			if _, err := js.PublishAsync("tasks.bench", data); err != nil {
				b.Fatal(err)
			}
		}
		<-js.PublishAsyncComplete()
		raw += time.Since(began)
		began = time.Now()
		if _, err := pub.PublishBatch(b.Context(), tasks); err != nil {
			b.Fatal(err)
		}
		bulk += time.Since(began)
	}
	b.ReportMetric(raw.Seconds()/bulk.Seconds(), "ratio-raw")
	b.ReportMetric(float64(n*b.N)/bulk.Seconds(), "tasks/s")
}
