package client_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"

	"golang.org/x/oauth2"

	"github.com/infracast/auth/http/client"
)

// A resource service behind the middleware (the README's example): each
// request is authorized by the service (forward auth), and the handler reads
// who asked, in which tenant, with which permissions.
func ExampleMiddleware() {
	fa, err := client.NewForwardAuth("http://localhost:8080") // or client.NewJWKSVerifier: offline, EdDSA keys
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/tenants/{tenant}/nodes", func(w http.ResponseWriter, r *http.Request) {
		id, _ := client.IdentityFrom(r.Context()) // the route policy allowed it: nodes:read in {tenant}
		fmt.Fprintf(w, "nodes of %s for %s, who may write: %v\n", id.Tenant, id.Subject, id.Can("nodes:write"))
	})
	log.Fatal(http.ListenAndServe(":9000", client.Middleware(fa)(mux)))
}

// A program calling the API and a resource service with a token that is
// refreshed 5 minutes before it expires, once for all goroutines.
func ExampleClient_PasswordTokenSource() {
	ctx := context.Background()
	c, err := client.New("http://localhost:8080")
	if err != nil {
		log.Fatal(err)
	}
	ts := c.PasswordTokenSource(client.LoginRequest{Username: "alice", Password: os.Getenv("ALICE_PASSWORD")})

	// Any HTTP call, through golang.org/x/oauth2.
	res, err := oauth2.NewClient(ctx, ts).Get("http://localhost:9000/api/v1/tenants/prod/nodes")
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()

	// The API itself, typed.
	api := c.With(client.WithTokenSource(ts))
	me, err := api.Me(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(me.Username, me.Tenants)
}
