package email_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	netmail "net/mail"
	"strings"

	"github.com/emersion/go-smtp"
	"github.com/wneessen/go-mail"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/handlers/email"
)

// Example sends an email task through an SMTP server. Here the server is
// an in-process go-smtp server that prints what it receives; in
// production Config names your mail provider, with TLS and credentials.
func Example() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &printSession{}, nil
	}))
	srv.Domain = "localhost"
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	defer func() { _ = srv.Close(); _ = l.Close(); <-done }()

	h, err := email.New(email.Config{
		Host:      "127.0.0.1",
		Port:      l.Addr().(*net.TCPAddr).Port,
		TLSPolicy: mail.NoTLS, // a local test server only; the default requires STARTTLS
		From:      "Shop <shop@example.com>",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	err = h.Handle(ctx, &jetworker.Task{Subject: "tasks.email.send", Data: []byte(`{
		"to": ["ada@example.com"], "subject": "Your order", "text": "It ships today."
	}`)})
	fmt.Println("sent:", err)

	// An invalid address fails permanently, before any connection.
	err = h.Handle(ctx, &jetworker.Task{Subject: "tasks.email.send", Data: []byte(`{
		"to": ["ada at example.com"], "subject": "Your order", "text": "It ships today."
	}`)})
	fmt.Println("permanent:", jetworker.IsPermanent(err))
	// Output:
	// server got "Your order" for ada@example.com
	// sent: <nil>
	// permanent: true
}

// printSession is a go-smtp session that accepts everything and prints
// each message's subject and recipients.
type printSession struct{ rcpt []string }

func (s *printSession) Mail(string, *smtp.MailOptions) error { return nil }

func (s *printSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.rcpt = append(s.rcpt, to)
	return nil
}

func (s *printSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	msg, err := netmail.ReadMessage(bytes.NewReader(b))
	if err != nil {
		return err
	}
	fmt.Printf("server got %q for %s\n", msg.Header.Get("Subject"), strings.Join(s.rcpt, ", "))
	return nil
}

func (s *printSession) Reset()        { s.rcpt = nil }
func (s *printSession) Logout() error { return nil }
