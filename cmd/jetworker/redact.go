package main

import (
	"encoding/json"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// redacted replaces a secret wherever one would be printed.
const redacted = "[REDACTED]"

// redactURL hides what URLs carry besides where they point: the user info
// (user:password@, token@) and the query and fragment, where tokens travel
// too. s may be a comma-separated list of URLs, as JETWORKER_NATS_URL is,
// or a key=value connection string, whose password it hides. Other text
// is returned as it is.
func redactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = redactOneURL(p)
	}
	return strings.Join(parts, ",")
}

func redactOneURL(p string) string {
	if dsnPassword.MatchString(p) && !strings.Contains(p, "://") {
		return dsnPassword.ReplaceAllString(p, "${1}"+redacted)
	}
	scheme, rest, ok := strings.Cut(p, "://")
	if !ok {
		// nats.go takes "user:pass@host:4222" as a nats:// URL.
		if at := strings.LastIndex(p, "@"); at >= 0 {
			return redacted + "@" + p[at+1:]
		}
		return p
	}
	// The authority ends at the first '/', '?' or '#'; user info is what
	// comes before its last '@' (a password may hold '@' itself, or '/').
	end := strings.IndexAny(rest, "?#")
	if end < 0 {
		end = len(rest)
	}
	hostPath := rest[:end]
	if at := strings.LastIndex(hostPath, "@"); at >= 0 {
		hostPath = redacted + "@" + hostPath[at+1:]
	}
	tail := rest[end:]
	if tail != "" {
		tail = tail[:1] + redacted
	}
	return scheme + "://" + hostPath + tail
}

// dsnPassword finds the password of a key=value connection string
// (PostgreSQL's "host=db password=s3cret").
var dsnPassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// urlSecrets returns the secret parts of the URLs in s (a comma-separated
// list): each user info, password and query, and each query value, for
// the output scrubber.
func urlSecrets(s string) []string {
	var out []string
	for _, m := range dsnPassword.FindAllStringSubmatch(s, -1) {
		out = append(out, m[2], strings.Trim(m[2], "'"))
	}
	for p := range strings.SplitSeq(s, ",") {
		_, rest, ok := strings.Cut(p, "://")
		if !ok {
			rest = p
		}
		end := strings.IndexAny(rest, "?#")
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
			info := rest[:at]
			out = append(out, info)
			if _, pass, ok := strings.Cut(info, ":"); ok {
				out = append(out, pass)
				if u, err := url.PathUnescape(pass); err == nil {
					out = append(out, u)
				}
			}
		}
		if end < len(rest) {
			q := rest[end+1:]
			out = append(out, q)
			if vals, err := url.ParseQuery(q); err == nil {
				for _, vs := range vals {
					out = append(out, vs...)
				}
			}
		}
	}
	return out
}

// webhookSecrets returns the secret parts of a webhook URL: those of
// urlSecrets, and its path and the path's longer segments (Slack's and
// Discord's webhook URLs carry their token there).
func webhookSecrets(s string) []string {
	out := urlSecrets(s)
	u, err := url.Parse(s)
	if err != nil || u.Path == "" || u.Path == "/" {
		return out
	}
	out = append(out, u.Path, u.EscapedPath())
	for seg := range strings.SplitSeq(u.Path, "/") {
		if len(seg) >= minPathSecret {
			out = append(out, seg)
		}
	}
	return out
}

// minPathSecret is the shortest path segment of a webhook URL the
// scrubber treats as a token; shorter ones are words ("hooks",
// "services").
const minPathSecret = 12

// minScrubbed is the shortest secret the scrubber replaces: shorter ones
// would match ordinary words and numbers all over the output. Shorter
// secrets are still redacted where they are printed; the scrubber is the
// safety net behind that.
const minScrubbed = 6

// scrubber is a writer that replaces every known secret with [REDACTED]
// before passing the output on: the safety net for error texts of
// libraries that quote what they were given. Logs and error lines are
// written with one Write call per line, so a secret is never split across
// two. It is safe for concurrent use.
type scrubber struct {
	w io.Writer

	mu      sync.Mutex
	secrets []string // longest first
}

func newScrubber(w io.Writer) *scrubber { return &scrubber{w: w} }

// add registers secrets, also as JSON and Go quote them (a JSON log line,
// a %q in an error message).
func (s *scrubber) add(secrets ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range secrets {
		if len(v) < minScrubbed {
			continue
		}
		j, _ := json.Marshal(v)
		for _, form := range []string{v, string(j[1 : len(j)-1]), strconv.Quote(v)[1 : len(strconv.Quote(v))-1]} {
			if !slices.Contains(s.secrets, form) {
				s.secrets = append(s.secrets, form)
			}
		}
	}
	slices.SortFunc(s.secrets, func(a, b string) int { return len(b) - len(a) })
}

// scrub returns p with the secrets replaced.
func (s *scrubber) scrub(p string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.secrets {
		p = strings.ReplaceAll(p, v, redacted)
	}
	return p
}

func (s *scrubber) Write(p []byte) (int, error) {
	out := s.scrub(string(p))
	if _, err := io.WriteString(s.w, out); err != nil {
		return 0, err
	}
	return len(p), nil
}
