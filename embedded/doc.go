// Package embedded runs a real nats-server with JetStream inside the
// current process, for tests, examples and jetworker's dev mode.
//
// [Start] is the plain entry point: it starts one server from a [Config]
// and returns once it accepts connections. [StartT] and [JetStream] are the
// test helpers: a random port, storage under t.TempDir(), and shutdown
// registered with t.Cleanup, so a test needs one line to get a connected
// JetStream context:
//
//	js := embeddedtest.JetStream(t)
//
// [StartCluster] (and embeddedtest.StartCluster in tests) starts an N-node cluster with routes on
// 127.0.0.1 and JetStream on every node, able to host R3 streams.
//
// Only this package and cmd/jetworker import nats-server, so a worker
// binary that does not use it never links the server.
package embedded
