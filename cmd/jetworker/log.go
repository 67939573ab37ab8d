package main

import (
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/lmittmann/tint"
	"golang.org/x/term"
)

// newLogger builds the process logger: tint on a terminal, JSON otherwise,
// unless the format is forced. It reports whether it writes JSON.
func newLogger(e LogEnv, w io.Writer, isTTY bool) (*slog.Logger, bool, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(e.LogLevel)); err != nil {
		return nil, false, usagef("log level %q: want debug, info, warn or error", e.LogLevel)
	}
	format := strings.ToLower(e.LogFormat)
	if format == "auto" || format == "" {
		format = "json"
		if isTTY {
			format = "text"
		}
	}
	switch format {
	case "text":
		return slog.New(tint.NewTextHandler(w, &tint.Options{Level: level, TimeFormat: time.TimeOnly, NoColor: !isTTY})), false, nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: durationsAsText})), true, nil
	}
	return nil, false, usagef("log format %q: want auto, text or json", e.LogFormat)
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// durationsAsText renders durations as "1.5s" instead of nanoseconds.
func durationsAsText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

// serverLogger is the embedded nats-server's logger: warnings and errors
// only, unless debug logging is on (its Info lines are a banner).
func serverLogger(e LogEnv, w io.Writer, isTTY bool) *slog.Logger {
	if !strings.EqualFold(e.LogLevel, "debug") {
		e.LogLevel = "warn"
	}
	l, _, err := newLogger(e, w, isTTY)
	if err != nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
