package taskhttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/jetworker/jetworker/internal/logkey"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/task"
)

// Handler serves the tasks of one subject over HTTP: POST enqueues a
// tracked task and answers 202 Accepted with its Location, GET shows its
// status, DELETE cancels it, and GET .../events streams its changes. The
// package documentation specifies the contract. It is safe for concurrent
// use. Create it with [New].
type Handler struct {
	store *task.Store
	pub   *publisher.Publisher
	cfg   Config
	log   *slog.Logger
	mux   *http.ServeMux
	// ownIDs: Config.IDFunc is the caller's, so an ID may name an existing
	// task.
	ownIDs bool
}

var _ http.Handler = (*Handler)(nil)

// New returns a Handler that enqueues with pub and reads and cancels
// tasks through store; pub must record tasks in store
// (publisher.Config.Tasks). It validates cfg and does no network I/O.
func New(store *task.Store, pub *publisher.Publisher, cfg Config) (*Handler, error) {
	if store == nil {
		return nil, errors.New("taskhttp: nil task store")
	}
	if pub == nil {
		return nil, errors.New("taskhttp: nil publisher")
	}
	ownIDs := cfg.IDFunc != nil
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	h := &Handler{
		store: store, pub: pub, cfg: cfg, mux: http.NewServeMux(), ownIDs: ownIDs,
		log: cfg.Logger.With(slog.String(logkey.Component, "taskhttp"), slog.String(logkey.Subject, cfg.Subject)),
	}
	p := cfg.Prefix
	h.mux.HandleFunc("POST "+p, h.create)
	h.mux.HandleFunc(p, methods("POST"))
	h.mux.HandleFunc("GET "+p+"/{id}", h.get)
	h.mux.HandleFunc("DELETE "+p+"/{id}", h.cancel)
	h.mux.HandleFunc(p+"/{id}", methods("GET, HEAD, DELETE"))
	h.mux.HandleFunc("GET "+p+"/{id}/events", h.events)
	h.mux.HandleFunc(p+"/{id}/events", methods("GET, HEAD"))
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path))
	})
	return h, nil
}

// Config returns the effective configuration, defaults filled in.
func (h *Handler) Config() Config { return h.cfg }

// ServeHTTP routes the request. Mount the handler at its prefix and
// below it: mux.Handle("/reports", h) and mux.Handle("/reports/", h).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// methods answers 405 with the methods a path allows.
func methods(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow))
	}
}

// create enqueues a task: POST {prefix}.
func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > h.cfg.MaxBody {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body of %d bytes, more than the %d allowed", r.ContentLength, h.cfg.MaxBody))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than the %d bytes allowed", h.cfg.MaxBody))
			return
		}
		writeError(w, http.StatusBadRequest, "read request body: "+err.Error())
		return
	}
	payload, err := h.cfg.DecodeFunc(r, body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	id, err := h.cfg.IDFunc(r, payload)
	switch {
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case id == "" || len(id) > MaxIDLength:
		h.fail(w, r, "", fmt.Errorf("taskhttp: IDFunc returned an ID of %d bytes, want 1 to %d", len(id), MaxIDLength))
		return
	}

	// The publish is not cut short by the client going away: a task
	// whose record is written and whose publish is abandoned halfway
	// would be reported pending and never run.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.cfg.RequestTimeout)
	defer cancel()
	if h.ownIDs {
		// An ID that names a task already: show it, publish nothing.
		if info, err := h.store.Get(ctx, id); err == nil {
			if !h.owns(info) {
				writeError(w, http.StatusConflict, fmt.Sprintf("task ID %q is taken by a task of another kind", id))
				return
			}
			h.seeOther(w, info)
			return
		} else if !errors.Is(err, task.ErrNotFound) {
			h.fail(w, r, id, err)
			return
		}
	}
	opts := h.cfg.Publish
	opts.ID, opts.Track = id, true
	res, err := h.pub.Publish(ctx, h.cfg.Subject, payload, &opts)
	switch {
	case errors.Is(err, publisher.ErrPayloadTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "task payload larger than the server's max payload")
		return
	case err != nil:
		h.fail(w, r, id, err)
		return
	case res.Duplicate:
		// The same ID published meanwhile (the uniqueness lock, or the
		// stream's duplicate window).
		info, err := h.lookup(ctx, id)
		if err != nil {
			writeError(w, http.StatusConflict, fmt.Sprintf("task ID %q is taken by a queued task", id))
			return
		}
		h.seeOther(w, info)
		return
	}
	state := task.Pending
	if opts.Delay > 0 {
		state = task.Scheduled
	}
	l := links(h.cfg.Prefix, id)
	w.Header().Set("Location", l.Self)
	h.retryAfter(w)
	writeJSON(w, http.StatusAccepted, Accepted{ID: id, State: state, Links: l})
}

