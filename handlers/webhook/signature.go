package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock when [Verify] is given a zero tolerance.
const DefaultTolerance = 5 * time.Minute

// Sign returns the value of the Jetworker-Signature header for body sent
// at time at, signed with secret: "t=<unix seconds>,v1=<hex HMAC-SHA256 of
// "<unix seconds>.<body>">". The [Handler] calls it for every request;
// it is exported for tests and for other senders.
func Sign(secret string, at time.Time, body []byte) string {
	ts := strconv.FormatInt(at.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

// Verify checks a Jetworker-Signature header value against body and
// secret, as a webhook receiver should before trusting a request. It
// accepts the header if one of its v1 signatures matches and its timestamp
// is within tolerance of the current time, in either direction; a zero or
// negative tolerance means [DefaultTolerance]. Several v1 entries may be
// present, which lets a sender roll its secret.
//
// Verify returns nil on success, an error wrapping [ErrSignatureExpired]
// when the timestamp is out of tolerance, and an error wrapping
// [ErrInvalidSignature] when the header is malformed, the secret is empty,
// or no signature matches. Pass the exact body bytes received.
func Verify(secret string, header string, body []byte, tolerance time.Duration) error {
	if secret == "" {
		return fmt.Errorf("%w: empty secret", ErrInvalidSignature)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	var (
		ts   string
		sigs [][]byte
	)
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: malformed element %q", ErrInvalidSignature, part)
		}
		switch k {
		case "t":
			if ts != "" {
				return fmt.Errorf("%w: more than one timestamp", ErrInvalidSignature)
			}
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil {
				return fmt.Errorf("%w: v1 is not hex: %v", ErrInvalidSignature, err)
			}
			sigs = append(sigs, sig)
		}
		// Other schemes are ignored, so a sender can add a new one
		// before every receiver understands it.
	}
	if ts == "" {
		return fmt.Errorf("%w: no timestamp", ErrInvalidSignature)
	}
	if len(sigs) == 0 {
		return fmt.Errorf("%w: no v1 signature", ErrInvalidSignature)
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q: %v", ErrInvalidSignature, ts, err)
	}
	if age := time.Since(time.Unix(unix, 0)); age > tolerance || age < -tolerance {
		return fmt.Errorf("%w: timestamp is %s from now, tolerance %s", ErrSignatureExpired, age.Round(time.Second), tolerance)
	}
	want := mac(secret, ts, body)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 signature matches", ErrInvalidSignature)
}

// mac is the HMAC-SHA256 of "ts.body" keyed by secret.
func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}
