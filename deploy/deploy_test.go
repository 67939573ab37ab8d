package deploy_test

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"sigs.k8s.io/yaml"
)

// jetworkerBin is the jetworker binary TestMain builds once for every test
// of the package; it is set before any test runs and never changed.
var jetworkerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "jetworker-deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	jetworkerBin = filepath.Join(dir, "jetworker")
	out, err := exec.Command("go", "build", "-o", jetworkerBin, "github.com/jetworker/jetworker/cmd/jetworker").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build jetworker: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestYAMLFilesParse parses every YAML and JSON document under deploy/.
func TestYAMLFilesParse(t *testing.T) {
	t.Parallel()
	n := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml", ".json":
		default:
			return nil
		}
		for i, doc := range yamlDocs(t, path) {
			var v any
			if err := yaml.Unmarshal(doc, &v); err != nil {
				t.Errorf("%s: document %d: %v", path, i+1, err)
			}
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Errorf("parsed %d YAML/JSON documents under deploy/, want at least 10", n)
	}
}

// TestNATSConfigs loads every NATS server config with the server's own
// parser (what "nats-server -t -c FILE" does) and checks the settings that
// decide whether anything is lost.
//
// Not parallel: the configs read NATS_PASSWORD and friends from the
// environment, which t.Setenv sets.
func TestNATSConfigs(t *testing.T) {
	t.Setenv("NATS_PASSWORD", "test-password")
	t.Setenv("NATS_CLUSTER_PASSWORD", "test-cluster-password")
	for i := 1; i <= 3; i++ {
		t.Setenv(fmt.Sprintf("NATS_ROUTE_%d", i), fmt.Sprintf("nats-route://route:test-cluster-password@nats-%d:6222", i))
	}
	confs, err := filepath.Glob("nats/*.conf")
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := filepath.Glob("nats/cluster/*.conf")
	if err != nil {
		t.Fatal(err)
	}
	confs = append(confs, cluster...)
	if len(confs) < 5 {
		t.Fatalf("found %v, want single.conf, tls.conf and three cluster nodes", confs)
	}
	names := map[string]string{}
	for _, path := range confs {
		t.Run(path, func(t *testing.T) {
			if filepath.Base(path) == "tls.conf" {
				path = tlsConfWithCerts(t, path)
			}
			opts := loadNATSConfig(t, path)
			if strings.Contains(path, "cluster") {
				if opts.Cluster.Name == "" || opts.Cluster.Port != 6222 || len(opts.Routes) != 3 {
					t.Errorf("cluster name %q port %d routes %d, want a named cluster on 6222 with 3 routes", opts.Cluster.Name, opts.Cluster.Port, len(opts.Routes))
				}
				if opts.Cluster.Username == "" || opts.Cluster.Password == "" {
					t.Error("cluster routes accept anyone: want cluster authorization")
				}
				if prev, ok := names[opts.ServerName]; ok {
					t.Errorf("server_name %q also in %s", opts.ServerName, prev)
				}
				names[opts.ServerName] = path
			}
		})
	}
}

// loadNATSConfig parses a NATS config and checks what every jetworker
// deployment needs.
func loadNATSConfig(t *testing.T, path string) *server.Options {
	t.Helper()
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server -t -c %s: %v", path, err)
	}
	if !opts.JetStream {
		t.Error("jetstream is off")
	}
	if !opts.SyncAlways {
		t.Errorf("sync_interval is %v, want always: an OS crash would lose acknowledged tasks", opts.SyncInterval)
	}
	if opts.StoreDir == "" {
		t.Error("no jetstream store_dir")
	}
	if opts.ServerName == "" {
		t.Error("no server_name")
	}
	if opts.Port != 4222 {
		t.Errorf("client port %d, want 4222", opts.Port)
	}
	if (opts.Host == "0.0.0.0" || opts.Host == "") && opts.Username == "" && len(opts.Users) == 0 && len(opts.Nkeys) == 0 && opts.Authorization == "" && len(opts.TrustedOperators) == 0 {
		t.Errorf("listens on %q without authentication", opts.Host)
	}
	return opts
}

