package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
)

// Append stores msgs atomically — all of them or none — each with its
// optimistic-concurrency check, and returns the stream sequence of the last.
//
// On a cluster an attempt can go unanswered: the stream leader is being
// elected, the node the client talks to went away, NATS is reconnecting.
// Append then tries again, with the same message IDs, until
// StoreConfig.RetryFor has passed or ctx ends. A retry whose earlier attempt
// was stored is recognised — by the stream's duplicate detection, or by the
// first message after the expected sequence on the first message's subject
// carrying our message ID — and reported as the success it is, never as a
// conflict. The outcome is exactly one of:
//
//   - the sequence, nil: stored, once;
//   - ErrConflict: not stored; another writer appended to a subject first;
//   - ErrUnavailable: not stored; no attempt reached the stream (NATS is
//     unreachable: nothing is buffered for later either);
//   - ErrOutcomeUnknown: an attempt was sent, and neither it nor any retry
//     was confirmed or refuted before the deadline;
//   - another error: the stream refused the messages.
func (s *Store) Append(ctx context.Context, msgs ...Message) (uint64, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	if len(msgs) > 1 {
		for _, m := range msgs {
			if m.ExpectSubject != "" {
				return 0, errors.New("events: ExpectSubject is for single-message appends")
			}
		}
	}
	start := time.Now()
	deadline := start.Add(s.cfg.RetryFor)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	sent := false // some attempt may have reached the stream
	backoff := 10 * time.Millisecond
	var lastErr error
	for {
		seq, f := s.attempt(ctx, msgs, deadline)
		if f == nil {
			return seq, nil
		}
		if f.kind == failInFlight {
			// Refused because another write expecting one of our subjects
			// is being stored. It is a conflict once that write is stored,
			// which moves the subject; until then (or for good, if the
			// stream has lost its quorum and the write hangs) nothing is
			// decided: try again.
			mctx, cancel := context.WithTimeout(ctx, min(time.Until(deadline), s.cfg.TryTimeout))
			moved := s.moved(mctx, msgs)
			cancel()
			if moved {
				f.kind = failConflict
			} else {
				f = &attemptFailure{failNotStored, fmt.Errorf("%w: another write on the subject is in flight (%v)", ErrUnavailable, f.err)}
			}
		}
		switch f.kind {
		case failRejected:
			return 0, f.err
		case failConflict, failDuplicate:
			// The conflicting write may be our own: an earlier attempt of
			// this call that went unconfirmed, or the caller's retry of a
			// message that was stored.
			seq, state := s.landed(ctx, msgs)
			if state == landedYes {
				return seq, nil
			}
			if f.kind == failConflict && (state == landedNo || !sent) {
				return 0, f.err
			}
			sent = true // not known yet, or our duplicate is still in flight: ask again
		case failUnconfirmed:
			sent = true
		case failNotStored:
		}
		lastErr = f.err
		now := time.Now()
		if ctx.Err() != nil || !now.Add(backoff).Before(deadline) {
			break
		}
		if !sent && !s.nc.IsConnected() && now.Sub(start) >= s.cfg.DisconnectedWait {
			break // nothing sent, and NATS is away: fail fast, nothing changed
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 250*time.Millisecond)
	}
	if sent {
		// One last look, in case NATS answers again now.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.TryTimeout)
		defer cancel()
		if seq, state := s.landed(cctx, msgs); state == landedYes {
			return seq, nil
		}
		return 0, fmt.Errorf("%w (last attempt: %v)", ErrOutcomeUnknown, lastErr)
	}
	return 0, fmt.Errorf("%w: %v", ErrUnavailable, lastErr)
}

// failKind says what a failed attempt means for the next one.
type failKind uint8

const (
	failRejected    failKind = iota // the stream refused the messages: final
	failConflict                    // an expected subject sequence did not match
	failDuplicate                   // one of our message IDs is stored or being stored
	failNotStored                   // nothing of this attempt was stored: try again
	failUnconfirmed                 // sent but not answered: it may have been stored
	failInFlight                    // refused: another write expecting the subject is being stored
)

type attemptFailure struct {
	kind failKind
	err  error
}

