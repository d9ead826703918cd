package events

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// The stream's configuration, as the service needs it (docs/operations.md,
// "The stream"): file storage, limits retention, no limit that drops or
// expires events, delete and purge denied, the one subject tree. A stream
// created in advance — by an operator, a script, an older build — is
// checked at each start (an outside check, 20n: one pre-created in memory
// with MaxMsgs 10 and DiscardOld was taken as it was; it dropped the first
// events, and a replica that started later was ready without the bootstrap
// admin).
//
// What the service owns and can change safely in place (a change that only
// keeps more, or its own settings) is corrected, and logged: at WARN what
// could lose events, at info the rest. What cannot be changed in place
// (storage, a work-queue retention, a sealed stream, a mirror, per-message
// TTLs) is refused with ErrStoreRefused, naming each setting and the value
// it needs. Replicas follow their own rule (streamReplicas).

// reconcileStream returns the configuration the existing stream (have)
// gets: have with the service's settings of want, and whether it differs.
func reconcileStream(have, want jetstream.StreamConfig, cfg StoreConfig) (jetstream.StreamConfig, bool, error) {
	upd := have
	var refuse, lossy, own []string
	if have.Storage != want.Storage {
		refuse = append(refuse, fmt.Sprintf("storage %s (needs %s)", have.Storage, want.Storage))
	}
	if have.Retention == jetstream.WorkQueuePolicy {
		refuse = append(refuse, fmt.Sprintf("retention %s (needs %s)", have.Retention, want.Retention))
	}
	if have.Sealed {
		refuse = append(refuse, "sealed (needs an unsealed stream: a sealed one stores nothing more)")
	}
	if have.Mirror != nil {
		refuse = append(refuse, fmt.Sprintf("a mirror of %s (needs a stream of its own: a mirror takes no writes)", have.Mirror.Name))
	}
	if have.AllowMsgTTL {
		refuse = append(refuse, "allow_msg_ttl true (needs false: a message TTL header would expire events; it cannot be switched off in place)")
	}
	if len(refuse) > 0 {
		return have, false, fmt.Errorf("%w: the stream %s has settings under which it can lose events, or refuse them, and which cannot be changed in place: %s. Not starting on it: recreate it with these values, keeping its events (`nats stream backup %s DIR`, edit DIR/backup.json, `nats stream rm -f %s`, `nats stream restore DIR`; docs/operations.md, \"The stream\")",
			ErrStoreRefused, have.Name, strings.Join(refuse, "; "), have.Name, have.Name)
	}
	fix := func(list *[]string, bad bool, field string, value, needs any, set func()) {
		if bad {
			*list = append(*list, fmt.Sprintf("%s %v → %v", field, value, needs))
			set()
		}
	}
	fix(&lossy, have.Retention != want.Retention, "retention", have.Retention, want.Retention, func() { upd.Retention = want.Retention })
	fix(&lossy, have.Discard != want.Discard, "discard", have.Discard, want.Discard, func() { upd.Discard = want.Discard })
	fix(&lossy, have.MaxAge > 0, "max_age", have.MaxAge, "unlimited", func() { upd.MaxAge = 0 })
	fix(&lossy, have.MaxMsgs > 0, "max_msgs", have.MaxMsgs, "unlimited", func() { upd.MaxMsgs = -1 })
	fix(&lossy, have.MaxBytes > 0, "max_bytes", have.MaxBytes, "unlimited", func() { upd.MaxBytes = -1 })
	fix(&lossy, have.MaxMsgsPerSubject > 0, "max_msgs_per_subject", have.MaxMsgsPerSubject, "unlimited", func() {
		upd.MaxMsgsPerSubject, upd.DiscardNewPerSubject = -1, false
	})
	fix(&lossy, have.MaxMsgSize > 0, "max_msg_size", have.MaxMsgSize, "unlimited", func() { upd.MaxMsgSize = -1 })
	fix(&lossy, !have.DenyDelete && !cfg.AllowDelete, "deny_delete", false, true, func() { upd.DenyDelete = true })
	fix(&lossy, !have.DenyPurge, "deny_purge", false, true, func() { upd.DenyPurge = true })
	fix(&lossy, have.AllowRollup, "allow_rollup_hdrs", true, false, func() { upd.AllowRollup = false })
	fix(&lossy, len(have.Subjects) != 1 || have.Subjects[0] != want.Subjects[0], "subjects", have.Subjects, want.Subjects, func() { upd.Subjects = want.Subjects })
	// The service's own settings, which builds have changed (an upgrade).
	fix(&own, have.Duplicates != want.Duplicates, "duplicate_window", have.Duplicates, want.Duplicates, func() { upd.Duplicates = want.Duplicates })
	fix(&own, have.AllowAtomicPublish != want.AllowAtomicPublish, "allow_atomic", have.AllowAtomicPublish, want.AllowAtomicPublish, func() { upd.AllowAtomicPublish = want.AllowAtomicPublish })
	fix(&own, have.AllowDirect != want.AllowDirect, "allow_direct", have.AllowDirect, want.AllowDirect, func() { upd.AllowDirect = want.AllowDirect })
	replicas, err := streamReplicas(have, cfg)
	if err != nil {
		return have, false, err
	}
	fix(&own, replicas != have.Replicas, "replicas", have.Replicas, replicas, func() { upd.Replicas = replicas })
	if len(lossy) > 0 {
		cfg.Log.Warn("the stream's configuration could lose events; correcting it (docs/operations.md, \"The stream\")",
			"stream", have.Name, "changes", strings.Join(lossy, ", "))
	}
	if len(own) > 0 {
		cfg.Log.Info("updating the stream's configuration", "stream", have.Name, "changes", strings.Join(own, ", "))
	}
	return upd, len(lossy)+len(own) > 0, nil
}

