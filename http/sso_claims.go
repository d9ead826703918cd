package http

import (
	"errors"
	"fmt"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/infracast/auth/http/internal/jsonnames"
)

// errClaimsMalformed: an ID token's or a userinfo answer's claims hold a
// member name twice, exactly or in another letter case, or a registered
// claim go-oidc read is not the one spelled exactly.
var errClaimsMalformed = errors.New("claims malformed")

// exactClaims decodes the claims of an ID token or a userinfo answer (raw,
// their JSON object as signed or sent) into claims and all, with names
// matched exactly, and refuses an object (at any depth) that holds a member
// name twice, exactly or in another letter case. encoding/json — which
// go-oidc's Claims and its own decoding of sub use — takes a member in
// another letter case for the field and the last of two: a custom claim
// "Email_Verified": true after "email_verified": false counted as verified,
// and with link_by_email linked mallory's first login to alice (outside
// check 18s). go-json-experiment/json matches names exactly and refuses
// exact duplicates; the pre-scan refuses the case variants, which are no
// claim of OpenID Connect's and which another reader may take.
func exactClaims(raw []byte, claims *idClaims, all *map[string]any) error {
	if err := noFoldedDuplicateNames(raw); err != nil {
		return err
	}
	if err := jsonv2.Unmarshal(raw, claims); err != nil {
		return fmt.Errorf("%w: %v", errClaimsMalformed, err)
	}
	if err := jsonv2.Unmarshal(raw, all); err != nil {
		return fmt.Errorf("%w: %v", errClaimsMalformed, err)
	}
	return nil
}

// noFoldedDuplicateNames refuses claims in which an object holds a member
// name twice, in the same or another letter case (jsonnames, as SCIM bodies
// are refused): errClaimsMalformed, naming the member, never a value.
func noFoldedDuplicateNames(raw []byte) error {
	name, found, err := jsonnames.FoldedDuplicate(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%w: not a JSON object", errClaimsMalformed)
	case found:
		return fmt.Errorf("%w: member %.64q is given twice (exactly or in another letter case)", errClaimsMalformed, name)
	}
	return nil
}