// attempt makes one try, bounded by TryTimeout and the deadline.
func (s *Store) attempt(ctx context.Context, msgs []Message, deadline time.Time) (uint64, *attemptFailure) {
	tryDeadline := time.Now().Add(s.cfg.TryTimeout)
	if deadline.Before(tryDeadline) {
		tryDeadline = deadline
	}
	tctx, cancel := context.WithDeadline(ctx, tryDeadline)
	defer cancel()
	if len(msgs) == 1 {
		return s.appendOne(tctx, msgs[0])
	}
	return s.appendBatch(tctx, msgs)
}

// appendOne publishes one message with its expectation and message ID: the
// request jetstream.PublishMsg makes with WithExpectLastSequencePerSubject
// (or WithExpectLastSequenceForSubject) and WithMsgID, the same headers and
// the same acknowledgement, without its options and its reflection-based
// decoding of the acknowledgement (a third of an append's CPU on the client
// side). A request nobody answers is not retried here but by Append, with
// its backoff, as the batches are.
func (s *Store) appendOne(ctx context.Context, m Message) (uint64, *attemptFailure) {
	msg := &nats.Msg{Subject: m.Subject, Data: m.Data, Header: make(nats.Header, 3)}
	msg.Header[jetstream.ExpectedLastSubjSeqHeader] = []string{strconv.FormatUint(m.ExpectSeq, 10)}
	if m.ExpectSubject != "" {
		msg.Header[jetstream.ExpectedLastSubjSeqSubjHeader] = []string{m.ExpectSubject}
	}
	if m.ID != "" {
		msg.Header[jetstream.MsgIDHeader] = []string{m.ID}
	}
	reply, err := s.nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		return 0, transportFailure(err, true)
	}
	var ack pubAck
	if err := jsonv2.Unmarshal(reply.Data, &ack, decodeOptions); err != nil || (ack.Error == nil && ack.Stream == "") {
		return 0, &attemptFailure{failUnconfirmed, fmt.Errorf("%w: bad publish ack: %q", ErrUnavailable, reply.Data)}
	}
	if ack.Error != nil {
		return 0, apiFailure(ack.Error.ErrCode, ack.Error.Description)
	}
	return ack.Sequence, nil
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
// Nats-Batch-Sequence counting from 1, and Nats-Batch-Commit on the last. Each
// attempt is a new batch (a batch that lost its leader is abandoned by the
// server); the message IDs stay.
func (s *Store) appendBatch(ctx context.Context, msgs []Message) (uint64, *attemptFailure) {
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
			// Before the commit nothing is stored: the server drops an
			// uncommitted batch.
			return 0, transportFailure(err, last)
		}
		if len(reply.Data) == 0 && !last {
			continue
		}
		var ack pubAck
		if err := json.Unmarshal(reply.Data, &ack); err != nil {
			if last {
				return 0, &attemptFailure{failUnconfirmed, fmt.Errorf("%w: bad publish ack: %v", ErrUnavailable, err)}
			}
			return 0, &attemptFailure{failNotStored, fmt.Errorf("%w: bad publish ack: %v", ErrUnavailable, err)}
		}
		if ack.Error != nil {
			return 0, apiFailure(ack.Error.ErrCode, ack.Error.Description)
		}
		if last {
			return ack.Sequence, nil
		}
	}
	return 0, &attemptFailure{failUnconfirmed, errors.New("events: batch ended without a commit acknowledgement")}
}

// JetStream error codes that an append handles (nats-server's
// jetstream_errors_generated.go).
const (
	codeAccountResources         = 10002 // the account's JetStream limits (max_file, max_mem, max_bytes) are reached
	codeClusterNotAvailable      = 10008 // JetStream system temporarily unavailable
	codeClusterNotLeader         = 10009
	codeInsufficientResources    = 10023
	codeMemoryResources          = 10028 // the server's max_memory_store is reached
	codeStorageResources         = 10047 // the server's max_file_store is reached
	codeStreamNotFound           = 10059 // also while a restarted cluster recovers
	codeJetStreamNotEnabled      = 10076
	codeDuplicateInFlight        = 10158 // the same message ID is being stored right now
	codeBatchMissingSeq          = 10175
	codeBatchIncomplete          = 10176 // e.g. the leader changed in the middle of the batch
	codeBatchContainsDuplicate   = 10201 // a message ID of the batch is already stored
	codeBatchTooManyInflight     = 10210
	codeWrongLastSequence        = uint16(jetstream.JSErrCodeStreamWrongLastSequence)
	codeWrongLastSequenceClstred = uint16(jetstream.JSErrCodeStreamWrongLastSequenceConstant)
)

