package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/jetworker/jetworker/handlers/webhook"
)

// A command's settings are declared once, as tagged struct fields:
//
//	NATSURL string `envconfig:"JETWORKER_NATS_URL" flag:"url" default:"nats://127.0.0.1:4222" desc:"NATS server URL(s)" group:"Connection" secret:"url"`
//
//	envconfig  the environment variable, read with envconfig. It is the
//	           whole name: envconfig falls back to the bare tag when the
//	           prefixed name is unset, so a tag "USER" would read $USER.
//	flag       the command-line flag (--url); a flag given wins over the
//	           environment. Every setting has one.
//	default    the default, applied by envconfig and shown by --help. A
//	           field without one keeps the value it has when it is bound.
//	desc       the help text.
//	group      the help section; a field inherits it from the struct it is
//	           embedded through.
//	meta       the value's name in help (URL, FILE); derived from the type
//	           when empty.
//	secret     "true": the value is never printed; "webhook": it is printed
//	           as webhook.Where shows it (scheme and host); "url": it is printed
//	           only redacted (user info and query hidden).
//	advanced   "true": listed by --help-all only.
//	repeat     "true" on a []string option: each --flag adds one value,
//	           without splitting on commas.
//
// Options of one invocation (publish --id, dlq --yes) are declared the
// same way without envconfig, in a struct of their own that envconfig
// never sees.

// secrecy says how a setting's value may be shown.
type secrecy int

const (
	public        secrecy = iota
	secretAll             // never shown
	secretURLs            // shown with redactURL
	secretWebhook         // a webhook URL: shown as webhook.Where shows it
)

// setting is one declared field.
type setting struct {
	field    reflect.Value // addressable
	env      string        // "" for an option
	flag     string
	def      string
	desc     string
	group    string
	meta     string
	secrecy  secrecy
	advanced bool
	repeat   bool

	given bool          // set on the command line
	value reflect.Value // what the command line said, applied after the environment
}

// cli is a command's command line: its settings and options, their flags,
// and its help.
type cli struct {
	name     string
	synopsis string // after "jetworker NAME [flags]"
	about    string
	envs     []any // settings structs, read by envconfig
	settings []*setting
	groups   []string // in order of first declaration
	fs       *flag.FlagSet
	help     bool
	helpAll  bool
}

// newCLI starts the command line of command name. synopsis follows
// "jetworker NAME [flags]" in the usage line; about is a paragraph below it.
func newCLI(name, synopsis, about string) *cli {
	c := &cli{name: name, synopsis: synopsis, about: about, fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	c.fs.SetOutput(io.Discard)
	c.fs.Usage = func() {}
	c.fs.BoolVar(&c.help, "help", false, "")
	c.fs.BoolVar(&c.help, "h", false, "")
	c.fs.BoolVar(&c.helpAll, "help-all", false, "")
	return c
}

// options registers a struct of flag-only options, listed under group.
func (c *cli) options(group string, opts any) *cli {
	c.walk(structOf(opts), group, false)
	return c
}

// env registers a settings struct: each field has a flag and an
// environment variable.
func (c *cli) env(spec any) *cli {
	c.walk(structOf(spec), "", true)
	c.envs = append(c.envs, spec)
	return c
}

func structOf(p any) reflect.Value {
	v := reflect.ValueOf(p)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("settings: want a pointer to a struct, got %T", p))
	}
	return v.Elem()
}

// walk registers the fields of v, flattening embedded structs.
func (c *cli) walk(v reflect.Value, group string, isEnv bool) {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		g := cmp.Or(f.Tag.Get("group"), group)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			c.walk(fv, g, isEnv)
			continue
		}
		if !f.IsExported() {
			continue
		}
		s := &setting{
			field: fv, flag: f.Tag.Get("flag"), def: f.Tag.Get("default"), desc: f.Tag.Get("desc"),
			group: g, meta: f.Tag.Get("meta"), advanced: f.Tag.Get("advanced") == "true",
			repeat: f.Tag.Get("repeat") == "true",
		}
		switch f.Tag.Get("secret") {
		case "true":
			s.secrecy = secretAll
		case "url":
			s.secrecy = secretURLs
		case "webhook":
			s.secrecy = secretWebhook
		}
		if isEnv {
			s.env = f.Tag.Get("envconfig")
			if !strings.HasPrefix(s.env, envPrefix+"_") {
				panic(fmt.Sprintf("settings: %s.%s: envconfig tag %q must be the whole name, %s_...", t, f.Name, s.env, envPrefix))
			}
		} else if f.Tag.Get("envconfig") != "" {
			panic(fmt.Sprintf("settings: option %s.%s has an envconfig tag", t, f.Name))
		}
		if s.flag == "" || s.desc == "" || s.group == "" {
			panic(fmt.Sprintf("settings: %s.%s needs flag, desc and group tags", t, f.Name))
		}
		if kindName(fv.Type()) == "" {
			panic(fmt.Sprintf("settings: %s.%s: unsupported type %s", t, f.Name, fv.Type()))
		}
		if s.def == "" && !fv.IsZero() {
			s.def = formatValue(fv)
		}
		if c.fs.Lookup(s.flag) != nil {
			panic(fmt.Sprintf("settings: flag --%s declared twice in %s", s.flag, c.name))
		}
		c.fs.Var(flagValue{s}, s.flag, s.desc)
		c.settings = append(c.settings, s)
		if !slices.Contains(c.groups, s.group) {
			c.groups = append(c.groups, s.group)
		}
	}
}

