package http

import (
	"errors"
	"testing"
)

// TestExactClaims: claims are read with their exact names (a "Sub" or an
// "Email_Verified" alone is no sub, no email_verified, as go-oidc's
// encoding/json took it: outside check 18s), and an object holding a name
// twice, exactly or in another letter case, at any depth, is refused.
func TestExactClaims(t *testing.T) {
	var c idClaims
	var all map[string]any
	if err := exactClaims([]byte(`{"Sub":"00u-alice","Email_Verified":true,"email":"a@b.example","Department":"ops"}`), &c, &all); err != nil {
		t.Fatal(err)
	}
	if c.Subject != "" || c.EmailVerified != nil || c.Email != "a@b.example" || all["Department"] != "ops" {
		t.Fatalf("read %+v", c)
	}
	for _, bad := range []string{
		`{"sub":"a","sub":"b"}`,
		`{"email_verified":false,"Email_Verified":true}`,
		`{"sub":"a","ſub":"b"}`, // LONG S folds to s
		`{"sub":"a","groups":[{"id":"x","ID":"y"}]}`,
		`{"_claim_names":{"groups":"s1","Groups":"s2"}}`,
		`{"sub":"a"} {}`,
	} {
		if err := exactClaims([]byte(bad), &idClaims{}, &map[string]any{}); !errors.Is(err, errClaimsMalformed) {
			t.Errorf("%s: %v, want errClaimsMalformed", bad, err)
		}
	}
}
