// Command quickstart is the README's quickstart as a complete program, on
// an embedded nats-server (no setup): typed JSON handlers on a subject mux,
// a task that fails once and is retried, one that fails for good and lands
// in the dead letters (read back with the dlq package), and a schedule that
// fires, with the worker and the scheduler run together by
// jetworker.RunAll. It waits for each step to play out before it takes the
// next, so it prints what happens in the order it happens:
//
//	publishing welcome-ada
//	welcome: attempt 1 failed: mail server busy
//	welcome: attempt 2 welcomed ada@example.com
//	welcome-ada: succeeded after 2 attempts
//	publishing invoice-7
//	invoice-7: failed after 1 attempt, in the dead letters: permanent: invoice 7 has no customer
//	storing schedule cleanup: @every 1s
//	cleanup: fired by schedule cleanup
//	stopped: worker and scheduler shut down
//
// The consumer's own warnings and errors (the retry, the dead letter) go
// to stderr. Run it with
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dlq"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/handlers"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/schedule"
	"github.com/jetworker/jetworker/streams"
	"github.com/jetworker/jetworker/task"
)

// Welcome is the payload of tasks.email.welcome.
type Welcome struct {
	Email string `json:"email"`
}

// Invoice is the payload of tasks.invoice.send.
type Invoice struct {
	Number   int    `json:"number"`
	Customer string `json:"customer"`
}

func main() {
	// jetworker logs to slog.Default(): here its warnings and errors (the
	// retry, the dead letter) go to stderr, the story to stdout.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		stop()
		os.Exit(1)
	}
}

// run starts an embedded server and runs the quickstart on it.
func run(ctx context.Context) error {
	srv, err := embedded.Start(embedded.Config{Port: -1})
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	nc, js, err := srv.ConnectJetStream()
	if err != nil {
		return err
	}
	defer nc.Close()

	// The TASKS (tasks.>) and DLQ (dlq.>) streams; idempotent.
	if err := streams.Provision(ctx, js, streams.Config{}); err != nil {
		return err
	}

	// The handler's result decides: nil acks, an error retries after a
	// backoff, jetworker.Permanent dead-letters at once.
	mux := handlers.NewMux()
	mux.Route("tasks.email.welcome", handlers.JSON(func(ctx context.Context, t *jetworker.Task, w Welcome) error {
		if t.Delivered == 1 {
			fmt.Println("welcome: attempt 1 failed: mail server busy")
			return errors.New("mail server busy")
		}
		fmt.Printf("welcome: attempt %d welcomed %s\n", t.Delivered, w.Email)
		return nil
	}))
	mux.Route("tasks.invoice.send", handlers.JSON(func(ctx context.Context, t *jetworker.Task, inv Invoice) error {
		if inv.Customer == "" {
			return jetworker.Permanent(fmt.Errorf("invoice %d has no customer", inv.Number))
		}
		return nil
	}))
	cleaned := make(chan struct{}, 1) // tells the steps below that the schedule fired
	mux.RouteFunc("tasks.cleanup", func(ctx context.Context, t *jetworker.Task) error {
		fmt.Println("cleanup: fired by schedule", t.Header.Get(jetworker.HeaderSchedule))
		select {
		case cleaned <- struct{}{}:
		default:
		}
		return nil
	})

	// New only checks its Config; nothing connects before Run.
	worker, err1 := consumer.New(js, mux, consumer.Config{Durable: "quickstart"})
	scheduler, err2 := schedule.New(js, schedule.Config{}) // run two or more: one holds the lease and fires
	pub, err3 := publisher.New(js, publisher.Config{})
	store, err4 := schedule.NewStore(js, schedule.StoreConfig{})
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return err
	}
	tasks, err5 := task.New(js, task.Config{}) // reads tracked tasks
	dead, err6 := dlq.New(js, dlq.Config{})    // reads dead letters
	if err := errors.Join(err5, err6); err != nil {
		return err
	}

	// The steps run beside the worker and the scheduler: each publishes or
	// stores one thing and waits for it to play out. When they are done,
	// they stop the other parts.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	steps := jetworker.RunnerFunc(func(ctx context.Context) error {
		defer cancel()
		ctx, stop := context.WithTimeout(ctx, time.Minute)
		defer stop()

		fmt.Println("publishing welcome-ada")
		// The ID makes a second publish within two minutes a no-op; Track records
		// the task's lifecycle for task.Store's Get, Wait, Follow and Cancel.
		if _, err := publisher.PublishJSON(ctx, pub, "tasks.email.welcome", Welcome{Email: "ada@example.com"},
			&publisher.PublishOpts{ID: "welcome-ada", Track: true}); err != nil {
			return err
		}
		info, err := tasks.Wait(ctx, "welcome-ada")
		if err != nil {
			return err
		}
		fmt.Printf("%s: %s after %d attempts\n", info.ID, info.State, info.Attempt)

		fmt.Println("publishing invoice-7")
		if _, err := publisher.PublishJSON(ctx, pub, "tasks.invoice.send", Invoice{Number: 7},
			&publisher.PublishOpts{ID: "invoice-7", Track: true}); err != nil {
			return err
		}
		if info, err = tasks.Wait(ctx, "invoice-7"); err != nil {
			return err
		}
		page, err := dead.List(ctx, dlq.Filter{Subject: "tasks.invoice.>"}, 0, 10) // newest first
		if err != nil {
			return err
		}
		if len(page.Entries) != 1 {
			return fmt.Errorf("%d dead letters, want invoice-7's", len(page.Entries))
		}
		e := page.Entries[0]
		fmt.Printf("%s: %s after %d attempt, in the dead letters: %s\n", e.TaskID, info.State, e.Attempts, e.Error)

		fmt.Println("storing schedule cleanup: @every 1s")
		// A schedule, fired by whichever scheduler holds the lease (cron specs and time zones too).
		if _, err := store.Put(ctx, schedule.Entry{Name: "cleanup", Spec: "@every 1s", Subject: "tasks.cleanup"}); err != nil {
			return err
		}
		select {
		case <-cleaned:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("schedule cleanup: no fire: %w", ctx.Err())
		}
	})

	// The worker and the scheduler run until ctx ends; if one fails, RunAll
	// stops the other and returns its error.
	if err := jetworker.RunAll(ctx, worker, scheduler, steps); err != nil {
		return err
	}
	fmt.Println("stopped: worker and scheduler shut down")
	return nil
}
