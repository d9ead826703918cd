package jsonnames

import "testing"

func TestFoldedDuplicate(t *testing.T) {
	for doc, want := range map[string]string{
		`{"a":1,"b":2}`:                        "",
		`{"a":1,"A":2}`:                        "A",
		`{"role":"viewer","role":"admin"}`:     "role",
		`{"x":{"userName":1,"USERNAME":2}}`:    "USERNAME",
		`{"x":[{"k":1},{"k":2}]}`:              "",
		`{"x":[{"k":1,"\u212a":2}]}`:           "\u212a",
		`{"ſub":1,"sub":2}`:                    "sub",
		`{"a":[1,{"b":2}],"c":{"d":[]},"A":3}`: "A",
		`[{"a":1},{"a":2}]`:                    "",
		`"scalar"`:                             "",
		`{"a":{"b":1},"b":2}`:                  "",
	} {
		name, found, err := FoldedDuplicate([]byte(doc))
		if err != nil || found != (want != "") || name != want {
			t.Errorf("FoldedDuplicate(%s) = %q, %v, %v; want %q", doc, name, found, err, want)
		}
	}
	for _, doc := range []string{`{"a":`, `{"a":1}}`, ``} {
		if _, _, err := FoldedDuplicate([]byte(doc)); err == nil && doc != "" {
			t.Errorf("FoldedDuplicate(%q): no error", doc)
		}
	}
}
