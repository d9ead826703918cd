package tests

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// processCluster is a NATS cluster of nats-server processes on loopback, so
// that a node can crash as a machine or an OOM kill would make it: SIGKILL,
// no leadership handed over, nothing flushed by the process. It implements
// NATSCluster.
type processCluster struct {
	t     testing.TB
	bin   string
	nodes []*processNode
	// routePassword: the servers accept routes only from each other (user
	// "route"), as the README's cluster and docker-compose.yml run them.
	routePassword string
}

type processNode struct {
	name, dir          string
	port, clusterPort  int
	mu                 sync.Mutex
	cmd                *exec.Cmd
	exited             chan struct{}
	output             strings.Builder
	clusterPortsOthers []int
}

// newProcessDeployment starts n nats-server processes as one cluster and
// makes the deployment's keys; the processes are killed at the end.
func newProcessDeployment(t *testing.T, n int) *Deployment {
	t.Helper()
	bin, err := goBuild("github.com/nats-io/nats-server/v2") // the version go.mod requires
	if err != nil {
		t.Fatal(err)
	}
	var c *processCluster
	// A port found free may be taken by a parallel test before its
	// nats-server binds it: the node then exits ("address already in
	// use") and the cluster never forms (a fresh-clone CI run, once in
	// six). Such a start is made again on other ports.
	for attempt := 1; ; attempt++ {
		c = &processCluster{t: t, bin: bin, routePassword: rand.Text()}
		ports := make([]int, 2*n)
		for i := range ports {
			ports[i] = freePort(t)
		}
		root := t.TempDir()
		for i := range n {
			node := &processNode{name: fmt.Sprintf("p%d", i+1), dir: filepath.Join(root, fmt.Sprintf("p%d", i+1)), port: ports[2*i], clusterPort: ports[2*i+1]}
			for j := range n {
				if j != i {
					node.clusterPortsOthers = append(node.clusterPortsOthers, ports[2*j+1])
				}
			}
			c.nodes = append(c.nodes, node)
		}
		t.Cleanup(c.StopAll)
		err := c.RestartAll()
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(c.outputs(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("a port was taken meanwhile; starting the cluster again on others: %v", err)
		c.StopAll()
	}
	d := &Deployment{NATS: c, MasterKey: newKey(t), JWTKey: newKey(t), StreamReplicas: 1}
	if n >= 3 {
		d.StreamReplicas = 3
	}
	return d
}

func freePort(t *testing.T) int {
	t.Helper()
	addr := freeAddr(t)
	var port int
	if _, err := fmt.Sscanf(addr[strings.LastIndexByte(addr, ':')+1:], "%d", &port); err != nil {
		t.Fatal(err)
	}
	return port
}

func (c *processCluster) URLs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = fmt.Sprintf("nats://127.0.0.1:%d", n.port)
	}
	return out
}

func (c *processCluster) start(i int) error {
	n := c.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return nil
	}
	var routes []string
	for _, p := range n.clusterPortsOthers {
		routes = append(routes, fmt.Sprintf("nats://route:%s@127.0.0.1:%d", c.routePassword, p))
	}
	cmd := exec.Command(c.bin, "--name", n.name, "--addr", "127.0.0.1", "--port", fmt.Sprint(n.port),
		"--jetstream", "--store_dir", n.dir,
		"--cluster_name", "infracast-crash-test", "--cluster", fmt.Sprintf("nats://route:%s@127.0.0.1:%d", c.routePassword, n.clusterPort),
		"--routes", strings.Join(routes, ","), "--no_advertise")
	n.output.Reset()
	cmd.Stdout, cmd.Stderr = &lockedWriter{n}, &lockedWriter{n}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", n.name, err)
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { _ = cmd.Wait(); close(exited) }(cmd, n.exited)
	return nil
}

// lockedWriter collects a node's output for a failing test's log.
type lockedWriter struct{ n *processNode }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.n.mu.Lock()
	defer w.n.mu.Unlock()
	if w.n.output.Len() < 1<<20 {
		w.n.output.Write(p)
	}
	return len(p), nil
}

// Stop kills node i with SIGKILL and waits until it is gone.
func (c *processCluster) Stop(i int) {
	n := c.nodes[i]
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

func (c *processCluster) StopAll() {
	for i := range c.nodes {
		c.Stop(i)
	}
}

// Restart starts node i again on its folder and ports, and waits until the
// cluster can place a replicated stream again.
func (c *processCluster) Restart(i int) error {
	if err := c.start(i); err != nil {
		return err
	}
	return c.waitReady(30 * time.Second)
}

func (c *processCluster) RestartAll() error {
	for i := range c.nodes {
		if err := c.start(i); err != nil {
			return err
		}
	}
	return c.waitReady(30 * time.Second)
}

// waitReady waits until a stream with as many replicas as nodes are running
// can be created (a meta leader, every running node online for it).
func (c *processCluster) waitReady(within time.Duration) error {
	running := 0
	for _, n := range c.nodes {
		n.mu.Lock()
		if n.cmd != nil {
			running++
		}
		n.mu.Unlock()
	}
	if err := Poll(within, func() error { return c.probe(min(running, 3)) }); err != nil {
		return fmt.Errorf("nats-server processes not ready within %s: %v\n%s", within, err, c.outputs())
	}
	return nil
}

func (c *processCluster) probe(replicas int) error {
	nc, err := nats.Connect(strings.Join(c.URLs(), ","), nats.MaxReconnects(0), nats.Timeout(time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	name := fmt.Sprintf("PROBE_%d", time.Now().UnixNano())
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"probe." + name}, Replicas: replicas, Storage: jetstream.MemoryStorage}); err != nil {
		return err
	}
	return js.DeleteStream(ctx, name)
}

