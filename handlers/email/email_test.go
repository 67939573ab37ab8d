package email_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	netmail "net/mail"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/wneessen/go-mail"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/handlers/email"
)

// received is one message as the test SMTP server got it.
type received struct {
	tls  bool // the session ran over TLS (after STARTTLS)
	from string
	rcpt []string
	data []byte
}

// smtpServer is a real SMTP server (go-smtp) running in the test process.
type smtpServer struct {
	port    int
	conns   atomic.Int32 // accepted TCP connections
	msgs    chan received
	failAt  string // "mail", "rcpt" or "data": the command that fails
	failErr *smtp.SMTPError
	auth    bool        // require AUTH PLAIN as user/pass
	tls     *tls.Config // offer STARTTLS with this config
}

// startSMTP starts a server configured by s and returns it; it stops when
// the test ends.
func startSMTP(t *testing.T, s *smtpServer) *smtpServer {
	t.Helper()
	s.msgs = make(chan received, 10)
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &session{srv: s, tls: isTLS}, nil
	}))
	srv.TLSConfig = s.tls
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(&countingListener{Listener: l, n: &s.conns}) })
	t.Cleanup(func() {
		_ = srv.Close()
		_ = l.Close() // in case Serve had not registered it when Close ran
		wg.Wait()
	})
	return s
}

// config returns a Handler config for s without TLS, from a default
// sender.
func (s *smtpServer) config() email.Config {
	return email.Config{
		Host: "127.0.0.1", Port: s.port, TLSPolicy: mail.NoTLS,
		From: "Jobs <jobs@example.com>", Timeout: 10 * time.Second,
	}
}

type countingListener struct {
	net.Listener
	n *atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

type session struct {
	srv    *smtpServer
	tls    bool
	authed bool
	msg    received
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != "user" || password != "pass" {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

func (s *session) fail(cmd string) error {
	if s.srv.failAt == cmd {
		return s.srv.failErr
	}
	return nil
}

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if s.srv.auth && !s.authed {
		return smtp.ErrAuthRequired
	}
	s.msg = received{from: from, tls: s.tls}
	return s.fail("mail")
}

func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if err := s.fail("rcpt"); err != nil {
		return err
	}
	s.msg.rcpt = append(s.msg.rcpt, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := s.fail("data"); err != nil {
		return err
	}
	s.msg.data = b
	s.srv.msgs <- s.msg
	return nil
}

func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

func newHandler(t *testing.T, cfg email.Config) *email.Handler {
	t.Helper()
	h, err := email.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h
}

func emailTask(payload string) *jetworker.Task {
	return &jetworker.Task{ID: "t-1", Subject: "tasks.email.send", Data: []byte(payload)}
}

func TestSendArrivesWithHeadersAndBody(t *testing.T) {
	t.Parallel()
	srv := startSMTP(t, &smtpServer{})
	h := newHandler(t, srv.config())

	err := h.Handle(t.Context(), emailTask(`{
		"to": ["Ada Lovelace <ada@example.com>"],
		"cc": ["ops@example.com"],
		"bcc": ["audit@example.com"],
		"reply_to": "support@example.com",
		"subject": "Your order ünïcode",
		"text": "Thanks for your order.",
		"html": "<p>Thanks for your <b>order</b>.</p>"
	}`))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	got := <-srv.msgs

	if got.from != "jobs@example.com" {
		t.Errorf("envelope from %q, want jobs@example.com (Config.From)", got.from)
	}
	if want := "ada@example.com,ops@example.com,audit@example.com"; strings.Join(got.rcpt, ",") != want {
		t.Errorf("envelope recipients %q, want %s", got.rcpt, want)
	}
	msg, err := netmail.ReadMessage(bytes.NewReader(got.data))
	if err != nil {
		t.Fatalf("parse message: %v\n%s", err, got.data)
	}
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("decode subject: %v", err)
	}
	headers := map[string]string{
		"Subject":  subject,
		"From":     firstAddr(t, msg.Header, "From"),
		"To":       firstAddr(t, msg.Header, "To"),
		"Cc":       firstAddr(t, msg.Header, "Cc"),
		"Reply-To": firstAddr(t, msg.Header, "Reply-To"),
		"Bcc":      msg.Header.Get("Bcc"),
	}
	want := map[string]string{
		"Subject":  "Your order ünïcode",
		"From":     "Jobs <jobs@example.com>",
		"To":       "Ada Lovelace <ada@example.com>",
		"Cc":       "<ops@example.com>",
		"Reply-To": "<support@example.com>",
		"Bcc":      "", // blind copies are never in the headers
	}
	for k, v := range want {
		if headers[k] != v {
			t.Errorf("header %s = %q, want %q", k, headers[k], v)
		}
	}
	if msg.Header.Get("Message-Id") == "" || msg.Header.Get("Date") == "" {
		t.Errorf("want Message-Id and Date headers, got %v", msg.Header)
	}

	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type %q (%v), want multipart/alternative", msg.Header.Get("Content-Type"), err)
	}
	parts := map[string]string{}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("next part: %v", err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		b, _ := io.ReadAll(p)
		parts[ct] = strings.TrimSpace(string(b))
	}
	if got, want := parts["text/plain"], "Thanks for your order."; got != want {
		t.Errorf("text part %q, want %q", got, want)
	}
	if got, want := parts["text/html"], "<p>Thanks for your <b>order</b>.</p>"; got != want {
		t.Errorf("html part %q, want %q", got, want)
	}
}

