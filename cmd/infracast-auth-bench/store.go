package main

import (
	"context"
	"os"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/infracast/auth/events"
)

// embeddedStore is a NATS server embedded in a temporary folder, a
// connection to it and the event store on it: the stream a case fills and
// reads, without the service.
type embeddedStore struct {
	ns  *server.Server
	nc  *nats.Conn
	st  *events.Store
	dir string
}

// openEmbeddedStore starts a NATS server with opts in a new temporary
// folder named for the case (opts.StoreDir is set to it), connects to it
// with connect (nil: in process, events.ConnectEmbedded) and opens the
// event store. close stops it all and removes the folder.
func openEmbeddedStore(ctx context.Context, name string, opts events.EmbeddedOptions, connect func(*server.Server) (*nats.Conn, error)) (*embeddedStore, error) {
	dir, err := os.MkdirTemp("", "infracast-auth-bench-"+name+"-")
	if err != nil {
		return nil, err
	}
	s := &embeddedStore{dir: dir}
	opts.StoreDir = dir
	if s.ns, err = events.StartEmbedded(opts); err != nil {
		s.close()
		return nil, err
	}
	if connect == nil {
		connect = func(ns *server.Server) (*nats.Conn, error) { return events.ConnectEmbedded(ns) }
	}
	if s.nc, err = connect(s.ns); err != nil {
		s.close()
		return nil, err
	}
	if s.st, err = events.OpenStore(ctx, s.nc, events.StoreConfig{}); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *embeddedStore) close() {
	if s.nc != nil {
		s.nc.Close()
	}
	if s.ns != nil {
		s.ns.Shutdown()
	}
	_ = os.RemoveAll(s.dir) // a temporary folder: one left behind harms nothing
}
