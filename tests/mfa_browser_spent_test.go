package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
)

// signInSpentBody is the service's 503 for a sign-in step that spent its
// code but started no session (http/errors.go errSignInSpent), as
// docs/mfa.md quotes it.
const signInSpentBody = `{"error":{"code":"UNAVAILABLE","message":"The sign-in could not be completed, and the code or identity provider's answer it used is spent: sign in again"}}`

// spendInstead holds the browser's next second-step request (DevTools
// Fetch), sends the same request to the service itself — which spends its
// MFA token and code — and answers the browser with the 503 the service
// gives when, having spent them, it cannot start the session (an event
// store failure between the two appends, made certain here). Then the
// browser's requests flow again.
func spendInstead(t *testing.T, ctx context.Context, in *Instance, paused <-chan *fetch.EventRequestPaused) {
	t.Helper()
	var req *fetch.EventRequestPaused
	select {
	case req = <-paused:
	case <-time.After(15 * time.Second):
		t.Fatal("the page sent no second step")
	}
	var posted []byte
	for _, e := range req.Request.PostDataEntries {
		posted = append(posted, e.Bytes...)
	}
	var body map[string]string
	if err := json.Unmarshal(posted, &body); err != nil {
		t.Fatalf("the second step's body %q: %v", posted, err)
	}
	expectStatus(t, "the code spent", in.Do("POST", "/api/v1/auth/token/mfa", "", body), http.StatusOK)
	if _, err := chromedp.Call(ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{
		RequestID: req.RequestID, ResponseCode: http.StatusServiceUnavailable,
		ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: "application/json"}},
		Body:            []byte(signInSpentBody),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, fetch.Disable, struct{}{}); err != nil {
		t.Fatal(err)
	}
}

// holdSecondSteps makes ctx's browser hold its requests to the second
// step and hands them over on the channel returned.
func holdSecondSteps(t *testing.T, ctx context.Context) <-chan *fetch.EventRequestPaused {
	t.Helper()
	return holdRequests(t, ctx, "*/api/v1/auth/token/mfa")
}

// holdRequests makes ctx's browser hold its requests whose URL matches
// pattern (DevTools Fetch) and hands them over on the channel returned,
// for the test to answer (fetch.FulfillRequest) or let go.
func holdRequests(t *testing.T, ctx context.Context, pattern string) <-chan *fetch.EventRequestPaused {
	t.Helper()
	paused := make(chan *fetch.EventRequestPaused, 4)
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*fetch.EventRequestPaused); ok {
			paused <- e
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: pattern}}}); err != nil {
		t.Fatal(err)
	}
	return paused
}

// TestSignInSpentLeadsBackToThePasswordForm: the second step answered 503
// "The sign-in could not be completed, …: sign in again" (the code and the
// MFA token spent, no session). The sign-in page and the console kept the
// code form, whose next code was then refused as a used MFA token before
// the user was sent back (noticed in session 16). Both now go back to the
// password form at once, with the message, and the user signs in again.
func TestSignInSpentLeadsBackToThePasswordForm(t *testing.T) {
	in := Start(t)
	in.CreateUser(in.AdminToken(), "hank", "correct horse battery", map[string]string{"acme": "admin"})
	secret, _ := enrollTOTP(t, in, in.Login("hank", "correct horse battery").String("token"))
	nextCode := func() string {
		in.Clock.Advance(time.Minute) // a period whose code nobody used
		return totpAt(t, secret, in.Clock.Now())
	}

	t.Run("sign-in page", func(t *testing.T) {
		ctx := newChrome(t)
		paused := holdSecondSteps(t, ctx)
		_, runPage := loginPageDriver(t, ctx)
		state := loginPageState
		click := func(id string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.ID(id)) }
		password := func() chromedp.Action[chromedp.Void] {
			return inSequence(chromedp.SetValue(chromedp.ID("username"), "hank"),
				chromedp.SetValue(chromedp.ID("password"), "correct horse battery"), click("submit"))
		}
		navigateUntil(t, ctx, in.URL+"/login", state("signed-out"))
		runPage("password", password(), loginPagePoll(state("mfa")))
		runPage("code", chromedp.SetValue(chromedp.ID("mfa-code"), nextCode()), click("mfa-submit"))
		spendInstead(t, ctx, in, paused)
		runPage("back to the password form", loginPagePoll(state("signed-out")+` && `+shownJS("#login")+` && !`+shownJS("#mfa-form")+
			` && `+statusSays(`/^The sign-in could not be completed.*sign in again$/`)))
		runPage("sign in again", password(), loginPagePoll(state("mfa")),
			chromedp.SetValue(chromedp.ID("mfa-code"), nextCode()), click("mfa-submit"), loginPagePoll(state("signed-in")))
	})

	t.Run("console", func(t *testing.T) {
		ctx := consoleChrome(t)
		paused := holdSecondSteps(t, ctx)
		stateIs := func(s string) string { return `document.body.getAttribute('data-state') === '` + s + `'` }
		password := func() chromedp.Action[chromedp.Void] {
			return inSequence(fill(`#username`, "hank"), fill(`#password`, "correct horse battery"), chromedp.Click(`#signin-submit`))
		}
		navigateUntil(t, ctx, in.URL+"/console", stateIs("signed-out"))
		run(t, ctx, "password", password(), until(stateIs("mfa")))
		run(t, ctx, "code", fill(`#mfa-code`, nextCode()), chromedp.Click(`#mfa-submit`))
		spendInstead(t, ctx, in, paused)
		run(t, ctx, "back to the password form", until(stateIs("signed-out")+` && !!document.querySelector('#signin-form') && !document.querySelector('#mfa-form')`+
			` && /^The sign-in could not be completed.*sign in again$/.test((document.querySelector('#signin-error') || {}).textContent || '')`))
		run(t, ctx, "sign in again", password(), until(stateIs("mfa")),
			fill(`#mfa-code`, nextCode()), chromedp.Click(`#mfa-submit`),
			until(`document.body.getAttribute('data-user') === 'hank' && `+stateIs("signed-in")))
	})
}
