package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamName is the JetStream stream that holds every event.
const StreamName = "INFRACAST_AUTH"

// SubjectPrefix starts every event subject: infracast.auth.<aggregate>.<id>.
const SubjectPrefix = "infracast.auth"

// Subject returns the subject of an aggregate's events.
func Subject(aggregate, id string) string { return SubjectPrefix + "." + aggregate + "." + id }

// Errors of the store. Check with errors.Is.
var (
	// ErrConflict: an expected subject sequence did not match (JetStream error
	// 10071; on replicated streams also 10164 — another write on the subject
	// in flight — once that write is stored): reload, decide again, retry.
	ErrConflict = errors.New("events: concurrent modification")
	// ErrUnavailable: the event store could not be reached or did not answer.
	ErrUnavailable = errors.New("events: event store unavailable")
	// ErrStreamSilent (with ErrUnavailable): a consumer heard nothing from
	// its server, not even the heartbeats it asked for — a frozen node, a
	// connection that drops everything. Until a new consumer reads, this
	// replica may miss any event, revocations included.
	ErrStreamSilent = errors.New("events: the stream went silent (missed heartbeats)")
	// ErrOutcomeUnknown: an append was sent but never confirmed, and the
	// retries could not find out whether it was stored (NATS stayed away
	// past the retry window). It wraps ErrUnavailable.
	ErrOutcomeUnknown = fmt.Errorf("%w: append not confirmed; it may have been stored", ErrUnavailable)
	// ErrStoreRefused: the store shows that the stream existed, but it is
	// missing, was not loaded, or has files this process cannot open. The
	// service refuses to start rather than create an empty stream over it
	// (and a new bootstrap admin with it); an error says what to repair.
	ErrStoreRefused = errors.New("events: refusing the event store")
)

// StoreConfig configures the stream.
type StoreConfig struct {
	Stream string // default StreamName
	// Replicas of a new stream: default 1; 3 on a cluster. An existing
	// stream keeps its own unless ReplicasGiven (see reconcileStream).
	Replicas int
	// ReplicasGiven: Replicas was set by the operator (the service's
	// INFRACAST_STREAM_REPLICAS), not a default. Then an existing stream
	// with fewer replicas is raised to it, and one with more is refused
	// (lowering is left to an operator: ErrStoreRefused says how). Without
	// it, a replica started with the default never changes the stream's
	// replication (an outside check, 20n: one replica left at the default
	// turned a production R3 stream into R1, silently).
	ReplicasGiven bool
	// Memory keeps the stream in memory (benchmarks only; the service never does).
	Memory bool
	// AllowDelete leaves an existing stream that allows message deletes as
	// it is (tests only, natstest.StoreWithDeletes: a stream with messages
	// missing at its end; the service never sets it, and denies deletes).
	AllowDelete bool
	// RetryFor bounds how long an append that was not confirmed — a timeout,
	// no responders, a stream leader election, NATS reconnecting — is retried
	// with the same message IDs (default 5 s; the caller's context bounds it
	// too). See Append.
	RetryFor time.Duration
	// TryTimeout bounds one attempt of an append or of opening the stream
	// (default 2 s).
	TryTimeout time.Duration
	// DisconnectedWait is how long an append waits for the connection to come
	// back before giving up, when nothing of it has been sent yet (default 1 s:
	// a client moves to another node of a cluster well within it).
	DisconnectedWait time.Duration
	// Log receives the store's warnings (default: discarded).
	Log *slog.Logger
	// Seen are stream sequences recorded outside the stream — the data
	// folder's marker (http/service) — that the stream has therefore
	// reached: OpenStore refuses a stream whose last sequence is below any
	// of them, and will not create a missing one (ErrStoreRefused).
	Seen []Seen
}

// Seen is a stream sequence that something outside the stream recorded. A
// stream's sequence never goes back, so a stream that ends below it lost
// its later events (its messages removed, or the store replaced by an older
// or an empty one).
type Seen struct {
	Seq uint64
	// Where names the record in the refusal: "the data folder's marker /data/stream-sequence".
	Where string
	// Drop tells an operator who starts on a lower stream on purpose how
	// to discard the record: "remove the file /data/stream-sequence".
	Drop string
}

