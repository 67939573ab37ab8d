package reliability_test

import (
	"cmp"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nkeys"
)

// secCase is one authentication mode: a server config, the environment of
// an admin (provision, publish), of a worker that must work and of one
// that must fail clearly.
type secCase struct {
	name    string
	conf    string
	tls     bool
	admin   []string
	good    []string
	bad     []string
	badWant *regexp.Regexp // the bad worker's output must match
	// badWithin bounds the bad worker's exit. 5s, except where the binary
	// is known to take longer (see the permissions case).
	badWithin time.Duration
	secrets   []string // must appear in no worker log line
	// routes: provision the worker's durable with the admin identity and run
	// workers with JETWORKER_PROVISION=false.
	routes bool
}

// TestSecurity is scenario 8: JWT .creds (operator mode), TLS, mutual
// TLS, nkey seed, token, user/password with per-user subject permissions. For each, a correctly
// configured worker process runs a task end to end, a misconfigured one
// (wrong credentials, missing client certificate, a permission violation)
// exits with an error naming the cause within 5s without a reconnect
// storm, and no secret appears in any worker log line.
func TestSecurity(t *testing.T) {
	dir := t.TempDir()
	pki := newPKI(t, dir)
	seed := func(name string) (path, public string, raw []byte) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		raw, _ = kp.Seed()
		public, _ = kp.PublicKey()
		path = filepath.Join(dir, name+".nk")
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		return path, public, raw
	}
	goodSeed, goodPub, goodRaw := seed("good")
	badSeed, _, badRaw := seed("bad")
	adminSeed, adminPub, _ := seed("admin")
	token := "tok-" + randHex(t)
	adminPass, workerPass := "adm-"+randHex(t), "wrk-"+randHex(t)

	// What a worker may do: its durable, acks, its dead letters, the
	// presence KV (deploy/README.md's set).
	workerPerms := workerIdentity
	ops := newOperatorSetup(t, dir)
	cases := []secCase{
		{
			// Decentralized auth: an operator JWT on the server and a
			// user .creds file (JETWORKER_CREDS); the bad worker's user
			// belongs to an account the server does not know.
			name:    "creds",
			conf:    ops.conf,
			admin:   []string{"CREDS", ops.goodCreds},
			good:    []string{"CREDS", ops.goodCreds},
			bad:     []string{"CREDS", ops.badCreds},
			badWant: regexp.MustCompile(`(?i)authoriz`),
			secrets: ops.secrets,
		},
		{
			name: "tls",
			conf: fmt.Sprintf("tls {\n cert_file: %q\n key_file: %q\n timeout: 2\n}\n", pki.serverCert, pki.serverKey),
			tls:  true, admin: []string{"TLS_CA", pki.ca},
			good: []string{"TLS_CA", pki.ca},
			// No CA: the server's certificate is not trusted.
			bad:     []string{},
			badWant: regexp.MustCompile(`(?i)certificate|x509|tls`),
		},
		{
			name:    "mtls",
			conf:    fmt.Sprintf("tls {\n cert_file: %q\n key_file: %q\n ca_file: %q\n verify: true\n timeout: 2\n}\n", pki.serverCert, pki.serverKey, pki.ca),
			tls:     true,
			admin:   []string{"TLS_CA", pki.ca, "TLS_CERT", pki.clientCert, "TLS_KEY", pki.clientKey},
			good:    []string{"TLS_CA", pki.ca, "TLS_CERT", pki.clientCert, "TLS_KEY", pki.clientKey},
			bad:     []string{"TLS_CA", pki.ca},
			badWant: regexp.MustCompile(`(?i)certificate|tls|handshake|eof|reset`),
		},
		{
			name:    "nkey",
			conf:    fmt.Sprintf("authorization {\n users: [ {nkey: %s}, {nkey: %s} ]\n}\n", adminPub, goodPub),
			admin:   []string{"NKEY_SEED", adminSeed},
			good:    []string{"NKEY_SEED", goodSeed},
			bad:     []string{"NKEY_SEED", badSeed},
			badWant: regexp.MustCompile(`(?i)authoriz`),
			secrets: []string{string(goodRaw), string(badRaw)},
		},
		{
			name:    "token",
			conf:    fmt.Sprintf("authorization {\n token: %q\n}\n", token),
			admin:   []string{"TOKEN", token},
			good:    []string{"TOKEN", token},
			bad:     []string{"TOKEN", token + "x"},
			badWant: regexp.MustCompile(`(?i)authoriz`),
			secrets: []string{token},
		},
		{
			name:    "password",
			conf:    fmt.Sprintf("authorization {\n users: [\n  {user: admin, password: %q}\n  {user: worker, password: %q, %s}\n ]\n}\n", adminPass, workerPass, workerPerms),
			admin:   []string{"USER", "admin", "PASSWORD", adminPass},
			good:    []string{"USER", "worker", "PASSWORD", workerPass, "PROVISION", "false"},
			bad:     []string{"USER", "worker", "PASSWORD", workerPass + "x", "PROVISION", "false"},
			badWant: regexp.MustCompile(`(?i)authoriz`),
			secrets: []string{adminPass, workerPass},
			routes:  true,
		},
		{
			// The right worker identity on a durable it may not consume: a
			// permission violation, not a credentials problem.
			name:  "permissions",
			conf:  fmt.Sprintf("authorization {\n users: [\n  {user: admin, password: %q}\n  {user: worker, password: %q, %s}\n ]\n}\n", adminPass, workerPass, workerPerms),
			admin: []string{"USER", "admin", "PASSWORD", adminPass},
			good:  []string{"USER", "worker", "PASSWORD", workerPass, "PROVISION", "false"},
			bad:   []string{"USER", "worker", "PASSWORD", workerPass, "PROVISION", "false", "DURABLE", "intruder"},
			// The worker exits on the server's violation report, naming it.
			badWant: regexp.MustCompile(`NATS refused an operation this identity needs.*Permissions Violation for Publish to \\?"\$JS\.API\.CONSUMER\.INFO\.TASKS\.intruder-webhook`),
			secrets: []string{adminPass, workerPass},
			routes:  true,
		},
	}
	var results []string
	for _, c := range cases {
		ok := t.Run(c.name, func(t *testing.T) {
			results = append(results, runSecCase(t, c))
		})
		if !ok {
			results = append(results, c.name+":FAIL")
		}
	}
	figure(t, "scenario=8 %s", strings.Join(results, " "))
}

