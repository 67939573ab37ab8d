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

func TestRequestHost(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		host       string
		anyAddress bool
		want       bool
	}{
		{"localhost:8080", false, true}, {"LOCALHOST", false, true}, {"dev.localhost:8080", false, true},
		{"127.0.0.1:9090", false, true}, {"[::1]:9090", false, true}, {"::1", false, true},
		{"10.0.0.5:9090", false, false}, {"[fe80::1]:9090", false, false}, {"evil.example", false, false},
		{"10.0.0.5:9090", true, true}, {"[fe80::1]:9090", true, true}, {"10.0.0.5", true, true},
		{"evil.example:9090", true, false}, {"127.0.0.1.nip.io", true, false}, {"worker-0.svc:9090", true, false},
		{"", false, false}, {"", true, false},
	} {
		if got := hostcheck.RequestHost(c.host, c.anyAddress); got != c.want {
			t.Errorf("RequestHost(%q, anyAddress %v): got %v, want %v", c.host, c.anyAddress, got, c.want)
		}
	}
}

func TestLoopbackPeer(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:5000": true, "127.1.2.3:1": true, "[::1]:5000": true,
		"10.0.0.5:5000": false, "[fe80::1]:5000": false, "192.0.2.1:1234": false, "@": false, "": false, "127.0.0.1": false,
	} {
		if got := hostcheck.LoopbackPeer(addr); got != want {
			t.Errorf("LoopbackPeer(%q): got %v, want %v", addr, got, want)
		}
	}
}