var durationType = reflect.TypeFor[time.Duration]()

// kindName names the supported types, "" for others.
func kindName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case t.Kind() == reflect.String:
		return "string"
	case t.Kind() == reflect.Int:
		return "int"
	case t.Kind() == reflect.Bool:
		return "bool"
	case t.Kind() == reflect.Float64:
		return "float"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return "list"
	}
	return ""
}

// want says what a value of type t looks like, for error messages.
func want(t reflect.Type) string {
	switch kindName(t) {
	case "duration":
		return "a duration like 30s, 5m or 1h30m"
	case "int":
		return "a whole number"
	case "bool":
		return "true or false"
	case "float":
		return "a number"
	}
	return "a value"
}

// parseValue parses s as a value of type t, as envconfig would.
func parseValue(t reflect.Type, s string) (reflect.Value, error) {
	v := reflect.New(t).Elem()
	var err error
	switch kindName(t) {
	case "duration":
		var d time.Duration
		d, err = time.ParseDuration(s)
		v.SetInt(int64(d))
	case "string":
		v.SetString(s)
	case "int":
		var n int64
		n, err = strconv.ParseInt(s, 0, 0)
		v.SetInt(n)
	case "bool":
		var b bool
		b, err = strconv.ParseBool(s)
		v.SetBool(b)
	case "float":
		var f float64
		f, err = strconv.ParseFloat(s, 64)
		v.SetFloat(f)
	case "list":
		v.Set(reflect.ValueOf(splitList(s)))
	}
	if err != nil {
		return v, errors.New("want " + want(t))
	}
	return v, nil
}

// splitList splits a comma-separated list, trimming spaces and dropping
// empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// formatValue renders a value as it would be written on the command line.
func formatValue(v reflect.Value) string {
	switch kindName(v.Type()) {
	case "duration":
		return time.Duration(v.Int()).String()
	case "list":
		return strings.Join(v.Interface().([]string), ",")
	}
	return fmt.Sprint(v.Interface())
}

// flagValue is a setting's flag.Value: it keeps what the command line
// says until the environment is loaded.
type flagValue struct{ s *setting }

func (f flagValue) String() string { return "" }

func (f flagValue) IsBoolFlag() bool { return kindName(f.s.field.Type()) == "bool" }

func (f flagValue) Set(v string) error {
	s := f.s
	if kindName(s.field.Type()) == "list" {
		items := splitList(v)
		if s.repeat {
			items = []string{v}
		}
		if !s.given {
			s.value = reflect.ValueOf([]string(nil))
		}
		s.value = reflect.AppendSlice(s.value, reflect.ValueOf(items))
		s.given = true
		return nil
	}
	pv, err := parseValue(s.field.Type(), v)
	if err != nil {
		return err
	}
	s.value, s.given = pv, true
	return nil
}

// parse reads the command line and then the environment, and returns the
// positional arguments. Flags may follow positional arguments; "--" ends
// the flags. It returns flag.ErrHelp after printing help to standard
// output for --help or --help-all, and a usage error for a bad flag or
// environment variable. The secrets it read go to the output scrubber.
func (c *cli) parse(std *stdio, args []string) ([]string, error) {
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			return nil, c.flagError(err)
		}
		rest := c.fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if c.help || c.helpAll {
		c.printHelp(std.out, c.helpAll)
		return nil, flag.ErrHelp
	}
	err := c.load()
	std.scrub.add(c.secrets()...)
	if err != nil {
		return nil, err
	}
	return pos, nil
}

// parseNoArgs is parse for a command that takes no positional arguments.
func (c *cli) parseNoArgs(std *stdio, args []string) error {
	pos, err := c.parse(std, args)
	if err == nil && len(pos) > 0 {
		err = usagef("unexpected argument %q: %s takes flags only", pos[0], c.name)
	}
	return err
}

