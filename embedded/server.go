package embedded

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jetworker/jetworker/internal/hostcheck"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for [Config].
const (
	// DefaultHost is the interface the server listens on.
	DefaultHost = "127.0.0.1"
	// DefaultPort is the client port.
	DefaultPort = 4222
	// DefaultReadyTimeout bounds how long Start waits for the server.
	DefaultReadyTimeout = 10 * time.Second
)

// Config describes one embedded server. The zero value is a JetStream
// server on 127.0.0.1:4222 storing under a new temporary directory.
type Config struct {
	// Name is the server name. Defaults to a name derived from the port.
	Name string
	// Host is the interface to listen on. Defaults to 127.0.0.1. Start
	// refuses any host other than loopback (localhost, 127.0.0.0/8, ::1)
	// without authentication (User/Password or Token) unless UnsafeNoAuth
	// is set.
	Host string
	// Port is the client port. Defaults to 4222; -1 picks a free port.
	Port int
	// StoreDir is the JetStream storage directory. Defaults to a new
	// temporary directory that Shutdown removes.
	StoreDir string
	// SyncAlways makes the server fsync every write before acknowledging
	// it (nats-server's sync_interval: always). Defaults to off: the
	// server syncs every two minutes, which is fast but can lose
	// acknowledged writes if the machine (not the process) crashes.
	SyncAlways bool
	// MaxPayload is the largest message the server accepts, in bytes.
	// Defaults to the server's default (1 MiB).
	MaxPayload int32

	// MonitorPort, when not 0, serves nats-server's HTTP monitoring
	// endpoints (/varz, /jsz, ...) on Host:MonitorPort; -1 picks a free
	// port. Defaults to 0, off.
	MonitorPort int

	// User and Password enable user/password authentication.
	User     string
	Password string
	// Token enables token authentication. It cannot be combined with User.
	Token string
	// UnsafeNoAuth lets a server without authentication listen beyond
	// loopback (Host 0.0.0.0, ::, or a machine's address or name), which
	// Start refuses otherwise: anyone who can reach the port can then
	// read, publish and delete everything. Defaults to false.
	UnsafeNoAuth bool
	// TLS, when set, makes the server require TLS on client connections.
	// Set ClientAuth in it to require client certificates (mutual TLS).
	TLS *tls.Config

	// Cluster joins the server to a cluster; see [StartCluster].
	Cluster *ClusterMember
	// ReadyTimeout bounds how long Start waits for the server to accept
	// connections. Defaults to 10s.
	ReadyTimeout time.Duration
	// Logger receives the server's log lines. Defaults to no logging.
	Logger *slog.Logger
	// Debug also logs the server's debug lines (requires Logger).
	Debug bool
}

// ClusterMember places a server in a cluster.
type ClusterMember struct {
	// Name is the cluster name, the same on every member.
	Name string
	// Host and Port are the route listener. Port -1 picks a free port.
	Host string
	Port int
	// Routes are the route URLs of the other members
	// (nats-route://host:port).
	Routes []*url.URL
}

// Server is a running embedded nats-server. It is safe for concurrent use.
type Server struct {
	ns      *server.Server
	cfg     Config
	tempDir string
	once    sync.Once
}

// Start starts a server and blocks until it accepts client connections or
// cfg.ReadyTimeout passes. Call [Server.Shutdown] to stop it.
func Start(cfg Config) (*Server, error) {
	cfg.Host = cmp.Or(cfg.Host, DefaultHost)
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	cfg.ReadyTimeout = cmp.Or(cfg.ReadyTimeout, DefaultReadyTimeout)
	if err := cfg.validate(); err != nil {
		return nil, err
	}

	s := &Server{cfg: cfg}
	if cfg.StoreDir == "" {
		dir, err := os.MkdirTemp("", "jetworker-embedded-*")
		if err != nil {
			return nil, fmt.Errorf("embedded: create store directory: %w", err)
		}
		s.tempDir, s.cfg.StoreDir = dir, dir
	}

	opts := s.serverOptions()
	ns, err := server.NewServer(opts)
	if err != nil {
		s.removeTemp()
		return nil, fmt.Errorf("embedded: configure server: %w", err)
	}
	if cfg.Logger != nil {
		ns.SetLoggerV2(&slogAdapter{l: cfg.Logger}, cfg.Debug, false, false)
	}
	s.ns = ns
	ns.Start()
	if !ns.ReadyForConnections(cfg.ReadyTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		s.removeTemp()
		return nil, fmt.Errorf("embedded: server on %s:%d not ready for connections within %s", cfg.Host, cfg.Port, cfg.ReadyTimeout)
	}
	return s, nil
}

