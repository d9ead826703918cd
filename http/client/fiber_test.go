package client_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"

	"github.com/infracast/auth/http/client"
)

// fixed is an Authorizer that lets requests with the right token through.
type fixed struct{}

func (fixed) Authorize(r *http.Request) (*client.Identity, error) {
	if r.Header.Get("Authorization") != "Bearer good" {
		return nil, &client.Error{Status: 401, Code: "UNAUTHORIZED", Message: "Invalid or expired token"}
	}
	return &client.Identity{Subject: "user-1", Tenant: "prod", Permissions: []string{"nodes:read"}}, nil
}

// The net/http middleware mounted in a Fiber app through Fiber's adaptor:
// refusals in the contract's shape, the identity in c.Locals.
func TestMiddlewareInFiber(t *testing.T) {
	app := fiber.New()
	app.Use(adaptor.HTTPMiddleware(client.Middleware(fixed{})))
	app.Get("/api/v1/tenants/prod/nodes", func(c *fiber.Ctx) error {
		id, ok := c.Locals(client.IdentityKey).(*client.Identity)
		if !ok {
			return c.Status(500).SendString("no identity")
		}
		return c.SendString(id.Subject + " " + id.Tenant)
	})
	for _, tc := range []struct {
		token  string
		status int
		body   string
	}{
		{"good", 200, "user-1 prod"},
		{"bad", 401, `{"error":{"code":"UNAUTHORIZED","message":"Invalid or expired token"}}` + "\n"},
	} {
		req := httptest.NewRequest("GET", "/api/v1/tenants/prod/nodes", nil)
		req.Header.Set("Authorization", "Bearer "+tc.token)
		res, err := app.Test(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != tc.status || string(body) != tc.body {
			t.Errorf("%s: %d %q, want %d %q", tc.token, res.StatusCode, body, tc.status, tc.body)
		}
	}
}
