package commands

import (
	"strings"
	"testing"
)

// TestNameKeysFoldAsTheLiveCheck: two names strings.EqualFold takes for
// the same — the check of an owner's live names — share a reservation
// subject, so that two creations racing through two replicas cannot both
// take them; names it tells apart do not. ASCII names keep the subject of
// strings.ToLower, which reservations were made with before.
func TestNameKeysFoldAsTheLiveCheck(t *testing.T) {
	same := [][2]string{
		{"Sigma-σ", "Sigma-ς"}, {"Sigma-Σ", "sigma-ς"}, {"long-s", "LONG-ſ"}, {"beta-β", "beta-ϐ"},
		{"kelvin-k", "kelvin-\u212a"}, {"Deploy", "dEPLOY"}, {"Ωmega", "ωmega"},
	}
	for _, p := range same {
		if !strings.EqualFold(p[0], p[1]) {
			t.Fatalf("%q and %q: not equal under EqualFold (a bad case)", p[0], p[1])
		}
		for _, key := range []func(owner, name string) string{APIKeyNameKey, SCIMNameKey, SCIMGroupNameKey} {
			if key("u-1", p[0]) != key("u-1", p[1]) {
				t.Errorf("%q and %q have two reservation subjects", p[0], p[1])
			}
		}
	}
	for _, p := range [][2]string{{"ci", "cj"}, {"straße", "strasse"}, {"ci", "ci "}} {
		if strings.EqualFold(p[0], p[1]) || APIKeyNameKey("u-1", p[0]) == APIKeyNameKey("u-1", p[1]) {
			t.Errorf("%q and %q share a reservation subject", p[0], p[1])
		}
	}
	if APIKeyNameKey("u-1", "CI-Deployer") != APIKeyNameKey("u-1", strings.ToLower("CI-Deployer")) || foldName("CI-Deployer_2") != "ci-deployer_2" {
		t.Error("an ASCII name no longer folds to its lower case")
	}
	if APIKeyNameKey("u-1", "ci") == APIKeyNameKey("u-2", "ci") || APIKeyNameKey("u-1", "ci") == SCIMNameKey("u-1", "ci") ||
		SCIMNameKey("u-1", "ci") == SCIMGroupNameKey("u-1", "ci") {
		t.Error("the owner or the kind of name is not part of the subject")
	}
}