// runSecCase runs one case and returns its figure fragment.
func runSecCase(t *testing.T, c secCase) string {
	srv := newNATS(t, serverOpts{name: "sec-" + c.name, extra: c.conf, tls: c.tls})
	env := func(kv []string, extra ...string) []string {
		return jwEnv(srv.url(), append(append([]string{}, kv...), extra...)...)
	}
	rcv := newReceiver(t, func(string, int, []byte) (time.Duration, int) { return time.Millisecond, 200 })
	dir := t.TempDir()
	if c.routes {
		routes := filepath.Join(dir, "routes.json")
		if err := os.WriteFile(routes, []byte(`{"routes":[{"name":"webhook","subject":"tasks.webhook.>","webhook":{"url":"http://127.0.0.1:1/","secret":"x"}}]}`), 0o600); err != nil {
			t.Fatal(err)
		}
		mustJetworker(t, env(c.admin), "provision", "--routes", routes)
	} else {
		mustJetworker(t, env(c.admin), "provision")
	}
	hook := []string{"WEBHOOK_URL", rcv.url("good"), "WEBHOOK_SECRET", rcv.secret, "LOG_LEVEL", "debug"}

	// The good worker runs a task end to end.
	good := startProc(t, "good", dir, jetworkerBin, env(c.good, hook...), "worker")
	eventually(t, 20*time.Second, "good worker ready", func() error {
		if good.exited() {
			t.Fatalf("good worker exited: %v\n%s", good.err, tail(good.output(), 2000))
		}
		if len(logLines(good, `"msg":"route"`)) == 0 {
			return fmt.Errorf("no route line yet")
		}
		return nil
	})
	id := "sec-" + c.name
	mustJetworker(t, env(c.admin), "publish", "--id", id, "tasks.webhook.sec", `{"x":1}`)
	eventually(t, 20*time.Second, "task completed by the good worker", func() error {
		if rcv.completed([]string{id}) != 1 {
			return fmt.Errorf("not completed")
		}
		return nil
	})
	time.Sleep(time.Second) // let a permission error on ack or presence show
	errs := logLines(good, `"level":"ERROR"`)
	if len(errs) > 0 {
		t.Errorf("good worker logged errors:\n%s", strings.Join(errs, "\n"))
	}
	good.signal(syscall.SIGTERM)
	good.wait(t, 15*time.Second)

	// The bad worker fails clearly and soon.
	serverLogBefore := len(srv.proc.output())
	start := time.Now()
	bad := startProc(t, "bad", dir, jetworkerBin, env(c.bad, hook...), "worker")
	select {
	case <-bad.done:
	case <-time.After(15 * time.Second):
		bad.signal(syscall.SIGKILL)
		<-bad.done
		t.Errorf("bad worker: still running after 15s, want an exit within 5s\n%s", tail(bad.output(), 2000))
	}
	took := bad.end.Sub(start)
	// A short observation window after the exit: nothing keeps connecting.
	time.Sleep(time.Second)
	attempts := countConnAttempts(srv.proc.output()[serverLogBefore:])
	msg := lastErrorLine(bad.output())
	if bad.exitCode() == 0 {
		t.Errorf("bad worker exit code: got 0, want non-zero")
	}
	within := cmp.Or(c.badWithin, 5*time.Second)
	if took > within {
		t.Errorf("bad worker exited after %s, want <= %s", took, within)
	}
	if !c.badWant.MatchString(bad.output()) {
		t.Errorf("bad worker output: got %q, want it to match %s", tail(bad.output(), 1000), c.badWant)
	}
	if attempts > 3 {
		t.Errorf("connection attempts of the bad worker: got %d, want <= 3", attempts)
	}
	leaks := 0
	for _, p := range []*proc{good, bad} {
		out := p.output()
		for _, s := range c.secrets {
			if s != "" && strings.Contains(out, s) {
				leaks++
				t.Errorf("%s worker log contains a secret", p.name)
			}
		}
	}
	t.Logf("bad worker: exit %d after %s: %s", bad.exitCode(), took, msg)
	if testing.Verbose() {
		t.Logf("bad worker output:\n%s", tail(bad.output(), 3000))
	}
	target := "met"
	if took > 5*time.Second {
		target = "missed"
	}
	return fmt.Sprintf("%s:ok_task=1,bad_exit=%d,bad_after=%s,target_5s=%s,server_seen_attempts=%d,secret_leaks=%d", c.name, bad.exitCode(), secs(took), target, attempts, leaks)
}

