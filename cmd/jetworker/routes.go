package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/jetworker/jetworker/handlers/webhook"
	"github.com/jetworker/jetworker/internal/subject"
)

// routesFile is the worker's routes configuration (YAML or JSON). Values
// may reference environment variables as ${NAME}, so secrets can come from
// a Kubernetes Secret instead of the file.
//
//	routes:
//	  - name: hooks
//	    subject: tasks.webhook.>
//	    concurrency: 5
//	    max_deliver: 8
//	    backoff: {base: 1s, max: 1m}
//	    track: true
//	    webhook: {url: https://example.com/hook, secret: ${HOOK_SECRET}}
//	  - name: mail
//	    subject: tasks.email.>
//	    email: {host: smtp.example.com, port: 587, username: u, password: ${SMTP_PASSWORD}, from: noreply@example.com}
type routesFile struct {
	Routes []route `json:"routes"`
}

// route sends the tasks of one subject filter to one stock handler, with
// its own durable consumer and settings.
type route struct {
	// Name makes the durable consumer's name: <durable>-<name>.
	Name    string `json:"name"`
	Subject string `json:"subject"`

	Concurrency int       `json:"concurrency,omitempty"`
	MaxDeliver  int       `json:"max_deliver,omitempty"`
	AckWait     duration  `json:"ack_wait,omitempty"`
	Timeout     duration  `json:"timeout,omitempty"`
	Backoff     *backoffs `json:"backoff,omitempty"`
	// Track records every task of the route, tracked when published or
	// not (JETWORKER_TRACK_ALL does it for every route).
	Track bool `json:"track,omitempty"`

	Webhook *webhookRoute `json:"webhook,omitempty"`
	Email   *emailRoute   `json:"email,omitempty"`
	Log     *logRoute     `json:"log,omitempty"`
}

type backoffs struct {
	Base duration `json:"base"`
	Max  duration `json:"max"`
}

type webhookRoute struct {
	URL     string   `json:"url"`
	Secret  string   `json:"secret"`
	Timeout duration `json:"timeout,omitempty"`
}

