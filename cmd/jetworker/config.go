package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// envPrefix is the prefix of every environment variable the binary reads.
const envPrefix = "JETWORKER"

// ConnEnv is how to reach NATS. Every command that talks to NATS reads it.
type ConnEnv struct {
	NATSURL        string        `envconfig:"NATS_URL" default:"nats://127.0.0.1:4222" desc:"NATS server URL(s), comma-separated"`
	Creds          string        `envconfig:"CREDS" desc:"path to a JWT .creds file"`
	NkeySeed       string        `envconfig:"NKEY_SEED" desc:"path to an nkey seed file"`
	User           string        `envconfig:"USER" desc:"user name"`
	Password       string        `envconfig:"PASSWORD" desc:"password"`
	Token          string        `envconfig:"TOKEN" desc:"authentication token"`
	TLSCA          string        `envconfig:"TLS_CA" desc:"PEM file of CAs that sign the server certificate"`
	TLSCert        string        `envconfig:"TLS_CERT" desc:"PEM client certificate (mutual TLS)"`
	TLSKey         string        `envconfig:"TLS_KEY" desc:"PEM client key (mutual TLS)"`
	ConnectTimeout time.Duration `envconfig:"CONNECT_TIMEOUT" default:"5s" desc:"how long to try to connect before giving up"`
	MonitorURL     string        `envconfig:"NATS_MONITOR_URL" desc:"nats-server monitoring endpoint (http://host:8222), to check its durability settings"`
}

// LogEnv is how to log.
type LogEnv struct {
	LogLevel  string `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat string `envconfig:"LOG_FORMAT" default:"auto" desc:"auto (text on a terminal, JSON otherwise), text or json"`
}

// StreamEnv names the task and dead-letter streams.
type StreamEnv struct {
	Stream    string `envconfig:"STREAM" default:"TASKS" desc:"task stream"`
	DLQStream string `envconfig:"DLQ_STREAM" default:"DLQ" desc:"dead-letter stream"`
}

// flagEnv binds a command's flags over env values already loaded: a flag
// given on the command line wins.
type flagEnv struct {
	fs *flag.FlagSet
}

func (f flagEnv) str(p *string, name, env, usage string) {
	f.fs.StringVar(p, name, *p, usage+" ("+envPrefix+"_"+env+")")
}

func (f flagEnv) dur(p *time.Duration, name, env, usage string) {
	f.fs.DurationVar(p, name, *p, usage+" ("+envPrefix+"_"+env+")")
}

func (f flagEnv) integer(p *int, name, env, usage string) {
	f.fs.IntVar(p, name, *p, usage+" ("+envPrefix+"_"+env+")")
}

func (f flagEnv) boolean(p *bool, name, env, usage string) {
	f.fs.BoolVar(p, name, *p, usage+" ("+envPrefix+"_"+env+")")
}

func (c *ConnEnv) flags(f flagEnv) {
	f.str(&c.NATSURL, "url", "NATS_URL", "NATS server URL(s)")
	f.str(&c.Creds, "creds", "CREDS", "JWT .creds file")
	f.str(&c.NkeySeed, "nkey", "NKEY_SEED", "nkey seed file")
	f.str(&c.User, "user", "USER", "user name")
	f.str(&c.Password, "password", "PASSWORD", "password")
	f.str(&c.Token, "token", "TOKEN", "token")
	f.str(&c.TLSCA, "tls-ca", "TLS_CA", "CA file")
	f.str(&c.TLSCert, "tls-cert", "TLS_CERT", "client certificate")
	f.str(&c.TLSKey, "tls-key", "TLS_KEY", "client key")
	f.dur(&c.ConnectTimeout, "connect-timeout", "CONNECT_TIMEOUT", "connect timeout")
	f.str(&c.MonitorURL, "monitor-url", "NATS_MONITOR_URL", "nats-server monitoring URL")
}

func (l *LogEnv) flags(f flagEnv) {
	f.str(&l.LogLevel, "log-level", "LOG_LEVEL", "log level")
	f.str(&l.LogFormat, "log-format", "LOG_FORMAT", "log format")
}

func (s *StreamEnv) flags(f flagEnv) {
	f.str(&s.Stream, "stream", "STREAM", "task stream")
	f.str(&s.DLQStream, "dlq-stream", "DLQ_STREAM", "dead-letter stream")
}

// loadEnv fills spec from JETWORKER_* variables.
func loadEnv(spec any) error {
	if err := envconfig.Process(envPrefix, spec); err != nil {
		return usagef("environment: %v", err)
	}
	return nil
}

// newFlagSet returns a flag set whose --help prints synopsis, the flags and
// the environment variables of env (which may be nil).
func newFlagSet(name string, std *stdio, synopsis string, env any) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(std.err)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: jetworker %s [flags]%s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
		if env != nil {
			fmt.Fprintln(w, "\nEnvironment (flags override):")
			printEnvUsage(w, env)
		}
	}
	return fs
}

// printEnvUsage lists env's variables with their defaults and meaning.
func printEnvUsage(w io.Writer, env any) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	const format = `{{range .}}  {{usage_key .}}	{{usage_default .}}	{{usage_description .}}
{{end}}`
	_ = envconfig.Usagef(envPrefix, env, tw, format)
	_ = tw.Flush()
}

// parseArgs parses flags and returns the positional arguments. Flags may
// come after positional arguments too.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				return nil, err
			}
			return nil, usagef("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// redactURL hides passwords and tokens in user info of NATS URLs.
func redactURL(u string) string {
	parts := strings.Split(u, ",")
	for i, p := range parts {
		scheme, rest, ok := strings.Cut(p, "://")
		if !ok {
			continue
		}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			parts[i] = scheme + "://[REDACTED]@" + rest[at+1:]
		}
	}
	return strings.Join(parts, ",")
}