// load reads the environment into the settings structs, then applies the
// flags given on the command line over it.
func (c *cli) load() error {
	for _, spec := range c.envs {
		if err := envconfig.Process("", spec); err != nil {
			return c.envError(err)
		}
	}
	for _, s := range c.settings {
		if kindName(s.field.Type()) == "list" && s.env != "" {
			s.field.Set(reflect.ValueOf(splitList(strings.Join(s.field.Interface().([]string), ","))))
		}
		if s.given {
			s.field.Set(s.value)
		}
	}
	return nil
}

// byEnv returns the setting read from the environment variable name.
func (c *cli) byEnv(name string) *setting {
	for _, s := range c.settings {
		if s.env == name {
			return s
		}
	}
	return nil
}

// byFlag returns the setting or option of the flag name.
func (c *cli) byFlag(name string) *setting {
	for _, s := range c.settings {
		if s.flag == name {
			return s
		}
	}
	return nil
}

// envError rephrases envconfig's errors: the variable, its value (unless
// it is secret) and what was wanted, without Go's field and type names.
func (c *cli) envError(err error) error {
	var pe *envconfig.ParseError
	if !errors.As(err, &pe) {
		return usagef("environment: %v", err)
	}
	s := c.byEnv(pe.KeyName)
	if s == nil {
		return usagef("%s: %v", pe.KeyName, pe.Err)
	}
	if s.secrecy != public {
		return usagef("%s: want %s", pe.KeyName, want(s.field.Type()))
	}
	return usagef("%s=%q: want %s", pe.KeyName, pe.Value, want(s.field.Type()))
}

// flagError rephrases the flag package's errors with "--" flags.
func (c *cli) flagError(err error) error {
	msg := err.Error()
	hint := fmt.Sprintf(` (see "jetworker %s --help")`, c.name)
	switch {
	case strings.HasPrefix(msg, "flag provided but not defined: "):
		name := strings.TrimLeft(strings.TrimPrefix(msg, "flag provided but not defined: "), "-")
		return usagef("unknown flag --%s%s", name, hint)
	case strings.HasPrefix(msg, "flag needs an argument: "):
		name := strings.TrimLeft(strings.TrimPrefix(msg, "flag needs an argument: "), "-")
		return usagef("flag --%s needs a value%s", name, hint)
	case strings.HasPrefix(msg, "invalid value "), strings.HasPrefix(msg, "invalid boolean value "):
		// invalid value "x" for flag -name: <our error>
		rest := msg[strings.Index(msg, " for ")+len(" for "):]
		rest = strings.TrimPrefix(rest, "flag ")
		name, _, _ := strings.Cut(strings.TrimLeft(rest, "-"), ":")
		s := c.byFlag(name)
		if s == nil {
			return usagef("%s%s", msg, hint)
		}
		if s.secrecy != public {
			return usagef("--%s: want %s", name, want(s.field.Type()))
		}
		value := ""
		if q := strings.TrimPrefix(strings.TrimPrefix(msg, "invalid boolean value "), "invalid value "); strings.HasPrefix(q, `"`) {
			if v, err := strconv.QuotedPrefix(q); err == nil {
				value = " " + v
			}
		}
		return usagef("--%s%s: want %s", name, value, want(s.field.Type()))
	}
	return usagef("%s%s", msg, hint)
}

// secrets returns the values of the secret settings that are set, and
// the secret parts of URL settings, for the output scrubber.
func (c *cli) secrets() []string {
	var out []string
	for _, s := range c.settings {
		values := []string{formatValue(s.field)}
		if s.env != "" {
			values = append(values, os.Getenv(s.env)) // also when it did not parse
		}
		for _, v := range values {
			switch {
			case v == "":
			case s.secrecy == secretAll:
				out = append(out, v)
			case s.secrecy == secretURLs:
				out = append(out, urlSecrets(v)...)
			case s.secrecy == secretWebhook:
				out = append(out, webhookSecrets(v)...)
			}
		}
	}
	return out
}

// envSet reports whether the setting's variable is in the environment.
func (s *setting) envSet() bool {
	if s.env == "" {
		return false
	}
	_, ok := os.LookupEnv(s.env)
	return ok
}

// shown is the setting's value for logs: secrets redacted.
func (s *setting) shown() string {
	v := formatValue(s.field)
	switch {
	case s.secrecy == secretAll && v != "":
		return redacted
	case s.secrecy == secretURLs:
		return redactURL(v)
	case s.secrecy == secretWebhook && v != "":
		return webhook.Where(v)
	}
	return v
}
