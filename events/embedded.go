package events

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
	// Users, when given, are the only clients the server accepts — in-process
	// connections too, which then need nats.UserInfo. Required with Listen: a
	// client that can publish into the stream can forge any event.
	Users []EmbeddedUser
	// TLSCert and TLSKey (PEM files), when set, make the TCP listener require
	// TLS; in-process connections never use it.
	TLSCert, TLSKey string
	// StartTimeout bounds how long the server may take to become ready
	// (0: DefaultEmbeddedStartTimeout). nats-server first recovers every
	// stream, which after a crash grows with the stream's size: 19–26 s
	// at 6–9 million events (outside check 20s), where a fixed 30 s had
	// the replica fail to start again and again once the stream grew past
	// it. nats-server says when it starts and ends each stream's recovery,
	// but nothing in between: a recovery that progresses and one that hangs
	// look alike, so this is a generous bound, not a measure of progress.
	StartTimeout time.Duration
	// Progress, when set, is told every EmbeddedProgressEvery while the
	// server is not ready yet, what it is doing.
	Progress func(EmbeddedProgress)
}

// ErrEmbeddedNotReady: the embedded server took longer than its
// StartTimeout to become ready.
var ErrEmbeddedNotReady = errors.New("events: embedded server did not become ready")

// DefaultEmbeddedStartTimeout is StartTimeout's default: at the docs'
// sizing (a million users, ≈ 3 million events a day) a stream of a month
// or more, whose recovery after a crash takes minutes.
const DefaultEmbeddedStartTimeout = 10 * time.Minute

// EmbeddedProgressEvery is how often StartEmbedded calls Progress (a
// variable for the tests).
var EmbeddedProgressEvery = time.Second

// EmbeddedProgress is what a starting embedded server is doing.
type EmbeddedProgress struct {
	Elapsed time.Duration // since StartEmbedded began waiting
	// Recovering is the stream nats-server is recovering now ("" between
	// streams, before the first and after the last), since RecoveringFor.
	Recovering    string
	RecoveringFor time.Duration
	Recovered     int // streams recovered so far
	// Restored is the stream whose messages nats-server restored last, while
	// no other is under way: it then recovers that stream's consumers and
	// finishes its start, of which it says nothing more (re-check 20r5 saw
	// 6 s of it after a crash at a million users).
	Restored string
}

// String says it in words, for logs and /ready.
func (p EmbeddedProgress) String() string {
	if p.Recovering != "" {
		return fmt.Sprintf("the embedded NATS is recovering the stream %s (%s so far; %d streams recovered before it)",
			p.Recovering, p.RecoveringFor.Round(time.Second), p.Recovered)
	}
	if p.Restored != "" {
		return fmt.Sprintf("the embedded NATS restored the messages of the stream %s and recovers its consumers or finishes its start (%s so far; %d streams recovered)",
			p.Restored, p.Elapsed.Round(time.Second), p.Recovered)
	}
	return fmt.Sprintf("the embedded NATS is starting (%s so far; %d streams recovered)", p.Elapsed.Round(time.Second), p.Recovered)
}

// The logins the service gives TCP clients of its embedded server.
const (
	EmbeddedReplicaUser = "infracast" // full access: other replicas, backups
	EmbeddedAuditUser   = "audit"     // read-only: the durable consumer AuditConsumer
	// AuditConsumer is the one consumer EmbeddedAuditUser may create and read.
	AuditConsumer = "audit"
)

// EmbeddedUser is a login of the embedded server.
type EmbeddedUser struct {
	Name, Password string
	// ReadOnly limits the user to reading the event stream: stream
	// information, stored-message and direct gets, snapshots (backups), and
	// the one durable consumer AuditConsumer (create, read, acknowledge,
	// delete). It can publish no event, delete or purge nothing, and cannot
	// reach any other consumer: one that could update the service's own
	// consumers could filter revocations out of the read models.
	ReadOnly bool
}

// readOnlyPermissions are those of a ReadOnly user: publishing only to the
// JetStream API subjects listed, subscribing only to inboxes and the event
// subjects.
func readOnlyPermissions() *server.Permissions {
	api := func(s string) string { return "$JS.API." + s }
	st, c := StreamName, StreamName+"."+AuditConsumer
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			api("INFO"), api("STREAM.NAMES"), api("STREAM.LIST"),
			api("STREAM.INFO." + st),
			api("STREAM.MSG.GET." + st), api("DIRECT.GET." + st), api("DIRECT.GET." + st + ".>"),
			api("STREAM.SNAPSHOT." + st), "$JS.SNAPSHOT.ACK." + st + ".>",
			api("CONSUMER.CREATE." + c), api("CONSUMER.CREATE." + c + ".>"), api("CONSUMER.DURABLE.CREATE." + c),
			api("CONSUMER.INFO." + c), api("CONSUMER.MSG.NEXT." + c), api("CONSUMER.DELETE." + c),
			"$JS.ACK." + c + ".>", "$JS.FC." + st + ".>",
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>", SubjectPrefix + ".>"}},
	}
}

