// Package reliability proves jetworker's delivery, failover and security
// promises on real processes: nats-server and jetworker binaries built once
// per test binary, started on 127.0.0.1 with configs written per test, and
// killed, paused or stopped by the PIDs the tests started.
//
// # What runs
//
// Workers use a webhook route pointed at an HTTP receiver inside the test
// process. The receiver verifies the Jetworker-Signature, records every
// request (task ID, delivery count, stream sequence, worker, time) and
// answers after a simulated work time. The test's publisher records the IDs
// it attempted and those acknowledged, retrying with the same ID. The
// internal check package turns that history into the figures: lost = acknowledged − completed,
// duplicate executions (each explained by a kill or an expired ack wait, or
// unexplained), IDs stored twice and the time a killed worker's tasks took
// to resume.
//
// # Scenarios
//
// Each scenario test prints one line starting with "FIGURE". The default
// `go test ./reliability/` runs a short form of each; the full sizes run
// with the build tag reliability_full or JETWORKER_FULL=1:
//
//	JETWORKER_FULL=1 go test -v -run . -timeout 60m ./reliability/ | grep FIGURE
//
// docs/reliability.md collects the figures of a run.
package reliability
