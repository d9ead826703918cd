package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
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
	// 10071, or 10164 on replicated streams): reload, decide again, retry.
	ErrConflict = errors.New("events: concurrent modification")
	// ErrUnavailable: the event store could not be reached or did not answer.
	ErrUnavailable = errors.New("events: event store unavailable")
)

// StoreConfig configures the stream.
type StoreConfig struct {
	Stream   string // default StreamName
	Replicas int    // default 1; 3 on a cluster
	// Memory keeps the stream in memory (benchmarks only; the service never does).
	Memory bool
}

// Store appends events to and reads them from the JetStream stream.
type Store struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	name   string
}

// OpenStore creates the stream if it is missing (or updates its settings) and
// returns a store on it.
func OpenStore(ctx context.Context, nc *nats.Conn, cfg StoreConfig) (*Store, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	if cfg.Stream == "" {
		cfg.Stream = StreamName
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
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
	// backoff until ctx ends; an existing stream is simply opened.
	var st jetstream.Stream
	backoff := 50 * time.Millisecond
	for {
		st, err = js.Stream(ctx, cfg.Stream)
		if err == nil {
			if info := st.CachedInfo(); info != nil && !sameStreamConfig(info.Config, want) {
				st, err = js.UpdateStream(ctx, want)
			}
		} else if errors.Is(err, jetstream.ErrStreamNotFound) {
			st, err = js.CreateStream(ctx, want)
		}
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: create stream %s: %v", ErrUnavailable, cfg.Stream, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
	return &Store{nc: nc, js: js, stream: st, name: cfg.Stream}, nil
}

// sameStreamConfig compares the settings this service manages.
func sameStreamConfig(have, want jetstream.StreamConfig) bool {
	return have.Replicas == want.Replicas && have.AllowAtomicPublish == want.AllowAtomicPublish &&
		have.AllowDirect == want.AllowDirect && have.Duplicates == want.Duplicates &&
		len(have.Subjects) == 1 && have.Subjects[0] == want.Subjects[0]
}

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
	// ID becomes the Nats-Msg-Id: a retry of the same message is stored once.
	ID   string
	Data []byte
}

// Append stores msgs atomically — all of them or none — each with its
// optimistic-concurrency check, and returns the stream sequence of the last.
func (s *Store) Append(ctx context.Context, msgs ...Message) (uint64, error) {
	switch len(msgs) {
	case 0:
		return 0, nil
	case 1:
		m := msgs[0]
		ack, err := s.js.PublishMsg(ctx, &nats.Msg{Subject: m.Subject, Data: m.Data},
			jetstream.WithExpectLastSequencePerSubject(m.ExpectSeq), jetstream.WithMsgID(m.ID))
		if err != nil {
			return s.unlessLanded(ctx, m, classify(err))
		}
		return ack.Sequence, nil
	}
	seq, err := s.appendBatch(ctx, msgs)
	if err != nil {
		return s.unlessLanded(ctx, msgs[len(msgs)-1], err)
	}
	return seq, nil
}

// unlessLanded turns a conflict into success when the message that "conflicts"
// is our own: a retry whose first try was stored (the expected-sequence check
// runs before the server's duplicate detection).
func (s *Store) unlessLanded(ctx context.Context, m Message, err error) (uint64, error) {
	if !errors.Is(err, ErrConflict) || m.ID == "" {
		return 0, err
	}
	last, gerr := s.stream.GetLastMsgForSubject(ctx, m.Subject)
	if gerr == nil && last.Header.Get(jetstream.MsgIDHeader) == m.ID {
		return last.Sequence, nil
	}
	return 0, err
}

// pubAck is the JetStream publish acknowledgement, as sent for the commit of
// an atomic batch.
type pubAck struct {
	Stream   string `json:"stream"`
	Sequence uint64 `json:"seq"`
	Count    int    `json:"count"`
	Error    *struct {
		Code        int    `json:"code"`
		ErrCode     uint16 `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// appendBatch publishes an ADR-50 atomic batch: Nats-Batch-Id on every message,
// Nats-Batch-Sequence counting from 1, and Nats-Batch-Commit on the last.
func (s *Store) appendBatch(ctx context.Context, msgs []Message) (uint64, error) {
	batchID := ulid.Make().String()
	checked := make(map[string]bool, len(msgs))
	for i, m := range msgs {
		msg := nats.NewMsg(m.Subject)
		msg.Data = m.Data
		msg.Header.Set("Nats-Batch-Id", batchID)
		msg.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
		// Only the first message on a subject carries the expectation: the
		// server refuses one on a subject already written in the batch (it
		// would be a permanent "conflict"), and atomicity covers the rest.
		if !checked[m.Subject] {
			checked[m.Subject] = true
			msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(m.ExpectSeq, 10))
		}
		if m.ID != "" {
			msg.Header.Set(jetstream.MsgIDHeader, m.ID)
		}
		last := i == len(msgs)-1
		if last {
			msg.Header.Set("Nats-Batch-Commit", "1")
		}
		reply, err := s.nc.RequestMsgWithContext(ctx, msg)
		if err != nil {
			return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		if len(reply.Data) == 0 && !last {
			continue
		}
		var ack pubAck
		if err := json.Unmarshal(reply.Data, &ack); err != nil {
			return 0, fmt.Errorf("%w: bad publish ack: %v", ErrUnavailable, err)
		}
		if ack.Error != nil {
			switch ack.Error.ErrCode {
			case uint16(jetstream.JSErrCodeStreamWrongLastSequence), uint16(jetstream.JSErrCodeStreamWrongLastSequenceConstant):
				return 0, fmt.Errorf("%w: %s", ErrConflict, ack.Error.Description)
			}
			return 0, fmt.Errorf("events: atomic append rejected (%d): %s", ack.Error.ErrCode, ack.Error.Description)
		}
		if last {
			return ack.Sequence, nil
		}
	}
	return 0, errors.New("events: batch ended without a commit acknowledgement")
}

func classify(err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
			return fmt.Errorf("%w: %s", ErrConflict, apiErr.Description)
		}
		return fmt.Errorf("events: append rejected: %w", err)
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

// LastSequence returns the stream sequence of the last event on subject (0 if none).
func (s *Store) LastSequence(ctx context.Context, subject string) (uint64, error) {
	m, err := s.stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return m.Sequence, nil
}

// Head returns the stream sequence of the newest event (0 for an empty stream).
func (s *Store) Head(ctx context.Context) (uint64, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return info.State.LastSeq, nil
}

// Record is one stored event as read back from the stream.
type Record struct {
	StreamSeq uint64
	Subject   string
	Data      []byte
}

// Consume delivers every event from stream sequence start (1 = the beginning)
// in order to fn, through an ordered consumer that survives reconnects, until
// ctx ends or fn returns an error.
func (s *Store) Consume(ctx context.Context, start uint64, fn func(Record) error) error {
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if start > 1 {
		cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start}
	}
	cons, err := s.js.OrderedConsumer(ctx, s.name, cfg)
	if err != nil {
		return fmt.Errorf("%w: ordered consumer: %v", ErrUnavailable, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return fmt.Errorf("%w: consume: %v", ErrUnavailable, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return ctx.Err()
			}
			return err
		}
		md, err := msg.Metadata()
		if err != nil {
			continue
		}
		if err := fn(Record{StreamSeq: md.Sequence.Stream, Subject: msg.Subject(), Data: msg.Data()}); err != nil {
			return err
		}
	}
}