// countConnAttempts counts client connections the server log reports as
// failed or closed by errors (auth, TLS).
func countConnAttempts(log string) int {
	n := 0
	for line := range strings.SplitSeq(log, "\n") {
		l := strings.ToLower(line)
		if strings.Contains(l, "authorization violation") || strings.Contains(l, "authentication error") ||
			strings.Contains(l, "tls handshake error") || strings.Contains(l, "permissions violation") {
			n++
		}
	}
	return n
}

// lastErrorLine returns the last line mentioning an error.
func lastErrorLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.ToLower(lines[i]); strings.Contains(l, "error") || strings.Contains(l, "err") {
			return lines[i]
		}
	}
	if len(lines) > 0 {
		return lines[len(lines)-1]
	}
	return ""
}

func randHex(t *testing.T) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", b)
}

// pki holds the paths of a test CA, a server and a client certificate.
type pki struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

// newPKI makes a CA, a server certificate for 127.0.0.1/localhost and a
// client certificate, with crypto/x509; keys are written 0600.
func newPKI(t *testing.T, dir string) pki {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	now := time.Now()
	caKey := key()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "reliability test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		k := key()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", "CERTIFICATE", der, 0o644), write(name+"-key.pem", "EC PRIVATE KEY", kder, 0o600)
	}
	p := pki{ca: write("ca.pem", "CERTIFICATE", caDER, 0o644)}
	p.serverCert, p.serverKey = leaf("server", 2, x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = leaf("client", 3, x509.ExtKeyUsageClientAuth)
	return p
}