// StartEmbedded starts a JetStream-enabled nats-server in this process and
// waits until it accepts connections.
func StartEmbedded(o EmbeddedOptions) (*server.Server, error) {
	return StartEmbeddedContext(context.Background(), o)
}

// StartEmbeddedContext is StartEmbedded whose wait ends when ctx does (a
// shutdown asked for while nats-server recovers the stream): the server is
// shut down and ctx's error returned. Without it a SIGTERM during a long
// recovery was only seen once the recovery had ended (outside check 20r5).
func StartEmbeddedContext(ctx context.Context, o EmbeddedOptions) (*server.Server, error) {
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
	if o.Listen != "" && len(o.Users) == 0 {
		return nil, errors.New("events: an embedded server that listens on TCP needs users: anyone who can publish can forge events")
	}
	for _, u := range o.Users {
		if u.Name == "" || u.Password == "" {
			return nil, errors.New("events: an embedded server user needs a name and a password")
		}
		user := &server.User{Username: u.Name, Password: u.Password}
		if u.ReadOnly {
			user.Permissions = readOnlyPermissions()
		}
		opts.Users = append(opts.Users, user)
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, errors.New("events: an embedded server's TLS needs both a certificate and a key")
	}
	if o.TLSCert != "" {
		if o.Listen == "" {
			return nil, errors.New("events: TLS is for an embedded server that listens on TCP")
		}
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: o.TLSCert, KeyFile: o.TLSKey})
		if err != nil {
			return nil, fmt.Errorf("events: embedded server TLS: %w", err)
		}
		opts.TLS, opts.TLSConfig, opts.TLSTimeout = true, tc, 2
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
	lock, err := lockStore(o.StoreDir, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if err := storeAccessible(o.StoreDir); err != nil {
		lock.release()
		return nil, err
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		lock.release()
		return nil, fmt.Errorf("events: embedded server: %w", err)
	}
	lock.holdUntilShutdown(ns)
	// The server reports a listener it cannot open (an address in use) only
	// to its logger, and would then just never become ready: catch it.
	fatal := &fatalLogger{err: make(chan string, 1)}
	ns.SetLoggerV2(fatal, false, false, false)
	go ns.Start()
	timeout := o.StartTimeout
	if timeout <= 0 {
		timeout = DefaultEmbeddedStartTimeout
	}
	began := time.Now()
	deadline, nextProgress := began.Add(timeout), began.Add(EmbeddedProgressEvery)
	for {
		if ns.ReadyForConnections(min(25*time.Millisecond, max(time.Until(deadline), time.Millisecond))) {
			if err := streamsLoaded(ns, o.StoreDir, fatal); err != nil {
				ns.Shutdown()
				return nil, err
			}
			return ns, nil
		}
		select {
		case <-ctx.Done():
			ns.Shutdown()
			return nil, fmt.Errorf("events: embedded server's start ended: %w", ctx.Err())
		case msg := <-fatal.err:
			ns.Shutdown()
			if o.Listen != "" {
				return nil, fmt.Errorf("events: embedded NATS cannot listen on %s: %s", o.Listen, msg)
			}
			return nil, fmt.Errorf("events: embedded server: %s", msg)
		default:
		}
		now := time.Now()
		if now.After(deadline) {
			ns.Shutdown()
			return nil, fmt.Errorf("%w within %s: %s", ErrEmbeddedNotReady, timeout, fatal.progress(now.Sub(began)))
		}
		if o.Progress != nil && !now.Before(nextProgress) {
			o.Progress(fatal.progress(now.Sub(began)))
			nextProgress = now.Add(EmbeddedProgressEvery)
		}
	}
}

// storeAccessible checks that this process can read and write every file of
// the JetStream store, and list every folder, before the server opens it:
// nats-server (v2.15.2) deletes the folder of a stream whose store it fails
// to open as it recovers it — one block file another user owns, and every
// event was gone (an outside check, 18r: the service then started afresh
// with a new bootstrap admin). Such a store is refused, naming the file.
func storeAccessible(storeDir string) error {
	root := filepath.Join(storeDir, server.JetStreamStoreDir)
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && path == root {
				return filepath.SkipDir // a new store
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		return f.Close()
	})
	if err != nil {
		return fmt.Errorf("%w: the embedded store cannot be opened by this process: %v. The service will not start on it: nats-server would delete a stream it cannot open. Give this user (uid %d) access to every file of %s (check owner and permissions), or restore the data folder from your backup",
			ErrStoreRefused, err, os.Getuid(), root)
	}
	return nil
}

