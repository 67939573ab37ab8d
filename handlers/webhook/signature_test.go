package webhook_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jetworker/jetworker/handlers/webhook"
)

func TestVerify(t *testing.T) {
	t.Parallel()
	body := []byte(`{"n":1}`)
	now := time.Now()
	valid := webhook.Sign(secret, now, body)
	_, validSig, _ := strings.Cut(valid, ",v1=")
	ts := strings.TrimPrefix(strings.Split(valid, ",")[0], "t=")
	tests := []struct {
		name      string
		secret    string
		header    string
		body      []byte
		tolerance time.Duration
		want      error // nil for success
	}{
		{"valid", secret, valid, body, time.Minute, nil},
		{"valid with default tolerance", secret, valid, body, 0, nil},
		{"rotated secret: one of several v1 matches", secret,
			"t=" + ts + ",v1=" + strings.Repeat("ab", 32) + ",v1=" + validSig, body, time.Minute, nil},
		{"unknown scheme ignored", secret, valid + ",v0=zzz", body, time.Minute, nil},
		{"spaces around elements", secret, "t=" + ts + ", v1=" + validSig, body, time.Minute, nil},
		{"tampered body", secret, valid, []byte(`{"n":2}`), time.Minute, webhook.ErrInvalidSignature},
		{"wrong secret", "other", valid, body, time.Minute, webhook.ErrInvalidSignature},
		{"empty secret", "", valid, body, time.Minute, webhook.ErrInvalidSignature},
		{"too old", secret, webhook.Sign(secret, now.Add(-2*time.Minute), body), body, time.Minute, webhook.ErrSignatureExpired},
		{"too far in the future", secret, webhook.Sign(secret, now.Add(2*time.Minute), body), body, time.Minute, webhook.ErrSignatureExpired},
		{"older than default tolerance", secret, webhook.Sign(secret, now.Add(-6*time.Minute), body), body, 0, webhook.ErrSignatureExpired},
		{"timestamp changed", secret, "t=" + ts + "1,v1=" + validSig, body, 0, webhook.ErrSignatureExpired},
		{"empty header", secret, "", body, time.Minute, webhook.ErrInvalidSignature},
		{"no timestamp", secret, "v1=" + validSig, body, time.Minute, webhook.ErrInvalidSignature},
		{"two timestamps", secret, "t=1,t=2,v1=" + validSig, body, time.Minute, webhook.ErrInvalidSignature},
		{"no signature", secret, "t=" + ts, body, time.Minute, webhook.ErrInvalidSignature},
		{"signature not hex", secret, "t=" + ts + ",v1=xyz", body, time.Minute, webhook.ErrInvalidSignature},
		{"timestamp not a number", secret, "t=now,v1=" + validSig, body, time.Minute, webhook.ErrInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := webhook.Verify(tt.secret, tt.header, tt.body, tt.tolerance)
			if tt.want == nil && err != nil {
				t.Errorf("got %v, want nil", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSignFormat(t *testing.T) {
	t.Parallel()
	// HMAC-SHA256("k", "1700000000.body"), computed independently with
	// printf '1700000000.body' | openssl dgst -sha256 -hmac k
	got := webhook.Sign("k", time.Unix(1700000000, 0), []byte("body"))
	want := "t=1700000000,v1=75c6f5400ffe9efa801269319d42add2b0f1579efe1715c7b4eb052dd2bd4c58"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
