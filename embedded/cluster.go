package embedded

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// DefaultClusterName is the cluster name [StartCluster] uses.
const DefaultClusterName = "jetworker"

// ClusterConfig describes an embedded cluster.
type ClusterConfig struct {
	// Nodes is the number of servers. Defaults to 3.
	Nodes int
	// Name is the cluster name. Defaults to "jetworker".
	Name string
	// Node is the template for every node's Config. Its Port, Name,
	// StoreDir and Cluster fields are set per node: client and route ports
	// are picked free on 127.0.0.1 and each node stores under its own
	// directory (below Node.StoreDir when that is set).
	Node Config
	// ReadyTimeout bounds how long StartCluster waits for a JetStream meta
	// leader. Defaults to 30s.
	ReadyTimeout time.Duration
}

// Cluster is a running embedded cluster. Its nodes are ordinary
// [Server]s; shut one down to simulate losing a node.
type Cluster struct {
	// Servers are the nodes, in start order.
	Servers []*Server
}

// StartCluster starts cfg.Nodes servers connected by routes on 127.0.0.1,
// with JetStream on every node, and blocks until the JetStream meta group
// has elected a leader. Call [Cluster.Shutdown] to stop them.
func StartCluster(cfg ClusterConfig) (*Cluster, error) {
	n := cfg.Nodes
	if n == 0 {
		n = 3
	}
	if n < 1 {
		return nil, fmt.Errorf("embedded: cluster Nodes %d must be > 0", n)
	}
	name := cfg.Name
	if name == "" {
		name = DefaultClusterName
	}
	timeout := cfg.ReadyTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}

	host := cfg.Node.Host
	if host == "" {
		host = DefaultHost
	}
	ports, err := freePorts(host, 2*n)
	if err != nil {
		return nil, err
	}
	routes := make([]*url.URL, n)
	for i := range n {
		routes[i] = &url.URL{Scheme: "nats-route", Host: net.JoinHostPort(host, fmt.Sprint(ports[n+i]))}
	}

	c := &Cluster{}
	for i := range n {
		nc := cfg.Node
		nc.Host = host
		nc.Port = ports[i]
		nc.Name = fmt.Sprintf("%s-%d", name, i+1)
		if cfg.Node.StoreDir != "" {
			nc.StoreDir = fmt.Sprintf("%s/%s", strings.TrimRight(cfg.Node.StoreDir, "/"), nc.Name)
		}
		nc.Cluster = &ClusterMember{Name: name, Host: host, Port: ports[n+i], Routes: routes}
		s, err := Start(nc)
		if err != nil {
			c.Shutdown()
			return nil, fmt.Errorf("embedded: start cluster node %d: %w", i+1, err)
		}
		c.Servers = append(c.Servers, s)
	}
	if err := c.WaitReady(timeout); err != nil {
		c.Shutdown()
		return nil, err
	}
	return c, nil
}

// WaitReady blocks until one running node leads the JetStream meta group,
// every running node is current with it, and the leader sees every
// running node online (so R3 placement can use them), or timeout passes.
func (c *Cluster) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		running, online, leader, current := 0, 0, false, true
		for _, s := range c.Servers {
			if !s.ns.Running() {
				continue
			}
			running++
			if s.ns.JetStreamIsLeader() {
				leader = true
				online = len(s.ns.JetStreamClusterPeers())
			}
			if !s.ns.JetStreamIsCurrent() {
				current = false
			}
		}
		if leader && current && online >= running {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("embedded: cluster has no JetStream meta leader after %s", timeout)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// URL returns a comma-separated list of every node's client URL, which
// nats.Connect accepts.
func (c *Cluster) URL() string {
	urls := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		urls[i] = s.URL()
	}
	return strings.Join(urls, ",")
}

// Shutdown stops every node and waits for them.
func (c *Cluster) Shutdown() {
	for _, s := range c.Servers {
		s.Shutdown()
	}
}

// freePorts reserves n distinct free TCP ports on host and releases them
// just before returning. Another process could take one in between; the
// cluster start then fails with a clear error instead of hanging.
func freePorts(host string, n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, errors.Join(errors.New("embedded: reserve a free port"), err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
