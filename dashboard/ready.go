package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// CheckFunc is a readiness check: it returns nil when its part is ready and
// an error saying why not otherwise. It must respect ctx, which carries
// Config.CheckTimeout.
type CheckFunc func(ctx context.Context) error

type namedCheck struct {
	name  string
	check CheckFunc
}

// ChanCheck returns a check that passes once ch is closed, such as
// consumer.Consumer.Ready or schedule.Scheduler.Ready; until then it fails
// with an error wrapping [ErrNotReady].
func ChanCheck(ch <-chan struct{}) CheckFunc {
	return func(context.Context) error {
		select {
		case <-ch:
			return nil
		default:
			return fmt.Errorf("%w: not started yet", ErrNotReady)
		}
	}
}

// AddReadyCheck registers a readiness check under name; /readyz reports
// not ready while it fails. Checks can be added before or while the server
// runs. It panics if name is empty or already registered or check is nil.
//
// The server always checks, itself, that the NATS connection is up ("nats")
// and that each task stream and the dead-letter stream exist
// ("stream:TASKS", "stream:DLQ"), and with Config.Outbox that the outbox's
// stats can be read ("outbox").
func (s *Server) AddReadyCheck(name string, check CheckFunc) {
	if name == "" || check == nil {
		panic("dashboard: AddReadyCheck needs a name and a check")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.checks {
		if c.name == name {
			panic(fmt.Sprintf("dashboard: ready check %q registered twice", name))
		}
	}
	s.checks = append(s.checks, namedCheck{name, check})
}

// checkResult is one readiness check's entry in the /readyz body.
type checkResult struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// readiness is the /readyz body.
type readiness struct {
	Status string        `json:"status"`
	Failed []string      `json:"failed,omitempty"`
	Checks []checkResult `json:"checks"`
}

var errNATSDown = errors.New("skipped: NATS connection is not up")

// readiness runs every check concurrently, each bounded by CheckTimeout.
func (s *Server) readiness(ctx context.Context) readiness {
	var checks []namedCheck
	natsUp := s.js.Conn().Status() == nats.CONNECTED
	checks = append(checks, namedCheck{"nats", func(context.Context) error {
		if !natsUp {
			return fmt.Errorf("connection status %s", s.js.Conn().Status())
		}
		return nil
	}})
	for _, name := range append(append([]string(nil), s.cfg.TaskStreams...), s.cfg.DeadLetterStream) {
		checks = append(checks, namedCheck{"stream:" + name, func(ctx context.Context) error {
			if !natsUp {
				return errNATSDown
			}
			if _, err := s.js.Stream(ctx, name); err != nil {
				if errors.Is(err, jetstream.ErrStreamNotFound) {
					return fmt.Errorf("stream %q not found (not provisioned)", name)
				}
				return fmt.Errorf("stream %q: %w", name, err)
			}
			return nil
		}})
	}
	s.mu.Lock()
	checks = append(checks, s.checks...)
	s.mu.Unlock()

	results := make([]checkResult, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, s.cfg.CheckTimeout)
			defer cancel()
			err := c.check(cctx)
			results[i] = checkResult{Name: c.name, OK: err == nil}
			if err != nil {
				results[i].Error = err.Error()
			}
		})
	}
	wg.Wait()
	r := readiness{Status: "ready", Checks: results}
	for _, c := range results {
		if !c.OK {
			r.Failed = append(r.Failed, c.Name)
		}
	}
	if len(r.Failed) > 0 {
		r.Status = "not ready"
	}
	return r
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	rd := s.readiness(r.Context())
	code := http.StatusOK
	if len(rd.Failed) > 0 {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, rd)
}