func apiFailure(code uint16, desc string) *attemptFailure {
	switch code {
	case codeWrongLastSequence:
		return &attemptFailure{failConflict, fmt.Errorf("%w: %s", ErrConflict, desc)}
	case codeWrongLastSequenceClstred:
		// Not a comparison with the stored sequence: the leader refuses an
		// expectation on a subject that a write still in flight (proposed,
		// not yet committed) expects or writes to. See Append.
		return &attemptFailure{failInFlight, fmt.Errorf("%w: %s (%d)", ErrConflict, desc, code)}
	case codeBatchContainsDuplicate, codeDuplicateInFlight:
		return &attemptFailure{failDuplicate, fmt.Errorf("%w: %s (%d)", ErrUnavailable, desc, code)}
	case codeInsufficientResources:
		// The store is at its limit (the embedded server's: 75% of the disk
		// free at its start) or the disk is full: final until an operator
		// frees space and restarts it, so not tried again for RetryFor.
		return &attemptFailure{failRejected, fmt.Errorf("%w: the event store is full, nothing was stored (%s, %d): free disk space and restart (docs/operations.md)", ErrUnavailable, desc, code)}
	case codeAccountResources, codeStorageResources, codeMemoryResources:
		// A limit of the NATS account (jetstream { max_file: … }) or of the
		// server (max_file_store, max_memory_store) is reached: as final as
		// a full store, and nothing was stored either (an outside check,
		// 20n, saw 500 INTERNAL for every write once an account's max_file
		// was reached, where the contract promises 503).
		return &attemptFailure{failRejected, fmt.Errorf("%w: the event store is full, nothing was stored (%s, %d): raise the NATS account's or server's JetStream limit, or free space (docs/operations.md)", ErrUnavailable, desc, code)}
	case codeClusterNotAvailable, codeClusterNotLeader, codeStreamNotFound,
		codeJetStreamNotEnabled, codeBatchMissingSeq, codeBatchIncomplete, codeBatchTooManyInflight:
		return &attemptFailure{failNotStored, fmt.Errorf("%w: %s (%d)", ErrUnavailable, desc, code)}
	}
	return &attemptFailure{failRejected, fmt.Errorf("events: append rejected (%d): %s", code, desc)}
}

// transportFailure classifies a request that got no JetStream answer. commit
// says whether the request would have stored something.
func transportFailure(err error, commit bool) *attemptFailure {
	wrapped := fmt.Errorf("%w: %v", ErrUnavailable, err)
	switch {
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrReconnectBufExceeded), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionDraining), errors.Is(err, nats.ErrInvalidConnection):
		// Not sent, or nobody listened: nothing stored.
		return &attemptFailure{failNotStored, wrapped}
	}
	if commit {
		return &attemptFailure{failUnconfirmed, wrapped}
	}
	return &attemptFailure{failNotStored, wrapped}
}

type landedState uint8

const (
	landedUnknown landedState = iota
	landedYes
	landedNo
)

// landed finds out whether msgs were stored by an earlier attempt: the first
// message on the first message's subject after its expected sequence is ours
// exactly when the append went through (an atomic batch is all or nothing).
// It asks the stream leader, whose answer is current; a follower's direct
// get may lag behind the write it is asked about.
func (s *Store) landed(ctx context.Context, msgs []Message) (uint64, landedState) {
	first := msgs[0]
	if first.ID == "" {
		return 0, landedUnknown
	}
	if first.ExpectSubject != "" {
		// ExpectSeq was checked on another subject: ours, if stored, is
		// after it on its own subject, not necessarily the first there
		// (an aggregate with events, as the mfa.reset decided on the
		// user, may have many after it): normally the last one there.
		if m, err := s.leaderMsgGet(ctx, msgGetRequest{LastFor: first.Subject}); err == nil && m.id == first.ID {
			return m.seq, landedYes
		}
		from := first.ExpectSeq + 1
		for range 8 {
			m, err := s.leaderGet(ctx, from, first.Subject)
			switch {
			case errors.Is(err, jetstream.ErrMsgNotFound):
				return 0, landedNo
			case err != nil:
				return 0, landedUnknown
			case m.id == first.ID:
				return m.seq, landedYes
			}
			from = m.seq + 1
		}
		return 0, landedUnknown
	}
	m, err := s.leaderGet(ctx, first.ExpectSeq+1, first.Subject)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return 0, landedNo
	case err != nil:
		return 0, landedUnknown
	case m.id != first.ID:
		return 0, landedNo
	case len(msgs) == 1:
		return m.seq, landedYes
	}
	// The batch was stored; find its last message, normally right after.
	last := msgs[len(msgs)-1]
	if lm, err := s.leaderGet(ctx, m.seq+uint64(len(msgs)-1), ""); err == nil && lm.id == last.ID {
		return lm.seq, landedYes
	}
	from := m.seq
	for range len(msgs) + 1 {
		lm, err := s.leaderGet(ctx, from, last.Subject)
		if err != nil {
			break
		}
		if lm.id == last.ID {
			return lm.seq, landedYes
		}
		from = lm.seq + 1
	}
	return 0, landedUnknown
}