// lookup returns the record of task id if it is one of this handler's
// (of its subject), or an error wrapping [task.ErrNotFound].
func (h *Handler) lookup(ctx context.Context, id string) (task.Info, error) {
	info, err := h.store.Get(ctx, id)
	if err == nil && !h.owns(info) {
		return task.Info{}, fmt.Errorf("%w: %q is a %s task", task.ErrNotFound, id, info.Subject)
	}
	return info, err
}

// owns reports whether a record is of a task this handler enqueues: the
// store may hold other subjects' tasks, which are none of its clients'
// business.
func (h *Handler) owns(info task.Info) bool { return info.Subject == h.cfg.Subject }

// seeOther answers a POST of an existing task's ID.
func (h *Handler) seeOther(w http.ResponseWriter, info task.Info) {
	l := links(h.cfg.Prefix, info.ID)
	w.Header().Set("Location", l.Self)
	writeJSON(w, http.StatusSeeOther, Accepted{ID: info.ID, State: info.State, Links: l})
}

// get shows a task's status: GET {prefix}/{id}.
func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(w, id) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.RequestTimeout)
	defer cancel()
	info, err := h.lookup(ctx, id)
	if err != nil {
		h.fail(w, r, id, err)
		return
	}
	if !info.State.Terminal() {
		h.retryAfter(w)
	}
	writeJSON(w, http.StatusOK, newStatus(h.cfg.Prefix, info))
}

// cancel cancels a task: DELETE {prefix}/{id}.
func (h *Handler) cancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(w, id) {
		return
	}
	// Like a publish, a cancel is not abandoned halfway.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.cfg.RequestTimeout)
	defer cancel()
	// Only this handler's tasks: Cancel of an unknown ID would still
	// write a cancel request (for an untracked task of that ID), which
	// every worker keeps for the bucket's TTL.
	if _, err := h.lookup(ctx, id); err != nil {
		h.fail(w, r, id, err)
		return
	}
	info, err := h.store.Cancel(ctx, id)
	code, err := cancelOutcome(id, info, err)
	if err != nil {
		if code == http.StatusConflict {
			writeJSON(w, code, ErrorBody{Error: err.Error(), State: info.State})
			return
		}
		h.fail(w, r, id, err)
		return
	}
	writeJSON(w, code, newStatus(h.cfg.Prefix, info))
}

// cancelOutcome maps what [task.Store.Cancel] returned to an answer: 202
// for a cancel requested or done, 409 for a task that finished first,
// whether Cancel saw it finished (ErrFinished) or it finished while
// Cancel ran (a terminal state other than cancelled, no error).
func cancelOutcome(id string, info task.Info, err error) (int, error) {
	switch {
	case errors.Is(err, task.ErrFinished):
		return http.StatusConflict, err
	case err != nil:
		return 0, err
	case info.State.Terminal() && info.State != task.Cancelled:
		return http.StatusConflict, fmt.Errorf("%w: %q is %s", task.ErrFinished, id, info.State)
	}
	return http.StatusAccepted, nil
}

// fail answers an error: 404 for an unknown task, 503 when NATS or the
// stream is unavailable, 500 otherwise; 5xx are logged.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, id string, err error) {
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		return // the client went away: nobody to answer
	}
	code := http.StatusInternalServerError
	msg := "internal error"
	switch {
	case errors.Is(err, task.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no task %q", id))
		return
	case errors.Is(err, publisher.ErrOutcomeUnknown):
		code, msg = http.StatusServiceUnavailable, "the task may or may not be enqueued; its status tells"
		w.Header().Set("Location", links(h.cfg.Prefix, id).Self)
	case errors.Is(err, publisher.ErrNoStream), errors.Is(err, context.DeadlineExceeded):
		code, msg = http.StatusServiceUnavailable, "the task queue is unavailable; retry later"
	}
	attrs := []slog.Attr{slog.String("method", r.Method), slog.String(logkey.Path, r.URL.Path), slog.Int("status", code), slog.Any(logkey.Err, err)}
	if id != "" {
		attrs = append(attrs, slog.String(logkey.TaskID, id))
	}
	h.log.LogAttrs(r.Context(), slog.LevelError, "task request", attrs...)
	writeError(w, code, msg)
}

func (h *Handler) retryAfter(w http.ResponseWriter) {
	if h.cfg.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(h.cfg.RetryAfter.Seconds()))))
	}
}

// validID answers 404 for an ID no task can have.
func validID(w http.ResponseWriter, id string) bool {
	if id == "" || len(id) > MaxIDLength {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no task with an ID of %d bytes (1 to %d)", len(id), MaxIDLength))
		return false
	}
	return true
}

// decodeJSON is the default Config.DecodeFunc: the body is the payload,
// and must be one JSON value.
func decodeJSON(_ *http.Request, body []byte) ([]byte, error) {
	if len(body) == 0 {
		return nil, errors.New("empty request body: want a JSON value")
	}
	if !json.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v)
		return nil, fmt.Errorf("request body is not JSON: %v", err)
	}
	return body, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		code, data = http.StatusInternalServerError, []byte(`{"error":"encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(data, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorBody{Error: msg})
}