// tlsConfWithCerts makes certificates with gen-certs.sh, the documented
// way, and returns a copy of the TLS config that points at them.
func tlsConfWithCerts(t *testing.T, path string) string {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed: cannot run nats/gen-certs.sh")
	}
	dir := t.TempDir()
	out, err := exec.Command("sh", "nats/gen-certs.sh", dir, "localhost", "127.0.0.1").CombinedOutput()
	if err != nil {
		t.Fatalf("gen-certs.sh: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const certDir = "/etc/nats/tls/"
	if !bytes.Contains(raw, []byte(certDir)) {
		t.Fatalf("%s does not keep its certificates in %s", path, certDir)
	}
	conf := filepath.Join(dir, "tls.conf")
	if err := os.WriteFile(conf, bytes.ReplaceAll(raw, []byte(certDir), []byte(dir+"/")), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("generated config:\n%s", raw)
		}
	})
	opts := loadNATSConfig(t, conf)
	if opts.TLSConfig == nil || opts.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Errorf("tls config %v, want mutual TLS (verify: true)", opts.TLSConfig != nil)
	}
	return conf
}

// TestCompose checks compose.yaml: each jetworker service runs a real
// subcommand with variables that subcommand reads, mounts files that exist,
// and stops within its grace period; each NATS service's config loads with
// the service's own environment.
//
// Not parallel: the NATS configs are loaded with t.Setenv.
func TestCompose(t *testing.T) {
	var c struct {
		Services map[string]struct {
			Image           string            `json:"image"`
			Command         []string          `json:"command"`
			Environment     map[string]string `json:"environment"`
			Volumes         []string          `json:"volumes"`
			StopGracePeriod string            `json:"stop_grace_period"`
		} `json:"services"`
	}
	raw, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	var workers, schedulers, nats int
	for _, name := range slices.Sorted(maps.Keys(c.Services)) {
		s := c.Services[name]
		env := map[string]string{}
		for k, v := range s.Environment {
			env[k] = interpolate(v)
		}
		mounts := map[string]string{} // container path -> file under deploy/
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 || !strings.HasPrefix(parts[0], "./") {
				continue // named volume
			}
			if _, err := os.Stat(parts[0]); err != nil {
				t.Errorf("service %s mounts %s: %v", name, parts[0], err)
			}
			mounts[parts[1]] = parts[0]
		}
		switch {
		case strings.Contains(s.Image, "JETWORKER_IMAGE"):
			where := "compose.yaml service " + name
			checkCommand(t, where, s.Command, env)
			switch s.Command[0] {
			case "worker":
				workers++
				routes := env["JETWORKER_ROUTES"]
				if mounts[routes] == "" {
					t.Errorf("%s: JETWORKER_ROUTES=%s is not a mounted file", where, routes)
				} else {
					checkRoutes(t, where, mounts[routes])
				}
			case "scheduler":
				schedulers++
			}
			grace := cmp.Or(env["JETWORKER_SHUTDOWN_GRACE"], "10s")
			if s.Command[0] == "worker" && !longer(s.StopGracePeriod, grace) {
				t.Errorf("%s: stop_grace_period %q must exceed JETWORKER_SHUTDOWN_GRACE %s", where, s.StopGracePeriod, grace)
			}
			if env["JETWORKER_REPLICAS"] != "3" {
				t.Errorf("%s: JETWORKER_REPLICAS=%q, want 3 on a 3-node cluster", where, env["JETWORKER_REPLICAS"])
			}
		case strings.Contains(s.Image, "NATS_IMAGE"):
			nats++
			if len(s.Command) != 2 || s.Command[0] != "-c" || mounts[s.Command[1]] == "" {
				t.Errorf("service %s: command %q, want -c and a mounted config", name, s.Command)
				continue
			}
			for k, v := range env {
				t.Setenv(k, v)
			}
			opts := loadNATSConfig(t, mounts[s.Command[1]])
			if opts.ServerName != name {
				t.Errorf("service %s runs server_name %q", name, opts.ServerName)
			}
		default:
			t.Errorf("service %s: image %q is neither ${JETWORKER_IMAGE} nor ${NATS_IMAGE}", name, s.Image)
		}
	}
	if workers != 2 || schedulers != 2 || nats != 3 {
		t.Errorf("%d workers, %d schedulers, %d NATS nodes; want 2, 2, 3", workers, schedulers, nats)
	}
}

