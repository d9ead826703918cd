package tests

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Requests at once — several tabs, double clicks, clients that retry —
// that each replace a secret (an outside check, 13f). Only what is in force
// is ever shown: a request decided against a secret that another replaced
// meanwhile answers 409 CONFLICT saying so, and a confirmation never
// confirms a secret its code did not match. Each test repeats rounds of
// requests released together until one round has overlapped (a 409), and
// checks every answer of every round.

// atOnce sends the requests together and returns their answers in order.
func atOnce(t *testing.T, in *Instance, reqs ...request) []Response {
	t.Helper()
	out := make([]Response, len(reqs))
	errs := make([]error, len(reqs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i], errs[i] = send(in.URL, r)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s %s: %v", reqs[i].Method, reqs[i].Path, err)
		}
	}
	return out
}

// untilOverlap runs round until it reports an overlap (a 409 seen), for at
// most 200 rounds or a minute (requests released together overlap in the
// first round or two).
func untilOverlap(t *testing.T, what string, round func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for n := 1; ; n++ {
		if round() {
			t.Logf("%s: overlapped in round %d", what, n)
			return
		}
		if t.Failed() {
			return
		}
		if n >= 200 || time.Now().After(deadline) {
			t.Fatalf("%s: %d rounds, and no request was refused as overlapping another", what, n)
		}
	}
}

// conflictSaying reports whether r is 409 CONFLICT whose message says part.
func conflictSaying(r Response, part string) bool {
	return r.Status == http.StatusConflict && r.ErrorCode() == "CONFLICT" && strings.Contains(string(r.Raw), part)
}

// TestRecoveryCodesAtOnceShowOnlyTheSetInForce: two regenerations of the
// recovery codes at once both answered 200, the first set void at once.
func TestRecoveryCodesAtOnceShowOnlyTheSetInForce(t *testing.T) {
	in := Start(t)
	in.CreateUser(in.AdminToken(), "doubleclick", "doubleclick-password-1", nil)
	token := in.Login("doubleclick", "doubleclick-password-1").String("token")
	enrollTOTP(t, in, token)
	untilOverlap(t, "recovery codes", func() bool {
		req := request{Method: "POST", Path: "/api/v1/auth/mfa/recovery-codes", Token: token}
		overlapped := false
		for _, r := range atOnce(t, in, req, req) {
			switch {
			case r.Status == http.StatusOK:
			case conflictSaying(r, "replaced by another request"):
				overlapped = true
			default:
				t.Fatalf("recovery codes at once: %d %s", r.Status, r.Raw)
			}
		}
		return overlapped
	})
}

// TestTOTPConfirmWhileEnrolledAgain: tab A enrols (secret A); tab B enrols
// again while tab A confirms with a code of A. Before, the confirmation
// could answer 200 having confirmed B (26 of 40 pairs): a code of A then
// failed at login. Now a 200 means A is in force; an overlap is 409; a
// code checked against B already is 400, naming a newer enrolment.
func TestTOTPConfirmWhileEnrolledAgain(t *testing.T) {
	in := Start(t)
	admin := in.AdminToken()
	n := 0
	untilOverlap(t, "TOTP confirmation and enrolment", func() bool {
		n++
		name := fmt.Sprintf("twotabs%d", n)
		in.CreateUser(admin, name, name+"-password-1", nil)
		token := in.Login(name, name+"-password-1").String("token")
		tabA := in.Do("POST", "/api/v1/auth/mfa/totp", token, nil)
		expectStatus(t, "tab A enrols", tabA, http.StatusCreated)
		code := totpAt(t, tabA.String("secret"), in.Clock.Now())
		rs := atOnce(t, in,
			request{Method: "POST", Path: "/api/v1/auth/mfa/totp", Token: token},
			request{Method: "POST", Path: "/api/v1/auth/mfa/totp/confirm", Token: token, ContentType: "application/json", Body: jsonBody(map[string]string{"code": code})})
		expectStatus(t, "tab B enrols", rs[0], http.StatusCreated)
		confirm := rs[1]
		switch {
		case confirm.Status == http.StatusOK:
			// Tab A's secret is in force: its code of a later step signs in.
			in.Clock.Advance(30 * time.Second)
			mfa := mfaLogin(t, in, name, name+"-password-1")
			if r := secondStep(in, mfa, totpAt(t, tabA.String("secret"), in.Clock.Now())); r.Status != http.StatusOK {
				t.Fatalf("confirmation answered 200, yet a code of its secret does not sign in: %d %s", r.Status, r.Raw)
			}
			return false
		case confirm.Status == http.StatusBadRequest && strings.Contains(string(confirm.Raw), "newest enrolment"):
			return false
		case conflictSaying(confirm, "restarted elsewhere"):
			return true
		}
		t.Fatalf("tab A's confirmation: %d %s", confirm.Status, confirm.Raw)
		return false
	})
}
