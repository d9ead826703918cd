package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
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

// noFoldedDuplicateNames is http/scim's noDuplicateNames for claims: an
// object holding a member name twice, in the same or another letter case,
// is errClaimsMalformed (the error names the member, never a value).
func noFoldedDuplicateNames(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	// One entry per open object or array: the names seen in an object
	// (nil for an array), and whether the next token is a name.
	type level struct {
		names  map[string]bool
		isName bool
	}
	var stack []*level
	for {
		tok, err := dec.Token()
		if err != nil {
			if len(stack) == 0 && errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("%w: not a JSON object", errClaimsMalformed)
		}
		var top *level
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{':
				stack = append(stack, &level{names: map[string]bool{}, isName: true})
			case '[':
				stack = append(stack, &level{})
			default:
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].names != nil {
					stack[len(stack)-1].isName = true
				}
			}
			continue
		}
		if top == nil || top.names == nil {
			continue // an array's element, or a lone scalar (refused by the decoding)
		}
		if top.isName {
			name, _ := tok.(string)
			folded := strings.ToLower(strings.ToUpper(name))
			if top.names[folded] {
				return fmt.Errorf("%w: member %.64q is given twice (exactly or in another letter case)", errClaimsMalformed, name)
			}
			top.names[folded] = true
			top.isName = false
			continue
		}
		top.isName = true // a scalar value: a name comes next
	}
}
