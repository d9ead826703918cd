// Package jsonnames finds the member names a JSON document gives twice in
// one object, exactly or in another letter case: readers that take the
// first, the last or the exact spelling of such a name disagree about what
// the document says (SCIM bodies, identity providers' claims).
package jsonnames

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// FoldedDuplicate returns the first member name that an object of doc —
// at any depth — holds twice, in the same or another letter case (folded as
// strings.ToLower(strings.ToUpper(name)): "ſ" and "s", "K" (Kelvin) and "k"
// alike), and whether there is one. err is set when doc is not one JSON
// value.
func FoldedDuplicate(doc []byte) (name string, found bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
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
				return "", false, nil
			}
			return "", false, err
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
			continue // an array's element, or a lone scalar
		}
		if top.isName {
			name, _ := tok.(string)
			folded := strings.ToLower(strings.ToUpper(name))
			if top.names[folded] {
				return name, true, nil
			}
			top.names[folded] = true
			top.isName = false
			continue
		}
		top.isName = true // a scalar value: a name comes next
	}
}
