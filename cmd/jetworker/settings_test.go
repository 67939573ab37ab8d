package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"
)

// envStructs are the settings structs of every command.
var envStructs = []any{
	workerEnv{}, schedulerEnv{}, devEnv{}, provisionEnv{}, scheduleEnv{}, dlqEnv{},
	statusEnv{}, Base{}, benchEnv{}, healthEnv{}, outboxEnv{}, taskEnv{}, publishEnv{},
}

// Every environment variable is declared by exactly one struct field,
// which every command that reads it embeds.
func TestEachSettingDeclaredOnce(t *testing.T) {
	t.Parallel()
	declared := map[string]string{} // env -> Type.Field
	var walk func(rt reflect.Type)
	walk = func(rt reflect.Type) {
		for i := range rt.NumField() {
			f := rt.Field(i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
				continue
			}
			env := f.Tag.Get("envconfig")
			if env == "" {
				t.Errorf("%s.%s has no envconfig tag", rt.Name(), f.Name)
				continue
			}
			at := rt.Name() + "." + f.Name
			if prev, ok := declared[env]; ok && prev != at {
				t.Errorf("%s is declared twice: %s and %s", env, prev, at)
			}
			declared[env] = at
		}
	}
	for _, s := range envStructs {
		walk(reflect.TypeOf(s))
	}
	if len(declared) < 40 {
		t.Fatalf("found %d variables: the walk missed some", len(declared))
	}
}

// Every command builds its command line (the binder panics on a field
// without flag, desc or group, or on a flag declared twice), and its
// --help-all lists each of its variables once, beside its flag.
func TestEveryCommandHelp(t *testing.T) {
	t.Parallel()
	for name := range commands() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			std := newStdio(strings.NewReader(""), &out, &errb, false)
			if code := run(t.Context(), std, []string{name, "--help-all"}); code != exitOK {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			help := out.String()
			if !strings.HasPrefix(help, "Usage: jetworker "+name) {
				t.Fatalf("help starts %q", firstLine(help))
			}
			seen := map[string]bool{}
			for line := range strings.SplitSeq(help, "\n") {
				fields := strings.Fields(line)
				for i, f := range fields {
					if strings.HasPrefix(f, "JETWORKER_") && i > 0 {
						if seen[f] {
							t.Errorf("%s listed twice", f)
						}
						seen[f] = true
						if !strings.HasPrefix(fields[0], "--") {
							t.Errorf("%s is not beside a flag: %q", f, line)
						}
					}
				}
			}
		})
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

// testSettings is a settings struct with every supported type.
type testSettings struct {
	Name   string        `envconfig:"JETWORKER_TEST_NAME" flag:"name" default:"dflt" group:"Test" desc:"a name"`
	Count  int           `envconfig:"JETWORKER_TEST_COUNT" flag:"count" default:"3" group:"Test" desc:"a count"`
	On     bool          `envconfig:"JETWORKER_TEST_ON" flag:"on" default:"true" group:"Test" desc:"a switch"`
	Wait   time.Duration `envconfig:"JETWORKER_TEST_WAIT" flag:"wait" default:"5s" group:"Test" desc:"a wait"`
	List   []string      `envconfig:"JETWORKER_TEST_LIST" flag:"list" group:"Test" desc:"a list"`
	Secret string        `envconfig:"JETWORKER_TEST_SECRET" flag:"secret" secret:"true" group:"Test" desc:"a secret"`
	Deep   string        `envconfig:"JETWORKER_TEST_DEEP" flag:"deep" advanced:"true" group:"Test" desc:"an advanced one"`
	User   string        `envconfig:"JETWORKER_TEST_USER" flag:"user" group:"Test" desc:"envconfig would fall back to $USER for a tag USER"`
}

type testOpts struct {
	Header []string `flag:"header" repeat:"true" desc:"repeatable"`
	Yes    bool     `flag:"yes" desc:"yes"`
}

