// Package hostcheck decides whether a host is this machine only, for the
// listeners that refuse to serve beyond it without authentication (the
// dashboard, the embedded server, jetworker dev).
package hostcheck

import (
	"net"
	"strings"
)

// Loopback reports whether host (a name or an address, without a port) is
// this machine only: localhost, *.localhost, 127.0.0.0/8 or ::1. An empty
// host, or 0.0.0.0 and ::, listen everywhere and are not.
func Loopback(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
