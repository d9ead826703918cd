package projections

import (
	"testing"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// TestSSOIdentityByIssuer: identities are found by (issuer, subject). A link
// written before identities were keyed by issuer (provider name only) is
// read as belonging to the issuer its provider had when it was linked —
// also after the provider is re-pointed, which does not carry the old IdP's
// subjects over to the new one.
func TestSSOIdentityByIssuer(t *testing.T) {
	m := NewModel()
	var seq uint64
	apply := func(id string, e domain.Event) {
		seq++
		m.Apply(seq, events.Envelope{Type: e.EventType(), AggregateID: id}, e)
	}
	const a, b = "https://a.example.com/", "https://b.example.com"
	apply("corp", domain.SSOProviderConfigured{Provider: "corp", Type: domain.SSOOIDC, Issuer: a, IssuerOverride: true})
	// The old format: no issuer.
	apply("k1", domain.SSOIdentityLinked{Provider: "corp", Subject: "sub-1", UserID: "user-1"})
	apply("corp", domain.SSOProviderConfigured{Provider: "corp", Type: domain.SSOOIDC, Issuer: b, IssuerOverride: true})
	apply("k2", domain.SSOIdentityLinked{Provider: "corp", Issuer: b, Subject: "sub-1", UserID: "user-2"})
	for _, tc := range []struct{ issuer, subject, want string }{
		{a, "sub-1", "user-1"}, {b, "sub-1", "user-2"}, {"corp", "sub-1", ""}, {a, "sub-2", ""},
	} {
		if got, _ := m.SSOIdentity(tc.issuer, tc.subject); got != tc.want {
			t.Errorf("(%s, %s): %q, want %q", tc.issuer, tc.subject, got, tc.want)
		}
	}
	// A snapshot keeps the identities as they were read.
	data, _, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	r := NewModel()
	if _, err := r.Restore(data); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.SSOIdentity(a, "sub-1"); got != "user-1" {
		t.Fatalf("restored: %q", got)
	}
}

// TestSSOIdentityUnlinked: an unlink removes the identity's user and moves
// its link sequence (the next link expects it); a link after it holds.
func TestSSOIdentityUnlinked(t *testing.T) {
	m := NewModel()
	const iss = "https://idp.example.com"
	m.Apply(1, events.Envelope{AggregateID: "k1"}, domain.SSOIdentityLinked{Provider: "corp", Issuer: iss, Subject: "s", UserID: "user-1"})
	m.Apply(2, events.Envelope{AggregateID: "k1"}, domain.SSOIdentityUnlinked{Provider: "corp", Issuer: iss, Subject: "s", UserID: "user-1"})
	if id, ok := m.SSOIdentity(iss, "s"); ok || m.SSOIdentityLinkSeq("k1") != 2 {
		t.Fatalf("after the unlink: %q %v, link sequence %d", id, ok, m.SSOIdentityLinkSeq("k1"))
	}
	m.Apply(3, events.Envelope{AggregateID: "k1"}, domain.SSOIdentityLinked{Provider: "corp", Issuer: iss, Subject: "s", UserID: "user-2"})
	if id, _ := m.SSOIdentity(iss, "s"); id != "user-2" || m.SSOIdentityLinkSeq("k1") != 3 {
		t.Fatalf("linked again: %q, link sequence %d", id, m.SSOIdentityLinkSeq("k1"))
	}
	if m.SSOIdentityLinkSeq("never") != 0 {
		t.Fatal("an identity never linked has a link sequence")
	}
}
