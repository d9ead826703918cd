// Package events is the event log of Infracast Auth: the envelope every event
// travels in and its codec (type name + version <-> domain event), the
// JetStream store (create the stream, append with optimistic concurrency and
// atomic batches, subscribe, read events back by stream sequence or by
// subject), the embedded nats-server, and the sealing of sensitive fields
// with the deployment's master key.
package events
