// Package deploy holds no Go code: it is the deployment kit of jetworker
// (Dockerfiles, compose, Kubernetes manifests, NATS server configs and
// systemd units; see README.md). It is a package only so that its tests,
// which check every file here against the jetworker binary and the NATS
// server's config parser, run with "go test ./...".
package deploy