func (c *StoreConfig) setDefaults() {
	if c.Stream == "" {
		c.Stream = StreamName
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.RetryFor == 0 {
		c.RetryFor = 5 * time.Second
	}
	if c.TryTimeout == 0 {
		c.TryTimeout = 2 * time.Second
	}
	if c.DisconnectedWait == 0 {
		c.DisconnectedWait = time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Store appends events to and reads them from the JetStream stream.
type Store struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	name   string
	cfg    StoreConfig
	heads  heads // head.go
	tail   tail  // head.go
	// given: the replicas the operator set (ReplicasGiven; 0 when not), and
	// lowered the stream's replicas below them last logged (checkReplicas).
	given   int
	lowered atomic.Int64
}

// OpenStore creates the stream if it is missing (or updates its settings) and
// returns a store on it.
func OpenStore(ctx context.Context, nc *nats.Conn, cfg StoreConfig) (*Store, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	cfg.setDefaults()
	storage := jetstream.FileStorage
	if cfg.Memory {
		storage = jetstream.MemoryStorage
	}
	want := jetstream.StreamConfig{
		Name:               cfg.Stream,
		Description:        "Infracast Auth events (see docs/events.md)",
		Subjects:           []string{SubjectPrefix + ".>"},
		Storage:            storage,
		Replicas:           cfg.Replicas,
		Retention:          jetstream.LimitsPolicy,
		Discard:            jetstream.DiscardNew,
		MaxMsgsPerSubject:  -1,
		Duplicates:         2 * time.Minute,
		AllowAtomicPublish: true,
		AllowDirect:        true,
		DenyDelete:         true,
		DenyPurge:          true,
	}
	// Replicas starting together race to create the stream; on a fresh
	// cluster the meta leader may also still be electing. Try again with
	// backoff until ctx ends; an existing stream is simply opened. Each
	// attempt has its own timeout: a request lost in an election must not
	// use up the whole of ctx.
	var st jetstream.Stream
	backoff := 50 * time.Millisecond
	for {
		st, err = openOnce(ctx, js, want, cfg)
		if err == nil {
			break
		}
		if errors.Is(err, ErrStoreRefused) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			// err says what the last attempt waited for: the stream, or
			// its snapshot bucket (an outside check, 20n: a bucket on a
			// stopped node made starts fail with "create stream: context
			// deadline exceeded").
			return nil, fmt.Errorf("%w: opening the stream %s: %v", ErrUnavailable, cfg.Stream, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
	given := 0
	if cfg.ReplicasGiven {
		given = cfg.Replicas
	}
	// The snapshot bucket is created (Snapshots) with the replicas the
	// stream has, which are not the configured ones when it kept its own.
	if info := st.CachedInfo(); info != nil {
		cfg.Replicas = info.Config.Replicas
	}
	return &Store{nc: nc, js: js, stream: st, name: cfg.Stream, cfg: cfg, given: given}, nil
}

func openOnce(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig, cfg StoreConfig) (jetstream.Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.TryTimeout)
	defer cancel()
	seen := cfg.Seen
	st, err := js.Stream(ctx, want.Name)
	if err == nil {
		info := st.CachedInfo()
		// (A stream made to begin at a later sequence — FirstSeq, as the
		// bench's start-up case makes one — has held nothing before it.)
		if info != nil && info.State.Msgs == 0 && info.State.LastSeq > 0 && info.State.LastSeq >= info.Config.FirstSeq {
			// Every event lost (the stream's blocks emptied or gone, its
			// index kept: a copy that stopped early) — not a tail to start
			// without, but the whole store: starting would wait for events
			// that cannot come, or begin afresh (an outside check, 18r2).
			return nil, fmt.Errorf("%w: the stream %s held events up to %d and none of them can be read (its message blocks are empty or gone); not starting without them (restore the store from your backup)",
				ErrStoreRefused, want.Name, info.State.LastSeq)
		}
		if info != nil {
			if err := streamBehind(ctx, js, want.Name, info.State.LastSeq, seen); err != nil {
				return nil, err
			}
		}
		if info == nil {
			return st, nil
		}
		upd, changed, err := reconcileStream(info.Config, want, cfg)
		if err != nil {
			return nil, err
		}
		if changed {
			if st, err = js.UpdateStream(ctx, upd); err != nil {
				return nil, fmt.Errorf("update the stream's configuration: %w", err)
			}
		}
		if want.Name == StreamName {
			if err := reconcileBucket(ctx, js, upd.Replicas, cfg); err != nil {
				return nil, err
			}
		}
		return st, nil
	}
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if err := snapshotsWithoutStream(ctx, js, want.Name); err != nil {
			return nil, err
		}
		if err := refuseBehind(want.Name, 0, false, seen); err != nil {
			return nil, err
		}
		return js.CreateStream(ctx, want)
	}
	return nil, err
}

// snapshotsWithoutStream refuses to create the event stream beside the
// snapshot bucket, which the service creates only after the stream: the
// stream existed and is lost (or its server could not load it), and a new
// one would start the service afresh with a new bootstrap admin. The stream
// is looked up once more after the bucket was found, so that a replica
// racing one that has just created both opens the stream. (An embedded
// server's store is checked more closely as it starts: StartEmbedded.)
func snapshotsWithoutStream(ctx context.Context, js jetstream.JetStream, stream string) error {
	if stream != StreamName {
		return nil
	}
	_, err := js.Stream(ctx, "OBJ_"+SnapshotBucket)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return nil
	case err != nil:
		return err
	}
	_, err = js.Stream(ctx, stream)
	switch {
	case err == nil:
		return errors.New("the stream appeared meanwhile") // the next attempt opens it
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("%w: the snapshot bucket %s exists but the stream %s does not; not creating an empty stream (restore the stream from your backup)", ErrStoreRefused, SnapshotBucket, stream)
	default:
		return err
	}
}

// streamBehind refuses a stream whose last sequence is below a sequence
// recorded elsewhere: in seen, or as the sequence of the latest read-model
// snapshot in the bucket beside it (made from this stream, so at most its
// last sequence). nats-server loads a stream whose msgs/ folder was removed
// whole, index and all, as a new one (no messages, last sequence 0), and a
// jetstream/ folder may be replaced by an older or an empty one: the
// service would start on it afresh, with a new bootstrap admin (an outside
// check, 18r2). (A stream made to begin at a later sequence — FirstSeq —
// counts from there: its last sequence is not below what it held.)
func streamBehind(ctx context.Context, js jetstream.JetStream, stream string, last uint64, seen []Seen) error {
	if stream == StreamName {
		snap, err := snapshotSequence(ctx, js)
		if err != nil {
			return err
		}
		if snap > 0 {
			seen = append(seen[:len(seen):len(seen)], Seen{Seq: snap,
				Where: "the latest read-model snapshot in the bucket " + SnapshotBucket,
				Drop: "delete that bucket (derived data: the next start replays the whole stream; `nats object del " + SnapshotBucket +
					"`, or with the embedded NATS, while stopped, remove the folder jetstream/jetstream/$G/streams/OBJ_" + SnapshotBucket + " of the data folder)",
			})
		}
	}
	return refuseBehind(stream, last, true, seen)
}

// snapshotSequence is the sequence in the metadata of the latest snapshot
// in SnapshotBucket (0: no bucket, no snapshot, or metadata that does not
// parse — a snapshot no start would use either). The metadata is not
// authenticated here (that needs the master key and the whole content): a
// client that may write to the bucket can make a start refuse, never make
// one go on.
func snapshotSequence(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	obs, err := js.ObjectStore(ctx, SnapshotBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, bucketError(ctx, "reading the latest snapshot's sequence (a start checks that the stream is not behind it)", err)
	}
	oi, err := obs.GetInfo(ctx, snapshotObject)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, bucketError(ctx, "reading the latest snapshot's sequence (a start checks that the stream is not behind it)", err)
	}
	info, err := parseSnapshotInfo(oi)
	if err != nil {
		return 0, nil
	}
	return info.Sequence, nil
}

