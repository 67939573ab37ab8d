package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/jetworker/jetworker/task"
)

// sseKeepAlive is how often an idle event stream sends a comment, so that
// proxies keep it open and a client that went away is noticed.
const sseKeepAlive = 15 * time.Second

// apiTaskEvents streams a tracked task's record as it changes
// (text/event-stream), from task.Store.Follow, a KV watch:
//
//	event: task      data: the record (task.Info), first as it is now, then at each change
//	event: end       data: {} — the task reached a terminal state; the stream ends
//	event: problem   data: {"error": "..."} — the watch failed; the stream ends
//
// A task that does not exist is a 404 JSON error before any event. The
// handler returns as soon as the client goes away (the request's context
// ends, which ends Follow's watch) or Run shuts the server down.
func (s *Server) apiTaskEvents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ok, err := s.tasksProvisioned(r.Context())
	if err == nil && !ok {
		err = errNoBucket(s.tasks.Config().Bucket, id)
	}
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	type update struct {
		info task.Info
		err  error
	}
	updates := make(chan update)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() { // owned: the deferred Wait above
		defer close(updates)
		for info, err := range s.tasks.Follow(ctx, id) {
			select {
			case updates <- update{info, err}:
			case <-ctx.Done():
				return
			}
		}
	})
	rc := http.NewResponseController(w)
	started := false
	send := func(event string, v any) bool {
		data, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	keepAlive := time.NewTicker(sseKeepAlive)
	defer keepAlive.Stop()
	for {
		select {
		case u, ok := <-updates:
			if !ok {
				return // ctx ended
			}
			if u.err != nil {
				if !started {
					s.apiFail(w, r, u.err)
					return
				}
				send("problem", map[string]string{"error": u.err.Error()})
				return
			}
			if !started {
				h := w.Header()
				h.Set("Content-Type", "text/event-stream; charset=utf-8")
				h.Set("Cache-Control", "no-store")
				h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
				w.WriteHeader(http.StatusOK)
				_, _ = fmt.Fprint(w, "retry: 3000\n\n")
				started = true
			}
			if !send("task", normalInfo(u.info)) {
				return
			}
			if u.info.State.Terminal() {
				send("end", struct{}{})
				return
			}
		case <-keepAlive.C:
			if started {
				if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
					return
				}
			}
		case <-s.stopping:
			return
		case <-ctx.Done():
			return
		}
	}
}
