package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/projections"
)

// The list_users case: token checks while the users list is read, at the
// size of a large deployment. Outside check 20s: at 1M users each GET
// /api/v1/users copied every user under the model's read lock, an event
// applied meanwhile waited for the write lock, and every token check queued
// behind it (p99 1 ms → 250–700 ms). Not in the default set: it holds
// list-users users (1M: about 1 GB and a minute to build).
var listUsers = flag.Int("list-users", 1_000_000,
	"users the list_users case holds (two tenant roles each, of 500 tenants)")

// caseListUsers: the p99 of a token check (Model.Authorize, what every
// request's authentication asks) made every 2 ms while 200 events/s are
// applied, against its baseline: the same probe and writes without
// listing. Measured: a platform admin walks the users list by pages of 10
// (ListUsers with a cursor, as the console's users page does) without a
// pause; the page's own latency is reported too, and the time of one
// unpaged list (every user) once at the end.
func caseListUsers(_ context.Context, b *bench) ([]result, error) {
	n := max(*listUsers, 1)
	g, err := newScaleGen()
	if err != nil {
		return nil, err
	}
	m := projections.NewModel()
	m.NoHistory = true // what is measured is the users' store and its lock
	var seq atomic.Uint64
	apply := func(agg, id string, e domain.Event) {
		m.Apply(seq.Add(1), events.Envelope{Type: e.EventType(), Aggregate: agg, AggregateID: strings.Clone(id), Sequence: 1}, e)
	}
	t0 := time.Now()
	for i := range n {
		e := g.userCreated(i)
		apply(domain.AggregateUser, e.UserID, e)
	}
	probe, _ := g.session(0, n, false)
	apply(domain.AggregateSession, probe.SessionID, probe)
	fmt.Fprintf(b.log, "   %d users applied in %s\n", n, time.Since(t0).Round(time.Millisecond))

	next := 1 // the writer's next session
	round := func(d time.Duration, listing bool) (check, page sample, err error) {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // 200 events/s: sessions started
			defer wg.Done()
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					s, _ := g.session(next, n, false)
					next++
					apply(domain.AggregateSession, s.SessionID, s)
				}
			}
		}()
		if listing {
			wg.Add(1)
			go func() {
				defer wg.Done()
				after := ""
				for {
					select {
					case <-stop:
						return
					default:
					}
					t := time.Now()
					_, after = m.ListUsers(projections.UserListQuery{Everyone: true, After: after, Limit: 10})
					page.lat = append(page.lat, time.Since(t))
					page.n++
				}
			}()
		}
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			t := time.Now()
			if _, v := m.Authorize(probe.SessionID, "tok-bench", time.Now()); v != projections.Valid {
				err = fmt.Errorf("the probe's token check: %v", v)
				break
			}
			check.lat = append(check.lat, time.Since(t))
			check.n++
			time.Sleep(2 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		return check, page, err
	}
	var with, without, pages sample
	per := b.duration / time.Duration(2*b.rounds())
	for range b.rounds() {
		c, _, err := round(per, false)
		if err != nil {
			return nil, err
		}
		without.add(c)
		c, p, err := round(per, true)
		if err != nil {
			return nil, err
		}
		with.add(c)
		pages.add(p)
	}
	if pages.n == 0 {
		return nil, errors.New("no page of the users list was read")
	}
	t0 = time.Now()
	all, _ := m.ListUsers(projections.UserListQuery{Everyone: true})
	whole := time.Since(t0)
	if len(all) != n {
		return nil, fmt.Errorf("the whole list has %d users, want %d", len(all), n)
	}
	fmt.Fprintf(b.log, "   the whole list (every user, unpaged, as the model builds it): %s; pages of 10 read: %d\n", whole.Round(time.Millisecond), pages.n)

	p99, base := with.quantile(0.99), without.quantile(0.99)
	r := result{Name: "list_users.token_check", Value: float64(p99) / float64(time.Microsecond), Unit: "µs p99",
		Baseline: float64(base) / float64(time.Microsecond), Samples: with.n,
		P50: us(with.quantile(0.5)), P99: us(p99), BaselineP50: us(without.quantile(0.5)), BaselineP99: us(base),
		baselineName: "the same token checks and writes without listing"}
	r.Ratio = ratio(r.Value, r.Baseline)
	r.valueBelow(5000)
	return []result{r, latencyResult("list_users.page", fmt.Sprintf("a page of 10 of the users list (ListUsers, %d users)", n), &pages, 2000)}, nil
}
