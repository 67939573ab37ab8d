package schedule_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/schedule"
	"github.com/jetworker/jetworker/streams"
)

// Example stores a schedule, runs a scheduler until it fires once, and
// reads the fired task.
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
	ctx := context.Background()
	if err := streams.Provision(ctx, js, streams.Config{}); err != nil {
		log.Fatal(err)
	}

	store, err := schedule.NewStore(js, schedule.StoreConfig{})
	if err != nil {
		log.Fatal(err)
	}
	entry := schedule.Entry{
		Name:     "nightly-report",
		Spec:     "0 30 2 * * *", // 02:30:00 every day
		TimeZone: "America/New_York",
		Subject:  "tasks.report.nightly",
		Payload:  []byte(`{"format":"pdf"}`),
	}
	if _, err := store.Put(ctx, entry); err != nil {
		log.Fatal(err)
	}
	// On the spring-forward day 02:30 does not exist: the slot fires at the
	// transition instant, 03:00 EDT.
	after := time.Date(2024, 3, 9, 12, 0, 0, 0, time.UTC)
	next, _ := entry.Next(after, 2)
	for _, t := range next {
		fmt.Println("next:", t.Format(time.RFC3339))
	}

	// A second entry that fires every second; a scheduler fires it.
	if _, err := store.Put(ctx, schedule.Entry{Name: "heartbeat", Spec: "@every 1s", Subject: "tasks.heartbeat"}); err != nil {
		log.Fatal(err)
	}
	fired := make(chan schedule.Fire, 1)
	s, err := schedule.New(js, schedule.Config{
		Logger: slog.New(slog.DiscardHandler),
		Hooks: schedule.Hooks{FiredFunc: func(f schedule.Fire) {
			select {
			case fired <- f:
			default:
			}
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- s.Run(runCtx) }()
	f := <-fired
	stop()
	fmt.Println("run:", <-done)

	stream, err := js.Stream(ctx, streams.DefaultTaskStream)
	if err != nil {
		log.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(ctx, "tasks.heartbeat")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("schedule:", msg.Header.Get(jetworker.HeaderSchedule))
	fmt.Println("id matches slot:", msg.Header.Get(jetworker.HeaderMsgID) == "heartbeat@"+f.Slot.UTC().Format(time.RFC3339))
	// Output:
	// next: 2024-03-10T03:00:00-04:00
	// next: 2024-03-11T02:30:00-04:00
	// run: <nil>
	// schedule: heartbeat
	// id matches slot: true
}
