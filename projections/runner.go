package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// Source is the part of the event store the runner reads.
type Source interface {
	Head(ctx context.Context) (uint64, error)
	Consume(ctx context.Context, start uint64, fn func(events.Record) error) error
}

var _ Source = (*events.Store)(nil)

// Runner keeps a Model up to date with the stream.
type Runner struct {
	src   Source
	model *Model
	log   *slog.Logger

	target  atomic.Uint64 // head sequence taken before consuming
	applied atomic.Uint64
	ready   atomic.Bool
	sync    resyncState // resync.go: current after reconnections, live lag

	mu     sync.Mutex
	notify chan struct{} // closed and cleared whenever applied advances
	// unknownTypes: event types this build does not know, logged once each
	// (a newer build wrote them: a rolling upgrade, a rollback). Under mu.
	unknownTypes map[string]bool

	// The consumer's health (Stalled): when the running attempt started
	// (unix nanoseconds, 0 between attempts), and how many attempts in a
	// row ended within consumerSettled of their start.
	attemptStart atomic.Int64
	quickFails   atomic.Int32
	// headReadAt: when probeLoop last read the stream's head (unix
	// nanoseconds, 0 before the first time).
	headReadAt atomic.Int64
}

// probeEvery: how often probeLoop reads the stream's head; a head not read
// for headStale makes the runner Stalled.
const (
	probeEvery = time.Second
	headStale  = 3 * probeEvery
)

// consumerSettled: a consumer that has run this long has been created and
// is reading; one that ends sooner failed to start (creating one times out
// after a second).
const consumerSettled = 2 * time.Second

// NewRunner returns a runner that feeds model from src.
func NewRunner(src Source, model *Model, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{src: src, model: model, log: log}
}

// Model returns the model the runner feeds.
func (r *Runner) Model() *Model { return r.model }

