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
// (task ID and Enqueued-At headers) against raw js.Publish with no
// headers and with the same Nats-Msg-Id header, on the same server.
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
// through raw js.PublishAsync, raw with a Nats-Msg-Id, and jetworker's
// PublishAsync in turn, each batch until its last ack, so that drift on a
// noisy machine weighs on all three alike. Read the ratio metrics:
// jetworker's throughput over each raw side's.
func BenchmarkPublishAsyncInterleaved(b *testing.B) {
	js, pub := benchSetup(b)
	data := make([]byte, benchPayload)
	const batch = 1000
	var raw, rawID, jw time.Duration
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
		timed(&jw, func() error { _, err := pub.PublishAsync(b.Context(), "tasks.bench", data, nil); return err },
			func() error { return pub.Wait(b.Context()) })
	}
	b.ReportMetric(raw.Seconds()/jw.Seconds(), "ratio-raw")
	b.ReportMetric(rawID.Seconds()/jw.Seconds(), "ratio-raw-msgid")
}
