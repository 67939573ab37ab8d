package email

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	netmail "net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/internal/payload"
)

// Defaults for [Config] fields left at their zero value.
const (
	// DefaultPort is the default Config.Port: SMTP submission.
	DefaultPort = 587
	// DefaultTimeout is the default Config.Timeout.
	DefaultTimeout = 30 * time.Second
)

// Config configures a [Handler]. The zero value of every optional field
// means its default.
type Config struct {
	// Host is the SMTP server's host name. Required.
	Host string
	// Port is the SMTP server's port. Defaults to 587 (submission).
	Port int
	// ImplicitTLS connects with TLS from the start (SMTPS, usually port
	// 465) instead of upgrading with STARTTLS. Defaults to false.
	ImplicitTLS bool
	// TLSPolicy says whether STARTTLS is required. The zero value is
	// mail.TLSMandatory: a server that does not offer STARTTLS is refused.
	// mail.TLSOpportunistic uses it when offered; mail.NoTLS never does
	// (for local test servers only).
	TLSPolicy mail.TLSPolicy
	// TLSConfig configures TLS. Defaults to go-mail's: server name = Host,
	// TLS 1.2 or later.
	TLSConfig *tls.Config
	// Username enables SMTP AUTH when set. Defaults to no authentication.
	Username string
	// Password is the SMTP AUTH password.
	Password string
	// AuthType is the SMTP AUTH mechanism used when Username is set.
	// Defaults to mail.SMTPAuthAutoDiscover, the strongest mechanism the
	// server offers.
	AuthType mail.SMTPAuthType
	// From is the sender used for messages that name none, in RFC 5322
	// form. Defaults to none: every message must then have a From.
	From string
	// Timeout bounds connecting and each SMTP command. Defaults to 30s.
	Timeout time.Duration
}

// Message is the JSON payload of an email task. See the package
// documentation for its fields.
type Message struct {
	// From is the sender. Empty means Config.From.
	From string `json:"from,omitempty"`
	// To, Cc and Bcc are the recipients; at least one is required. Bcc
	// recipients get the message but appear in no header.
	To  []string `json:"to,omitempty"`
	Cc  []string `json:"cc,omitempty"`
	Bcc []string `json:"bcc,omitempty"`
	// ReplyTo is the address replies go to. Optional.
	ReplyTo string `json:"reply_to,omitempty"`
	// Subject is the subject line; non-ASCII text is MIME-encoded.
	Subject string `json:"subject"`
	// Text and HTML are the bodies; at least one is required. With both,
	// the email is multipart/alternative.
	Text string `json:"text,omitempty"`
	HTML string `json:"html,omitempty"`
}

// Handler sends email tasks through SMTP. Create it with [New]. It is
// safe for concurrent use.
type Handler struct {
	cfg  Config
	opts []mail.Option
}

var _ jetworker.Handler = (*Handler)(nil)

// New returns a Handler for cfg. It reports every invalid field at once
// and does no network I/O.
func New(cfg Config) (*Handler, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	opts := []mail.Option{
		mail.WithPort(cfg.Port),
		mail.WithTimeout(cfg.Timeout),
		mail.WithTLSPolicy(cfg.TLSPolicy),
	}
	if cfg.ImplicitTLS {
		opts = append(opts, mail.WithSSL())
	}
	if cfg.TLSConfig != nil {
		opts = append(opts, mail.WithTLSConfig(cfg.TLSConfig))
	}
	if cfg.Username != "" {
		opts = append(opts,
			mail.WithSMTPAuth(cmp.Or(cfg.AuthType, mail.SMTPAuthAutoDiscover)),
			mail.WithUsername(cfg.Username),
			mail.WithPassword(cfg.Password))
	}
	// Build a client once so option errors surface here, not per task.
	if _, err := mail.NewClient(cfg.Host, opts...); err != nil {
		return nil, fmt.Errorf("email: %w", err)
	}
	return &Handler{cfg: cfg, opts: opts}, nil
}

func (c Config) withDefaults() Config {
	c.Port = cmp.Or(c.Port, DefaultPort)
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Host == "" {
		errs = append(errs, errors.New("email: Host must be set"))
	}
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("email: Port must be in 1..65535, got %d", c.Port))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("email: Timeout must be >= 0, got %s", c.Timeout))
	}
	switch c.TLSPolicy {
	case mail.TLSMandatory, mail.TLSOpportunistic, mail.NoTLS:
	default:
		errs = append(errs, fmt.Errorf("email: TLSPolicy %d is not a known policy", c.TLSPolicy))
	}
	if c.From != "" {
		if _, err := netmail.ParseAddress(c.From); err != nil {
			errs = append(errs, fmt.Errorf("email: From %q: %w", c.From, err))
		}
	}
	if c.Username == "" && c.Password != "" {
		errs = append(errs, errors.New("email: Password is set but Username is not"))
	}
	return errors.Join(errs...)
}

// Handle decodes t's payload as a [Message] and sends it with
// [Handler.Send]. A payload that does not decode fails as
// [jetworker.Permanent].
func (h *Handler) Handle(ctx context.Context, t *jetworker.Task) error {
	var m Message
	if err := payload.DecodeJSON(t.Data, &m, true); err != nil {
		return jetworker.Permanent(fmt.Errorf("decode email message of subject %q: %w", t.Subject, err))
	}
	return h.send(ctx, m, taskKey(t))
}