// WaitStreamLeader asks the cluster which node leads stream.
func (c *processCluster) WaitStreamLeader(stream string, within time.Duration) (int, error) {
	leader := -1
	err := Poll(within, func() (err error) {
		leader, err = c.streamLeader(stream)
		return err
	})
	if err != nil {
		return -1, fmt.Errorf("stream %s has no leader after %s: %v", stream, within, err)
	}
	return leader, nil
}

func (c *processCluster) streamLeader(stream string) (int, error) {
	nc, err := nats.Connect(strings.Join(c.URLs(), ","), nats.MaxReconnects(0), nats.Timeout(time.Second))
	if err != nil {
		return -1, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return -1, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return -1, err
	}
	info := s.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return -1, errors.New("no leader")
	}
	for i, n := range c.nodes {
		if n.name == info.Cluster.Leader {
			return i, nil
		}
	}
	return -1, fmt.Errorf("leader %q is not a node of this cluster", info.Cluster.Leader)
}

func (c *processCluster) outputs() string {
	var b strings.Builder
	for _, n := range c.nodes {
		n.mu.Lock()
		out := n.output.String()
		n.mu.Unlock()
		if len(out) > 4000 {
			out = "…" + out[len(out)-4000:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", n.name, out)
	}
	return b.String()
}

// TestClusterLeaderProcessKilledDuringBurst: leaderLostDuringBurst on three
// nats-server processes, the stream leader killed with SIGKILL mid-burst (no
// leadership handed over: the others notice it missing and elect). Then the
// killed node is started again on its folder: it rejoins, and the stream is
// back to three current replicas that hold every event.
func TestClusterLeaderProcessKilledDuringBurst(t *testing.T) {
	t.Parallel()
	d := newProcessDeployment(t, 3)
	c := d.NATS.(*processCluster)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nats-server output:\n%s", c.outputs())
		}
	})
	leaderLostDuringBurst(t, d)

	killed := -1
	for i, n := range c.nodes {
		n.mu.Lock()
		if n.cmd == nil {
			killed = i
		}
		n.mu.Unlock()
	}
	if killed < 0 {
		t.Fatal("no node was killed")
	}
	if err := c.Restart(killed); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(c.URLs()[killed])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	Eventually(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, "INFRACAST_AUTH")
		if err != nil {
			return err
		}
		info := s.CachedInfo()
		if info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			return fmt.Errorf("cluster info %+v", info.Cluster)
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				return fmt.Errorf("replica %s: current %v, offline %v, lag %d", r.Name, r.Current, r.Offline, r.Lag)
			}
		}
		return nil
	})
}

// TestClusterRoutesNeedCredentials: a nats-server that does not know the
// route password cannot join the cluster (as docker-compose.yml and the
// README's processes run it). Before, any server that could reach a route
// port joined, and a client of it published a user.role_granted that every
// replica applied (an outside check).
func TestClusterRoutesNeedCredentials(t *testing.T) {
	t.Parallel()
	d := newProcessDeployment(t, 2)
	c := d.NATS.(*processCluster)
	rogue := exec.Command(c.bin, "--name", "rogue", "--addr", "127.0.0.1", "--port", fmt.Sprint(freePort(t)),
		"--cluster_name", "infracast-crash-test", "--cluster", fmt.Sprintf("nats://127.0.0.1:%d", freePort(t)),
		"--routes", fmt.Sprintf("nats://127.0.0.1:%d", c.nodes[0].clusterPort), "--connect_retries", "1000")
	var out strings.Builder
	var mu sync.Mutex
	rogue.Stdout, rogue.Stderr = syncWriter{&mu, &out}, syncWriter{&mu, &out}
	if err := rogue.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Killed, so Wait reports the signal: nothing to check.
		_ = rogue.Process.Kill()
		_ = rogue.Wait()
	})
	Eventually(t, 20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		// Without the password the cluster's server answers the
		// rogue's route "Authorization Violation" and closes it.
		if !strings.Contains(out.String(), "Route Error 'Authorization Violation'") {
			return Errorf("the rogue server's route was not refused yet:\n%s", out.String())
		}
		return nil
	})
}

// syncWriter is an io.Writer over a strings.Builder shared under mu.
type syncWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
