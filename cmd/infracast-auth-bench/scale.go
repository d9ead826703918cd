package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
	"github.com/infracast/auth/projections"
)

// The scale case: the read models at the size of a large deployment. Its
// flags are registered here; main parses them with the others.
var (
	scaleUsers = flag.Int("scale-users", 1_000_000,
		"users the scale case holds, with two sessions each (the targets are for 1,000,000; fewer for a quicker run)")
	scaleRotate = flag.Bool("scale-rotate", false,
		"scale case: each session's refresh rotates its refresh token (the service's default does not)")
	scaleTail = flag.Int("scale-tail", 10_000,
		"scale case: events appended after the snapshot, replayed at start (the service saves a snapshot every 10,000)")
)

// scaleChildEnv marks a bench process started to run the scale case for its
// parent.
const scaleChildEnv = "INFRACAST_BENCH_SCALE_CHILD"

const (
	userBaselineName    = "bytes of the encoded user.created event in the stream"
	sessionBaselineName = "bytes of the encoded session.started and session.refreshed events in the stream"
	startupBaselineName = "reading the snapshot object from the object store (io.Copy to io.Discard)"
)

// caseScale: resident bytes per user and per session with scale-users users
// (two tenant roles each, of 500 tenants) and twice as many sessions
// (started, refreshed once) in a projections.Model, applied as the runner
// does (every string its own allocation, as decoded); then the seconds a
// replica takes from its start to ready at that size with a snapshot: the
// model's snapshot is saved to the object store of an embedded JetStream
// (fsync always, as the service runs it), scale-tail events follow it in the
// stream, and a fresh model restores the snapshot and replays them. It runs
// in a process of its own, as the memory case does.
func caseScale(ctx context.Context, b *bench) ([]result, error) {
	if os.Getenv(scaleChildEnv) == "" {
		return scaleInChild(ctx, b)
	}
	nUsers := max(*scaleUsers, 1)
	nSessions := 2 * nUsers
	g, err := newScaleGen()
	if err != nil {
		return nil, err
	}
	// The audit journal's filled chunks go to a file, as the service has
	// them (DataDir/audit-journal).
	journalDir, err := os.MkdirTemp("", "infracast-auth-bench-journal-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(journalDir)
	m := projections.NewModel()
	m.JournalDir = journalDir
	var seq uint64
	apply := func(agg, id string, e domain.Event) {
		seq++
		m.Apply(seq, events.Envelope{Type: e.EventType(), Aggregate: agg, AggregateID: strings.Clone(id), Sequence: 1}, e)
	}

	// Users.
	t0 := time.Now()
	before, rssBefore := heap(), resident()
	encUser := 0
	for i := range nUsers {
		e := g.userCreated(i)
		if i < 1000 {
			encUser += g.encoded(domain.AggregateUser, e.UserID, e)
		}
		apply(domain.AggregateUser, e.UserID, e)
	}
	perUser := float64(heap()-before) / float64(nUsers)
	rssUser := perEntry(rssBefore, resident(), nUsers)
	fmt.Fprintf(b.log, "   %d users applied in %s\n", nUsers, time.Since(t0).Round(time.Millisecond))

	// Sessions.
	t0 = time.Now()
	before, rssBefore = heap(), resident()
	encSession := 0
	for j := range nSessions {
		started, refreshed := g.session(j, nUsers, *scaleRotate)
		if j < 1000 {
			encSession += g.encoded(domain.AggregateSession, started.SessionID, started) + g.encoded(domain.AggregateSession, started.SessionID, refreshed)
		}
		apply(domain.AggregateSession, started.SessionID, started)
		apply(domain.AggregateSession, started.SessionID, refreshed)
	}
	perSession := float64(heap()-before) / float64(nSessions)
	rssSession := perEntry(rssBefore, resident(), nSessions)
	fmt.Fprintf(b.log, "   %d sessions applied in %s\n", nSessions, time.Since(t0).Round(time.Millisecond))
	if err := g.check(m, nUsers, nSessions, time.Now()); err != nil {
		return nil, err
	}
	ru := memoryResult("memory.user", "B/user", rssUser, perUser, float64(encUser)/float64(min(nUsers, 1000)), nUsers, userBaselineName)
	ru.valueBelow(300)
	rs := memoryResult("memory.session", "B/session", rssSession, perSession, float64(encSession)/float64(min(nSessions, 1000)), nSessions, sessionBaselineName)
	rs.valueBelow(200)

	st, err := scaleStartup(ctx, b, g, m, nUsers, nSessions, journalDir)
	if err != nil {
		return []result{ru, rs}, err
	}
	return []result{ru, rs, st}, nil
}

// scaleStartup saves m's snapshot, appends the tail, and measures a fresh
// replica's start from them. m is dropped on the way (the caller must not
// use it after).
func scaleStartup(ctx context.Context, b *bench, g *scaleGen, m *projections.Model, nUsers, nSessions int, journalDir string) (result, error) {
	dir, err := os.MkdirTemp("", "infracast-auth-bench-scale-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	ns, err := events.StartEmbedded(events.EmbeddedOptions{StoreDir: dir, SyncAlways: true})
	if err != nil {
		return result{}, err
	}
	defer ns.Shutdown()
	nc, err := events.ConnectEmbedded(ns)
	if err != nil {
		return result{}, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return result{}, err
	}
	// The stream starts at the snapshot's sequence: a start from a snapshot
	// reads the event there (to check the snapshot is of this stream) and
	// what follows, never the history before it, which is not written here
	// (millions of events: minutes, gigabytes).
	head := m.Applied()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: events.StreamName, Subjects: []string{events.SubjectPrefix + ".>"}, Storage: jetstream.FileStorage, Replicas: 1,
		Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardNew, MaxMsgsPerSubject: -1, Duplicates: 2 * time.Minute,
		AllowAtomicPublish: true, AllowDirect: true, DenyDelete: true, DenyPurge: true, FirstSeq: head,
	}); err != nil {
		return result{}, err
	}
	st, err := events.OpenStore(ctx, nc, events.StoreConfig{})
	if err != nil {
		return result{}, err
	}
	started, refreshed := g.session(nSessions-1, nUsers, *scaleRotate)
	last, err := events.Encode(commands.NewID("evt"), domain.AggregateSession, started.SessionID, 2, g.now, g.meta, refreshed)
	if err != nil {
		return result{}, err
	}
	ack, err := js.Publish(ctx, events.Subject(domain.AggregateSession, started.SessionID), last)
	if err != nil {
		return result{}, err
	}
	if ack.Sequence != head {
		return result{}, fmt.Errorf("the stream stored the snapshot's event at %d, not %d", ack.Sequence, head)
	}
	snaps, err := st.Snapshots(ctx, events.SnapshotMACKey(randomKey()))
	if err != nil {
		return result{}, err
	}

	// Save, as a replica does in the background (in ten minutes at most).
	t0 := time.Now()
	sctx, scancel := context.WithTimeout(ctx, 10*time.Minute)
	size, frozen, err := saveSnapshot(sctx, m, snaps)
	scancel()
	if err != nil {
		return result{}, fmt.Errorf("save snapshot (after %s): %w", time.Since(t0).Round(time.Millisecond), err)
	}
	saveTime := time.Since(t0)
	fmt.Fprintf(b.log, "   snapshot of %d users and %d sessions: %.1f MB (%.0f B/entity), frozen in %s, saved in %s\n",
		nUsers, nSessions, float64(size)/1e6, float64(size)/float64(nUsers+nSessions), frozen.Round(time.Microsecond), saveTime.Round(time.Millisecond))
	m = nil
	runtime.GC()
	debug.FreeOSMemory()

	// The tail.
	tail, err := g.appendTail(ctx, js, nUsers, *scaleTail)
	if err != nil {
		return result{}, err
	}
	head += uint64(tail)

	obs, err := js.ObjectStore(ctx, events.SnapshotBucket)
	if err != nil {
		return result{}, err
	}
	raw := func() (time.Duration, error) {
		t0 := time.Now()
		res, err := obs.Get(ctx, "read-models")
		if err != nil {
			return 0, err
		}
		defer res.Close()
		if _, err := io.Copy(io.Discard, res); err != nil {
			return 0, err
		}
		return time.Since(t0), nil
	}
	if _, err := raw(); err != nil { // both read the store warm
		return result{}, err
	}

	// A replica's start: restore the snapshot, then replay the tail.
	t0 = time.Now()
	fresh := projections.NewModel()
	fresh.JournalDir = journalDir
	restored, err := restoreSnapshot(ctx, fresh, snaps)
	if err != nil {
		return result{}, fmt.Errorf("restore snapshot: %w", err)
	}
	restoreTime := time.Since(t0)
	r := projections.NewRunner(st, fresh, nil)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(rctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Minute)
	err = r.WaitFor(wctx, head)
	wcancel()
	ready := time.Since(t0)
	cancel()
	<-done
	if err != nil {
		return result{}, fmt.Errorf("replay after the snapshot: %w", err)
	}
	entities := nUsers + nSessions
	fmt.Fprintf(b.log, "   restored at sequence %d in %s (%.2fM entities/s), %d events after it replayed, ready after %s\n",
		restored, restoreTime.Round(time.Millisecond), float64(entities)/restoreTime.Seconds()/1e6, tail, ready.Round(time.Millisecond))
	if fresh.Skipped() != 0 {
		return result{}, fmt.Errorf("%d events skipped", fresh.Skipped())
	}
	if err := g.check(fresh, nUsers, nSessions, time.Now()); err != nil {
		return result{}, fmt.Errorf("restored model: %w", err)
	}
	base, err := raw()
	if err != nil {
		return result{}, err
	}
	res := result{
		Name: "startup.snapshot", Value: ready.Seconds(), Unit: "s", Baseline: base.Seconds(), Ratio: ratio(ready.Seconds(), base.Seconds()),
		Samples: int64(entities), baselineName: startupBaselineName,
	}
	res.valueBelow(5)
	return res, nil
}

