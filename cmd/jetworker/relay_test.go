package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jetworker/jetworker/internal/pgtest"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/outbox"
)

// "outbox relay --http-addr" serves the dashboard with the relay's outbox:
// its page and API list the rows the server refused for good.
func TestOutboxRelayDashboard(t *testing.T) {
	t.Parallel()
	_, env := natsEnv(t)
	dbURL := pgtest.Start(t, pgtest.Options{}).NewDatabase(t)
	env = append(env, "JETWORKER_DATABASE_URL="+dbURL)
	if r := jw(t, env, "", "outbox", "migrate"); r.code != 0 {
		t.Fatalf("outbox migrate: exit %d\n%s", r.code, r.text())
	}
	ctx := t.Context()
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(ctx) })
	ob, err := outbox.New(outbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, subject := range []string{"tasks.ok", "nowhere.lost"} {
		if _, err := ob.Enqueue(ctx, tx, subject, []byte(`{}`), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	addr := freeAddr(t)
	_, _ = background(t, append(env, "JETWORKER_HTTP_ADDR="+addr, "JETWORKER_HTTP_TOKEN=relay-token"), "outbox", "relay")
	get := func(path string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer relay-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	testutil.Eventually(t, 30*time.Second, func() error {
		code, body := get("/api/outbox")
		var v struct {
			Known      bool `json:"known"`
			Dead       int  `json:"dead"`
			DeadListed bool `json:"dead_listed"`
			DeadRows   []struct {
				Subject string `json:"subject"`
				Reason  string `json:"reason"`
			} `json:"dead_rows"`
		}
		if code != http.StatusOK || json.Unmarshal([]byte(body), &v) != nil {
			return fmt.Errorf("/api/outbox: %d %s", code, body)
		}
		if !v.Known || v.Dead != 1 || !v.DeadListed || len(v.DeadRows) != 1 || v.DeadRows[0].Subject != "nowhere.lost" || v.DeadRows[0].Reason == "" {
			return fmt.Errorf("/api/outbox: %s", body)
		}
		return nil
	})
	if code, body := get("/outbox"); code != http.StatusOK || !strings.Contains(body, "nowhere.lost") {
		t.Errorf("/outbox: %d\n%.2000s", code, body)
	}
	if code, body := get("/readyz"); code != http.StatusOK || !strings.Contains(body, `"outbox"`) {
		t.Errorf("/readyz: %d %s", code, body)
	}
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, "jetworker_outbox_") {
		t.Errorf("/metrics: %d\n%.1000s", code, body)
	}
}

// A relay serving only --metrics-addr is ready while PostgreSQL answers,
// and says it is not when PostgreSQL goes away.
func TestOutboxRelayReadiness(t *testing.T) {
	t.Parallel()
	_, env := natsEnv(t)
	pg := pgtest.Start(t, pgtest.Options{})
	env = append(env, "JETWORKER_DATABASE_URL="+pg.NewDatabase(t))
	if r := jw(t, env, "", "outbox", "migrate"); r.code != 0 {
		t.Fatalf("outbox migrate: exit %d\n%s", r.code, r.text())
	}
	addr := freeAddr(t)
	_, _ = background(t, append(env, "JETWORKER_METRICS_ADDR="+addr), "outbox", "relay")
	ready := func() (int, string) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	testutil.Eventually(t, 30*time.Second, func() error {
		if code, body := ready(); code != http.StatusOK {
			return fmt.Errorf("/readyz: %d %s", code, body)
		}
		return nil
	})
	pg.Stop()
	testutil.Eventually(t, 30*time.Second, func() error {
		code, body := ready()
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "postgres") {
			return fmt.Errorf("/readyz with PostgreSQL stopped: %d %s", code, body)
		}
		return nil
	})
}

// The outbox commands say why PostgreSQL could not be reached in one
// line, without pgx's per-address listing, and name where they tried.
func TestOutboxDatabaseErrors(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t, pgtest.Options{})
	for _, tc := range []struct{ name, url, want string }{
		{"nothing listens", "postgres://app:Pw0rd-x@127.0.0.1:1/shop?sslmode=disable",
			"jetworker outbox: connect to PostgreSQL at 127.0.0.1:1 (database shop): connection refused: is PostgreSQL running and listening there?\n"},
		{"no such database", fmt.Sprintf("postgres://postgres@127.0.0.1:%d/nope?sslmode=disable", pg.Port()),
			fmt.Sprintf("jetworker outbox: connect to PostgreSQL at 127.0.0.1:%d (database nope): database \"nope\" does not exist (SQLSTATE 3D000)\n", pg.Port())},
	} {
		for _, args := range [][]string{{"outbox", "dead", "ls"}, {"outbox", "migrate"}} {
			t.Run(tc.name+"/"+strings.Join(args[1:], " "), func(t *testing.T) {
				t.Parallel()
				r := jw(t, []string{"JETWORKER_DATABASE_URL=" + tc.url, "JETWORKER_LOG_FORMAT=text"}, "", args...)
				if r.code != 1 || r.stderr != tc.want {
					t.Errorf("exit %d, stderr %q, want exit 1 and %q", r.code, r.stderr, tc.want)
				}
				if strings.Contains(r.stderr, "Pw0rd") {
					t.Errorf("stderr reveals the password: %q", r.stderr)
				}
			})
		}
	}
}