func firstAddr(t *testing.T, h netmail.Header, key string) string {
	t.Helper()
	list, err := h.AddressList(key)
	if err != nil || len(list) == 0 {
		t.Errorf("header %s: %v (%q)", key, err, h.Get(key))
		return ""
	}
	return strings.TrimSpace(list[0].Name + " <" + list[0].Address + ">")
}

func TestSendFromInMessageOverridesConfig(t *testing.T) {
	t.Parallel()
	srv := startSMTP(t, &smtpServer{})
	cfg := srv.config()
	cfg.From = ""
	h := newHandler(t, cfg)

	err := h.Handle(t.Context(), emailTask(`{"from":"shop@example.org","to":["a@example.com"],"subject":"s","text":"hi"}`))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	got := <-srv.msgs
	msg, err := netmail.ReadMessage(bytes.NewReader(got.data))
	if err != nil {
		t.Fatal(err)
	}
	if got.from != "shop@example.org" || firstAddr(t, msg.Header, "From") != "<shop@example.org>" {
		t.Errorf("from %q / %q, want shop@example.org", got.from, msg.Header.Get("From"))
	}
	if ct := msg.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want text/plain for a text-only message", ct)
	}
}

func TestSMTPReplies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		failAt        string
		code          int
		wantPermanent bool
	}{
		{"451 on RCPT retries", "rcpt", 451, false},
		{"452 on RCPT retries", "rcpt", 452, false},
		{"550 on RCPT is permanent", "rcpt", 550, true},
		{"451 on MAIL retries", "mail", 451, false},
		{"553 on MAIL is permanent", "mail", 553, true},
		{"451 after DATA retries", "data", 451, false},
		{"554 after DATA is permanent", "data", 554, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := startSMTP(t, &smtpServer{
				failAt:  tt.failAt,
				failErr: &smtp.SMTPError{Code: tt.code, EnhancedCode: smtp.NoEnhancedCode, Message: "test reply"},
			})
			h := newHandler(t, srv.config())
			err := h.Handle(t.Context(), emailTask(`{"to":["a@example.com"],"subject":"s","text":"hi"}`))
			if err == nil {
				t.Fatal("got nil, want an error")
			}
			if got := jetworker.IsPermanent(err); got != tt.wantPermanent {
				t.Errorf("IsPermanent(%v) = %t, want %t", err, got, tt.wantPermanent)
			}
			var re *jetworker.RetryError
			if errors.As(err, &re) {
				t.Errorf("got RetryAfter %v, want a plain error or Permanent", err)
			}
			if !strings.Contains(err.Error(), "test reply") {
				t.Errorf("got %q, want the server's reply in the error", err)
			}
		})
	}
}

