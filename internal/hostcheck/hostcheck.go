// Package hostcheck decides whether a host is this machine only, for the
// listeners that refuse to serve beyond it without authentication (the
// dashboard, its metrics listener, the embedded server, jetworker dev).
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

// RequestHost reports whether an HTTP request's Host (with or without a
// port) may reach a listener that serves without authentication: a
// loopback name or address ([Loopback]) and, with anyAddress (a listener
// deliberately reachable from other machines), any IP address literal.
// Other names are refused: a page whose domain name resolves to this
// machine (DNS rebinding) always sends a name, never an address.
func RequestHost(host string, anyAddress bool) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return Loopback(host) || (anyAddress && net.ParseIP(strings.Trim(host, "[]")) != nil)
}

// LoopbackPeer reports whether remoteAddr, an http.Request's RemoteAddr
// ("ip:port"), is an address of this machine only (127.0.0.0/8, ::1): a
// request from another machine, or from a listener that does not say
// (a Unix socket), is not.
func LoopbackPeer(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