// streamsLoaded checks that the server loaded every stream it has a folder
// for (<store>/jetstream/<account>/streams/<stream>). nats-server skips a
// stream it cannot read (a block file it may not open, a damaged metafile)
// with a warning and starts without it; the service would then find no
// stream and create one, and creating it wipes the folder — every event
// gone and a new bootstrap admin made (an outside check, 18r). Such a store
// is refused instead, naming the folder and what the server said of it.
func streamsLoaded(ns *server.Server, storeDir string, log *fatalLogger) error {
	root := filepath.Join(storeDir, server.JetStreamStoreDir)
	accounts, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: embedded store %s: %v", ErrStoreRefused, root, err)
	}
	jsz, err := ns.Jsz(&server.JSzOptions{Accounts: true, Streams: true, Limit: 1 << 16})
	if err != nil {
		return fmt.Errorf("events: embedded server's streams: %w", err)
	}
	loaded := map[string]bool{} // account/stream
	for _, a := range jsz.AccountDetails {
		for _, st := range a.Streams {
			loaded[a.Name+"/"+st.Name] = true
		}
	}
	for _, a := range accounts {
		if !a.IsDir() {
			continue
		}
		dir := filepath.Join(root, a.Name(), "streams")
		streams, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%w: embedded store %s: %v", ErrStoreRefused, dir, err)
		}
		for _, st := range streams {
			if !st.IsDir() || strings.HasPrefix(st.Name(), ".") { // "."-prefixed: a deletion the server finishes
				continue
			}
			if loaded[a.Name()+"/"+st.Name()] {
				continue
			}
			said := log.about(st.Name(), filepath.Join(dir, st.Name()))
			if said == "" {
				said = "nothing"
			}
			return fmt.Errorf("%w: the embedded NATS server did not load the stream in %s (unreadable or damaged files? check their owner and permissions); nats-server said: %s. The service will not start beside it, nor create a new stream over it: make the files readable by this user, or restore the data folder from your backup",
				ErrStoreRefused, filepath.Join(dir, st.Name()), said)
		}
	}
	return nil
}

// fatalLogger is the embedded server's logger: it keeps the first fatal
// error, and the warnings and errors of its start (bounded), which say why
// a stream was not loaded (the server logs nothing anywhere, as with NoLog).
type fatalLogger struct {
	err  chan string
	mu   sync.Mutex
	said []string
	// The stream being recovered and since when, and how many were: from
	// nats-server's notices ("Starting restore for stream", "Restored … messages").
	recovering      string
	recoveringSince time.Time
	recovered       int
	restored        string // the last stream restored (EmbeddedProgress.Restored)
}

// progress is what the server's notices said of its start so far.
func (l *fatalLogger) progress(elapsed time.Duration) EmbeddedProgress {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := EmbeddedProgress{Elapsed: elapsed, Recovering: l.recovering, Recovered: l.recovered, Restored: l.restored}
	if p.Recovering != "" {
		p.RecoveringFor = time.Since(l.recoveringSince)
	}
	return p
}

// Noticef follows the recovery of the streams (nats-server v2.15.2's words).
func (l *fatalLogger) Noticef(format string, v ...any) {
	stream := func() string { // the last argument naming it: '<account> > <stream>'
		for i := len(v) - 1; i >= 0; i-- {
			if s, ok := v[i].(string); ok {
				return s
			}
		}
		return "?"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case strings.Contains(format, "Starting restore for stream"):
		l.recovering, l.recoveringSince, l.restored = stream(), time.Now(), ""
	case strings.Contains(format, "Restored ") && strings.Contains(format, "messages for stream"):
		l.restored, l.recovering = stream(), ""
		l.recovered++
	}
}

// maxStartLines bounds the warnings and errors a fatalLogger keeps.
const maxStartLines = 50

func (l *fatalLogger) keep(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.said) < maxStartLines {
		l.said = append(l.said, strings.TrimSpace(fmt.Sprintf(format, v...)))
	}
}

// about returns the kept lines that mention any of names, joined.
func (l *fatalLogger) about(names ...string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.said {
		for _, n := range names {
			if strings.Contains(line, n) {
				out = append(out, line)
				break
			}
		}
	}
	return strings.Join(out, "; ")
}

func (l *fatalLogger) Fatalf(format string, v ...any) {
	select {
	case l.err <- fmt.Sprintf(format, v...):
	default:
	}
}
func (l *fatalLogger) Warnf(format string, v ...any)  { l.keep(format, v...) }
func (l *fatalLogger) Errorf(format string, v ...any) { l.keep(format, v...) }
func (*fatalLogger) Debugf(string, ...any)            {}
func (*fatalLogger) Tracef(string, ...any)            {}

// ConnectEmbedded opens a client connection to an embedded server, in-process
// (no socket) when it does not listen on TCP.
func ConnectEmbedded(ns *server.Server, extra ...nats.Option) (*nats.Conn, error) {
	// ReconnectBufSize(-1): a publish while disconnected fails at once rather
	// than being buffered and sent after the append has been reported failed.
	opts := append([]nats.Option{nats.Name("infracast-auth"), nats.InProcessServer(ns), nats.MaxReconnects(-1),
		nats.ReconnectBufSize(-1)}, extra...)
	return nats.Connect("", opts...)
}
