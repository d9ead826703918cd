package tests

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/infracast/auth/http/service"
)

// withSessionLimit sets INFRACAST_MAX_SESSIONS_PER_USER.
func withSessionLimit(n int) Option {
	return func(c *service.Config) { c.MaxSessionsPerUser = n }
}

// TestSessionLimitDoubleLoginsKeepOne: at INFRACAST_MAX_SESSIONS_PER_USER=1,
// two logins of a new user at once, one through each replica, leave the
// user one live session whose access token works — every time (50 pairs). Each
// login kept only its own session and ended the least recently used of the
// rest, the other's new one: both were ended, and the user had none, both
// tokens refused at their first use (re-check 20r1, 1 in 40). A login now
// ends only sessions started before its own.
func TestSessionLimitDoubleLoginsKeepOne(t *testing.T) {
	d := NewDeployment(t, 1)
	a := d.StartReplica(t, withSessionLimit(1))
	b := d.StartReplica(t, withSessionLimit(1))
	admin := a.AdminToken()
	const password = "correct-horse-battery-staple"
	for trial := range 50 {
		name := fmt.Sprintf("double-login-%d", trial)
		uid := a.CreateUser(admin, name, password, map[string]string{"prod": "viewer"})
		start := make(chan struct{})
		var wg sync.WaitGroup
		res := make([]Response, 2)
		for i, in := range []*Instance{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res[i] = in.Do("POST", "/api/v1/auth/token", "", map[string]string{"username": name, "password": password})
			}()
		}
		close(start)
		wg.Wait()
		for i, r := range res {
			expectStatus(t, fmt.Sprintf("trial %d, login %d", trial, i), r, http.StatusOK)
		}
		// Both logins are done, their revocations stored and applied on
		// every replica (the barrier); replica A may apply B's login a
		// moment later.
		Eventually(t, 10*time.Second, func() error {
			r := a.Do("GET", "/api/v1/users/"+uid+"/sessions?limit=1000", admin, nil)
			expectStatus(t, "the user's sessions", r, http.StatusOK)
			l, _ := r.JSON["sessions"].([]any)
			working := 0
			for _, x := range res {
				if verify(t, a, x.String("token"), "GET", "/api/v1/tenants/prod/nodes").Status == http.StatusOK {
					working++
				}
			}
			if len(l) != 1 || working != 1 {
				return Errorf("trial %d: %d live sessions, %d of the 2 access tokens working; want 1 and 1", trial, len(l), working)
			}
			return nil
		})
	}
}