func TestInvalidMessagesArePermanentWithoutConnection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		noFrom   bool // Config.From left empty
		payload  string
		wantText string
	}{
		{"invalid to", false, `{"to":["not an address"],"subject":"s","text":"x"}`, `invalid to address "not an address"`},
		{"invalid cc", false, `{"to":["a@example.com"],"cc":["@@"],"subject":"s","text":"x"}`, `invalid cc address "@@"`},
		{"invalid bcc", false, `{"to":["a@example.com"],"bcc":["b@"],"subject":"s","text":"x"}`, `invalid bcc address "b@"`},
		{"invalid reply_to", false, `{"to":["a@example.com"],"reply_to":"x","subject":"s","text":"x"}`, `invalid reply_to address "x"`},
		{"invalid from", false, `{"from":"me","to":["a@example.com"],"subject":"s","text":"x"}`, `invalid from address "me"`},
		{"header injection in address", false, "{\"to\":[\"a@example.com\\r\\nBcc: evil@example.com\"],\"subject\":\"s\",\"text\":\"x\"}", "invalid to address"},
		{"no recipients", false, `{"subject":"s","text":"x"}`, "no recipient"},
		{"no body", false, `{"to":["a@example.com"],"subject":"s"}`, "neither text nor html"},
		{"no sender anywhere", true, `{"to":["a@example.com"],"subject":"s","text":"x"}`, "no from"},
		{"every problem named", false, `{"to":["bad"],"subject":"s"}`, "neither text nor html"},
		{"malformed JSON", false, `{"to":`, "decode email message"},
		{"unknown field", false, `{"to":["a@example.com"],"bc":["b@example.com"],"subject":"s","text":"x"}`, `unknown field "bc"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := startSMTP(t, &smtpServer{})
			cfg := srv.config()
			if tt.noFrom {
				cfg.From = ""
			}
			h := newHandler(t, cfg)
			err := h.Handle(t.Context(), emailTask(tt.payload))
			if !jetworker.IsPermanent(err) {
				t.Fatalf("got %v, want a permanent error", err)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("got %q, want it to contain %q", err, tt.wantText)
			}
			if got := srv.conns.Load(); got != 0 {
				t.Errorf("server accepted %d connections, want 0", got)
			}
		})
	}
}

func TestConnectionRefusedRetries(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close() // nothing listens there any more
	h := newHandler(t, email.Config{Host: "127.0.0.1", Port: port, TLSPolicy: mail.NoTLS, From: "a@example.com"})
	err = h.Handle(t.Context(), emailTask(`{"to":["b@example.com"],"subject":"s","text":"x"}`))
	if err == nil || jetworker.IsPermanent(err) {
		t.Fatalf("got %v, want a retryable error", err)
	}
}

func TestDefaultTLSPolicyRequiresSTARTTLS(t *testing.T) {
	t.Parallel()
	srv := startSMTP(t, &smtpServer{}) // offers no STARTTLS
	cfg := srv.config()
	cfg.TLSPolicy = 0 // the default: mail.TLSMandatory
	h := newHandler(t, cfg)
	err := h.Handle(t.Context(), emailTask(`{"to":["b@example.com"],"subject":"s","text":"x"}`))
	if err == nil || jetworker.IsPermanent(err) {
		t.Fatalf("got %v, want a retryable error refusing the plain-text server", err)
	}
	if !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("got %q, want it to name STARTTLS", err)
	}
	select {
	case m := <-srv.msgs:
		t.Errorf("server received a message over plain text: %s", m.data)
	default:
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		password      string
		wantErr       bool
		wantPermanent bool
	}{
		{"right credentials send", "pass", false, false},
		{"wrong credentials (535) are permanent", "wrong", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := startSMTP(t, &smtpServer{auth: true})
			cfg := srv.config()
			cfg.Username, cfg.Password = "user", tt.password
			cfg.AuthType = mail.SMTPAuthPlainNoEnc // the test server has no TLS
			h := newHandler(t, cfg)
			err := h.Handle(t.Context(), emailTask(`{"to":["b@example.com"],"subject":"s","text":"x"}`))
			if (err != nil) != tt.wantErr || jetworker.IsPermanent(err) != tt.wantPermanent {
				t.Fatalf("got %v, want error %t, permanent %t", err, tt.wantErr, tt.wantPermanent)
			}
			if !tt.wantErr {
				<-srv.msgs
			}
		})
	}
}

func TestNewValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  email.Config
		want []string
	}{
		{"zero config", email.Config{}, []string{"email: Host must be set"}},
		{"everything wrong at once", email.Config{
			Host: "smtp.example.com", Port: 70000, Timeout: -1, From: "nope", Password: "p", TLSPolicy: 9,
		}, []string{"Port must be in 1..65535", "Timeout must be >= 0", `From "nope"`, "Password is set but Username is not", "TLSPolicy 9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := email.New(tt.cfg)
			if err == nil {
				t.Fatal("got nil, want a validation error")
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("got %q, want it to contain %q", err, s)
				}
			}
		})
	}
}

func TestMessageIDIsStableAcrossRedeliveries(t *testing.T) {
	t.Parallel()
	srv := startSMTP(t, &smtpServer{})
	h := newHandler(t, srv.config())
	payload := `{"to":["a@example.com"],"subject":"s","text":"x"}`

	messageID := func(tk *jetworker.Task) string {
		t.Helper()
		if err := h.Handle(t.Context(), tk); err != nil {
			t.Fatalf("Handle: %v", err)
		}
		got := <-srv.msgs
		msg, err := netmail.ReadMessage(bytes.NewReader(got.data))
		if err != nil {
			t.Fatal(err)
		}
		return msg.Header.Get("Message-Id")
	}
	first := messageID(&jetworker.Task{ID: "order-42", Data: []byte(payload), Delivered: 1})
	again := messageID(&jetworker.Task{ID: "order-42", Data: []byte(payload), Delivered: 2})
	other := messageID(&jetworker.Task{ID: "order-43", Data: []byte(payload), Delivered: 1})
	bySeq := messageID(&jetworker.Task{Stream: "TASKS", Sequence: 9, Data: []byte(payload)})
	bySeqAgain := messageID(&jetworker.Task{Stream: "TASKS", Sequence: 9, Data: []byte(payload)})

	if first != again {
		t.Errorf("redelivery Message-Id %q, want the first delivery's %q", again, first)
	}
	if first == other {
		t.Errorf("tasks order-42 and order-43 share Message-Id %q, want different ones", first)
	}
	if !strings.HasPrefix(first, "<jetworker.") || !strings.HasSuffix(first, "@example.com>") {
		t.Errorf("Message-Id %q, want <jetworker.…@example.com> (the From domain)", first)
	}
	if bySeq != bySeqAgain || bySeq == first {
		t.Errorf("Message-Id by stream position %q then %q, want equal and distinct from %q", bySeq, bySeqAgain, first)
	}
}

func TestSTARTTLSByDefault(t *testing.T) {
	t.Parallel()
	serverTLS, clientTLS := selfSignedTLS(t)
	srv := startSMTP(t, &smtpServer{tls: serverTLS})
	cfg := srv.config()
	cfg.TLSPolicy = 0 // the default: mail.TLSMandatory
	cfg.TLSConfig = clientTLS
	h := newHandler(t, cfg)

	if err := h.Handle(t.Context(), emailTask(`{"to":["b@example.com"],"subject":"s","text":"x"}`)); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if got := <-srv.msgs; !got.tls {
		t.Errorf("message sent without TLS, want STARTTLS")
	}
}

// selfSignedTLS returns a server config with a fresh certificate for
// 127.0.0.1 and a client config that trusts only it.
func selfSignedTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "jetworker test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	return server, client
}