// Run replays the stream from the model's last applied sequence and keeps
// applying new events until ctx ends. If consuming fails (the event store is
// unreachable) it retries with backoff, logging each failure; the model keeps
// answering meanwhile. It returns once ctx ends, having nothing else to report.
func (r *Runner) Run(ctx context.Context) {
	raise(&r.applied, r.model.Applied()) // restored from a snapshot: AppliedLockFree
	go r.resyncLoop(ctx)
	go r.probeLoop(ctx)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		var err error
		if !r.ready.Load() {
			// At start: the head to catch up with. Later the resync loop
			// takes it again after reconnections (resync.go).
			hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			var head uint64
			head, err = r.src.Head(hctx)
			cancel()
			if err == nil {
				raise(&r.target, head)
				r.markReadyIfCaughtUp()
			}
		}
		if err == nil {
			from := r.model.Applied()
			cctx, stop := r.sync.consumeContext(ctx) // Resync may restart it (resync.go)
			start := time.Now()
			r.attemptStart.Store(start.UnixNano())
			err = r.consume(cctx)
			r.attemptStart.Store(0)
			stop()
			if r.model.Applied() > from {
				backoff = 100 * time.Millisecond // it ran a while: this is new trouble
			}
			switch {
			case errors.Is(err, events.ErrStreamSilent):
				// It read, then heard nothing, heartbeats included: stalled
				// at once (not after two more failed attempts, or the head
				// unread for headStale — seconds in which a revocation
				// through another replica is answered while this one,
				// still ready, answers from what it has).
				r.quickFails.Store(2)
			case time.Since(start) < consumerSettled:
				r.quickFails.Add(1)
			default:
				r.quickFails.Store(0)
			}
		} else {
			r.quickFails.Add(1) // the head could not be read either
		}
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("projection consumer stopped; retrying", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		case <-r.sync.kicked(): // reconnected: start again now
			backoff = 100 * time.Millisecond
			continue
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// decoders is how many goroutines decode events at once: decoding is most of
// the cost of replaying the stream at start, and needs no order.
var decoders = min(runtime.GOMAXPROCS(0), 4)

// batchMax is how many records the consumer hands to a decoder at once, and
// the decoder to the goroutine that applies them: one hand-over (and one
// wake-up of the goroutine) for many records while replaying, where one each
// cost as much as applying them.
const batchMax = 64

// decoded is a record and what it decodes to.
type decoded struct {
	rec events.Record
	env events.Envelope
	ev  domain.Event
	err error
}

func decode(d *events.Decoder, rec events.Record) decoded {
	env, ev, err := d.Decode(rec.Data)
	return decoded{rec: rec, env: env, ev: ev, err: err}
}

// consume runs one Consume from the sequence after the model's last. Records
// are gathered into batches, dealt in turn to the decoders, and their results
// taken back in the same turn by the one goroutine that applies them: in
// stream order, as they came. A batch is handed over when full, or at once
// when its last record had no other after it in the stream (Record.Pending is
// 0): a live event waits for no other. A record said to have others after it
// waits for them (they are on their way: the stream denies deletes and
// purges), or for Consume to return. It returns once every record delivered
// has been applied.
func (r *Runner) consume(ctx context.Context) error {
	n := decoders
	if n <= 1 {
		var d events.Decoder
		return r.src.Consume(ctx, r.model.Applied()+1, func(rec events.Record) error {
			r.applyBatch([]decoded{decode(&d, rec)})
			return nil
		})
	}
	// Spent batches come back to be filled again.
	freeRecs, freeDecoded := make(chan []events.Record, 4*n), make(chan []decoded, 4*n)
	ins := make([]chan []events.Record, n)
	outs := make([]chan []decoded, n)
	for i := range ins {
		ins[i], outs[i] = make(chan []events.Record, 4), make(chan []decoded, 4)
		go func(in <-chan []events.Record, out chan<- []decoded) {
			defer close(out)
			var d events.Decoder
			for recs := range in {
				var ds []decoded
				select {
				case ds = <-freeDecoded:
				default:
					ds = make([]decoded, 0, batchMax)
				}
				for _, rec := range recs {
					ds = append(ds, decode(&d, rec))
				}
				out <- ds
				clear(recs)
				select {
				case freeRecs <- recs[:0]:
				default:
				}
			}
		}(ins[i], outs[i])
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Batch k went to decoder k mod n. A decoder that has closed its
		// output holds no batch k, hence no later one either.
		for i := 0; ; i = (i + 1) % n {
			ds, ok := <-outs[i]
			if !ok {
				return
			}
			r.applyBatch(ds)
			clear(ds)
			select {
			case freeDecoded <- ds[:0]:
			default:
			}
		}
	}()
	next := 0
	batch := make([]events.Record, 0, batchMax)
	handOver := func() {
		ins[next] <- batch
		next = (next + 1) % n
		select {
		case batch = <-freeRecs:
		default:
			batch = make([]events.Record, 0, batchMax)
		}
	}
	err := r.src.Consume(ctx, r.model.Applied()+1, func(rec events.Record) error {
		batch = append(batch, rec)
		if len(batch) == batchMax || rec.Pending == 0 {
			handOver()
		}
		return nil
	})
	if len(batch) > 0 {
		handOver()
	}
	for _, in := range ins {
		close(in)
	}
	<-done
	return err
}

// logSkipped logs an event the runner skips. One of a type (or version) this
// build does not know was written by a newer build — expected while replicas
// of two builds share the stream (docs/operations.md, upgrades) — and is
// logged at WARN once per type and version; anything else (an envelope or
// payload that does not decode) is an ERROR each time. Both are counted
// (Model.Skipped, the infracast_projection_skipped_events_total metric).
func (r *Runner) logSkipped(d decoded) {
	rec := d.rec
	if errors.Is(d.err, events.ErrUnknownEvent) {
		key := fmt.Sprintf("%s v%d", d.env.Type, d.env.Version)
		r.mu.Lock()
		first := !r.unknownTypes[key]
		if first {
			if r.unknownTypes == nil {
				r.unknownTypes = map[string]bool{}
			}
			r.unknownTypes[key] = true
		}
		r.mu.Unlock()
		if first {
			r.log.Warn("skipping events of a type this build does not know (written by a newer build?); further ones of the type are skipped silently and counted",
				"stream_seq", rec.StreamSeq, "subject", rec.Subject, "err", d.err)
		}
		return
	}
	r.log.Error("skipping undecodable event", "stream_seq", rec.StreamSeq, "subject", rec.Subject, "err", d.err)
}

// applyBatch applies decoded records, in order: runs of decoded events under
// one lock each (Model.applyRun), an undecodable one logged and skipped in
// its place. Then it tells the waiters.
func (r *Runner) applyBatch(ds []decoded) {
	if len(ds) == 0 {
		return
	}
	for rest := ds; len(rest) > 0; {
		k := 0
		for k < len(rest) && rest[k].err == nil {
			k++
		}
		if k > 0 {
			r.model.applyRun(rest[:k])
			rest = rest[k:]
			continue
		}
		r.logSkipped(rest[0])
		r.model.Skip(rest[0].rec.StreamSeq)
		rest = rest[1:]
	}
	last := ds[len(ds)-1].rec
	r.applied.Store(last.StreamSeq)
	r.sync.pending.Store(last.Pending)
	r.markReadyIfCaughtUp()
	r.mu.Lock()
	if r.notify != nil {
		close(r.notify)
		r.notify = nil
	}
	r.mu.Unlock()
}

func (r *Runner) markReadyIfCaughtUp() {
	if !r.ready.Load() && r.model.Applied() >= r.target.Load() {
		r.ready.Store(true)
		r.log.Info("read models caught up", "stream_seq", r.model.Applied())
	}
}

// Ready reports whether the model has caught up with the stream head as it
// was when consuming started.
func (r *Runner) Ready() bool { return r.ready.Load() }

// probeLoop reads the stream's head every probeEvery until ctx ends. A
// stream that lost its quorum does not answer with a head (events.Store.Head
// refuses the answers a surviving node still gives), though a consumer
// hosted on a surviving node may go on sending heartbeats: it will deliver
// nothing new.
func (r *Runner) probeLoop(ctx context.Context) {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		hctx, cancel := context.WithTimeout(ctx, probeEvery)
		_, err := r.src.Head(hctx)
		cancel()
		if err == nil {
			r.headReadAt.Store(time.Now().UnixNano())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Stalled reports whether the runner cannot read the stream: the stream's
// head has not been readable for headStale, or its last two attempts or
// more failed to start a consumer (or to read the head) and no attempt has
// been running for consumerSettled since. NATS may be connected meanwhile
// — a JetStream cluster that lost its quorum serves no stream — and while
// it lasts this replica sees no new event, revocations included, that a
// replica on the other side of a partition may accept.
func (r *Runner) Stalled() bool {
	if at := r.headReadAt.Load(); at != 0 && time.Since(time.Unix(0, at)) > headStale {
		return true
	}
	if r.quickFails.Load() < 2 {
		return false
	}
	started := r.attemptStart.Load()
	if started != 0 && time.Since(time.Unix(0, started)) >= consumerSettled {
		r.quickFails.Store(0) // running, and settled: reading again
		return false
	}
	return true
}

// Applied returns the last stream sequence applied to the model.
func (r *Runner) Applied() uint64 { return r.model.Applied() }

// AppliedLockFree is Applied without the model's lock, for a check on every
// request (events.Barrier.Behind): the last sequence of the newest batch the
// runner applied, or the model's when Run started. It may trail Applied by
// a batch being applied, never run ahead of it.
func (r *Runner) AppliedLockFree() uint64 { return r.applied.Load() }

// Lag returns how many events the model is behind the stream: the larger of
// the distance to the head taken at start (or at the last resync) and the
// backlog the consumer reported with the last event it delivered.
func (r *Runner) Lag() uint64 {
	t, a := r.target.Load(), r.model.Applied()
	lag := r.sync.pending.Load()
	if t > a {
		lag = max(lag, t-a)
	}
	return lag
}

// WaitFor blocks until the model has applied stream sequence seq, so that a
// request can read its own writes.
func (r *Runner) WaitFor(ctx context.Context, seq uint64) error {
	return r.waitUntil(ctx, func() bool { return r.model.Applied() >= seq })
}

// waitUntil blocks until cond holds or ctx ends. cond is evaluated under r.mu,
// and every change that could make it true closes r.notify.
func (r *Runner) waitUntil(ctx context.Context, cond func() bool) error {
	for {
		r.mu.Lock()
		if cond() {
			r.mu.Unlock()
			return nil
		}
		if r.notify == nil {
			r.notify = make(chan struct{})
		}
		ch := r.notify
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
