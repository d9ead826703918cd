package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reading stored events back by position, for the audit API and credential
// checks: the read models keep where an event is, never its body.

// jsAPI is the prefix of the JetStream API (the store uses no domain).
const jsAPI = "$JS.API."

// readParallel bounds the message gets one ReadSeqs has in flight.
const readParallel = 16

// subjectBatch is how many messages one batched direct get asks for.
const subjectBatch = 256

// ReadSeqs returns the events at the given stream sequences, in the order
// given. An event the stream no longer holds (its limits removed it) is left
// out. The gets run in parallel, as direct gets (answered by any server that
// holds the stream); one that a server does not hold yet (a replica of the
// stream lagging behind its leader) is asked of the leader.
func (s *Store) ReadSeqs(ctx context.Context, seqs []uint64) ([]Record, error) {
	out := make([]Record, len(seqs))
	found := make([]bool, len(seqs))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan int)
	for range min(readParallel, len(seqs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				rec, ok, err := s.readSeq(ctx, seqs[i])
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					continue
				}
				out[i], found[i] = rec, ok
			}
		}()
	}
feed:
	for i := range seqs {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = fmt.Errorf("%w: read events: %v", ErrUnavailable, ctx.Err())
	}
	if first != nil {
		return nil, first
	}
	kept := out[:0]
	for i, r := range out {
		if found[i] {
			kept = append(kept, r)
		}
	}
	return kept, nil
}

// readSeq gets one event by stream sequence: a direct get, then the leader's.
func (s *Store) readSeq(ctx context.Context, seq uint64) (Record, bool, error) {
	m, err := s.stream.GetMsg(ctx, seq)
	switch {
	case err == nil && m.Sequence == seq:
		return Record{StreamSeq: m.Sequence, Subject: m.Subject, Data: m.Data}, true, nil
	case err != nil && !errors.Is(err, jetstream.ErrMsgNotFound):
		return Record{}, false, fmt.Errorf("%w: read event %d: %v", ErrUnavailable, seq, err)
	}
	return s.leaderRead(ctx, msgGetRequest{Seq: seq})
}

// msgGetRequest is JetStream's STREAM.MSG.GET / DIRECT.GET request.
type msgGetRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
	LastFor string `json:"last_by_subj,omitempty"`
	Batch   int    `json:"batch,omitempty"`
}

// leaderRead asks the stream's leader (STREAM.MSG.GET, not a direct get) for
// the first message at or after req.Seq (on req.NextFor, when set). false:
// there is none.
func (s *Store) leaderRead(ctx context.Context, req msgGetRequest) (Record, bool, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return Record{}, false, err
	}
	msg, err := s.apiRequest(ctx, jsAPI+"STREAM.MSG.GET."+s.name, body)
	if err != nil {
		return Record{}, false, fmt.Errorf("%w: read event: %v", ErrUnavailable, err)
	}
	var resp struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		Message *struct {
			Subject string `json:"subject"`
			Seq     uint64 `json:"seq"`
			Data    []byte `json:"data"`
		} `json:"message"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return Record{}, false, fmt.Errorf("%w: read event: %v", ErrUnavailable, err)
	}
	switch {
	case resp.Error != nil && (resp.Error.ErrCode == int(jetstream.JSErrCodeMessageNotFound) || resp.Error.Code == 404):
		return Record{}, false, nil
	case resp.Error != nil:
		return Record{}, false, fmt.Errorf("%w: read event: %s", ErrUnavailable, resp.Error.Description)
	case resp.Message == nil:
		return Record{}, false, fmt.Errorf("%w: read event: empty answer", ErrUnavailable)
	}
	return Record{StreamSeq: resp.Message.Seq, Subject: resp.Message.Subject, Data: resp.Message.Data}, true, nil
}

// ReadSubject returns every event on subject, oldest first, through batched
// direct gets (a few hundred events a round trip). upTo is the stream
// sequence of the subject's last event as the caller knows it (0: unknown):
// when the direct gets, answered by a replica of the stream that lags, end
// before it, the rest is read from the leader.
func (s *Store) ReadSubject(ctx context.Context, subject string, upTo uint64) ([]Record, error) {
	var out []Record
	from := uint64(1)
	for {
		batch, pending, err := s.directBatch(ctx, subject, from)
		if err != nil {
			return nil, err
		}
		out = append(out, batch...)
		if len(batch) == 0 || pending == 0 {
			break
		}
		from = batch[len(batch)-1].StreamSeq + 1
	}
	last := uint64(0)
	if len(out) > 0 {
		last = out[len(out)-1].StreamSeq
	}
	for last < upTo {
		rec, ok, err := s.leaderRead(ctx, msgGetRequest{Seq: last + 1, NextFor: subject})
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		out = append(out, rec)
		last = rec.StreamSeq
	}
	return out, nil
}

// directBatch is one batched direct get: the events on subject from stream
// sequence from, and how many more there are after them.
func (s *Store) directBatch(ctx context.Context, subject string, from uint64) (recs []Record, more uint64, err error) {
	body, err := json.Marshal(msgGetRequest{Seq: from, NextFor: subject, Batch: subjectBatch})
	if err != nil {
		return nil, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.TryTimeout)
	defer cancel()
	inbox := s.nc.NewInbox()
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: read events: %v", ErrUnavailable, err)
	}
	defer func() {
		// Nothing more arrives once the batch has ended (or ctx has); a
		// subscription that cannot be removed means the connection is gone.
		if uerr := sub.Unsubscribe(); uerr != nil && err == nil {
			recs, more, err = nil, 0, fmt.Errorf("%w: read events: %v", ErrUnavailable, uerr)
		}
	}()
	if err := s.nc.PublishRequest(jsAPI+"DIRECT.GET."+s.name, inbox, body); err != nil {
		return nil, 0, fmt.Errorf("%w: read events: %v", ErrUnavailable, err)
	}
	var out []Record
	for {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: read events: %v", ErrUnavailable, err)
		}
		switch status := msg.Header.Get("Status"); status {
		case "":
		case "404": // nothing on subject from there
			return out, 0, nil
		case "204": // end of the batch
			pending, err := strconv.ParseUint(msg.Header.Get("Nats-Num-Pending"), 10, 64)
			if err != nil {
				return nil, 0, fmt.Errorf("%w: read events: bad end of batch", ErrUnavailable)
			}
			return out, pending, nil
		default:
			return nil, 0, fmt.Errorf("%w: read events: status %s %s", ErrUnavailable, status, msg.Header.Get("Description"))
		}
		rec, err := directRecord(msg)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, rec)
	}
}

func directRecord(msg *nats.Msg) (Record, error) {
	seq, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return Record{}, fmt.Errorf("%w: read events: message without a sequence", ErrUnavailable)
	}
	return Record{StreamSeq: seq, Subject: msg.Header.Get(jetstream.SubjectHeader), Data: msg.Data}, nil
}
