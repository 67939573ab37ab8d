package embedded_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker/embedded"
	"github.com/jetworker/jetworker/embedded/embeddedtest"
)

func TestJetStreamOneLiner(t *testing.T) {
	t.Parallel()
	js := embeddedtest.JetStream(t)
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	ack, err := js.Publish(t.Context(), "s.1", []byte("hi"))
	if err != nil || ack.Sequence != 1 {
		t.Fatalf("publish: got %+v, %v", ack, err)
	}
	if !strings.HasPrefix(js.Conn().ConnectedUrl(), "nats://127.0.0.1:") {
		t.Fatalf("connected to %s, want 127.0.0.1", js.Conn().ConnectedUrl())
	}
}

func TestStartWithUserPassword(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.Start(t, embedded.Config{User: "app", Password: "s3cret"})
	if strings.Contains(srv.URL(), "s3cret") {
		t.Fatalf("URL %q carries the password", srv.URL())
	}
	if _, err := nats.Connect(srv.URL(), nats.UserInfo("app", "wrong")); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("wrong password: got %v, want nats.ErrAuthorization", err)
	}
	nc, _ := embeddedtest.Connect(t, srv) // the Config's credentials
	if !nc.IsConnected() {
		t.Fatal("not connected with the configured credentials")
	}
}

func TestStartWithToken(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.Start(t, embedded.Config{Token: "tok"})
	if _, err := nats.Connect(srv.URL()); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("no token: got %v, want nats.ErrAuthorization", err)
	}
	embeddedtest.Connect(t, srv)
}

// Only loopback listens without authentication, unless UnsafeNoAuth says
// otherwise.
func TestHostWithoutAuth(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		cfg  embedded.Config
	}{
		{"localhost", embedded.Config{Host: "localhost", Port: -1}},
		{"IPv4 loopback", embedded.Config{Host: "127.0.0.1", Port: -1}},
		{"every interface with UnsafeNoAuth", embedded.Config{Host: "0.0.0.0", Port: -1, UnsafeNoAuth: true}},
		{"every interface with a token", embedded.Config{Host: "0.0.0.0", Port: -1, Token: "t0ken"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			embeddedtest.Connect(t, embeddedtest.Start(t, tt.cfg))
		})
	}
}

func TestStartWithTLS(t *testing.T) {
	t.Parallel()
	cert, pool := selfSigned(t)
	srv := embeddedtest.Start(t, embedded.Config{TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	if !strings.HasPrefix(srv.URL(), "tls://") {
		t.Fatalf("URL %q, want tls://", srv.URL())
	}
	if _, err := nats.Connect(strings.Replace(srv.URL(), "tls://", "nats://", 1), nats.Timeout(2*time.Second)); err == nil {
		t.Fatal("plain connection to a TLS server succeeded")
	}
	nc, _ := embeddedtest.Connect(t, srv, nats.Secure(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	if !nc.TLSRequired() {
		t.Fatal("connection is not TLS")
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  embedded.Config
		want string
	}{
		{name: "wildcard host without auth", cfg: embedded.Config{Host: "0.0.0.0", Port: -1}, want: "every interface"},
		{name: "IPv6 wildcard host without auth", cfg: embedded.Config{Host: "::", Port: -1}, want: "every interface"},
		{name: "machine address without auth", cfg: embedded.Config{Host: "192.0.2.10", Port: -1}, want: "reachable from other machines"},
		{name: "host name without auth", cfg: embedded.Config{Host: "nats.example.com", Port: -1}, want: "UnsafeNoAuth"},
		{name: "token with user", cfg: embedded.Config{Port: -1, Token: "t", User: "u", Password: "p"}, want: "Token cannot be combined"},
		{name: "user without password", cfg: embedded.Config{Port: -1, User: "u"}, want: "User and Password"},
		{name: "port out of range", cfg: embedded.Config{Port: 70000}, want: "Port 70000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, err := embedded.Start(tt.cfg)
			if err == nil {
				srv.Shutdown()
				t.Fatalf("got nil error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestStartTwiceOnSamePortFails(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.Start(t, embedded.Config{})
	port := srv.NATSServer().Addr().(*net.TCPAddr).Port
	other, err := embedded.Start(embedded.Config{Port: port, StoreDir: t.TempDir(), ReadyTimeout: 500 * time.Millisecond})
	if err == nil {
		other.Shutdown()
		t.Fatal("second server on the same port started")
	}
}

func TestClusterR3SurvivesNodeLoss(t *testing.T) {
	t.Parallel()
	c := embeddedtest.StartCluster(t, 3)
	_, js := embeddedtest.ConnectCluster(t, c)
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3,
	}); err != nil {
		t.Fatalf("create R3 stream: %v", err)
	}
	if _, err := js.Publish(t.Context(), "r3.before", []byte("1")); err != nil {
		t.Fatalf("publish before node loss: %v", err)
	}

	// Shut down the stream's leader, the harshest single-node loss.
	s, err := js.Stream(t.Context(), "R3")
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	leader := s.CachedInfo().Cluster.Leader
	var down bool
	for _, srv := range c.Servers {
		if srv.NATSServer().Name() == leader {
			srv.Shutdown()
			down = true
		}
	}
	if !down {
		t.Fatalf("stream leader %q is not a cluster node", leader)
	}

	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := js.Publish(t.Context(), "r3.after", []byte("2"), jetstream.WithRetryAttempts(10))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("R3 stream accepts no publish 20s after losing node %s: %v", leader, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatalf("info: %v", err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages, want 2", info.State.Msgs)
	}
}

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "jetworker test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestMonitorPort(t *testing.T) {
	t.Parallel()
	srv := embeddedtest.Start(t, embedded.Config{MonitorPort: -1, SyncAlways: true})
	u := srv.MonitorURL()
	if !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Fatalf("MonitorURL %q", u)
	}
	resp, err := http.Get(u + "/varz")
	if err != nil {
		t.Fatalf("varz: %v", err)
	}
	defer resp.Body.Close()
	var v struct {
		JetStream struct {
			Config struct {
				SyncAlways bool `json:"sync_always"`
			} `json:"config"`
		} `json:"jetstream"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || !v.JetStream.Config.SyncAlways {
		t.Fatalf("varz sync_always: %+v, %v", v, err)
	}
	if embeddedtest.Start(t, embedded.Config{}).MonitorURL() != "" {
		t.Fatal("MonitorURL set without MonitorPort")
	}
}