func parseTest(t *testing.T, args ...string) (testSettings, testOpts, []string, error) {
	t.Helper()
	var (
		s testSettings
		o testOpts
	)
	std := newStdio(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{}, false)
	pos, err := newCLI("test", "", "").options("Options", &o).env(&s).parse(std, args)
	return s, o, pos, err
}

// Not parallel: t.Setenv.
func TestFlagsWinOverTheEnvironment(t *testing.T) {
	t.Setenv("JETWORKER_TEST_NAME", "from-env")
	t.Setenv("JETWORKER_TEST_COUNT", "7")
	t.Setenv("JETWORKER_TEST_LIST", "a, b,,c")
	t.Setenv("USER", "alice") // the bare name is never read

	s, _, _, err := parseTest(t)
	if err != nil {
		t.Fatal(err)
	}
	want := testSettings{Name: "from-env", Count: 7, On: true, Wait: 5 * time.Second, List: []string{"a", "b", "c"}}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("environment: got %+v, want %+v", s, want)
	}

	s, o, pos, err := parseTest(t, "--name", "from-flag", "pos1", "--count=9", "--on=false", "--wait", "1m",
		"--list", "x,y", "--list", "z", "--header", "a=1,2", "--header", "b=3", "--yes", "pos2", "--", "--not-a-flag")
	if err != nil {
		t.Fatal(err)
	}
	want = testSettings{Name: "from-flag", Count: 9, On: false, Wait: time.Minute, List: []string{"x", "y", "z"}}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("flags: got %+v, want %+v", s, want)
	}
	if !slices.Equal(o.Header, []string{"a=1,2", "b=3"}) || !o.Yes {
		t.Fatalf("options: got %+v", o)
	}
	if !slices.Equal(pos, []string{"pos1", "pos2", "--not-a-flag"}) {
		t.Fatalf("positional: got %q", pos)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	s, _, _, err := parseTest(t)
	want := testSettings{Name: "dflt", Count: 3, On: true, Wait: 5 * time.Second}
	if err != nil || !reflect.DeepEqual(s, want) {
		t.Fatalf("got %+v, %v; want %+v", s, err, want)
	}
}