func (cfg Config) validate() error {
	var errs []error
	if cfg.Token != "" && (cfg.User != "" || cfg.Password != "") {
		errs = append(errs, errors.New("embedded: Token cannot be combined with User/Password"))
	}
	if (cfg.User == "") != (cfg.Password == "") {
		errs = append(errs, errors.New("embedded: User and Password must be set together"))
	}
	if cfg.User == "" && cfg.Token == "" && !cfg.UnsafeNoAuth && !hostcheck.Loopback(cfg.Host) {
		what := "is reachable from other machines"
		if ip := net.ParseIP(cfg.Host); ip != nil && ip.IsUnspecified() {
			what = "listens on every interface"
		}
		errs = append(errs, fmt.Errorf("embedded: Host %q %s and there is no authentication: set User/Password or Token, listen on 127.0.0.1, or set UnsafeNoAuth", cfg.Host, what))
	}
	if cfg.Port < -1 || cfg.Port > 65535 {
		errs = append(errs, fmt.Errorf("embedded: Port %d out of range", cfg.Port))
	}
	return errors.Join(errs...)
}

func (s *Server) serverOptions() *server.Options {
	cfg := s.cfg
	opts := &server.Options{
		ServerName:    cfg.Name,
		Host:          cfg.Host,
		Port:          cfg.Port,
		JetStream:     true,
		StoreDir:      cfg.StoreDir,
		SyncAlways:    cfg.SyncAlways,
		MaxPayload:    cfg.MaxPayload,
		NoSigs:        true,
		NoLog:         cfg.Logger == nil,
		Username:      cfg.User,
		Password:      cfg.Password,
		Authorization: cfg.Token,
		// Keep dev servers light: without limits the server reserves
		// 75% of memory and 1 TiB of disk for JetStream accounting.
		JetStreamMaxMemory: 1 << 30,
		JetStreamMaxStore:  64 << 30,
	}
	if cfg.MonitorPort != 0 {
		opts.HTTPHost = cfg.Host
		opts.HTTPPort = cfg.MonitorPort
	}
	if cfg.TLS != nil {
		opts.TLS = true
		opts.TLSConfig = cfg.TLS
		opts.TLSVerify = cfg.TLS.ClientAuth == tls.RequireAndVerifyClientCert
		opts.TLSTimeout = 2
	}
	if c := cfg.Cluster; c != nil {
		opts.Cluster = server.ClusterOpts{
			Name: c.Name,
			Host: cmp.Or(c.Host, DefaultHost),
			Port: c.Port,
		}
		opts.Routes = c.Routes
	}
	if opts.ServerName == "" && cfg.Port > 0 {
		opts.ServerName = "jetworker-" + strconv.Itoa(cfg.Port)
	}
	return opts
}

// URL returns the URL clients connect to (nats://host:port, or tls:// when
// TLS is on). It carries no credentials.
func (s *Server) URL() string {
	return s.ns.ClientURL()
}

// MonitorURL returns the base URL of the HTTP monitoring endpoints, or ""
// when Config.MonitorPort is 0.
func (s *Server) MonitorURL() string {
	addr := s.ns.MonitorAddr()
	if addr == nil {
		return ""
	}
	return "http://" + addr.String()
}

// StoreDir returns the JetStream storage directory.
func (s *Server) StoreDir() string { return s.cfg.StoreDir }

// NATSServer returns the underlying nats-server, for inspection in tests.
func (s *Server) NATSServer() *server.Server { return s.ns }

// ConnectOptions returns the nats.go options that authenticate to this
// server: the configured user/password or token. TLS settings are the
// caller's, since only the caller knows which CA it trusts.
func (s *Server) ConnectOptions() []nats.Option {
	var opts []nats.Option
	switch {
	case s.cfg.Token != "":
		opts = append(opts, nats.Token(s.cfg.Token))
	case s.cfg.User != "":
		opts = append(opts, nats.UserInfo(s.cfg.User, s.cfg.Password))
	}
	return opts
}

// Connect opens a client connection to the server with the credentials of
// its Config, followed by opts.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	all := append(s.ConnectOptions(), opts...)
	nc, err := nats.Connect(s.URL(), all...)
	if err != nil {
		return nil, fmt.Errorf("embedded: connect to %s: %w", s.URL(), err)
	}
	return nc, nil
}

// ConnectJetStream opens a connection like [Server.Connect] and returns it
// with a JetStream context on it.
func (s *Server) ConnectJetStream(opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := s.Connect(opts...)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("embedded: jetstream context: %w", err)
	}
	return nc, js, nil
}

// Shutdown stops the server and waits until it has stopped. A temporary
// store directory made by Start is removed. Calling it again does nothing.
func (s *Server) Shutdown() {
	s.once.Do(func() {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		s.removeTemp()
	})
}

func (s *Server) removeTemp() {
	if s.tempDir != "" {
		_ = os.RemoveAll(s.tempDir)
	}
}