// TestSystemd checks the units: ExecStart runs a real subcommand, the
// example environment file beside the unit sets only variables it reads,
// and the service stops gracefully within TimeoutStopSec.
func TestSystemd(t *testing.T) {
	t.Parallel()
	units, err := filepath.Glob("systemd/*.service")
	if err != nil {
		t.Fatal(err)
	}
	if len(units) != 2 {
		t.Fatalf("units %v, want a worker and a scheduler", units)
	}
	for _, unit := range units {
		t.Run(unit, func(t *testing.T) {
			t.Parallel()
			kv := unitSettings(t, unit)
			exec := strings.Fields(last(kv["ExecStart"]))
			if len(exec) < 2 || filepath.Base(exec[0]) != "jetworker" {
				t.Fatalf("ExecStart=%q, want jetworker SUBCOMMAND", exec)
			}
			envFile := last(kv["EnvironmentFile"])
			if !strings.HasPrefix(envFile, "/etc/jetworker/") {
				t.Fatalf("EnvironmentFile=%q, want /etc/jetworker/*.env", envFile)
			}
			example := filepath.Join("systemd", filepath.Base(envFile))
			env := envFileVars(t, example)
			for _, e := range kv["#Environment"] {
				k, v, _ := strings.Cut(e, "=")
				env[k] = v
			}
			checkCommand(t, unit+" with "+example, exec[1:], env)
			for k, want := range map[string]string{
				"KillSignal": "SIGTERM", "Restart": "on-failure", "DynamicUser": "yes",
				"NoNewPrivileges": "yes", "ProtectSystem": "strict",
			} {
				if got := last(kv[k]); got != want {
					t.Errorf("%s=%q, want %q", k, got, want)
				}
			}
			grace := cmp.Or(env["JETWORKER_SHUTDOWN_GRACE"], "10s")
			if !longer(last(kv["TimeoutStopSec"]), grace) {
				t.Errorf("TimeoutStopSec=%s must exceed JETWORKER_SHUTDOWN_GRACE %s", last(kv["TimeoutStopSec"]), grace)
			}
		})
	}
}

// checkCommand checks that args is a jetworker command line that parses
// (it runs "jetworker ARGS... --help" with env) and that every JETWORKER_*
// variable of env is one the subcommand reads.
func checkCommand(t *testing.T, where string, args []string, env map[string]string) {
	t.Helper()
	if len(args) == 0 {
		t.Errorf("%s: no command", where)
		return
	}
	if !subcommands(t)[args[0]] {
		t.Errorf("%s: %q is not a jetworker subcommand (have %v)", where, args[0], slices.Sorted(maps.Keys(subcommands(t))))
		return
	}
	known := envVars(t, args[0])
	var environ []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if !strings.HasPrefix(k, "JETWORKER_") {
			continue
		}
		if !known[k] {
			t.Errorf("%s: jetworker %s does not read %s", where, args[0], k)
			continue
		}
		environ = append(environ, k+"="+env[k])
	}
	cmd := exec.Command(jetworkerBin, append(slices.Clone(args), "--help")...)
	cmd.Env = environ
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: jetworker %s --help with %q: %v\n%s", where, strings.Join(args, " "), environ, err, firstLines(out, 5))
	}
}

