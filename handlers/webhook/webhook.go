package webhook

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jetworker/jetworker"
)

// HTTP header names set on every webhook request. See the package
// documentation for the full mapping.
const (
	// HeaderTaskID carries Task.ID; it is [jetworker.HeaderTaskID].
	HeaderTaskID = jetworker.HeaderTaskID
	// HeaderSubject carries Task.Subject.
	HeaderSubject = "Jetworker-Subject"
	// HeaderDelivered carries Task.Delivered, 1 on the first attempt.
	HeaderDelivered = "Jetworker-Delivered"
	// HeaderStream carries Task.Stream.
	HeaderStream = "Jetworker-Stream"
	// HeaderSequence carries Task.Sequence, the stream sequence.
	HeaderSequence = "Jetworker-Sequence"
	// HeaderSignature carries the signature that [Verify] checks.
	HeaderSignature = "Jetworker-Signature"
)

// Defaults for [Config] fields left at their zero value.
const (
	// DefaultTimeout is the default Config.Timeout.
	DefaultTimeout = 10 * time.Second
	// DefaultHeaderPrefix is the default Config.HeaderPrefix.
	DefaultHeaderPrefix = "Jetworker-Header-"
	// DefaultContentType is the default Config.ContentType.
	DefaultContentType = "application/json"
	// DefaultMaxErrorBody is the default Config.MaxErrorBody, in bytes.
	DefaultMaxErrorBody = 512
)

// userAgent is the User-Agent of every request.
const userAgent = "jetworker-webhook"

// Config configures a [Handler]. The zero value of every optional field
// means its default.
type Config struct {
	// URL is the absolute http or https URL tasks are POSTed to.
	// Required.
	URL string
	// Secret keys the HMAC-SHA256 signature of every request. Required;
	// the receiver verifies with the same secret and [Verify].
	Secret string
	// Timeout bounds one request, from connecting to reading the
	// response headers and the part of the body that is read. Defaults
	// to 10s.
	Timeout time.Duration
	// Client sends the requests. Defaults to a client on
	// http.DefaultTransport that does not follow redirects.
	Client *http.Client
	// HeaderPrefix is put before each task header's name to form the
	// HTTP header name. Defaults to "Jetworker-Header-".
	HeaderPrefix string
	// ContentType is the request's Content-Type when the task has no
	// Content-Type header. Defaults to "application/json".
	ContentType string
	// MaxErrorBody is how many bytes of a failed response's body are
	// quoted in the error. Defaults to 512; -1 quotes none.
	MaxErrorBody int
}

// Handler POSTs tasks to a webhook URL. Create it with [New]. It is safe
// for concurrent use.
type Handler struct {
	cfg    Config
	where  string // the URL as errors name it: see [Where]
	client *http.Client
}

var _ jetworker.Handler = (*Handler)(nil)

// New returns a Handler for cfg. It reports every invalid field at once
// and does no network I/O.
func New(cfg Config) (*Handler, error) {
	cfg = cfg.withDefaults()
	u, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &Handler{cfg: cfg, where: where(u), client: client}, nil
}

// Where returns rawURL as the handler names it in errors, which end up in
// logs, dead-letter headers and task records: its scheme and host, and
// "/..." for a path. User info and query strings carry tokens, and so do
// the paths of many webhook URLs (Slack's, Discord's), so none of them is
// shown. A URL that does not parse is shown as "webhook URL".
func Where(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "webhook URL"
	}
	return where(u)
}

func where(u *url.URL) string {
	w := u.Scheme + "://" + u.Host
	if u.Path != "" && u.Path != "/" {
		w += "/..."
	}
	return w
}

func (c Config) withDefaults() Config {
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	c.HeaderPrefix = cmp.Or(c.HeaderPrefix, DefaultHeaderPrefix)
	c.ContentType = cmp.Or(c.ContentType, DefaultContentType)
	c.MaxErrorBody = cmp.Or(c.MaxErrorBody, DefaultMaxErrorBody)
	return c
}

// validate checks a Config with defaults applied and returns the parsed
// URL.
func (c Config) validate() (*url.URL, error) {
	var errs []error
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		errs = append(errs, errors.New("webhook: URL must be set"))
	case err != nil:
		// Not the *url.Error itself: it quotes the URL, credentials and
		// all.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		errs = append(errs, fmt.Errorf("webhook: URL: %w", err))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("webhook: URL must be http or https, got scheme %q", u.Scheme))
	case u.Host == "":
		errs = append(errs, errors.New("webhook: URL must have a host"))
	}
	if c.Secret == "" {
		errs = append(errs, errors.New("webhook: Secret must be set"))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("webhook: Timeout must be >= 0, got %s", c.Timeout))
	}
	if !validHeaderName(c.HeaderPrefix) {
		errs = append(errs, fmt.Errorf("webhook: HeaderPrefix %q is not a valid HTTP header name", c.HeaderPrefix))
	}
	if strings.ContainsAny(c.ContentType, "\r\n\x00") {
		errs = append(errs, errors.New("webhook: ContentType must be a valid header value"))
	}
	if c.MaxErrorBody < -1 {
		errs = append(errs, fmt.Errorf("webhook: MaxErrorBody must be >= -1, got %d", c.MaxErrorBody))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return u, nil
}