// moved reports whether a subject that msgs expect at a sequence has a
// message after it, as the stream leader sees it: whether the expectation
// has been overtaken by a stored write. A read that fails says no: the
// append is tried again, and the next answer decides.
func (s *Store) moved(ctx context.Context, msgs []Message) bool {
	checked := make(map[string]bool, len(msgs))
	for _, m := range msgs {
		subject := m.Subject
		if m.ExpectSubject != "" {
			subject = m.ExpectSubject
		}
		if checked[subject] {
			continue // in a batch only the first message on a subject expects
		}
		checked[subject] = true
		if _, err := s.leaderGet(ctx, m.ExpectSeq+1, subject); err == nil {
			return true
		}
	}
	return false
}

type storedMsg struct {
	seq  uint64
	id   string    // Nats-Msg-Id
	time time.Time // when the stream stored it
}

// leaderGet reads, through the stream leader, the message at seq or, with
// subject, the first message on subject at or after seq.
func (s *Store) leaderGet(ctx context.Context, seq uint64, subject string) (storedMsg, error) {
	return s.leaderMsgGet(ctx, msgGetRequest{Seq: seq, NextFor: subject})
}

// apiRequest sends one request to the JetStream API, bounded as one try of
// an append is: by TryTimeout, and by DisconnectedWait while the connection
// is down (it is sent once the connection is back, if that comes in time).
// Without it, a read through the leader — a catch-up before a command, a
// login, a list — waited out its caller's whole deadline for a server that
// had stopped answering: an outside check (14c) froze NATS and an API key's
// creation answered 503 after 11.5 s, past the request's 10 s.
func (s *Store) apiRequest(ctx context.Context, subject string, data []byte) (*nats.Msg, error) {
	limit := s.cfg.TryTimeout
	if !s.nc.IsConnected() {
		limit = min(limit, s.cfg.DisconnectedWait)
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	return s.nc.RequestWithContext(ctx, subject, data)
}

// leaderMsgGet asks the stream leader for a stored message (not a direct
// get, which any replica of the stream may answer from what it has stored
// so far).
func (s *Store) leaderMsgGet(ctx context.Context, r msgGetRequest) (storedMsg, error) {
	req, _ := json.Marshal(r)
	reply, err := s.apiRequest(ctx, "$JS.API.STREAM.MSG.GET."+s.name, req)
	if err != nil {
		return storedMsg{}, err
	}
	var resp struct {
		Error *struct {
			ErrCode     uint16 `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		Message *struct {
			Seq    uint64    `json:"seq"`
			Header []byte    `json:"hdrs"`
			Time   time.Time `json:"time"`
		} `json:"message"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return storedMsg{}, err
	}
	if resp.Error != nil {
		if resp.Error.ErrCode == uint16(jetstream.JSErrCodeMessageNotFound) {
			return storedMsg{}, jetstream.ErrMsgNotFound
		}
		return storedMsg{}, fmt.Errorf("events: get message: %s (%d)", resp.Error.Description, resp.Error.ErrCode)
	}
	if resp.Message == nil {
		return storedMsg{}, errors.New("events: get message: empty answer")
	}
	out := storedMsg{seq: resp.Message.Seq, time: resp.Message.Time}
	if len(resp.Message.Header) > 0 {
		h, err := nats.DecodeHeadersMsg(resp.Message.Header)
		if err != nil {
			return storedMsg{}, err
		}
		out.id = h.Get(jetstream.MsgIDHeader)
	}
	return out, nil
}
