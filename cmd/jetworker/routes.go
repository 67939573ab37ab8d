package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"

	"sigs.k8s.io/yaml"

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
		return fmt.Errorf("duration %q: %w", s, err)
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
	var f routesFile
	if err := yaml.UnmarshalStrict([]byte(expanded), &f); err != nil {
		return nil, usagef("routes file %s: %v", path, err)
	}
	if len(f.Routes) == 0 {
		return nil, usagef("routes file %s: no routes", path)
	}
	if err := validateRoutes(f.Routes); err != nil {
		return nil, usagef("routes file %s: %v", path, err)
	}
	return f.Routes, nil
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
		return "webhook " + r.Webhook.URL
	case r.Email != nil:
		return "email via " + r.Email.Host
	case r.Log != nil:
		return "log"
	}
	return "none"
}
