package http

import "testing"

// TestACRAssertsMFA: an acr counts as a second factor when one of its
// segments names one, never by a substring (outside check 17b: an Azure
// AD B2C flow named b2c_1_signin_nomfa counted).
func TestACRAssertsMFA(t *testing.T) {
	for acr, want := range map[string]bool{
		"https://refeds.org/profile/mfa":                                        true,
		"http://schemas.openid.net/pape/policies/2007/06/multi-factor":          true,
		"http://schemas.openid.net/pape/policies/2007/06/multi-factor-physical": true,
		"http://schemas.openid.net/pape/policies/2007/06/phishing-resistant":    true,
		"http://schemas.microsoft.com/claims/multipleauthn":                     true,
		"urn:okta:loa:2fa:any":                                                  true,
		"phr":                                                                   true,
		"PHRH":                                                                  true,
		"urn:example:phr":                                                       true,
		"urn:okta:loa:2fa:any:ifpossible":                                       false,
		"urn:okta:loa:1fa:pwd":                                                  false,
		"b2c_1_signin_nomfa":                                                    false,
		"B2C_1A_MFA":                                                            false,
		"urn:x:no-mfa":                                                          false,
		"mfa-skipped":                                                           false,
		"urn:x:nomultifactor":                                                   false,
		"urn:acme:mfa:skipped":                                                  false,
		"https://idp.example/acr/mfa/optional":                                  false,
		"urn:x:mfa:none":                                                        false,
		"urn:x:2fa":                                                             false,
		"1":                                                                     false,
		"":                                                                      false,
	} {
		if got := acrAssertsMFA(acr); got != want {
			t.Errorf("acrAssertsMFA(%q) = %v, want %v", acr, got, want)
		}
	}
	// amr still decides on its own.
	if !assertsMFA([]string{"pwd", "mfa"}, "b2c_1_signin_nomfa") || assertsMFA([]string{"pwd"}, "mfa-skipped") {
		t.Error("assertsMFA: amr mfa with any acr, or amr pwd with a substring acr")
	}
}
