package embedded

import (
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StartT starts a server for a test: a random port, storage under
// tb.TempDir() and shutdown registered with tb.Cleanup. Server logs go to
// tb.Log when the test runs with -v. Fields set in cfg are kept. It fails
// the test if the server does not start.
func StartT(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	if cfg.Port == 0 {
		cfg.Port = -1
	}
	if cfg.StoreDir == "" {
		cfg.StoreDir = tb.TempDir()
	}
	if cfg.Logger == nil && testing.Verbose() {
		cfg.Logger = testLogger(tb)
	}
	s, err := Start(cfg)
	if err != nil {
		tb.Fatalf("embedded: start server: %v", err)
	}
	tb.Cleanup(s.Shutdown)
	return s
}

// ConnectT connects to s for a test with the Config's credentials and
// opts, returning the connection and a JetStream context; the connection is
// closed by tb.Cleanup. It fails the test if it cannot connect.
func (s *Server) ConnectT(tb testing.TB, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, js, err := s.ConnectJetStream(opts...)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	tb.Cleanup(nc.Close)
	return nc, js
}

// JetStream starts a fresh server for the test and returns a connected
// JetStream context: the one line most tests need. Use js.Conn() for the
// underlying connection.
func JetStream(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	_, js := StartT(tb, Config{}).ConnectT(tb)
	return js
}

// StartClusterT starts an n-node cluster for a test, each node storing
// under tb.TempDir(), and registers its shutdown with tb.Cleanup. It fails
// the test if the cluster does not form.
func StartClusterT(tb testing.TB, n int) *Cluster {
	tb.Helper()
	cfg := ClusterConfig{Nodes: n, Node: Config{StoreDir: tb.TempDir()}}
	if testing.Verbose() {
		cfg.Node.Logger = testLogger(tb)
	}
	c, err := StartCluster(cfg)
	if err != nil {
		tb.Fatalf("embedded: start cluster: %v", err)
	}
	tb.Cleanup(c.Shutdown)
	return c
}

// ConnectT connects to the cluster (any node) for a test and returns the
// connection and a JetStream context; the connection is closed by
// tb.Cleanup.
func (c *Cluster) ConnectT(tb testing.TB, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	all := append(c.Servers[0].ConnectOptions(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	nc, err := nats.Connect(c.URL(), append(all, opts...)...)
	if err != nil {
		tb.Fatalf("embedded: connect to cluster: %v", err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("embedded: jetstream context: %v", err)
	}
	return nc, js
}

func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// tbWriter writes log lines to a test's log.
type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(string(p))
	return len(p), nil
}
