package taskhttp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/streams"
	"github.com/jetworker/jetworker/task"
	"github.com/jetworker/jetworker/task/taskhttp"
)

// Example serves monthly reports: POST /reports enqueues one and answers
// 202 Accepted with its Location, the event stream follows it to the end,
// GET shows the result, and a DELETE of the finished report is refused.
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
	store, err := task.New(js, task.Config{})
	if err != nil {
		log.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)

	// The worker renders a report and reports how far it is.
	render := jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
		var req struct {
			Month string `json:"month"`
		}
		if err := json.Unmarshal(t.Data, &req); err != nil {
			return jetworker.Permanent(err)
		}
		for page := 1; page <= 3; page++ {
			if err := jetworker.SetProgress(ctx, float64(page*100/3), fmt.Sprintf("page %d of 3", page)); err != nil {
				return err
			}
		}
		return jetworker.SetResult(ctx, fmt.Appendf(nil, `{"url":"https://files.example.com/%s.pdf"}`, t.ID))
	})
	worker, err := consumer.New(js, render, consumer.Config{Durable: "reports", Tasks: store, DisablePresence: true, Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = worker.Run(ctx) }()
	<-worker.Ready()

	// The HTTP side: one report per month, so a repeated POST is the
	// same task.
	pub, err := publisher.New(js, publisher.Config{Tasks: store})
	if err != nil {
		log.Fatal(err)
	}
	h, err := taskhttp.New(store, pub, taskhttp.Config{
		Subject: "tasks.report.monthly",
		Prefix:  "/reports",
		IDFunc: func(r *http.Request, payload []byte) (string, error) {
			var req struct {
				Month string `json:"month"`
			}
			if err := json.Unmarshal(payload, &req); err != nil || req.Month == "" {
				return "", errors.New(`want {"month": "2026-11"}`)
			}
			return "report-" + req.Month, nil
		},
		Logger: quiet,
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/reports", h)
	mux.Handle("/reports/", h)
	web := httptest.NewServer(mux)
	defer web.Close()

	resp, err := http.Post(web.URL+"/reports", "application/json", strings.NewReader(`{"month":"2026-11"}`))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	fmt.Println(resp.StatusCode, loc)

	// Follow it: the current state first, then every change, to the end.
	resp, err = http.Get(web.URL + loc + "/events")
	if err != nil {
		log.Fatal(err)
	}
	var last taskhttp.Status
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			_ = json.Unmarshal([]byte(data), &last)
		}
	}
	resp.Body.Close()
	fmt.Println("stream ended with", last.State)

	resp, err = http.Get(web.URL + loc)
	if err != nil {
		log.Fatal(err)
	}
	var st taskhttp.Status
	_ = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, st.State, st.Progress.Message, string(st.Result))

	req, _ := http.NewRequest(http.MethodDelete, web.URL+loc, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	var e taskhttp.ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, e.Error)
	// Output:
	// 202 /reports/report-2026-11
	// stream ended with succeeded
	// 200 succeeded page 3 of 3 {"url":"https://files.example.com/report-2026-11.pdf"}
	// 409 task: already finished: "report-2026-11" is succeeded
}