// Not parallel: t.Setenv.
func TestSettingErrors(t *testing.T) {
	tests := []struct {
		name, env, value string
		args             []string
		want             string
	}{
		{name: "bad variable", env: "JETWORKER_TEST_COUNT", value: "many", want: `JETWORKER_TEST_COUNT="many": want a whole number`},
		{name: "bad duration variable", env: "JETWORKER_TEST_WAIT", value: "soon", want: `JETWORKER_TEST_WAIT="soon": want a duration like 30s`},
		{name: "bad flag value", args: []string{"--count", "x"}, want: `--count "x": want a whole number`},
		{name: "bad bool flag", args: []string{"--on=maybe"}, want: `--on "maybe": want true or false`},
		{name: "unknown flag", args: []string{"--bogus"}, want: `unknown flag --bogus (see "jetworker test --help")`},
		{name: "missing value", args: []string{"--name"}, want: `flag --name needs a value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv(tt.env, tt.value)
			}
			_, _, _, err := parseTest(t, tt.args...)
			var ue *usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want a usage error containing %q", err, tt.want)
			}
		})
	}
}

// Not parallel: t.Setenv.
func TestHelp(t *testing.T) {
	t.Setenv("JETWORKER_TEST_SECRET", "s3cr3t-value")
	t.Setenv("JETWORKER_TEST_NAME", "mine")
	help := func(args ...string) string {
		var out bytes.Buffer
		std := newStdio(strings.NewReader(""), &out, &bytes.Buffer{}, false)
		var (
			s testSettings
			o testOpts
		)
		_, err := newCLI("test", " ARG", "About the test.").options("Options", &o).env(&s).parse(std, args)
		if !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%v: got %v, want flag.ErrHelp", args, err)
		}
		return out.String()
	}
	short := help("--help")
	for _, want := range []string{
		"Usage: jetworker test [flags] ARG\n\nAbout the test.\n",
		"\nOptions:\n  --header VALUE",
		"\nTest:\n  --name VALUE",
		"JETWORKER_TEST_NAME",
		"a name (default dflt; set)",
		"a count (default 3)\n",
		"a secret (set)\n",
		"More flags (--deep): jetworker test --help-all",
	} {
		if !strings.Contains(short, want) {
			t.Errorf("--help lacks %q:\n%s", want, short)
		}
	}
	for _, not := range []string{"s3cr3t", "mine", "JETWORKER_TEST_DEEP"} {
		if strings.Contains(short, not) {
			t.Errorf("--help shows %q:\n%s", not, short)
		}
	}
	if h := help("-h"); h != short {
		t.Errorf("-h differs from --help")
	}
	all := help("--help-all")
	if !strings.Contains(all, "--deep VALUE") || !strings.Contains(all, "JETWORKER_TEST_DEEP") || strings.Contains(all, "More flags") || strings.Contains(all, "s3cr3t") {
		t.Errorf("--help-all:\n%s", all)
	}
}

func TestFatalLine(t *testing.T) {
	t.Parallel()
	failing := errors.New("worker: connect to nats://[REDACTED]@h:1: connection refused\nsecond line \x1b]0;title\x07")
	t.Run("text", func(t *testing.T) {
		t.Parallel()
		var errb bytes.Buffer
		std := newStdio(nil, &bytes.Buffer{}, &errb, true)
		std.fatal("worker", failing, exitError, nil)
		want := `jetworker worker: connect to nats://[REDACTED]@h:1: connection refused; second line \x1b]0;title\x07` + "\n"
		if errb.String() != want {
			t.Fatalf("got %q, want %q", errb.String(), want)
		}
	})
	t.Run("json", func(t *testing.T) {
		t.Parallel()
		var errb bytes.Buffer
		std := newStdio(nil, &bytes.Buffer{}, &errb, false)
		if _, err := std.logger(LogEnv{LogLevel: "info", LogFormat: "json"}); err != nil {
			t.Fatal(err)
		}
		std.fatal("worker", failing, exitError, nil)
		lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
		var rec struct {
			Level, Msg, Command string
			Code                int `json:"exit_code"`
		}
		if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &rec) != nil || rec.Level != "ERROR" || rec.Command != "worker" || rec.Code != 1 ||
			!strings.HasPrefix(rec.Msg, "jetworker worker: connect to") || strings.Contains(rec.Msg, "worker: worker:") {
			t.Fatalf("got %q", errb.String())
		}
	})
	t.Run("usage error in text mode points to help", func(t *testing.T) {
		t.Parallel()
		var errb bytes.Buffer
		std := newStdio(nil, &bytes.Buffer{}, &errb, true)
		std.fatal("publish", usagef("want SUBJECT [DATA], got 0 arguments"), exitUsage, nil)
		if want := "jetworker publish: want SUBJECT [DATA], got 0 arguments (see \"jetworker publish --help\")\n"; errb.String() != want {
			t.Fatalf("got %q, want %q", errb.String(), want)
		}
	})
}

func TestBuildVersion(t *testing.T) {
	t.Parallel()
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		v, c string
	}{
		{"no build info", nil, false, "dev", "none"},
		{"go install @v1.2.3", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, true, "v1.2.3", "none"},
		{"go build in a clean checkout", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("0123456789abcdef0123", "false")}, true, "dev", "0123456789ab"},
		{"go build with changes", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("0123456789abcdef0123", "true")}, true, "dev", "0123456789ab+dirty"},
	} {
		if v, c := buildVersion(tc.bi, tc.ok); v != tc.v || c != tc.c {
			t.Errorf("%s: got %s (commit %s), want %s (commit %s)", tc.name, v, c, tc.v, tc.c)
		}
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		var out bytes.Buffer
		std := newStdio(nil, &out, &bytes.Buffer{}, false)
		v, c := buildVersion(debug.ReadBuildInfo())
		if code := run(context.Background(), std, args); code != exitOK || out.String() != "jetworker "+v+" (commit "+c+")\n" {
			t.Errorf("%v: exit %d, %q", args, code, out.String())
		}
	}
}