type emailRoute struct {
	Host     string `json:"host"`
	Port     int    `json:"port,omitempty"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	From     string `json:"from"`
	// TLS is "starttls" (default: required), "opportunistic", "tls"
	// (implicit TLS, port 465) or "none".
	TLS string `json:"tls,omitempty"`
}

// logRoute logs each task at Info and acknowledges it: for dev and demos.
type logRoute struct{}

// duration reads "10s"-style strings (or a number of seconds).
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n float64
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("duration: want a string like \"10s\" or seconds, got %s", b)
		}
		*d = duration(n * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: want a number and a unit, like 10s or 1m30s", s)
	}
	*d = duration(v)
	return nil
}

func (d duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

var routeName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// loadRoutes reads and validates a routes file.
func loadRoutes(path string) ([]route, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("routes file: %v", err)
	}
	return parseRoutes(path, raw)
}

func parseRoutes(path string, raw []byte) ([]route, error) {
	expanded := os.Expand(string(raw), func(name string) string {
		if name == "$" {
			return "$"
		}
		return os.Getenv(name)
	})
	rs, err := decodeRoutes([]byte(expanded))
	if err != nil {
		return nil, usagef("routes file %s: %v", path, err)
	}
	if len(rs) == 0 {
		return nil, usagef("routes file %s: no routes", path)
	}
	if err := validateRoutes(rs); err != nil {
		return nil, usagef("routes file %s: %v", path, err)
	}
	return rs, nil
}

// decodeRoutes reads a routes file, YAML or JSON, strictly: an unknown
// field is an error. Its errors name the route they are in and speak of
// the file, not of the YAML-to-JSON conversion underneath.
func decodeRoutes(raw []byte) ([]route, error) {
	var f routesFile
	err := yaml.UnmarshalStrict(raw, &f)
	if err == nil {
		return f.Routes, nil
	}
	// Find the route at fault: decode the routes one by one.
	var loose struct {
		Routes []map[string]any `json:"routes"`
	}
	if yaml.Unmarshal(raw, &loose) == nil {
		for i, m := range loose.Routes {
			one, merr := yaml.Marshal(m)
			if merr != nil {
				continue
			}
			var r route
			if rerr := yaml.UnmarshalStrict(one, &r); rerr != nil {
				where := fmt.Sprintf("route %d", i+1)
				if name, ok := m["name"].(string); ok && name != "" {
					where += " (" + name + ")"
				}
				return nil, fmt.Errorf("%s: %s", where, yamlMessage(rerr))
			}
		}
	}
	return nil, errors.New(yamlMessage(err))
}

// yamlMessage rephrases an error of sigs.k8s.io/yaml: without its
// "error converting YAML to JSON" and "error unmarshaling JSON" layers and
// without Go type names.
func yamlMessage(err error) string {
	msg := err.Error()
	for _, p := range []string{"error converting YAML to JSON: ", "error unmarshaling JSON: ", "while decoding JSON: ", "json: ", "yaml: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	if m := typeError.FindStringSubmatch(msg); m != nil {
		field := m[2]
		if _, f, ok := strings.Cut(field, "."); ok { // the Go type's name
			field = f
		}
		field = strings.TrimPrefix(field, "routes.")
		return fmt.Sprintf("%s: want %s, got %s", field, goTypeKind(m[3]), jsonValueKind(m[1]))
	}
	return msg
}

// typeError matches encoding/json's UnmarshalTypeError text.
var typeError = regexp.MustCompile(`cannot unmarshal (\w+) into Go (?:struct field|value) (\S*) of type (\S+)`)

// goTypeKind says what a value of the Go type named t looks like in a
// routes file.
func goTypeKind(t string) string {
	switch {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"), strings.HasPrefix(t, "float"):
		return "a number"
	case t == "string":
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasSuffix(t, "duration"):
		return "a duration like 10s"
	}
	return "a mapping"
}

// jsonValueKind names the kind of JSON value encoding/json reports.
func jsonValueKind(v string) string {
	switch v {
	case "string":
		return "a string"
	case "number":
		return "a number"
	case "object":
		return "a mapping"
	case "array":
		return "a list"
	case "bool":
		return "true or false"
	}
	return v
}

func validateRoutes(rs []route) error {
	var errs []error
	names := map[string]bool{}
	for i, r := range rs {
		where := fmt.Sprintf("route %d", i+1)
		if r.Name != "" {
			where += " (" + r.Name + ")"
		}
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf(where+": "+format, args...))
		}
		switch {
		case !routeName.MatchString(r.Name):
			bad("name %q: want letters, digits, '-' or '_'", r.Name)
		case names[r.Name]:
			bad("name %q is used twice", r.Name)
		}
		names[r.Name] = true
		if err := validateFilter(r.Subject); err != nil {
			bad("subject: %v", err)
		}
		n := 0
		for _, set := range []bool{r.Webhook != nil, r.Email != nil, r.Log != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			bad("want exactly one handler (webhook, email or log), got %d", n)
		}
		if r.Webhook != nil && (r.Webhook.URL == "" || r.Webhook.Secret == "") {
			bad("webhook needs url and secret")
		}
		if r.Email != nil && (r.Email.Host == "" || r.Email.From == "") {
			bad("email needs host and from")
		}
		if r.Concurrency < 0 || r.MaxDeliver < 0 {
			bad("concurrency and max_deliver must not be negative")
		}
	}
	return errors.Join(errs...)
}

// validateFilter checks a route's subject filter with the rules every
// package shares.
func validateFilter(s string) error { return subject.ValidateFilter(s) }

// kind names the route's handler.
func (r route) kind() string {
	switch {
	case r.Webhook != nil:
		return "webhook " + webhook.Where(r.Webhook.URL)
	case r.Email != nil:
		return "email via " + r.Email.Host
	case r.Log != nil:
		return "log"
	}
	return "none"
}

// routeSecrets returns the secrets of the routes, for the output
// scrubber: webhook secrets and URL credentials, SMTP passwords.
func routeSecrets(rs []route) []string {
	var out []string
	for _, r := range rs {
		if w := r.Webhook; w != nil {
			out = append(out, w.Secret)
			out = append(out, webhookSecrets(w.URL)...)
		}
		if e := r.Email; e != nil {
			out = append(out, e.Password)
		}
	}
	return out
}
