package main

import (
	"context"
	"flag"
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go"
)

// Base is the configuration every NATS command shares.
type Base struct {
	ConnEnv
	LogEnv
	StreamEnv
}

// bind loads env (the command's whole environment struct, which embeds
// b) from JETWORKER_* variables and registers b's flags on fs.
func (b *Base) bind(fs *flag.FlagSet, env any) error {
	if err := loadEnv(env); err != nil {
		return err
	}
	f := flagEnv{fs}
	b.ConnEnv.flags(f)
	b.LogEnv.flags(f)
	b.StreamEnv.flags(f)
	return nil
}

// open builds the logger and connects.
func (b *Base) open(ctx context.Context, std *stdio, name string) (*slog.Logger, *conn, error) {
	log, err := newLogger(b.LogEnv, std.err, std.isTTY)
	if err != nil {
		return nil, nil, err
	}
	c, err := connect(ctx, b.ConnEnv, name, log)
	if err != nil {
		return nil, nil, err
	}
	return log, c, nil
}

// logConfig logs the effective configuration at Info, secrets redacted.
func logConfig(log *slog.Logger, name string, b Base, extra ...slog.Attr) {
	attrs := []slog.Attr{
		slog.String("nats_url", redactURL(b.NATSURL)),
		slog.String("auth", b.authKind()),
		slog.Bool("tls", b.TLSCA != "" || b.TLSCert != "" || strings.HasPrefix(b.NATSURL, "tls://")),
		slog.String("stream", b.Stream),
		slog.String("dlq_stream", b.DLQStream),
	}
	log.LogAttrs(context.Background(), slog.LevelInfo, name+" starting", append(attrs, extra...)...)
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

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// header builds the headers of repeated --header k=v flags, or nil.
func (m multiFlag) header() (nats.Header, error) {
	if len(m) == 0 {
		return nil, nil
	}
	h := nats.Header{}
	for _, kv := range m {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("--header %q: want key=value", kv)
		}
		h.Add(k, v)
	}
	return h, nil
}