// checkRoutes loads a routes file with the worker itself: it reads and
// builds every route before it connects, so with an unreachable server a
// good file fails with exit 1 (connect) and a bad one with exit 2 (usage).
func checkRoutes(t *testing.T, where, path string) {
	t.Helper()
	cmd := exec.Command(jetworkerBin, "worker", "--routes", path, "--url", "nats://127.0.0.1:1", "--connect-timeout", "200ms")
	cmd.Env = []string{"JETWORKER_LOG_FORMAT=text"}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("%s: routes file %s: worker exit %v, want 1 (connect failed after the routes loaded)\n%s", where, path, err, firstLines(out, 5))
	}
}

// subcommands lists the subcommands "jetworker help" prints.
func subcommands(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command(jetworkerBin, "help").Output()
	if err != nil {
		t.Fatalf("jetworker help: %v", err)
	}
	cmds := map[string]bool{}
	in := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "Commands:":
			in = true
		case in && strings.HasPrefix(line, "  "):
			cmds[strings.Fields(line)[0]] = true
		case in:
			in = false
		}
	}
	if !cmds["worker"] || !cmds["scheduler"] {
		t.Fatalf("jetworker help lists %v, want worker and scheduler among them", cmds)
	}
	return cmds
}

// envUsageLine is a line of "jetworker SUB --help-all" that lists a
// setting: "  --flag META  JETWORKER_NAME  description (default ...)".
var envUsageLine = regexp.MustCompile(`^\s+--[a-z0-9-]+(?: \S+)?\s+(JETWORKER_[A-Z0-9_]+)\b`)

// envVars lists the JETWORKER_* variables "jetworker SUB --help-all"
// prints (--help leaves the advanced ones out).
func envVars(t *testing.T, sub string) map[string]bool {
	t.Helper()
	out, err := exec.Command(jetworkerBin, sub, "--help-all").CombinedOutput()
	if err != nil {
		t.Fatalf("jetworker %s --help-all: %v\n%s", sub, err, out)
	}
	vars := map[string]bool{}
	for line := range strings.SplitSeq(string(out), "\n") {
		if m := envUsageLine.FindStringSubmatch(line); m != nil {
			vars[m[1]] = true
		}
	}
	return vars
}

// yamlDocs splits a YAML file into its documents.
func yamlDocs(t *testing.T, path string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for doc := range strings.SplitSeq(string(raw), "\n---") {
		if strings.TrimSpace(stripComments(doc)) != "" {
			docs = append(docs, []byte(doc))
		}
	}
	return docs
}

func stripComments(s string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

var composeVar = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::?([-?])([^}]*))?\}`)

// interpolate resolves compose's ${VAR}, ${VAR:-default} and ${VAR:?err}
// with the default or a placeholder.
func interpolate(v string) string {
	return composeVar.ReplaceAllStringFunc(v, func(m string) string {
		sub := composeVar.FindStringSubmatch(m)
		if sub[2] == "-" {
			return sub[3]
		}
		return "placeholder"
	})
}

// unitSettings reads a systemd unit's Key=Value lines, and commented-out
// "#Environment=" lines as "#Environment".
func unitSettings(t *testing.T, path string) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	kv := map[string][]string{}
	for line := range strings.SplitSeq(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#Environment=") {
			kv["#Environment"] = append(kv["#Environment"], strings.TrimPrefix(line, "#Environment="))
			continue
		}
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("%s: %q is not Key=Value", path, line)
			continue
		}
		kv[k] = append(kv[k], v)
	}
	return kv
}

var envFileLine = regexp.MustCompile(`^#?(JETWORKER_[A-Z0-9_]+)=(.*)$`)

// envFileVars reads the JETWORKER_* variables of an environment file,
// commented-out examples included.
func envFileVars(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if m := envFileLine.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			env[m[1]] = m[2]
		}
	}
	if len(env) == 0 {
		t.Errorf("%s sets no JETWORKER_* variables", path)
	}
	return env
}

// longer reports whether duration a (systemd or compose syntax, like
// "30s") is longer than duration b.
func longer(a, b string) bool {
	da, err1 := time.ParseDuration(a)
	db, err2 := time.ParseDuration(b)
	return err1 == nil && err2 == nil && da > db
}

func last(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

func firstLines(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}