// refuseBehind returns ErrStoreRefused, naming every record of seen above
// last, the stream's last sequence (exists: false when the stream is
// missing).
func refuseBehind(stream string, last uint64, exists bool, seen []Seen) error {
	var where, drop []string
	for _, s := range seen {
		if s.Seq > last {
			where = append(where, fmt.Sprintf("%s recorded sequence %d", s.Where, s.Seq))
			drop = append(drop, s.Drop)
		}
	}
	if len(where) == 0 {
		return nil
	}
	state := fmt.Sprintf("the stream %s ends at sequence %d", stream, last)
	if !exists {
		state = fmt.Sprintf("the stream %s does not exist", stream)
	}
	return fmt.Errorf("%w: %s, but %s; a stream's sequence never goes back, so the events after %d were lost (the stream's messages removed, or the store replaced by an older or an empty one). Not starting on it, nor afresh with a new bootstrap admin: restore the store from your backup; or, if this stream is meant (an older backup restored on purpose, a stream recreated deliberately), %s, and start again",
		ErrStoreRefused, state, strings.Join(where, ", and "), last, strings.Join(drop, ", and "))
}

// Connected reports whether the connection to NATS is up.
func (s *Store) Connected() bool { return s.nc.IsConnected() }

// JetStream exposes the JetStream context (projections consume from it).
func (s *Store) JetStream() jetstream.JetStream { return s.js }

