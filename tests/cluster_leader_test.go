package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// outcome is what a client saw for one request of the burst.
type outcome struct {
	op      string // "create" or "grant"
	key     string // username, or user ID + "/" + tenant
	status  int
	code    string
	message string
	id      string // the created user's ID
	refresh string // a login's refresh token
	token   string // a login's access token
	err     error  // transport error
}

// TestClusterLeaderKilledDuringBurst: leaderLostDuringBurst on an in-process
// cluster, whose stream leader shuts down (and hands its leaderships over).
// TestClusterLeaderProcessKilledDuringBurst does the same with kill -9.
func TestClusterLeaderKilledDuringBurst(t *testing.T) {
	t.Parallel()
	leaderLostDuringBurst(t, NewDeployment(t, 3))
}

// leaderLostDuringBurst: 250 concurrent user creations, role grants and
// logins through two replicas while the node leading the stream stops. Every
// request acknowledged to its client (201/200) is in the stream exactly once
// (a login: one session.started, one user.login_succeeded, a token both
// replicas accept);
// every other answer is 503 UNAVAILABLE — with nothing stored when it says
// nothing was changed — or, for concurrent grants on one user, 409 CONFLICT
// with nothing stored; no event is stored twice; afterwards both replicas
// agree and take writes again.
func leaderLostDuringBurst(t *testing.T, d *Deployment) {
	a := d.StartReplica(t)
	b := d.StartReplica(t)
	reps := []*Instance{a, b}
	tokens := []string{a.AdminToken(), b.AdminToken()}

	// Users whose roles the burst grants: each grant is a tenant the user
	// does not hold yet, so that each acknowledged one is one new event.
	const grantUsers, tenantsPerUser, creations = 20, 5, 100
	userIDs := make([]string, grantUsers)
	for i := range userIDs {
		userIDs[i] = a.CreateUser(tokens[0], fmt.Sprintf("member%02d", i), "member-password", nil)
	}
	// Users who log in during the burst, five times each.
	const loginUsers, loginsPerUser = 10, 5
	for i := range loginUsers {
		a.CreateUser(tokens[0], fmt.Sprintf("login%02d", i), "login-password", map[string]string{"prod": "viewer"})
	}
	arrived(t, a, b)

	type job struct {
		op, key string
		rep     int
		req     request
	}
	var jobs []job
	for i := range creations {
		name := fmt.Sprintf("burst%03d", i)
		jobs = append(jobs, job{op: "create", key: name, rep: i % 2, req: request{
			Method: "POST", Path: "/api/v1/users", ContentType: "application/json", Token: tokens[i%2],
			Body: jsonBody(map[string]any{"username": name, "email": name + "@example.com", "password": "burst-password"}),
		}})
	}
	for i := range grantUsers * tenantsPerUser {
		u, tenant := userIDs[i%grantUsers], fmt.Sprintf("t%d", i/grantUsers)
		jobs = append(jobs, job{op: "grant", key: u + "/" + tenant, rep: (i + 1) % 2, req: request{
			Method: "PUT", Path: "/api/v1/users/" + u + "/tenants/" + tenant, ContentType: "application/json",
			Token: tokens[(i+1)%2], Body: jsonBody(map[string]string{"role": "viewer"}),
		}})
	}
	var logins []job
	for i := range loginUsers * loginsPerUser {
		name := fmt.Sprintf("login%02d", i%loginUsers)
		logins = append(logins, job{op: "login", key: name, rep: i % 2, req: request{
			Method: "POST", Path: "/api/v1/auth/token", ContentType: "application/json",
			Body: jsonBody(map[string]string{"username": name, "password": "login-password"}),
		}})
	}
	// Interleave creations, grants and logins.
	mixed := make([]job, 0, len(jobs)+len(logins))
	for i := range creations {
		mixed = append(mixed, jobs[i], jobs[creations+i])
		if i%2 == 0 {
			mixed = append(mixed, logins[i/2])
		}
	}

	leader, err := d.NATS.WaitStreamLeader(events.StreamName, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	results := make([]outcome, len(mixed))
	var next, done atomic.Int64
	kill := make(chan struct{})
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(mixed) {
					return
				}
				j := mixed[i]
				res, err := send(reps[j.rep].URL, j.req)
				o := outcome{op: j.op, key: j.key, status: res.Status, code: res.ErrorCode(), id: res.String("id"), err: err}
				if j.op == "login" {
					o.refresh, o.token = res.String("refresh_token"), res.String("token")
				}
				if e, ok := res.JSON["error"].(map[string]any); ok {
					o.message, _ = e["message"].(string)
				}
				results[i] = o
				if done.Add(1) == int64(len(mixed)/5) {
					close(kill)
				}
			}
		}()
	}
	<-kill
	stopped := time.Now()
	d.NATS.Stop(leader)
	wg.Wait()
	t.Logf("the stream leader (node %d of %d) stopped; the burst ended %s later", leader+1, len(d.NATS.URLs()), time.Since(stopped).Round(time.Millisecond))

	// The cluster elects another leader and both replicas take writes again.
	for i, in := range reps {
		Eventually(t, 15*time.Second, func() error {
			name := fmt.Sprintf("after%d", i)
			r, err := send(in.URL, request{Method: "POST", Path: "/api/v1/users", ContentType: "application/json", Token: tokens[i],
				Body: jsonBody(map[string]any{"username": name, "email": name + "@example.com", "password": "after-password"})})
			if err != nil || r.Status != http.StatusCreated {
				return Errorf("replica %d does not take writes again: %v %d %s", i, err, r.Status, r.Raw)
			}
			return nil
		})
	}

	envs := storedEvents(t, a.Svc)
	seen := make(map[string]int)
	created := make(map[string]int) // username -> user.created events
	createdID := make(map[string]int)
	granted := make(map[string]int)         // user/tenant -> user.role_granted events
	started := make(map[string]int)         // session ID -> session.started events
	sessionOfRefresh := map[string]string{} // refresh-token hash -> session ID
	recorded := make(map[string]int)        // session ID -> user.login_succeeded events
	for _, e := range envs {
		if seen[e.ID]++; seen[e.ID] == 2 {
			t.Errorf("event %s (%s) stored twice", e.ID, e.Type)
		}
		switch e.Type {
		case "user.created":
			var data struct {
				Username string `json:"username"`
			}
			_ = json.Unmarshal(e.Data, &data)
			created[data.Username]++
			createdID[e.AggregateID]++
		case "session.started":
			var data struct {
				RefreshTokenHash string `json:"refresh_token_hash"`
			}
			_ = json.Unmarshal(e.Data, &data)
			started[e.AggregateID]++
			sessionOfRefresh[data.RefreshTokenHash] = e.AggregateID
		case "user.login_succeeded":
			var data struct {
				SessionID string `json:"session_id"`
			}
			_ = json.Unmarshal(e.Data, &data)
			recorded[data.SessionID]++
		case "user.role_granted":
			var data struct {
				Tenant string `json:"tenant"`
			}
			_ = json.Unmarshal(e.Data, &data)
			granted[e.AggregateID+"/"+data.Tenant]++
		}
	}

	counts := map[string]int{}
	for _, o := range results {
		stored := granted[o.key]
		switch o.op {
		case "create":
			stored = created[o.key]
		case "login": // counted by session below
			stored = 0
		}
		if o.status == http.StatusServiceUnavailable {
			counts[fmt.Sprintf("%s 503 %q", o.op, o.message)]++
		}
		counts[fmt.Sprintf("%s %d", o.op, o.status)]++
		switch {
		case o.err != nil:
			t.Errorf("%s %s: transport error %v", o.op, o.key, o.err)
		case stored > 1:
			t.Errorf("%s %s stored %d times", o.op, o.key, stored)
		case o.op == "create" && o.status == http.StatusCreated:
			if stored != 1 || createdID[o.id] != 1 {
				t.Errorf("creation of %s acknowledged (id %s) but stored %d times", o.key, o.id, stored)
			}
		case o.op == "grant" && o.status == http.StatusOK:
			if stored != 1 {
				t.Errorf("grant %s acknowledged but stored %d times", o.key, stored)
			}
		case o.op == "login" && o.status == http.StatusOK:
			// Its session was started once and recorded at most once (the
			// record is a second append: a login whose session was stored
			// is answered with it even when the record's append fails, as
			// the leader's loss may make it), and its token works on both
			// replicas.
			sid := sessionOfRefresh[commands.HashToken(o.refresh)]
			if sid == "" || started[sid] != 1 || recorded[sid] > 1 {
				t.Errorf("login of %s answered 200, session %q: %d session.started, %d user.login_succeeded", o.key, sid, started[sid], recorded[sid])
			}
			for _, in := range reps {
				if r := me(t, in, o.token); r.Status != http.StatusOK {
					t.Errorf("the token of a login of %s at %s: %d %s", o.key, in.URL, r.Status, r.Raw)
				}
			}
		case o.status == http.StatusServiceUnavailable && o.code == "UNAVAILABLE":
			if strings.Contains(o.message, "nothing was changed") && stored != 0 {
				t.Errorf("%s %s: 503 %q, yet it was stored", o.op, o.key, o.message)
			}
		case o.op == "grant" && o.status == http.StatusConflict && o.code == "CONFLICT":
			if stored != 0 {
				t.Errorf("grant %s: 409, yet it was stored", o.key)
			}
		default:
			t.Errorf("%s %s: a wrong answer: %d %s %q", o.op, o.key, o.status, o.code, o.message)
		}
	}
	t.Logf("answers: %v; %d events in the stream", counts, len(envs))
	if ok := counts["create 201"] + counts["grant 200"] + counts["login 200"]; ok < len(results)/2 {
		t.Errorf("only %d of %d requests succeeded across a leader change", ok, len(results))
	}

	// Both replicas hold the same users.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	head := head(t, a)
	for _, in := range reps {
		if err := in.Svc.Runner.WaitFor(ctx, head); err != nil {
			t.Fatalf("a replica did not catch up with %d: %v", head, err)
		}
	}
	if ua, ub := len(a.Svc.Model.Users()), len(b.Svc.Model.Users()); ua != ub {
		t.Fatalf("replicas disagree: %d and %d users", ua, ub)
	}
}
