package main

import (
	"strings"
	"testing"
	"time"
)

func TestRedactDatabaseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"postgres://app:s3cr%40t@db:5432/shop?sslmode=disable", "postgres://[REDACTED]@db:5432/shop?[REDACTED]"},
		{"postgres://app@db/shop?password=s3cret", "postgres://[REDACTED]@db/shop?[REDACTED]"},
		{"postgres://db/shop", "postgres://db/shop"},
		{"host=db user=app password=s3cret dbname=shop", "host=db user=app password=[REDACTED] dbname=shop"},
		{"host=db password='s3 cret' dbname=shop", "host=db password=[REDACTED] dbname=shop"},
	} {
		if got := redactURL(tc.in); got != tc.want || strings.Contains(got, "s3c") {
			t.Errorf("redactURL(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
	// The scrubber learns the password of either form.
	for _, tc := range []struct{ in, secret string }{
		{"postgres://app:s3cr%40t@db/shop", "s3cr@t"},
		{"host=db password='s3 cret' dbname=shop", "s3 cret"},
		{"host=db password=s3cret dbname=shop", "s3cret"},
	} {
		var b strings.Builder
		s := newScrubber(&b)
		s.add(urlSecrets(tc.in)...)
		_, _ = s.Write([]byte("failed to connect: password " + tc.secret + " refused\n"))
		if strings.Contains(b.String(), tc.secret) {
			t.Errorf("scrubber of %q let %q through: %q", tc.in, tc.secret, b.String())
		}
	}
}

func TestOutboxEnvToRelayConfig(t *testing.T) {
	t.Parallel()
	e := outboxEnv{
		OutboxEnv: OutboxEnv{Schema: "billing", Table: "box", DisableNotify: true},
		RelayEnv:  RelayEnv{BatchSize: 500, Concurrency: 3, PollInterval: time.Second, AckTimeout: 2 * time.Second, KeepPublished: true},
	}
	got := e.relayConfig(nil)
	if got.Schema != "billing" || got.Table != "box" || !got.DisableNotify || got.BatchSize != 500 || got.Concurrency != 3 ||
		got.PollInterval != time.Second || got.AckTimeout != 2*time.Second || !got.KeepPublished {
		t.Errorf("got %+v", got)
	}
	e.BatchSize = 0
	e.Concurrency = 100
	if err := inTermsOf(e.relayConfig(nil).Validate(), "outbox", "", outboxFields); err == nil || !strings.Contains(err.Error(), "--concurrency") {
		t.Errorf("bad relay settings: got %v, want an error naming --concurrency", err)
	}
}

func TestFlagArg(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args  []string
		want  string
		found bool
	}{
		{nil, "", false},
		{[]string{"--log-format", "text"}, "text", true},
		{[]string{"-log-format", "text"}, "text", true},
		{[]string{"--log-format=json", "--bogus"}, "json", true},
		{[]string{"--log-format", "json", "--log-format", "text"}, "text", true},
		{[]string{"--log-format"}, "", false},
		{[]string{"--", "--log-format", "text"}, "", false},
		{[]string{"--log-formats", "text"}, "", false},
	} {
		got, found := flagArg(tc.args, "log-format")
		if got != tc.want || found != tc.found {
			t.Errorf("flagArg(%q) = %q, %v; want %q, %v", tc.args, got, found, tc.want, tc.found)
		}
	}
}