// StreamName is the name of the stream the store writes to.
func (s *Store) StreamName() string { return s.name }

// Message is one event to append.
type Message struct {
	Subject string
	// ExpectSeq is the stream sequence of the last event on Subject that the
	// decision was based on; 0 means the subject must not exist yet.
	ExpectSeq uint64
	// ExpectSubject, when set, moves that check to another subject: the
	// message is stored only if ExpectSeq is still the last sequence of
	// ExpectSubject (Nats-Expected-Last-Subject-Sequence-Subject). It lets
	// one message on a new subject be decided against another aggregate's
	// state without writing to it. Single-message appends only.
	ExpectSubject string
	// ID becomes the Nats-Msg-Id: a retry of the same message is stored once.
	ID   string
	Data []byte
}

// LastSequence returns the stream sequence of the last event on subject (0 if
// none), as the stream leader has it. (Not a direct get: on a replicated
// stream a follower may answer one before it stored the newest events, and a
// replica catching up with what another just wrote would find nothing.)
func (s *Store) LastSequence(ctx context.Context, subject string) (uint64, error) {
	m, err := s.leaderMsgGet(ctx, msgGetRequest{LastFor: subject})
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return m.seq, nil
}

// Head returns the stream sequence of the newest event (0 for an empty
// stream), as the event store answers a question sent after Head was called;
// concurrent calls share questions (heads).
func (s *Store) Head(ctx context.Context) (uint64, error) {
	return s.heads.get(ctx, s.askHead)
}