// Handle POSTs t to the configured URL and maps the outcome as the
// package documentation describes. It blocks until the response arrives
// or Config.Timeout or ctx ends the request.
func (h *Handler) Handle(ctx context.Context, t *jetworker.Task) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	req, err := h.request(ctx, t)
	if err != nil {
		return err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook post %s: %w", t.Subject, h.redact(err))
	}
	defer resp.Body.Close()
	return h.outcome(resp, time.Now())
}

// redact rewrites the *url.Error of a failed request to name the URL
// as Where shows it: http.Client.Do quotes the whole URL
// (hiding only a password), and the error ends up in logs and in the
// dead letter's Jetworker-Error header. The cause (a refused connection,
// a timeout) stays wrapped for errors.Is and errors.As.
func (h *Handler) redact(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	return &url.Error{Op: ue.Op, URL: h.where, Err: ue.Err}
}

// request builds the signed request for t.
func (h *Handler) request(ctx context.Context, t *jetworker.Task) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.cfg.URL, bytes.NewReader(t.Data))
	if err != nil {
		return nil, fmt.Errorf("webhook build request: %w", err)
	}
	hdr := req.Header
	contentType := h.cfg.ContentType
	for k, vs := range t.Header {
		if !validHeaderName(k) {
			return nil, jetworker.Permanent(fmt.Errorf("webhook: task header name %q is not a valid HTTP header name", k))
		}
		for _, v := range vs {
			if !validHeaderValue(v) {
				return nil, jetworker.Permanent(fmt.Errorf("webhook: task header %q has a value that is not a valid HTTP header value", k))
			}
			hdr.Add(h.cfg.HeaderPrefix+k, v)
		}
		switch {
		case strings.EqualFold(k, jetworker.HeaderTraceParent), strings.EqualFold(k, jetworker.HeaderTraceState):
			hdr[strings.ToLower(k)] = vs // W3C spells these in lower case
		case strings.EqualFold(k, "Content-Type") && len(vs) > 0 && vs[0] != "":
			contentType = vs[0]
		}
	}
	hdr.Set("Content-Type", contentType)
	hdr.Set("User-Agent", userAgent)
	if t.ID != "" {
		hdr.Set(HeaderTaskID, t.ID)
	}
	hdr.Set(HeaderSubject, t.Subject)
	hdr.Set(HeaderDelivered, strconv.FormatUint(t.Delivered, 10))
	if t.Stream != "" {
		hdr.Set(HeaderStream, t.Stream)
	}
	if t.Sequence != 0 {
		hdr.Set(HeaderSequence, strconv.FormatUint(t.Sequence, 10))
	}
	hdr.Set(HeaderSignature, Sign(h.cfg.Secret, time.Now(), t.Data))
	return req, nil
}

// maxDrain bounds how much of a successful response's body is read so the
// connection can be reused.
const maxDrain = 64 << 10

// outcome maps a response to the handler's result.
func (h *Handler) outcome(resp *http.Response, now time.Time) error {
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
		return nil
	}
	err := fmt.Errorf("webhook %s: status %s%s", h.where, resp.Status, h.excerpt(resp.Body))
	switch {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), now); ok {
			return jetworker.RetryAfter(err, d)
		}
		return err
	case code == http.StatusRequestTimeout || code >= 500:
		return err
	default: // other 4xx, and 1xx or 3xx that a correct endpoint never sends
		return jetworker.Permanent(err)
	}
}

// excerpt reads up to MaxErrorBody bytes of body and returns them as
// ": <text>", cleaned for an error message, or "" if there is nothing.
func (h *Handler) excerpt(body io.Reader) string {
	if h.cfg.MaxErrorBody < 0 {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(body, int64(h.cfg.MaxErrorBody)+1))
	truncated := len(b) > h.cfg.MaxErrorBody
	if truncated {
		b = b[:h.cfg.MaxErrorBody]
		for len(b) > 0 && !utf8.Valid(b) { // don't cut a rune in half
			b = b[:len(b)-1]
		}
	}
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "\uFFFD")), " ")
	if s == "" {
		return ""
	}
	if truncated {
		s += "…"
	}
	return ": " + s
}

// retryAfter parses a Retry-After value: delay seconds or an HTTP date.
// A date in the past means no delay.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(secs) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}

// validHeaderName reports whether s is an HTTP token (RFC 9110 §5.1).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s has no control characters other
// than horizontal tab (RFC 9110 §5.5).
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
