package http

import (
	"bytes"
	"strings"
	"testing"
)

// TestLoginPageMarkupForKeyboardsAndManagers: the sign-in page offers the
// TOTP key and the recovery codes to copy (and the codes to download) with
// buttons, each announcing what it did in a live region, and names the
// enrolment code field so that password managers and one-time-code
// autofill treat it as a code (outside check 20w: the key and codes could
// only be selected with a mouse; #enroll-code had no name).
func TestLoginPageMarkupForKeyboardsAndManagers(t *testing.T) {
	var buf bytes.Buffer
	if err := loginPageTemplate.Execute(&buf, loginPageData{Nonce: "n"}); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{
		`<button id="copy-key" class="secondary" type="button">Copy key</button><span class="copied" id="copy-key-done" role="status"></span>`,
		`<button id="copy-codes" class="secondary" type="button">Copy codes</button>`,
		`<button id="download-codes" class="secondary" type="button">Download codes</button><span class="copied" id="copy-codes-done" role="status"></span>`,
		`<input id="enroll-code" name="code" inputmode="numeric" autocomplete="one-time-code" required>`,
		`<input id="mfa-code" name="code" inputmode="text" autocomplete="one-time-code" required>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the login page lacks %s", want)
		}
	}
}
