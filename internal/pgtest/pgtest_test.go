package pgtest_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/jetworker/jetworker/internal/pgtest"
)

// TestServer starts a server, writes to a fresh database, crashes and
// restarts the server and reads the committed row back.
func TestServer(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t, pgtest.Options{})
	url := srv.NewDatabase(t)
	if url == srv.NewDatabase(t) {
		t.Fatal("got the same database twice, want a new one per call")
	}
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kv (k text PRIMARY KEY, v text); INSERT INTO kv VALUES ('a', 'b')"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	srv.Crash()
	if _, err := pgx.Connect(ctx, url); err == nil {
		t.Fatal("connected to a crashed server, want an error")
	}
	srv.Restart(t)
	conn, err = pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, "SELECT v FROM kv WHERE k = 'a'").Scan(&v); err != nil || v != "b" {
		t.Fatalf("got %q, %v after the restart, want \"b\"", v, err)
	}
}
