package main

import (
	"fmt"
	"strings"

	"github.com/wneessen/go-mail"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/handlers/email"
)

// emailConfig maps an email route to the email handler's Config.
func emailConfig(r emailRoute) (email.Config, error) {
	cfg := email.Config{Host: r.Host, Port: r.Port, Username: r.Username, Password: r.Password, From: r.From}
	switch strings.ToLower(r.TLS) {
	case "", "starttls":
		cfg.TLSPolicy = mail.TLSMandatory
	case "opportunistic":
		cfg.TLSPolicy = mail.TLSOpportunistic
	case "tls":
		cfg.ImplicitTLS = true
	case "none":
		cfg.TLSPolicy = mail.NoTLS
	default:
		return cfg, fmt.Errorf("email tls %q: want starttls, opportunistic, tls or none", r.TLS)
	}
	return cfg, nil
}

// emailHandler builds the stock email handler of a route.
func emailHandler(r emailRoute) (jetworker.Handler, error) {
	cfg, err := emailConfig(r)
	if err != nil {
		return nil, err
	}
	h, err := email.New(cfg)
	if err != nil {
		return nil, err
	}
	return h, nil
}
