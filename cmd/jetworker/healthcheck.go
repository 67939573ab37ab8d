package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// healthEnv configures "jetworker healthcheck".
type healthEnv struct {
	URL     string        `envconfig:"JETWORKER_HEALTHCHECK_URL" flag:"url" meta:"URL" secret:"url" group:"Healthcheck" desc:"URL to ask (default: /readyz on the metrics address, else http://127.0.0.1:9090/readyz)"`
	Timeout time.Duration `envconfig:"JETWORKER_HEALTHCHECK_TIMEOUT" flag:"timeout" default:"3s" group:"Healthcheck" desc:"how long the answer may take"`
	MetricsAddrEnv
}

// defaultHealthURL is asked without --url and without a metrics address.
const defaultHealthURL = "http://127.0.0.1:9090/readyz"

// healthURL is the URL to ask: the one given, or /readyz on the metrics
// address (a wildcard host asked on loopback).
func (e healthEnv) healthURL() string {
	if e.URL != "" {
		return e.URL
	}
	if e.MetricsAddr == "" {
		return defaultHealthURL
	}
	host, port, err := net.SplitHostPort(e.MetricsAddr)
	if err != nil {
		return "http://" + e.MetricsAddr + "/readyz"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz"
}

func runHealthcheck(ctx context.Context, std *stdio, args []string) error {
	var e healthEnv
	c := newCLI("healthcheck", "", `
Ask a readiness URL and exit 0 when it answers 2xx within the timeout, 1
otherwise, printing one line. The container images have no shell: use it
as the healthcheck, e.g. ["CMD", "jetworker", "healthcheck"] with
JETWORKER_METRICS_ADDR set.`).env(&e)
	if err := c.parseNoArgs(std, args); err != nil {
		return err
	}
	url := e.healthURL()
	status, err := probe(ctx, url, e.Timeout)
	if err != nil {
		return fmt.Errorf("%s: %w", redactURL(url), err)
	}
	fmt.Fprintf(std.out, "ok: %s answered %s\n", inert(redactURL(url)), inert(status))
	return nil
}

// probe asks url once, without following redirects, and returns the
// status of a 2xx answer or an error saying what came instead.
func probe(ctx context.Context, url string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", usagef("invalid URL")
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "", fmt.Errorf("no answer within %s", timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "", errors.New("connection refused")
	case err != nil:
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) {
			err = ue.Unwrap() // *url.Error quotes the URL, credentials and all
		}
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		msg := strings.TrimSpace(string(b))
		if msg != "" {
			msg = ": " + excerpt(msg, 120)
		}
		return "", fmt.Errorf("answered %s%s", inert(resp.Status), msg)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.Status, nil
}
