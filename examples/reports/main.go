// Command reports is a small HTTP service in the 202 Accepted pattern.
// POST /reports enqueues the rendering of a report and answers 202
// Accepted with its Location; GET /reports/{id} shows its state, progress
// and, once it is done, the result; GET /reports/{id}/events streams those
// changes as they happen; DELETE /reports/{id} cancels it. A worker in the
// same process renders reports page by page, reporting its progress.
//
//	go run ./examples/reports
//	curl -i -d '{"title":"Q3 sales","pages":8}' localhost:8080/reports
//	curl -N localhost:8080/reports/{id}/events
//	curl localhost:8080/reports/{id}
//	curl -X DELETE localhost:8080/reports/{id}
//
// It runs an embedded nats-server unless JETWORKER_NATS_URL is set, and
// listens on ADDR (127.0.0.1:8080).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/streams"
	"github.com/jetworker/jetworker/task"
	"github.com/jetworker/jetworker/task/taskhttp"
)

// subject is the task type of a report to render.
const subject = "tasks.report.render"

// maxPages bounds a report.
const maxPages = 1000

// Request is what a client POSTs, and the task's payload.
type Request struct {
	Title string `json:"title"`
	Pages int    `json:"pages"`
}

// Report is a rendered report: the task's result.
type Report struct {
	Title    string   `json:"title"`
	Pages    int      `json:"pages"`
	URL      string   `json:"url"`
	Contents []string `json:"contents"`
}

// config tunes the service.
type config struct {
	// Step is how long rendering a page takes.
	Step time.Duration
	// MaxResult is the largest report the task store keeps (0: 64 KiB).
	MaxResult int
	Logger    *slog.Logger
}

// service is the HTTP API and the worker behind it.
type service struct {
	store  *task.Store
	worker *consumer.Consumer
	api    *taskhttp.Handler
	step   time.Duration
}

func newService(js jetstream.JetStream, cfg config) (*service, error) {
	store, err := task.New(js, task.Config{MaxResult: cfg.MaxResult, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	pub, err := publisher.New(js, publisher.Config{Tasks: store, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	s := &service{store: store, step: cfg.Step}
	s.api, err = taskhttp.New(store, pub, taskhttp.Config{
		Subject:    subject,
		Prefix:     "/reports",
		MaxBody:    4 << 10,
		DecodeFunc: decodeRequest,
		// A report that fails renders no better on a second try here.
		Publish: publisher.PublishOpts{MaxAttempts: 2, Timeout: 10 * time.Minute},
		Logger:  cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	s.worker, err = consumer.New(js, jetworker.HandlerFunc(s.render), consumer.Config{
		Durable: "reports", FilterSubjects: []string{subject}, Tasks: store, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (s *service) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/reports", s.api)
	mux.Handle("/reports/", s.api)
	return mux
}

// decodeRequest checks a POSTed report request; what it returns is the
// task's payload.
func decodeRequest(_ *http.Request, body []byte) ([]byte, error) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf(`want {"title": "...", "pages": 1 to %d}: %v`, maxPages, err)
	}
	switch {
	case req.Title == "" || len(req.Title) > 200:
		return nil, errors.New("title: want 1 to 200 bytes")
	case req.Pages < 1 || req.Pages > maxPages:
		return nil, fmt.Errorf("pages: want 1 to %d, got %d", maxPages, req.Pages)
	}
	return json.Marshal(req)
}

// render renders a report page by page. It stops when the task is
// cancelled (its context ends with task.ErrCancelled as the cause).
func (s *service) render(ctx context.Context, t *jetworker.Task) error {
	var req Request
	if err := json.Unmarshal(t.Data, &req); err != nil {
		return jetworker.Permanent(fmt.Errorf("decode report request: %w", err))
	}
	rep := Report{Title: req.Title, Pages: req.Pages, URL: "https://reports.example.com/" + t.ID + ".pdf"}
	page := time.NewTimer(s.step)
	defer page.Stop()
	for n := 1; n <= req.Pages; n++ {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-page.C:
			page.Reset(s.step)
		}
		rep.Contents = append(rep.Contents, fmt.Sprintf("%d. %s, part %d", n, req.Title, n))
		if err := jetworker.SetProgress(ctx, float64(100*n/req.Pages), fmt.Sprintf("rendering page %d of %d", n, req.Pages)); err != nil {
			return err
		}
	}
	data, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	if err := jetworker.SetResult(ctx, data); err != nil {
		// Too large: another attempt would not make it smaller.
		return jetworker.Permanent(err)
	}
	return nil
}

func main() {
	if err := run(); err != nil {
		slog.Error("reports example", slog.Any("err", err))
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	log := slog.Default()

	natsURL := os.Getenv("JETWORKER_NATS_URL")
	if natsURL == "" {
		srv, err := embedded.Start(embedded.Config{Port: -1})
		if err != nil {
			return err
		}
		defer srv.Shutdown()
		natsURL = srv.URL()
	}
	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if err := streams.Provision(ctx, js, streams.Config{}); err != nil {
		return err
	}
	s, err := newService(js, config{Step: 500 * time.Millisecond, Logger: log})
	if err != nil {
		return err
	}
	if err := s.store.Provision(ctx); err != nil {
		return err
	}

	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	web := jetworker.RunnerFunc(func(ctx context.Context) error {
		httpSrv := &http.Server{
			Addr: addr, Handler: s.routes(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute,
			// Requests end with the service: event streams, which would
			// otherwise hold Shutdown up, stop when ctx does.
			BaseContext: func(net.Listener) context.Context { return ctx },
		}
		errc := make(chan error, 1)
		go func() { errc <- httpSrv.ListenAndServe() }()
		log.Info("listening", slog.String("addr", addr))
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			return httpSrv.Shutdown(sctx)
		}
	})
	return jetworker.RunAll(ctx, s.worker, web)
}
