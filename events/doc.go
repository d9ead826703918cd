// Package events is the event log of Infracast Auth: the envelope every event
// travels in and its codec (type name + version <-> domain event), the
// JetStream store (create the stream, append with optimistic concurrency and
// atomic batches, subscribe, read events back by stream sequence or by
// subject, the stream's head with concurrent questions shared — refused when
// a replicated stream has lost its quorum; a stream found below a sequence
// recorded outside it, in a snapshot or the data folder, refused at open),
// the event store's clock as its answers carry it (a replica's offset), the
// snapshot bucket, the embedded nats-server, the sealing of
// sensitive fields with the deployment's master key, and the replica barrier
// (the replicas of a stream hear of each other on core NATS, and one that
// stored a revocation waits until every other has applied it).
package events