// streamReplicas decides the replicas of an existing stream: its own,
// unless the operator set them (cfg.ReplicasGiven) higher. A replica
// started with the default never changes them (an outside check, 20n: one
// left at the default 1 turned a production R3 stream into R1, and the next
// one started with 3 back, without a word); a setting below the stream's is
// refused, not applied — a single replica configured with 1 by mistake
// (a copied environment) would take two of the three copies of every event
// away from the whole deployment. An operator who means to lower them does
// so with the nats CLI, as the refusal says.
func streamReplicas(have jetstream.StreamConfig, cfg StoreConfig) (int, error) {
	switch {
	case have.Replicas == cfg.Replicas:
		return have.Replicas, nil
	case !cfg.ReplicasGiven:
		cfg.Log.Info("the stream keeps its replicas (the replicas setting was not given; the default is for a new stream only)",
			"stream", have.Name, "replicas", have.Replicas, "default", cfg.Replicas)
		return have.Replicas, nil
	case cfg.Replicas > have.Replicas:
		return cfg.Replicas, nil
	}
	how := fmt.Sprintf("`nats stream edit %s --replicas %d -f`", have.Name, cfg.Replicas)
	if have.Name == StreamName {
		how += fmt.Sprintf(" and `nats stream edit OBJ_%s --replicas %d -f`", SnapshotBucket, cfg.Replicas)
	}
	return 0, fmt.Errorf("%w: the stream %s has %d replicas, and the replicas setting (INFRACAST_STREAM_REPLICAS) asks for %d: a start never lowers a stream's replication (fewer copies of every event). If that is meant, lower them yourself — %s — and start again; else set it to %d, or leave it unset (an existing stream keeps its replicas)",
		ErrStoreRefused, have.Name, have.Replicas, cfg.Replicas, how, have.Replicas)
}

// reconcileBucket gives the snapshot bucket, when it exists, the replicas
// of the stream (replicas): it was created with the stream's replicas of
// then, and kept them (an outside check, 20n: a deployment moved from 1 to
// 3 replicas had an R3 stream and an R1 bucket, and with that one node down
// no replica could start). Raised always; lowered only when the operator
// set the replicas (the stream has them, so they were lowered on purpose).
func reconcileBucket(ctx context.Context, js jetstream.JetStream, replicas int, cfg StoreConfig) error {
	name := "OBJ_" + SnapshotBucket
	st, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return bucketError(ctx, "reading its configuration", err)
	}
	have := st.CachedInfo().Config
	if have.Replicas == replicas || (have.Replicas > replicas && !cfg.ReplicasGiven) {
		return nil
	}
	upd := have
	upd.Replicas = replicas
	if _, err := js.UpdateStream(ctx, upd); err != nil {
		return bucketError(ctx, fmt.Sprintf("changing its replicas from %d to %d, the stream's", have.Replicas, replicas), err)
	}
	log := cfg.Log.Info
	if replicas < have.Replicas {
		log = cfg.Log.Warn
	}
	log("the snapshot bucket follows the stream's replicas", "bucket", SnapshotBucket, "from", have.Replicas, "replicas", replicas)
	return nil
}

// bucketError says that a start waited for the snapshot bucket, and what
// for: not the stream (a bucket whose only server is down made starts fail
// with "create stream INFRACAST_AUTH: context deadline exceeded"). The
// question whether its leader's server is down is asked only when the wait
// ran out: a start ended otherwise (ctx canceled — at a permissions
// violation NATS reported, which the caller names) is not about servers
// (re-check 20r3: a user without the permission read that hint).
func bucketError(ctx context.Context, what string, err error) error {
	hint := fmt.Sprintf(" (is its stream leader's server down? `nats stream info OBJ_%s`)", SnapshotBucket)
	if errors.Is(ctx.Err(), context.Canceled) {
		hint = ""
	}
	return fmt.Errorf("the snapshot bucket %s (its stream OBJ_%s) did not answer while %s: %w%s",
		SnapshotBucket, SnapshotBucket, what, err, hint)
}

// CheckReplay refuses to build read models on the stream from sequence
// applied+1 (applied: the sequence of the snapshot restored, 0 without
// one) when the stream's first events are gone from there: a limit (MaxAge,
// MaxMsgs, MaxBytes with DiscardOld) removed them, or they were deleted.
// A model built without them would lack users, keys and revocations, and
// the replica would report ready on it (an outside check, 20n: admin got
// 401 there). Like a stream behind the data folder's marker (refuseBehind),
// it is refused rather than started on. (A stream made to begin at a later
// sequence — its configured FirstSeq — held nothing before it.)
func (s *Store) CheckReplay(ctx context.Context, applied uint64) error {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("%w: stream info: %v", ErrUnavailable, err)
	}
	first, begins := info.State.FirstSeq, max(info.Config.FirstSeq, 1)
	if info.State.Msgs == 0 || first <= begins || first <= applied+1 {
		return nil
	}
	covered := "no read-model snapshot was restored"
	if applied > 0 {
		covered = fmt.Sprintf("the read-model snapshot restored reaches only sequence %d", applied)
	}
	return fmt.Errorf("%w: the stream %s begins at sequence %d: its events %d to %d are gone (removed by a limit — max_age, max_msgs, max_bytes with discard old — or deleted), and %s. Not starting with read models that lack them (users, keys, revocations): restore the stream from your backup (docs/operations.md, \"The stream\")",
		ErrStoreRefused, s.name, first, max(applied+1, begins), first-1, covered)
}
