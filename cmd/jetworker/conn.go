package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	neturl "net/url"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/internal/logkey"
)

// conn is an open NATS connection with its JetStream context. Done is
// closed when the connection closes for good (for example after the server
// refused our credentials twice); Err then says why.
type conn struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	url string // redacted

	done   chan struct{}
	denied chan error // the first permission violation
	mu     sync.Mutex
	reason error
}

// Err returns why the connection closed, or nil while it is open.
func (c *conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// Close closes the connection.
func (c *conn) Close() { c.nc.Close() }

// natsOptions maps ConnEnv to nats.go options.
func natsOptions(e ConnEnv, name string) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name("jetworker " + name),
		nats.Timeout(e.ConnectTimeout),
		nats.MaxReconnects(-1),
	}
	auth := 0
	if e.Creds != "" {
		if err := checkSecretFile(e.Creds); err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserCredentials(e.Creds))
		auth++
	}
	if e.NkeySeed != "" {
		if err := checkSecretFile(e.NkeySeed); err != nil {
			return nil, err
		}
		o, err := nats.NkeyOptionFromSeed(e.NkeySeed)
		if err != nil {
			return nil, usagef("nkey seed %s: %v", e.NkeySeed, err)
		}
		opts = append(opts, o)
		auth++
	}
	if e.User != "" || e.Password != "" {
		opts = append(opts, nats.UserInfo(e.User, e.Password))
		auth++
	}
	if e.Token != "" {
		opts = append(opts, nats.Token(e.Token))
		auth++
	}
	if auth > 1 {
		return nil, usagef("set only one of JETWORKER_CREDS, JETWORKER_NKEY_SEED, JETWORKER_USER/PASSWORD and JETWORKER_TOKEN")
	}
	if e.TLSCA != "" {
		opts = append(opts, nats.RootCAs(e.TLSCA))
	}
	if (e.TLSCert == "") != (e.TLSKey == "") {
		return nil, usagef("JETWORKER_TLS_CERT and JETWORKER_TLS_KEY go together")
	}
	if e.TLSCert != "" {
		opts = append(opts, nats.ClientCert(e.TLSCert, e.TLSKey))
	}
	return opts, nil
}

// checkSecretFile refuses a credentials file that others can read, with
// PostgreSQL's rule for key files: never world-accessible, and
// group-accessible only when root owns it (how Kubernetes mounts Secrets
// with an fsGroup).
func checkSecretFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return usagef("credentials file: %v", err)
	}
	return secretFileMode(path, st.Mode().Perm(), fileOwner(st))
}

func secretFileMode(path string, perm os.FileMode, owner int) error {
	switch {
	case perm&0o007 != 0:
		return usagef("credentials file %s is accessible by everyone (mode %v): chmod 600 it", path, perm)
	case perm&0o070 != 0 && owner != 0:
		return usagef("credentials file %s is accessible by its group (mode %v) and not owned by root: chmod 600 it", path, perm)
	}
	return nil
}

// connect opens a connection and a JetStream context. It gives up after
// e.ConnectTimeout with an error naming the URL (credentials redacted).
// Async errors (permission violations, slow consumer) are logged at Error.
func connect(ctx context.Context, e ConnEnv, name string, log *slog.Logger) (*conn, error) {
	opts, err := natsOptions(e, name)
	if err != nil {
		return nil, err
	}
	c := &conn{url: redactURL(e.NATSURL), done: make(chan struct{}), denied: make(chan error, 1)}
	var closeOnce sync.Once
	opts = append(opts,
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				// Fatal: a missing permission never fixes itself, and
				// waiting for the refused request to time out would only
				// hide it. watch ends the command with this error.
				select {
				case c.denied <- err:
				default:
				}
				return
			}
			attrs := []any{slog.Any(logkey.Err, err)}
			if sub != nil {
				attrs = append(attrs, slog.String(logkey.Subject, sub.Subject))
			}
			log.Error("nats error", attrs...)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", slog.Any(logkey.Err, err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", slog.String("url", redactURL(nc.ConnectedUrl())))
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			closeOnce.Do(func() {
				c.mu.Lock()
				c.reason = nc.LastError()
				if c.reason == nil {
					c.reason = nats.ErrConnectionClosed
				}
				c.mu.Unlock()
				close(c.done)
			})
		}),
	)

	type result struct {
		nc  *nats.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(e.NATSURL, opts...)
		ch <- result{nc, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		go func() { // close a connection that arrives late
			if r := <-ch; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("connect to %s: %w", c.url, ctx.Err())
	}
	if r.err != nil {
		return nil, connectError(c.url, e.ConnectTimeout, r.err)
	}
	c.nc = r.nc
	c.js, err = jetstream.New(r.nc)
	if err != nil {
		r.nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return c, nil
}

// connectError says why a connection to url (redacted) failed, in the
// words of the cause: nothing listens (nats.go reports ErrNoServers when
// every server refused), no answer in time, an unknown host, refused
// credentials.
func connectError(url string, timeout time.Duration, err error) error {
	var (
		dns  *net.DNSError
		uerr *neturl.Error
		nerr net.Error
	)
	switch {
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked):
		return fmt.Errorf("connect to %s: authentication refused (check JETWORKER_CREDS, _NKEY_SEED, _USER/_PASSWORD or _TOKEN): %w", url, err)
	case errors.Is(err, nats.ErrNoServers):
		return fmt.Errorf("connect to %s: connection refused: is nats-server running and listening there?", url)
	case errors.As(err, &dns):
		return fmt.Errorf("connect to %s: unknown host %q", url, dns.Name)
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &nerr) && nerr.Timeout():
		return fmt.Errorf("connect to %s: no answer within %s (JETWORKER_CONNECT_TIMEOUT)", url, timeout)
	case errors.As(err, &uerr):
		// url.Error quotes the URL it could not parse, password and all.
		return fmt.Errorf("connect to %s: invalid URL: %v", url, uerr.Err)
	}
	return fmt.Errorf("connect to %s: %w", url, err)
}

// watch is a run part that fails when the connection closes for good, so
// a worker whose credentials were revoked exits visibly instead of
// idling, and when the server refuses an operation for lack of
// permission, naming it.
func (c *conn) watch(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-c.done:
		return fmt.Errorf("NATS connection to %s closed: %w", c.url, c.Err())
	case err := <-c.denied:
		return fmt.Errorf("NATS refused an operation this identity needs (see deploy/README.md for the permissions a worker and a scheduler need): %w", err)
	}
}
