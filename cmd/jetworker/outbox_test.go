package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jetworker/jetworker/outbox"
)

func TestRedactDatabaseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"postgres://app:s3cr%40t@db:5432/shop?sslmode=disable", "postgres://app:[REDACTED]@db:5432/shop?sslmode=disable"},
		{"postgres://app@db/shop?password=s3cret", "postgres://app@db/shop?password=[REDACTED]"},
		{"postgres://db/shop", "postgres://db/shop"},
		{"host=db user=app password=s3cret dbname=shop", "host=db user=app password=[REDACTED] dbname=shop"},
		{"host=db password='s3 cret' dbname=shop", "host=db password=[REDACTED] dbname=shop"},
	} {
		if got := redactDBURL(tc.in); got != tc.want || strings.Contains(got, "s3c") {
			t.Errorf("redactDBURL(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
	err := redactDB(errors.New("cannot parse postgres://app:s3cret@db: bad"), "postgres://app:s3cret@db")
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("redactDB left the password in %q", err)
	}
}

func TestOutboxEnvToRelayConfig(t *testing.T) {
	t.Parallel()
	e := outboxEnv{Schema: "billing", Table: "box", BatchSize: 500, Concurrency: 3, PollInterval: time.Second,
		AckTimeout: 2 * time.Second, KeepPublished: true, DisableNotify: true}
	got := e.relayConfig(nil)
	want := outbox.RelayConfig{Config: outbox.Config{Schema: "billing", Table: "box", DisableNotify: true},
		BatchSize: 500, Concurrency: 3, PollInterval: time.Second, AckTimeout: 2 * time.Second, KeepPublished: true}
	if got.Config.Schema != want.Schema || got.Table != want.Table || got.DisableNotify != want.DisableNotify ||
		got.BatchSize != want.BatchSize || got.Concurrency != want.Concurrency || got.PollInterval != want.PollInterval ||
		got.AckTimeout != want.AckTimeout || got.KeepPublished != want.KeepPublished {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
