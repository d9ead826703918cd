package events

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedOptions configures the in-process nats-server of the default deployment.
type EmbeddedOptions struct {
	// StoreDir is where JetStream keeps the stream (required).
	StoreDir string
	// Listen, when set ("127.0.0.1:4222", or ":-1" for a free port), makes the
	// server also accept TCP clients, such as a `nats` CLI audit consumer.
	// Empty: in-process connections only.
	Listen string
	// SyncAlways fsyncs every write before it is acknowledged, so that an
	// acknowledged revocation survives a crash. The service always sets it;
	// benchmarks may compare without it.
	SyncAlways bool
}

// StartEmbedded starts a JetStream-enabled nats-server in this process and
// waits until it accepts connections.
func StartEmbedded(o EmbeddedOptions) (*server.Server, error) {
	if o.StoreDir == "" {
		return nil, errors.New("events: embedded server needs a store directory")
	}
	opts := &server.Options{
		ServerName: "infracast-auth-embedded",
		JetStream:  true,
		StoreDir:   o.StoreDir,
		SyncAlways: o.SyncAlways,
		NoSigs:     true,
		NoLog:      true,
		DontListen: o.Listen == "",
	}
	if o.Listen != "" {
		host, port, err := net.SplitHostPort(o.Listen)
		if err != nil {
			return nil, fmt.Errorf("events: embedded listen address %q: %w", o.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("events: embedded listen port %q: %w", port, err)
		}
		if host == "" {
			host = "0.0.0.0"
		}
		opts.Host, opts.Port = host, p
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("events: embedded server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("events: embedded server did not become ready")
	}
	return ns, nil
}

// ConnectEmbedded opens a client connection to an embedded server, in-process
// (no socket) when it does not listen on TCP.
func ConnectEmbedded(ns *server.Server, extra ...nats.Option) (*nats.Conn, error) {
	// ReconnectBufSize(-1): a publish while disconnected fails at once rather
	// than being buffered and sent after the append has been reported failed.
	opts := append([]nats.Option{nats.Name("infracast-auth"), nats.InProcessServer(ns), nats.MaxReconnects(-1),
		nats.ReconnectBufSize(-1)}, extra...)
	return nats.Connect("", opts...)
}
