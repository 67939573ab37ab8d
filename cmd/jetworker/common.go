package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/jetworker/jetworker"
)

// Base is the configuration every command that talks to NATS shares.
type Base struct {
	ConnEnv
	LogEnv
}

// open builds the logger and connects.
func (b *Base) open(ctx context.Context, std *stdio, name string) (*slog.Logger, *conn, error) {
	log, err := std.logger(b.LogEnv)
	if err != nil {
		return nil, nil, err
	}
	c, err := connect(ctx, b.ConnEnv, name, log)
	if err != nil {
		return nil, nil, err
	}
	return log, c, nil
}

// logConfig logs the effective configuration at Info: every setting of
// the command line, secrets redacted.
func logConfig(ctx context.Context, log *slog.Logger, c *cli, extra ...slog.Attr) {
	attrs := []slog.Attr{slog.String("version", version)}
	for _, s := range c.settings {
		if s.env == "" {
			continue
		}
		attrs = append(attrs, slog.String(strings.ToLower(strings.TrimPrefix(s.env, envPrefix+"_")), s.shown()))
	}
	attrs = append(attrs, extra...)
	log.LogAttrs(ctx, slog.LevelInfo, c.name+" starting", slog.GroupAttrs("config", attrs...))
}

// authKind names the authentication in use without revealing it.
func (c ConnEnv) authKind() string {
	switch {
	case c.Creds != "":
		return "creds"
	case c.NkeySeed != "":
		return "nkey"
	case c.User != "":
		return "user/password"
	case c.Token != "":
		return "token"
	}
	return "none"
}

// parseHeaders builds the headers of repeated --header k=v flags, or nil.
func parseHeaders(kvs []string) (nats.Header, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	h := nats.Header{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("--header %q: want key=value", kv)
		}
		h.Add(k, v)
	}
	return h, nil
}

// runAll runs the parts together (jetworker.RunAll) until ctx ends or one
// fails. A stop is clean when ctx is done and every error only reports
// the cancellation: a part stopped during its start-up (a scheduler
// binding its buckets) returns "...: context canceled" where a stop in
// full run returns nil, and the command must not exit 1 for it.
func runAll(ctx context.Context, parts ...jetworker.Runner) error {
	return cleanStop(ctx, jetworker.RunAll(ctx, parts...))
}

// cleanStop drops from err what only reports the cancellation of ctx,
// once ctx is done: nil when nothing else is left. While ctx is live, or
// for any other error, it returns err as it is.
func cleanStop(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var rest []error
		for _, e := range joined.Unwrap() {
			if e = cleanStop(ctx, e); e != nil {
				rest = append(rest, e)
			}
		}
		return errors.Join(rest...)
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
