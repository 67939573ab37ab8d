package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// stdio is where a command reads and writes; tests swap it.
type stdio struct {
	in  io.Reader
	out io.Writer
	// err is standard error behind the secret scrubber: every log line
	// and error message goes through it.
	err   io.Writer
	scrub *scrubber
	isTTY bool // standard error is a terminal

	// log is the command's logger once it has one, and json whether it
	// writes JSON: the error that ends the command is then one more log
	// line.
	log  *slog.Logger
	json bool
}

func newStdio(in io.Reader, out, errw io.Writer, isTTY bool) *stdio {
	s := newScrubber(errw)
	return &stdio{in: in, out: out, err: s, scrub: s, isTTY: isTTY}
}

// logger builds the command's logger from e and keeps it for the final
// error.
func (std *stdio) logger(e LogEnv) (*slog.Logger, error) {
	log, isJSON, err := newLogger(e, std.err, std.isTTY)
	if err != nil {
		return nil, err
	}
	std.log, std.json = log, isJSON
	return log, nil
}

// fatal reports the error that ends command name: in JSON log mode as one
// JSON log line, otherwise as one plain line. A usage error in text mode
// points to --help.
func (std *stdio) fatal(name string, err error, code int, args []string) {
	msg := oneLine(strings.TrimPrefix(err.Error(), name+": "))
	log, isJSON := std.log, std.json
	if log == nil {
		// The command failed before it built its logger (a bad flag or
		// variable): follow the log format its --log-format flag or the
		// environment asks for.
		format, ok := flagArg(args, "log-format")
		if !ok {
			format = os.Getenv(envPrefix + "_LOG_FORMAT")
		}
		format = strings.ToLower(format)
		isJSON = format == "json" || ((format == "" || format == "auto") && !std.isTTY)
		if isJSON {
			log = slog.New(slog.NewJSONHandler(std.err, nil))
		}
	}
	if isJSON {
		log.LogAttrs(context.Background(), slog.LevelError, "jetworker "+name+": "+msg,
			slog.String("command", name), slog.Int("exit_code", code))
		return
	}
	if code == exitUsage && !strings.Contains(msg, "--help") {
		msg += fmt.Sprintf(` (see "jetworker %s --help")`, name)
	}
	fmt.Fprintf(std.err, "jetworker %s: %s\n", name, inert(msg))
}

// flagArg finds the value of --name (or -name) in a command's arguments,
// as "--name v" or "--name=v", the last one winning as with package flag;
// arguments after "--" are not flags.
func flagArg(args []string, name string) (string, bool) {
	var v string
	found := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		f, ok := strings.CutPrefix(a, "--")
		if !ok {
			if f, ok = strings.CutPrefix(a, "-"); !ok {
				continue
			}
		}
		switch {
		case f == name && i+1 < len(args):
			v, found = args[i+1], true
			i++
		case strings.HasPrefix(f, name+"="):
			v, found = f[len(name)+1:], true
		}
	}
	return v, found
}

// oneLine joins the lines of a multi-line error (errors.Join) with "; ".
func oneLine(s string) string {
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' })
	return strings.Join(lines, "; ")
}

// printJSON prints v as indented JSON: exact, not escaped for the
// terminal beyond what JSON itself escapes.
func printJSON(std *stdio, v any) error {
	enc := json.NewEncoder(std.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// excerpt shortens s to n runes on one line, inert.
func excerpt(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		s = string(r[:n-1]) + "…"
	}
	return inert(s)
}
