package tests

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"testing"

	"github.com/gofiber/fiber/v2"

	authhttp "github.com/infracast/auth/http"
)

// TestAuthenticateMiddlewareKeepsCallersApart: a Go resource service behind
// Server.Authenticate(), eight principals (four users' tokens, four API keys)
// calling at once. The middleware recycles Callers between requests, yet
// every handler sees its own caller from start to end, and a Clone taken in
// the handler keeps its values after the request.
func TestAuthenticateMiddlewareKeepsCallersApart(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	type principal struct{ credential, subject string }
	var principals []principal
	for i := range 4 {
		name := fmt.Sprintf("svc-user-%d", i)
		id := in.CreateUser(admin, name, name+"-passphrase", map[string]string{"prod": "viewer"})
		principals = append(principals, principal{in.Login(name, name+"-passphrase").String("token"), id})
		k := in.Do("POST", "/api/v1/api-keys", admin, map[string]any{"name": name, "tenants": []string{"prod"}, "permissions": []string{"nodes:read"}})
		if k.Status != 201 {
			t.Fatalf("create key: %d %s", k.Status, k.Raw)
		}
		principals = append(principals, principal{k.String("key"), k.String("id")})
	}

	var kept sync.Map // subject -> *authhttp.Caller, cloned in the handler
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/who", in.Svc.HTTP.Authenticate(), func(c *fiber.Ctx) error {
		first := authhttp.CallerOf(c).Subject()
		for range 50 {
			runtime.Gosched() // let the other requests run meanwhile
		}
		cl := authhttp.CallerOf(c)
		if cl.Subject() != first {
			return c.Status(500).SendString("the caller changed during the request")
		}
		kept.Store(first, cl.Clone())
		return c.SendString(first)
	})
	addr := serve(t, app)

	const rounds = 40
	res := parallel(t, len(principals), func(i int) (Response, error) {
		p := principals[i]
		for range rounds {
			req, _ := http.NewRequest("GET", "http://"+addr+"/who", nil)
			req.Header.Set("Authorization", "Bearer "+p.credential)
			r, err := http.DefaultClient.Do(req)
			if err != nil {
				return Response{}, err
			}
			body, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode != 200 || string(body) != p.subject {
				return Response{Status: r.StatusCode, Raw: body}, nil
			}
		}
		return Response{Status: 200, Raw: []byte(p.subject)}, nil
	})
	for i, r := range res {
		if r.Status != 200 || string(r.Raw) != principals[i].subject {
			t.Fatalf("principal %s saw %d %q", principals[i].subject, r.Status, r.Raw)
		}
	}
	for _, p := range principals {
		v, ok := kept.Load(p.subject)
		if !ok {
			t.Fatalf("no caller kept for %s", p.subject)
		}
		if got := v.(*authhttp.Caller).Subject(); got != p.subject {
			t.Fatalf("a clone kept after the request names %q, want %q", got, p.subject)
		}
	}
}
