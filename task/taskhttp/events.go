package taskhttp

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/jetworker/jetworker/internal/logkey"
	"github.com/jetworker/jetworker/task"
)

// followed is one value [task.Store.Follow] yielded.
type followed struct {
	info task.Info
	err  error
}

// events streams a task's changes: GET {prefix}/{id}/events.
//
// A goroutine of the request's own ranges over Follow and hands each
// change over, so that the request can write heartbeats while nothing
// changes; the request stops it and waits for it before it returns, so a
// client that goes away leaves nothing running (the KV watch is stopped
// with it).
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(w, id) {
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	changes := make(chan followed)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(changes)
		for info, err := range h.store.Follow(ctx, id) {
			select {
			case changes <- followed{info, err}:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() {
		cancel()
		<-done
	}()

	// The first value decides the answer: a status code can be sent only
	// before the stream starts.
	var first followed
	wait := time.NewTimer(h.cfg.RequestTimeout)
	select {
	case f, ok := <-changes:
		wait.Stop()
		if !ok { // the request ended before Follow yielded anything
			return
		}
		first = f
	case <-wait.C:
		h.fail(w, r, id, fmt.Errorf("taskhttp: follow %q: no current state within %s: %w", id, h.cfg.RequestTimeout, context.DeadlineExceeded))
		return
	}
	if first.err == nil && !h.owns(first.info) {
		first.err = fmt.Errorf("%w: %q is a %s task", task.ErrNotFound, id, first.info.Subject)
	}
	if first.err != nil {
		h.fail(w, r, id, first.err)
		return
	}
	// A reconnecting EventSource that saw the final event already: 204
	// tells it to stop reconnecting.
	if first.info.State.Terminal() && r.Header.Get("Last-Event-ID") == eventID(first.info) {
		w.WriteHeader(http.StatusNoContent)
		return
	}

	// Every write gets a deadline of its own, in place of the server's
	// WriteTimeout: a stream outlives that, and a client that stops
	// reading without going away ends its stream after 2 heartbeats.
	rc := http.NewResponseController(w)
	deadline := func() { _ = rc.SetWriteDeadline(time.Now().Add(2 * h.cfg.Heartbeat)) }
	deadline()
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	send := func(f followed) bool {
		deadline()
		var err error
		if f.err != nil {
			// The watch failed mid-stream: say so and end; the client may
			// reconnect and get the current state.
			h.log.LogAttrs(r.Context(), slog.LevelWarn, "follow task", slog.String(logkey.TaskID, id), slog.Any(logkey.Err, f.err))
			data, _ := json.Marshal(ErrorBody{Error: "the task's changes cannot be followed now; reconnect"})
			_, err = fmt.Fprintf(w, "event: error\ndata: %s\n\n", data)
		} else {
			data, _ := json.Marshal(newStatus(h.cfg.Prefix, f.info))
			_, err = fmt.Fprintf(w, "event: state\nid: %s\ndata: %s\n\n", eventID(f.info), data)
		}
		return err == nil && rc.Flush() == nil && f.err == nil
	}
	if !send(first) || first.info.State.Terminal() {
		return
	}
	beat := time.NewTicker(h.cfg.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return // the client went away
		case <-beat.C:
			deadline()
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case f, ok := <-changes:
			if !ok {
				return
			}
			if !send(f) || f.info.State.Terminal() {
				return
			}
		}
	}
}

// eventID identifies a version of a record, for Last-Event-ID.
func eventID(info task.Info) string {
	return strconv.FormatInt(info.Updated.UnixNano(), 10)
}