// taskKey identifies t across redeliveries: its ID, else its stream
// position, else "" (no stable identity).
func taskKey(t *jetworker.Task) string {
	switch {
	case t.ID != "":
		return "id:" + t.ID
	case t.Stream != "" && t.Sequence != 0:
		return "seq:" + t.Stream + "/" + strconv.FormatUint(t.Sequence, 10)
	}
	return ""
}

// Send sends m. It checks the message before connecting and fails with a
// [jetworker.Permanent] error naming every problem (invalid address, no
// recipient, no body, no sender). It then connects, sends and
// disconnects, blocking until the server has answered or ctx or
// Config.Timeout ends the attempt; SMTP replies map to the result as the
// package documentation describes.
func (h *Handler) Send(ctx context.Context, m Message) error {
	return h.send(ctx, m, "")
}

// send sends m. A non-empty key derives the Message-ID; otherwise it is
// random.
func (h *Handler) send(ctx context.Context, m Message, key string) error {
	msg, err := h.build(m, key)
	if err != nil {
		return jetworker.Permanent(err)
	}
	client, err := mail.NewClient(h.cfg.Host, h.opts...)
	if err != nil { // the same options worked in New
		return fmt.Errorf("email: new client: %w", err)
	}
	addr := h.cfg.Host + ":" + strconv.Itoa(h.cfg.Port)
	conn, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return classify(fmt.Errorf("smtp connect %s: %w", addr, err))
	}
	// Once the server accepted the message, a failing QUIT must not make
	// the task fail and the email go out twice.
	defer func() { _ = client.CloseWithSMTPClient(conn) }()
	if err := client.SendWithSMTPClient(conn, msg); err != nil {
		return classify(fmt.Errorf("smtp send via %s: %w", addr, err))
	}
	return nil
}

// build checks m and turns it into a go-mail message, with a Message-ID
// derived from key when key is not empty.
func (h *Handler) build(m Message, key string) (*mail.Msg, error) {
	var errs []error
	check := func(field, addr string) {
		if _, err := netmail.ParseAddress(addr); err != nil {
			errs = append(errs, fmt.Errorf("email: invalid %s address %q: %w", field, addr, err))
		}
	}
	from := cmp.Or(m.From, h.cfg.From)
	if from == "" {
		errs = append(errs, errors.New("email: message has no from and Config.From is empty"))
	} else {
		check("from", from)
	}
	for _, a := range m.To {
		check("to", a)
	}
	for _, a := range m.Cc {
		check("cc", a)
	}
	for _, a := range m.Bcc {
		check("bcc", a)
	}
	if m.ReplyTo != "" {
		check("reply_to", m.ReplyTo)
	}
	if len(m.To)+len(m.Cc)+len(m.Bcc) == 0 {
		errs = append(errs, errors.New("email: message has no recipient in to, cc or bcc"))
	}
	if m.Text == "" && m.HTML == "" {
		errs = append(errs, errors.New("email: message has neither text nor html body"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	msg := mail.NewMsg()
	set := func(field string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("email: %s: %w", field, err))
		}
	}
	set("from", msg.From(from))
	if len(m.To) > 0 {
		set("to", msg.To(m.To...))
	}
	if len(m.Cc) > 0 {
		set("cc", msg.Cc(m.Cc...))
	}
	if len(m.Bcc) > 0 {
		set("bcc", msg.Bcc(m.Bcc...))
	}
	if m.ReplyTo != "" {
		set("reply_to", msg.ReplyTo(m.ReplyTo))
	}
	msg.Subject(m.Subject)
	if key != "" {
		msg.SetMessageIDWithValue(messageID(key, from))
	}
	switch {
	case m.Text != "" && m.HTML != "":
		msg.SetBodyString(mail.TypeTextPlain, m.Text)
		msg.AddAlternativeString(mail.TypeTextHTML, m.HTML)
	case m.Text != "":
		msg.SetBodyString(mail.TypeTextPlain, m.Text)
	default:
		msg.SetBodyString(mail.TypeTextHTML, m.HTML)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return msg, nil
}

// messageID returns a Message-ID (without angle brackets) that is the
// same for every delivery of the task identified by key, in the domain of
// the from address.
func messageID(key, from string) string {
	domain := "jetworker.invalid"
	if a, err := netmail.ParseAddress(from); err == nil {
		if _, d, ok := strings.Cut(a.Address, "@"); ok && d != "" {
			domain = d
		}
	}
	sum := sha256.Sum256([]byte(key))
	return "jetworker." + hex.EncodeToString(sum[:16]) + "@" + domain
}

// classify maps an SMTP failure to the handler outcome: a 5xx reply is
// permanent, anything else (4xx, network, TLS) is retried.
func classify(err error) error {
	if replyCode(err) >= 500 {
		return jetworker.Permanent(err)
	}
	return err
}

// replyCode returns the SMTP reply code carried by err, or 0.
func replyCode(err error) int {
	var se *mail.SendError
	if errors.As(err, &se) && se.ErrorCode() != 0 {
		return se.ErrorCode()
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}
