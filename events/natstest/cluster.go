// Package natstest runs JetStream-enabled nats-servers in the test process, on
// loopback: a single server or a cluster of several, each node with its own
// store folder and fixed ports, so that nodes can be stopped and restarted on
// the same data and clients keep finding them.
//
// Set NATSTEST_LOG=1 to see the servers' logs.
package natstest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Node is one server of a Cluster.
type Node struct {
	Name        string
	StoreDir    string
	ClientPort  int
	ClusterPort int

	mu  sync.Mutex
	srv *server.Server
}

// Server returns the running server (nil while stopped).
func (n *Node) Server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

// URL is the node's client URL.
func (n *Node) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.ClientPort) }

// Cluster is a set of nodes started together. A cluster of one is a
// standalone JetStream server (no cluster block).
type Cluster struct {
	Name  string
	Nodes []*Node
	tb    testing.TB
}

// Account is the account that clients without credentials use.
const Account = server.DEFAULT_GLOBAL_ACCOUNT

// StartCluster starts n nodes (n1…nN) and waits until every node accepts
// clients and, for n > 1, JetStream has a meta leader that every node follows.
// The nodes are shut down at the end of the test.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	if n < 1 {
		tb.Fatalf("natstest: a cluster needs at least one node, not %d", n)
	}
	// A port found free may be taken before the node binds it (by another
	// test's client connection: the suite runs clusters side by side), and
	// the node then never accepts clients: start again on other ports.
	var errs []error
	for range 3 {
		c, err := startCluster(tb, n)
		if err == nil {
			return c
		}
		errs = append(errs, err)
	}
	tb.Fatalf("natstest: %v", errors.Join(errs...))
	return nil
}

func startCluster(tb testing.TB, n int) (*Cluster, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, fmt.Errorf("free ports: %w", err)
	}
	dir := tb.TempDir()
	c := &Cluster{Name: "infracast-test", tb: tb}
	for i := range n {
		c.Nodes = append(c.Nodes, &Node{
			Name:        fmt.Sprintf("n%d", i+1),
			StoreDir:    filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
			ClientPort:  ports[2*i],
			ClusterPort: ports[2*i+1],
		})
	}
	if err := c.startNodes(allIndexes(n)); err != nil {
		c.StopAll()
		return nil, err
	}
	tb.Cleanup(c.StopAll)
	return c, nil
}

// URLs returns every node's client URL.
func (c *Cluster) URLs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.URL()
	}
	return out
}

func (c *Cluster) options(n *Node) *server.Options {
	o := &server.Options{
		ServerName: n.Name,
		Host:       "127.0.0.1",
		Port:       n.ClientPort,
		JetStream:  true,
		StoreDir:   n.StoreDir,
		NoSigs:     true,
		NoLog:      os.Getenv("NATSTEST_LOG") == "",
		// A bounded memory budget: several clusters may run side by side.
		JetStreamMaxMemory: 256 << 20,
		JetStreamMaxStore:  8 << 30,
	}
	if len(c.Nodes) > 1 {
		// NoAdvertise: clients reach only the nodes they are given, so that a
		// test can cut one off by stopping its node.
		o.Cluster = server.ClusterOpts{Name: c.Name, Host: "127.0.0.1", Port: n.ClusterPort, NoAdvertise: true}
		var routes []string
		for _, other := range c.Nodes {
			if other != n {
				routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", other.ClusterPort))
			}
		}
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
	}
	return o
}

// startNodes starts the given nodes concurrently and waits for them.
func (c *Cluster) startNodes(idx []int) error {
	errs := make([]error, len(idx))
	var wg sync.WaitGroup
	for k, i := range idx {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = c.startNode(c.Nodes[i])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return c.WaitJetStream(30 * time.Second)
}

func (c *Cluster) startNode(n *Node) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		return nil
	}
	ns, err := server.NewServer(c.options(n))
	if err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	if os.Getenv("NATSTEST_LOG") != "" {
		ns.ConfigureLogger()
	}
	go ns.Start()
	if !ns.ReadyForConnections(20 * time.Second) {
		ns.Shutdown()
		return fmt.Errorf("%s: not ready for connections", n.Name)
	}
	n.srv = ns
	return nil
}

// WaitJetStream waits until JetStream is enabled on every running node and,
// on a cluster, a meta leader is elected and every running node is current
// with it.
func (c *Cluster) WaitJetStream(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := c.jetStreamState()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("JetStream not ready within %s: %w", within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Cluster) jetStreamState() error {
	var leader *server.Server
	var running []string
	for _, n := range c.Nodes {
		s := n.Server()
		if s == nil {
			continue
		}
		running = append(running, n.Name)
		if !s.JetStreamEnabled() {
			return fmt.Errorf("%s: JetStream not enabled yet", n.Name)
		}
		if len(c.Nodes) == 1 {
			return nil
		}
		if s.JetStreamIsLeader() {
			leader = s
		}
		if !s.JetStreamIsCurrent() {
			return fmt.Errorf("%s: not current with the meta leader", n.Name)
		}
	}
	if len(running) == 0 {
		return errors.New("no node is running")
	}
	if leader == nil {
		return errors.New("no meta leader")
	}
	// The leader places streams only on peers it has heard from (statistics
	// received, not marked offline): until then creating an R3 stream fails
	// with "no suitable peers for placement".
	online := leader.JetStreamClusterPeers()
	for _, name := range running {
		if !slices.Contains(online, name) {
			return fmt.Errorf("%s: not yet online for the meta leader", name)
		}
	}
	return nil
}

// StreamLeader returns the index of the node leading stream (-1: none now).
func (c *Cluster) StreamLeader(stream string) int {
	for i, n := range c.Nodes {
		if s := n.Server(); s != nil && s.JetStreamIsStreamLeader(Account, stream) {
			return i
		}
	}
	return -1
}

// WaitStreamLeader waits until stream has a leader and returns its index.
func (c *Cluster) WaitStreamLeader(stream string, within time.Duration) (int, error) {
	deadline := time.Now().Add(within)
	for {
		if i := c.StreamLeader(stream); i >= 0 {
			return i, nil
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("stream %s has no leader after %s", stream, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop shuts node i down (as nats-server does on SIGTERM: leaderships are
// handed over first) and waits until it has stopped. Its data stays.
func (c *Cluster) Stop(i int) {
	n := c.Nodes[i]
	n.mu.Lock()
	s := n.srv
	n.srv = nil
	n.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// StopAll stops every node.
func (c *Cluster) StopAll() {
	var wg sync.WaitGroup
	for i := range c.Nodes {
		wg.Add(1)
		go func() { defer wg.Done(); c.Stop(i) }()
	}
	wg.Wait()
}

// Restart starts node i again on its store folder and ports, and waits until
// JetStream is ready again.
func (c *Cluster) Restart(i int) error { return c.startNodes([]int{i}) }

// RestartAll starts every stopped node again, together.
func (c *Cluster) RestartAll() error { return c.startNodes(allIndexes(len(c.Nodes))) }

func allIndexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	out := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}
