// Package embeddedtest starts embedded nats-servers for tests, as
// net/http/httptest starts HTTP servers: a free port, storage under the
// test's temporary directory, shutdown registered with Cleanup, and the
// server's log in the test's output when it runs with -v.
//
// It imports package testing, so only tests should import it; the embedded
// package itself, which programs use for dev mode, does not.
package embeddedtest

import (
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/internal/testutil"
)

// Start starts a server for a test: a random port, storage under
// tb.TempDir() and shutdown registered with tb.Cleanup. Server warnings go
// to the test's log when it runs with -v. Fields set in cfg are kept. It
// fails the test if the server does not start.
func Start(tb testing.TB, cfg embedded.Config) *embedded.Server {
	tb.Helper()
	if cfg.Port == 0 {
		cfg.Port = -1
	}
	if cfg.StoreDir == "" {
		cfg.StoreDir = tb.TempDir()
	}
	if cfg.Logger == nil && testing.Verbose() {
		cfg.Logger = testutil.Logger(tb, slog.LevelWarn)
	}
	s, err := embedded.Start(cfg)
	if err != nil {
		tb.Fatalf("embeddedtest: start server: %v", err)
	}
	tb.Cleanup(s.Shutdown)
	return s
}

// Connect connects to s for a test with the credentials of its Config and
// opts, returning the connection and a JetStream context; tb.Cleanup closes
// the connection. It fails the test if it cannot connect.
func Connect(tb testing.TB, s *embedded.Server, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, js, err := s.ConnectJetStream(opts...)
	if err != nil {
		tb.Fatalf("embeddedtest: %v", err)
	}
	tb.Cleanup(nc.Close)
	return nc, js
}

// JetStream starts a fresh server for the test and returns a connected
// JetStream context: the one line most tests need. Use js.Conn() for the
// underlying connection.
func JetStream(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	_, js := Connect(tb, Start(tb, embedded.Config{}))
	return js
}

// StartCluster starts an n-node cluster for a test, each node storing
// under tb.TempDir(), and registers its shutdown with tb.Cleanup. It fails
// the test if the cluster does not form.
func StartCluster(tb testing.TB, n int) *embedded.Cluster {
	tb.Helper()
	cfg := embedded.ClusterConfig{Nodes: n, Node: embedded.Config{StoreDir: tb.TempDir()}}
	if testing.Verbose() {
		cfg.Node.Logger = testutil.Logger(tb, slog.LevelWarn)
	}
	c, err := embedded.StartCluster(cfg)
	if err != nil {
		tb.Fatalf("embeddedtest: start cluster: %v", err)
	}
	tb.Cleanup(c.Shutdown)
	return c
}

// ConnectCluster connects to the cluster (any node, reconnecting to the
// others) for a test and returns the connection and a JetStream context;
// tb.Cleanup closes the connection.
func ConnectCluster(tb testing.TB, c *embedded.Cluster, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	all := append(c.Servers[0].ConnectOptions(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	nc, err := nats.Connect(c.URL(), append(all, opts...)...)
	if err != nil {
		tb.Fatalf("embeddedtest: connect to cluster: %v", err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("embeddedtest: jetstream context: %v", err)
	}
	return nc, js
}
