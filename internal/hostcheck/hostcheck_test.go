package hostcheck_test

import (
	"testing"

	"github.com/jetworker/jetworker/internal/hostcheck"
)

func TestLoopback(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST.": true, "app.localhost": true, "127.0.0.1": true, "127.8.9.10": true,
		"::1": true, "[::1]": true,
		"": false, "0.0.0.0": false, "::": false, "10.0.0.5": false, "example.com": false,
		"localhost.example.com": false, "127.0.0.1.nip.io": false, "evil-localhost": false,
	} {
		if got := hostcheck.Loopback(host); got != want {
			t.Errorf("Loopback(%q): got %v, want %v", host, got, want)
		}
	}
}
