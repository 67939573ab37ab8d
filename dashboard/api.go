package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dlq"
	"github.com/jetworker/jetworker/internal/logkey"
	"github.com/jetworker/jetworker/schedule"
	"github.com/jetworker/jetworker/task"
)

// statusError is an error the API answers with a status of its own (a
// bad request, an unknown action) rather than the one statusOf derives.
type statusError struct {
	code int
	err  error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// badRequest marks err as the client's mistake: 400.
func badRequest(err error) error { return &statusError{http.StatusBadRequest, err} }

// statusOf maps the errors of the libraries to HTTP status codes.
func statusOf(err error) int {
	var se *statusError
	switch {
	case errors.As(err, &se):
		return se.code
	case errors.Is(err, dlq.ErrNotFound), errors.Is(err, schedule.ErrNotFound), errors.Is(err, task.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, task.ErrFinished), errors.Is(err, errNotDelayed):
		return http.StatusConflict
	case errors.Is(err, errNATSUnreachable), errors.Is(err, errNoAnswer), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	case errors.Is(err, schedule.ErrInvalidEntry), errors.Is(err, schedule.ErrNoStream), errors.Is(err, dlq.ErrUntrusted):
		return http.StatusUnprocessableEntity
	default:
		return http.StatusInternalServerError
	}
}

// apiFail answers err as {"error": "..."} with its status (statusOf),
// logging the unexpected ones (500).
func (s *Server) apiFail(w http.ResponseWriter, r *http.Request, err error) {
	err = readError(err)
	code := statusOf(err)
	if code == http.StatusInternalServerError {
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "dashboard request", slog.String(logkey.Path, r.URL.Path), slog.Any(logkey.Err, err))
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

// apiFunc is an API handler that returns its error instead of answering
// it: it writes its response only when it returns nil.
type apiFunc func(w http.ResponseWriter, r *http.Request) error

// api adapts h to an http.HandlerFunc: an error h returns is answered with
// apiFail.
func (s *Server) api(h apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.apiFail(w, r, err)
		}
	}
}

func parseSeq(r *http.Request) (uint64, error) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		return 0, fmt.Errorf("%w: bad sequence %q", dlq.ErrNotFound, r.PathValue("seq"))
	}
	return seq, nil
}

func (s *Server) apiOverview(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.fullOverview(r.Context()))
}

func (s *Server) apiCharts(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.chartsJSON(s.parseWindow(r.URL.Query().Get("window"))))
}

func (s *Server) apiCSRFToken(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"token": s.csrf, "header": CSRFHeader})
}

func (s *Server) apiDeadLetters(w http.ResponseWriter, r *http.Request) error {
	q, err := s.deadLetterQuery(r)
	if err != nil {
		return badRequest(err)
	}
	page, err := s.deadLetters(r.Context(), q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) apiDeadLetter(w http.ResponseWriter, r *http.Request) error {
	seq, err := parseSeq(r)
	if err != nil {
		return err
	}
	dl, err := s.dlq.Get(r.Context(), seq)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, dl)
	return nil
}

func (s *Server) apiReplay(w http.ResponseWriter, r *http.Request) error {
	seq, err := parseSeq(r)
	if err != nil {
		return err
	}
	res, err := s.dlq.Replay(r.Context(), seq)
	if err != nil {
		return err
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "dead letter replayed", slog.Uint64(logkey.Seq, seq), slog.String(logkey.TaskID, res.TaskID), slog.String(logkey.Task, res.Ref))
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) apiDeleteDeadLetter(w http.ResponseWriter, r *http.Request) error {
	seq, err := parseSeq(r)
	if err != nil {
		return err
	}
	if err := s.dlq.Delete(r.Context(), seq); err != nil {
		return err
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "dead letter deleted", slog.Uint64(logkey.Seq, seq))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) apiWorkers(w http.ResponseWriter, r *http.Request) error {
	ws, err := s.workers(r.Context())
	if err != nil {
		return err
	}
	if ws == nil {
		ws = []consumer.WorkerInfo{}
	}
	writeJSON(w, http.StatusOK, ws)
	return nil
}

func (s *Server) apiSchedules(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.schedules(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sv)
	return nil
}

