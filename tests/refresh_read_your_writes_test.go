package tests

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// TestRefreshAnswerUsableAtOnce: a client that gets a refresh's answer and
// uses it on the same replica at once is never refused (it reads its own
// write: the answer comes once the replica's read models hold it): the new access token works, the refresh token (the new one, with
// rotation) refreshes again, and revoking with it (RFC 7009 revoke, or a
// logout with the new access token) revokes — the session's tokens are
// refused at once. Parallel loops, one session each, with and without
// rotation.
func TestRefreshAnswerUsableAtOnce(t *testing.T) {
	t.Parallel()
	for _, rotate := range []bool{false, true} {
		t.Run(fmt.Sprintf("rotation=%v", rotate), func(t *testing.T) {
			t.Parallel()
			var opts []Option
			if rotate {
				opts = append(opts, WithRotation())
			}
			in := Start(t, opts...)
			in.CreateUser(in.AdminToken(), "alice", "alice-passphrase", map[string]string{"prod": "viewer"})
			const clients, rounds = 8, 30
			type client struct{ refresh, access, sid string }
			cs := make([]client, clients)
			for i := range cs {
				l := in.Login("alice", "alice-passphrase")
				cs[i] = client{l.String("refresh_token"), l.String("token"), ""}
				cs[i].sid = sessionOf(t, in, cs[i].refresh)
			}
			var ahead atomic.Int64 // answers seen before the read model applied them
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			for i := range cs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := useAtOnce(in, &cs[i].refresh, &cs[i].access, cs[i].sid, rotate, rounds, i%2 == 0, &ahead); err != nil {
						errs <- fmt.Errorf("client %d: %w", i, err)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			t.Logf("%d of %d answers arrived before the read model had applied them", ahead.Load(), clients*rounds)
		})
	}
}

// useAtOnce refreshes rounds times, using each answer at once: the new
// access token on /auth/me, the refresh token for the next refresh. Then it
// refreshes once more and at once revokes the session with what that
// answered (the refresh token, or with logout the access token), and
// checks that both are refused.
func useAtOnce(in *Instance, rt, access *string, sid string, rotate bool, rounds int, revokeByRefreshToken bool, ahead *atomic.Int64) error {
	post := func(path, token string, body map[string]string) (Response, error) {
		r := request{Method: "POST", Path: path, Token: token}
		if body != nil {
			r.ContentType, r.Body = "application/json", jsonBody(body)
		}
		return send(in.URL, r)
	}
	refreshed := func(n int) error {
		r, err := post("/api/v1/auth/refresh", "", map[string]string{"refresh_token": *rt})
		if err != nil {
			return err
		}
		if r.Status != 200 || r.String("token") == "" {
			return fmt.Errorf("refresh %d: %d %s", n, r.Status, r.Raw)
		}
		if s, _, _ := in.Svc.Model.Session(sid); s.Refreshes < n {
			ahead.Add(1)
		}
		next := r.String("refresh_token")
		if rotate != (next != "" && next != *rt) {
			return fmt.Errorf("refresh %d: refresh token %q (rotation %v)", n, next, rotate)
		}
		if rotate {
			*rt = next
		}
		*access = r.String("token")
		return nil
	}
	for n := 1; n <= rounds; n++ {
		if err := refreshed(n); err != nil {
			return err
		}
		r, err := send(in.URL, request{Method: "GET", Path: "/api/v1/auth/me", Token: *access})
		if err != nil {
			return err
		}
		if r.Status != 200 {
			return fmt.Errorf("the access token of refresh %d: %d %s", n, r.Status, r.Raw)
		}
	}
	if err := refreshed(rounds + 1); err != nil {
		return err
	}
	var r Response
	var err error
	if revokeByRefreshToken {
		r, err = post("/api/v1/auth/revoke", "", map[string]string{"token": *rt})
	} else {
		r, err = post("/api/v1/auth/logout", *access, nil)
	}
	if err != nil {
		return err
	}
	if r.Status != 200 && r.Status != 204 {
		return fmt.Errorf("revoking with the last answer: %d %s", r.Status, r.Raw)
	}
	if r, err = post("/api/v1/auth/refresh", "", map[string]string{"refresh_token": *rt}); err != nil || r.Status != 401 {
		return fmt.Errorf("refresh after the revocation: %d %s (%v), want 401", r.Status, r.Raw, err)
	}
	if r, err = send(in.URL, request{Method: "GET", Path: "/api/v1/auth/me", Token: *access}); err != nil || r.Status != 401 {
		return fmt.Errorf("access token after the revocation: %d %s (%v), want 401", r.Status, r.Raw, err)
	}
	return nil
}