// saveSnapshot saves m's snapshot as a replica does: frozen under the read
// lock, then encoded into the object store as it is written. It returns its
// size and the time the freeze held the read lock.
func saveSnapshot(ctx context.Context, m *projections.Model, snaps *events.Snapshots) (int, time.Duration, error) {
	t0 := time.Now()
	f := m.Freeze()
	frozen := time.Since(t0)
	defer f.Release()
	info, err := snaps.SaveFrom(ctx, f.Sequence(), projections.SnapshotFormat, func(w io.Writer) error {
		_, err := f.WriteTo(w)
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	return int(info.Size), frozen, nil
}

// restoreSnapshot loads the latest snapshot into m, as a replica's start
// does: restored as it is read.
func restoreSnapshot(ctx context.Context, m *projections.Model, snaps *events.Snapshots) (uint64, error) {
	_, r, err := snaps.Open(ctx, projections.SnapshotFormat)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return m.RestoreFrom(r)
}

// scaleGen makes the scale case's events. IDs are ULIDs as the service makes
// them, derived from the entity's number so that they need not be kept (the
// bench's own memory would count as the model's).
type scaleGen struct {
	now    time.Time
	meta   events.Meta
	sealer *events.Sealer
}

func newScaleGen() (*scaleGen, error) {
	s, err := events.NewSealer(randomKey())
	if err != nil {
		return nil, err
	}
	return &scaleGen{
		now:    time.Now().UTC().Truncate(time.Millisecond),
		meta:   events.Meta{Actor: events.Actor{Type: "user", ID: "user-01JBENCHADMIN0000000000000"}, Request: events.RequestInfo{IP: "203.0.113.7", UserAgent: "bench/1.0"}},
		sealer: s,
	}, nil
}

// id is the ULID ID of entity i of a kind, as commands.NewID makes them.
func (g *scaleGen) id(prefix string, kind uint64, i int) string {
	var u ulid.ULID
	ms := uint64(g.now.UnixMilli()) - 1e7 + uint64(i)/64
	binary.BigEndian.PutUint16(u[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(u[2:6], uint32(ms))
	x := uint64(i)*0x9e3779b97f4a7c15 ^ kind<<56
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 29
	binary.BigEndian.PutUint64(u[6:14], x)
	binary.BigEndian.PutUint16(u[14:16], uint16(x>>17)^uint16(i))
	return prefix + "-" + u.String()
}

func (g *scaleGen) userID(i int) string    { return g.id("user", 1, i) }
func (g *scaleGen) sessionID(j int) string { return g.id("sess", 2, j) }

// sealedHash is a sealed argon2id hash as the service stores it (180
// characters): of the password's NFKC form, marked so (n=1,
// commands.Passwords.Hash).
func (g *scaleGen) sealedHash() string {
	var salt [16]byte
	var key [32]byte
	rand.Read(salt[:])
	rand.Read(key[:])
	phc := "$argon2id$v=19$m=19456,t=2,p=1,n=1$" + base64.RawStdEncoding.EncodeToString(salt[:]) + "$" + base64.RawStdEncoding.EncodeToString(key[:])
	sealed, err := g.sealer.Seal("password_hash", phc)
	if err != nil {
		panic(err)
	}
	return sealed
}

var scaleRoles = []domain.Role{domain.RoleViewer, domain.RoleEditor, domain.RoleAdmin}

// userCreated is user i: username user0000042, an e-mail, a sealed password
// hash, no global role, and two tenant roles — 4,500 distinct pairs in all,
// as users of one organization share theirs.
func (g *scaleGen) userCreated(i int) domain.UserCreated {
	name := fmt.Sprintf("user%07d", i)
	t1, t2 := i%500, (i%500+1+(i/500)%3)%500
	return domain.UserCreated{
		UserID: g.userID(i), Username: name, Email: name + "@example.com", PasswordHashSealed: g.sealedHash(),
		Roles: []domain.GlobalRole{}, Tenants: []domain.TenantRole{
			{Tenant: fmt.Sprintf("tenant-%03d", t1), Role: domain.Role(strings.Clone(string(scaleRoles[i%3])))},
			{Tenant: fmt.Sprintf("tenant-%03d", t2), Role: domain.Role(strings.Clone(string(domain.RoleViewer)))},
		},
		CreatedAt: g.now.Add(time.Duration(i) * time.Millisecond),
	}
}

func refreshHash(sessionID string, n int) string {
	return commands.HashToken(sessionID + "/refresh/" + strconv.Itoa(n))
}

// session is session j of user j mod nUsers, started and refreshed once
// (rotating its refresh token if rotate); one in four is scoped to a tenant.
func (g *scaleGen) session(j, nUsers int, rotate bool) (domain.SessionStarted, domain.SessionRefreshed) {
	sid := g.sessionID(j)
	at := g.now.Add(time.Duration(j) * time.Millisecond)
	s := domain.SessionStarted{
		SessionID: sid, UserID: g.userID(j % nUsers), RefreshTokenHash: refreshHash(sid, 0), Method: "password",
		StartedAt: at, ExpiresAt: at.Add(7 * 24 * time.Hour),
	}
	if j%4 == 3 {
		s.Tenant = fmt.Sprintf("tenant-%03d", j%nUsers%500)
	}
	r := domain.SessionRefreshed{SessionID: strings.Clone(sid), TokenID: commands.NewID("tok"), At: at.Add(time.Minute)}
	if rotate {
		r.RefreshTokenHash = refreshHash(sid, 1)
	}
	return s, r
}

func (g *scaleGen) encoded(agg, id string, e domain.Event) int {
	data, _ := events.Encode(commands.NewID("evt"), agg, id, 1, g.now, g.meta, e)
	return len(data)
}

// check spot-checks a model holding the scale case's users and sessions.
func (g *scaleGen) check(m *projections.Model, nUsers, nSessions int, now time.Time) error {
	for _, j := range []int{0, nSessions / 3, nSessions - 1} {
		sid := g.sessionID(j)
		p, v := m.Authorize(sid, "tok-none", now)
		if v != projections.Valid || p.User.ID != g.userID(j%nUsers) || len(p.User.Tenants) != 2 {
			return fmt.Errorf("session %d (%s): %s, user %q with %d tenant roles", j, sid, v, p.User.ID, len(p.User.Tenants))
		}
		n := 0
		if *scaleRotate {
			n = 1
		}
		if id, ok := m.SessionByRefreshHash(refreshHash(sid, n)); !ok || id != sid {
			return fmt.Errorf("session %d by its refresh token: %q %v", j, id, ok)
		}
		u, _, ok := m.UserByName(fmt.Sprintf("USER%07d", j%nUsers))
		if !ok || u.ID != g.userID(j%nUsers) || !strings.HasPrefix(u.PasswordHashSealed, "aesgcm1:") {
			return fmt.Errorf("user %d by name: %v %q", j%nUsers, ok, u.ID)
		}
	}
	return nil
}

// appendTail appends about n events after the snapshot, of the kinds a
// replica sees most: new users, logins (session started), refreshes, an
// access-token revocation, a logout. It returns how many it appended.
func (g *scaleGen) appendTail(ctx context.Context, js jetstream.JetStream, nUsers, n int) (int, error) {
	count := 0
	pub := func(agg, id string, e domain.Event) error {
		data, err := events.Encode(commands.NewID("evt"), agg, id, 1, g.now, g.meta, e)
		if err != nil {
			return err
		}
		if _, err := js.PublishAsync(events.Subject(agg, id), data); err != nil {
			return err
		}
		if count++; count%500 == 0 { // the store syncs every write: a few hundred in flight at most
			select {
			case <-js.PublishAsyncComplete():
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	for k := 0; count < n; k++ {
		if k%10 == 0 {
			e := g.userCreated(nUsers + k)
			if err := pub(domain.AggregateUser, e.UserID, e); err != nil {
				return 0, err
			}
		}
		sid := g.id("sess", 3, k)
		at := g.now.Add(time.Duration(k) * time.Millisecond)
		if err := pub(domain.AggregateSession, sid, domain.SessionStarted{SessionID: sid, UserID: g.userID(k % nUsers),
			RefreshTokenHash: refreshHash(sid, 0), Method: "password", StartedAt: at, ExpiresAt: at.Add(7 * 24 * time.Hour)}); err != nil {
			return 0, err
		}
		tok := commands.NewID("tok")
		if err := pub(domain.AggregateSession, sid, domain.SessionRefreshed{SessionID: sid, TokenID: tok, At: at}); err != nil {
			return 0, err
		}
		switch k % 8 {
		case 3:
			if err := pub(domain.AggregateSession, sid, domain.SessionTokenRevoked{SessionID: sid, TokenID: tok, ExpiresAt: at.Add(time.Hour)}); err != nil {
				return 0, err
			}
		case 5:
			if err := pub(domain.AggregateSession, sid, domain.SessionRevoked{SessionID: sid, Reason: domain.RevokeReasonLogout}); err != nil {
				return 0, err
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(5 * time.Minute):
		return 0, errors.New("publishing the tail did not complete")
	}
	return count, nil
}

// scaleInChild runs the scale case in a fresh process (its progress on this
// process's log) and reads its JSON lines.
func scaleInChild(ctx context.Context, b *bench) ([]result, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-cases", "scale", "-scale-users", strconv.Itoa(*scaleUsers), "-scale-tail", strconv.Itoa(*scaleTail), "-json"}
	if *scaleRotate {
		args = append(args, "-scale-rotate")
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), scaleChildEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = io.MultiWriter(&stderr, &childLog{w: b.log})
	out, runErr := cmd.Output()
	if runErr != nil {
		runErr = fmt.Errorf("scale case in a child process: %v\n%s", runErr, stderr.String())
	}
	names := map[string]string{"memory.user": userBaselineName, "memory.session": sessionBaselineName, "startup.snapshot": startupBaselineName}
	var rs []result
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r result
		if line == "" {
			continue
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, errors.Join(runErr, fmt.Errorf("scale case: child printed %q: %v", line, err))
		}
		r.baselineName = names[r.Name]
		rs = append(rs, r)
	}
	if runErr != nil {
		return rs, runErr // what it measured before it failed
	}
	if len(rs) != 3 {
		return nil, fmt.Errorf("scale case: %d results from the child, want 3", len(rs))
	}
	return rs, nil
}

// childLog passes on the child's progress lines ("   ..." but for its
// results, which the parent prints itself), as they come.
type childLog struct {
	w    io.Writer
	line []byte
}

func (c *childLog) Write(p []byte) (int, error) {
	c.line = append(c.line, p...)
	for {
		i := bytes.IndexByte(c.line, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(c.line[:i+1])
		c.line = c.line[i+1:]
		if strings.HasPrefix(line, "   ") && !strings.HasPrefix(line, "   (") && !strings.Contains(line, "(baseline") {
			io.WriteString(c.w, line)
		}
	}
}