func (s *Server) apiSchedule(w http.ResponseWriter, r *http.Request) error {
	v, err := s.scheduleByName(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// apiPutSchedule creates or replaces the entry named in the path from the
// JSON body (a schedule.Entry; its name, if given, must match the path).
func (s *Server) apiPutSchedule(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	var e schedule.Entry
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return badRequest(fmt.Errorf("decode entry: %w", err))
	}
	if e.Name == "" {
		e.Name = name
	}
	if e.Name != name {
		return badRequest(fmt.Errorf("entry name %q does not match the path's %q", e.Name, name))
	}
	rev, err := s.store.Put(r.Context(), e)
	if err != nil {
		return err
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "schedule saved", slog.String(logkey.Schedule, name))
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "revision": rev})
	return nil
}

func (s *Server) apiDeleteSchedule(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if err := s.store.Delete(r.Context(), name); err != nil {
		return err
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "schedule deleted", slog.String(logkey.Schedule, name))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) apiScheduleAction(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	id, err := s.scheduleAction(r, name, r.PathValue("action"))
	if err != nil {
		return err
	}
	out := map[string]string{"name": name, "action": r.PathValue("action")}
	if id != "" {
		out["id"] = id
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

var errUnknownAction = errors.New("unknown action")

// scheduleAction pauses, resumes or triggers the entry name; trigger returns
// the fired message's ID.
func (s *Server) scheduleAction(r *http.Request, name, action string) (string, error) {
	ctx := r.Context()
	var id string
	var err error
	switch action {
	case "pause":
		err = s.store.Pause(ctx, name)
	case "resume":
		err = s.store.Resume(ctx, name)
	case "trigger":
		id, err = s.store.Trigger(ctx, name)
	default:
		return "", fmt.Errorf("%w: %w %q", schedule.ErrNotFound, errUnknownAction, action)
	}
	if err == nil {
		s.log.LogAttrs(ctx, slog.LevelInfo, "schedule "+action, slog.String(logkey.Schedule, name))
	}
	return id, err
}

func (s *Server) apiTasks(w http.ResponseWriter, r *http.Request) error {
	tq, err := s.tasksQuery(r.URL.Query())
	if err != nil {
		return badRequest(err)
	}
	tl, err := s.listTasks(r.Context(), tq)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, tl.json())
	return nil
}

func (s *Server) apiTask(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ok, err := s.tasksProvisioned(r.Context())
	if err == nil && !ok {
		err = errNoBucket(s.tasks.Config().Bucket, id)
	}
	if err != nil {
		return err
	}
	info, err := s.tasks.Get(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, normalInfo(info))
	return nil
}

// unknownAction is the 404 of a task action other than cancel and run-now.
func unknownAction(action string) error {
	return &statusError{http.StatusNotFound, fmt.Errorf("unknown action %q: want cancel or run-now", action)}
}

// apiTaskAction answers POST /api/tasks/{id}/cancel (the record as Cancel
// left it) and /run-now ({"ref": where the released task is stored}).
func (s *Server) apiTaskAction(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	switch r.PathValue("action") {
	case "cancel":
		info, msg, err := s.cancelTask(r.Context(), id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"task": info, "message": msg})
	case "run-now":
		ref, err := s.runNowTask(r.Context(), id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]string{"ref": ref})
	default:
		return unknownAction(r.PathValue("action"))
	}
	return nil
}

func (s *Server) apiTaskRef(w http.ResponseWriter, r *http.Request) error {
	stream, seq, err := parseRef(r)
	if err != nil {
		return err
	}
	v, err := s.queuedAt(r.Context(), stream, seq)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// apiTaskRefAction answers POST /api/tasks/ref/{stream}/{seq}/cancel and
// DELETE /api/tasks/ref/{stream}/{seq} ({"removed": whether the message was
// still stored}), and POST …/run-now ({"ref": the released task}).
func (s *Server) apiTaskRefAction(w http.ResponseWriter, r *http.Request) error {
	stream, seq, err := parseRef(r)
	if err != nil {
		return err
	}
	action := r.PathValue("action")
	if r.Method == http.MethodDelete {
		action = "cancel"
	}
	switch action {
	case "cancel":
		removed, msg, err := s.cancelRef(r.Context(), stream, seq)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"removed": removed, "message": msg})
	case "run-now":
		ref, err := s.runNowRef(r.Context(), stream, seq)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]string{"ref": ref})
	default:
		return unknownAction(action)
	}
	return nil
}