// askHead asks the stream's leader for the stream's info (the JetStream API's
// request, as jetstream.Stream.Info sends it) and reads only its last
// sequence and its cluster's state: a third less of the caller's CPU than
// decoding the whole info. A replicated stream that has lost its quorum
// still answers (measured: its leader for ~20 s, until it steps down, then
// the leaderless survivor, for as long as it runs) though it stores and
// delivers nothing new; such an answer is ErrUnavailable (servingQuorum).
func (s *Store) askHead(ctx context.Context) (uint64, error) {
	reply, err := s.apiRequest(ctx, "$JS.API.STREAM.INFO."+s.name, nil)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var resp struct {
		Error *struct {
			ErrCode     uint16 `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		State *struct {
			LastSeq    uint64 `json:"last_seq"`
			NumDeleted uint64 `json:"num_deleted"`
		} `json:"state"`
		Config *struct {
			Replicas int `json:"num_replicas"`
		} `json:"config"`
		Cluster *streamCluster `json:"cluster"`
	}
	switch err := json.Unmarshal(reply.Data, &resp); {
	case err != nil:
		return 0, fmt.Errorf("%w: stream info: %v", ErrUnavailable, err)
	case resp.Error != nil:
		return 0, fmt.Errorf("%w: stream info: %s (%d)", ErrUnavailable, resp.Error.Description, resp.Error.ErrCode)
	case resp.State == nil:
		return 0, fmt.Errorf("%w: stream info: no state in the answer", ErrUnavailable)
	}
	if resp.Config != nil {
		s.checkReplicas(resp.Config.Replicas)
	}
	if err := resp.Cluster.servingQuorum(); err != nil {
		return 0, fmt.Errorf("%w: stream info: %v", ErrUnavailable, err)
	}
	if resp.State.NumDeleted == 0 {
		return resp.State.LastSeq, nil // the common case: nothing missing, the last sequence is stored
	}
	return s.lastStored(ctx, resp.State.LastSeq, resp.State.NumDeleted)
}

// checkReplicas logs at ERROR, once each time they change, stream replicas
// (as the head's question, every second, reads them) below those the
// operator set for this replica: another replica lowered them — one of a
// build from before the stream's checked configuration, rolled back to with
// INFRACAST_STREAM_REPLICAS unset, sets them to 1 at its start — or an
// operator did, and this build would keep them so. (Re-check 20r3: a
// rollback of one replica turned an R3 stream into R1 for good.)
func (s *Store) checkReplicas(have int) {
	if s.given == 0 || have <= 0 {
		return
	}
	if have >= s.given {
		if s.lowered.Swap(0) != 0 {
			s.cfg.Log.Info("the stream's replicas are back to those set", "stream", s.name, "replicas", have, "set", s.given)
		}
		return
	}
	if s.lowered.Swap(int64(have)) == int64(have) {
		return
	}
	s.cfg.Log.Error("the stream's replicas dropped below those set for this replica (INFRACAST_STREAM_REPLICAS): fewer copies of every event. "+
		"Another replica lowered them — an older build started without the setting does — or an operator did; raise them back with "+
		fmt.Sprintf("`nats stream edit %s --replicas %d -f`, and set the setting on every replica", s.name, s.given),
		"stream", s.name, "replicas", have, "set", s.given)
}

// streamCluster is the part of a stream's info that says who holds it (nil
// for a stream on a single server): its leader, and each other member as
// the leader last heard from it.
type streamCluster struct {
	Leader   string `json:"leader"`
	Replicas []struct {
		Name    string        `json:"name"`
		Offline bool          `json:"offline"`
		Active  time.Duration `json:"active"` // since the leader last heard from it
		Pending bool          `json:"pending"`
	} `json:"replicas"`
}

// peerSilent: a member the leader has not heard from for this long does
// not count towards the quorum. An idle group's leader hears from each
// member every second or two (measured: "active" cycles up to ~1.9 s); the
// leader itself steps down only after 10 s without a quorum, and 10 s more
// may pass before it checks.
const peerSilent = 5 * time.Second

// servingQuorum reports whether the stream can store and deliver events: it
// has a leader, and the leader and the members it heard from within
// peerSilent are a majority of the group. A member stopped cleanly is
// offline at once; one cut off by a partition, after peerSilent.
func (c *streamCluster) servingQuorum() error {
	if c == nil {
		return nil
	}
	if c.Leader == "" {
		return errors.New("the stream has no leader")
	}
	group, seen := 1, 1 // the leader
	for _, p := range c.Replicas {
		if p.Pending {
			continue // assigned, not yet a member of the group
		}
		group++
		if !p.Offline && p.Active <= peerSilent {
			seen++
		}
	}
	if seen <= group/2 {
		return fmt.Errorf("the stream's leader %s hears from %d of its group of %d, not a majority", c.Leader, seen, group)
	}
	return nil
}

// Record is one stored event as read back from the stream.
type Record struct {
	StreamSeq uint64
	Subject   string
	Data      []byte
	// Pending is how many events followed this one in the stream when it was
	// delivered (the consumer's view: the live lag behind the head).
	Pending uint64
}

// Consume delivers every event from stream sequence start (1 = the beginning)
// in order to fn until ctx ends, fn returns an error, or the consumer breaks.
//
// It is an ordered consumer of its own making — an ephemeral, in-memory,
// unacknowledged pull consumer, checked for gaps — rather than nats.go's
// OrderedConsumer, whose recovery after losing its server waits up to 10 s
// per attempt to re-create the consumer (measured: a replica's projections
// stalled 10 s after the node holding its consumer stopped, and every write
// through it timed out waiting to read its own event). Here any trouble — a
// missed heartbeat, a gap, the consumer gone — ends Consume with an error
// within about a second, and the caller (projections.Runner) starts again
// from its last applied sequence with a new consumer, made within a second.
func (s *Store) Consume(ctx context.Context, start uint64, fn func(Record) error) error {
	start = max(start, 1)
	cctx, cancel := context.WithTimeout(ctx, min(s.cfg.TryTimeout, time.Second))
	cons, err := s.js.CreateConsumer(cctx, s.name, jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		AckPolicy:         jetstream.AckNonePolicy,
		Replicas:          1,
		MemoryStorage:     true,
		InactiveThreshold: time.Minute, // removed by the server once nobody pulls
	})
	cancel()
	if err != nil {
		return fmt.Errorf("%w: create consumer: %v", ErrUnavailable, err)
	}
	defer func() {
		// Best effort: the inactive threshold removes it anyway.
		name := cons.CachedInfo().Name
		go func() {
			dctx, cancel := context.WithTimeout(context.Background(), s.cfg.TryTimeout)
			defer cancel()
			_ = s.js.DeleteConsumer(dctx, s.name, name)
		}()
	}()
	// A heartbeat every half second: a consumer whose server went away is
	// noticed after two missed ones. Messages are taken by callback
	// (Consumer.Consume), not by an iterator's Next: Next arms and stops a
	// heartbeat timer and runs a select for every message, which a replay
	// paid 7% of its CPU for; the callback re-arms one timer.
	var (
		mu        sync.Mutex // held by the callback: fn never runs after Consume returns
		stopped   bool
		delivered uint64 // consumer sequence of the last message
		failed    = make(chan error, 1)
	)
	fail := func(err error) {
		select {
		case failed <- err:
		default:
		}
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		sseq, cseq, pending, ok := ackSequences(msg.Reply()) // ackreply.go
		if !ok {
			md, err := msg.Metadata()
			if err != nil {
				stopped = true
				fail(fmt.Errorf("%w: consume: %v", ErrUnavailable, err))
				return
			}
			sseq, cseq, pending = md.Sequence.Stream, md.Sequence.Consumer, md.NumPending
		}
		if cseq != delivered+1 {
			// Messages were lost on the way (a reconnect while they were
			// in flight, unacknowledged): start again after the last one.
			stopped = true
			fail(fmt.Errorf("%w: consume: gap after delivery %d (got %d)", ErrUnavailable, delivered, cseq))
			return
		}
		delivered = cseq
		if err := fn(Record{StreamSeq: sseq, Subject: msg.Subject(), Data: msg.Data(), Pending: pending}); err != nil {
			stopped = true
			fail(err)
		}
	}, jetstream.PullMaxMessages(4096), jetstream.PullExpiry(5*time.Second),
		jetstream.PullHeartbeat(500*time.Millisecond),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			// A missed heartbeat or a closed connection ends it; the
			// warnings the iterator's Next ignored too (a leadership
			// change, an exceeded limit) are answered by nats.go pulling
			// again, and a loss they cause shows as a gap.
			switch {
			case errors.Is(err, jetstream.ErrNoHeartbeat):
				fail(fmt.Errorf("%w: consume: %w: %v", ErrUnavailable, ErrStreamSilent, err))
			case errors.Is(err, jetstream.ErrConnectionClosed):
				fail(fmt.Errorf("%w: consume: %v", ErrUnavailable, err))
			}
		}))
	if err != nil {
		return fmt.Errorf("%w: consume: %v", ErrUnavailable, err)
	}
	defer func() {
		cc.Stop()
		mu.Lock()
		stopped = true
		mu.Unlock()
	}()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-failed:
		return err
	case <-cc.Closed():
		// Stopped by nats.go: the consumer was deleted, or the request was
		// refused.
		if ctx.Err() != nil {
			return ctx.Err()
		}
		select {
		case err := <-failed:
			return err
		default:
		}
		return fmt.Errorf("%w: consume: the consumer stopped", ErrUnavailable)
	}
}
