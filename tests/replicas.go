package tests

import (
	"crypto/rand"
	"os"
	"testing"
	"time"

	"github.com/infracast/auth/events/natstest"
	"github.com/infracast/auth/http/service"
)

// Deployment is a NATS cluster — running in the test process (see
// events/natstest), or as nats-server processes — and the keys that every
// replica of the service on it shares, as in docker-compose.yml.
type Deployment struct {
	NATS      NATSCluster
	MasterKey []byte
	JWTKey    []byte
	// StreamReplicas is 3 on a cluster of three nodes or more, else 1.
	StreamReplicas int
}

// NATSCluster is what the tests do with a deployment's NATS nodes, numbered
// from 0.
type NATSCluster interface {
	URLs() []string
	WaitStreamLeader(stream string, within time.Duration) (int, error)
	Stop(i int) // natstest: a graceful shutdown; a process: SIGKILL
	StopAll()
	Restart(i int) error
	RestartAll() error
}

// NewDeployment starts a NATS cluster of nodes servers (1: a standalone
// JetStream server) and makes the deployment's keys. The servers stop at the
// end of the test.
func NewDeployment(t testing.TB, nodes int) *Deployment {
	t.Helper()
	d := &Deployment{NATS: natstest.StartCluster(t, nodes), MasterKey: newKey(t), JWTKey: newKey(t), StreamReplicas: 1}
	if nodes >= 3 {
		d.StreamReplicas = 3
	}
	return d
}

func newKey(t testing.TB) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// Replica makes an instance a replica of the deployment: an external NATS
// (every node of the cluster, or only the nodes with the given indexes), the
// stream with StreamReplicas replicas, and the shared keys.
func (d *Deployment) Replica(nodes ...int) Option {
	return func(c *service.Config) {
		urls := d.NATS.URLs()
		if len(nodes) > 0 {
			all := urls
			urls = nil
			for _, i := range nodes {
				urls = append(urls, all[i])
			}
		}
		c.NATSURLs = urls
		// Set, as docs/operations.md deploys a cluster (INFRACAST_STREAM_REPLICAS=3).
		c.StreamReplicas, c.StreamReplicasGiven = d.StreamReplicas, true
		c.MasterKey, c.JWTKeys = d.MasterKey, [][]byte{d.JWTKey}
	}
}

// StartReplica starts a replica of the deployment (see Start; opts may
// narrow it to some nodes with d.Replica(…)) and waits until it is ready.
//
// With INFRACAST_TEST_LOGS=1 the replica logs at debug level, and a failed
// test prints the log (with INFRACAST_TEST_LOGS=all, every test does).
func (d *Deployment) StartReplica(t testing.TB, opts ...Option) *Instance {
	t.Helper()
	opts = append([]Option{d.Replica()}, opts...)
	if os.Getenv("INFRACAST_TEST_LOGS") == "" {
		return Start(t, opts...)
	}
	logs := &LogBuffer{}
	in := StartLogged(t, logs, opts...)
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("INFRACAST_TEST_LOGS") == "all" {
			t.Logf("log of the replica at %s:\n%s", in.URL, logs.String())
		}
	})
	return in
}

// WithSnapshots makes the instance check every interval whether to save a
// read-model snapshot, and save one every `every` events.
func WithSnapshots(every int, interval time.Duration) Option {
	return func(c *service.Config) { c.SnapshotEvery, c.SnapshotInterval = every, interval }
}
