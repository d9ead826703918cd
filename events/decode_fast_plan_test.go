package events

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

type planTestElem struct {
	A string `json:"a"`
	N uint8  `json:"n,omitempty"`
}

type planTestRole string

type planTest struct {
	I  int8           `json:"i"`
	J  int64          `json:"j"`
	U  uint16         `json:"u"`
	B  bool           `json:"b"`
	S  string         `json:"s"`
	R  []planTestRole `json:"r"`
	T  time.Time      `json:"t"`
	P  *time.Time     `json:"p,omitempty"`
	E  []planTestElem `json:"e"`
	O  planTestElem   `json:"o"`
	no string         // unexported: not decoded
}

// TestPlanDecodesLikeEncodingJSON: a struct of every kind a plan fills is
// filled as encoding/json fills it, and what the plan does not read with
// certainty (overflows, fractions, other casings...) is refused.
func TestPlanDecodesLikeEncodingJSON(t *testing.T) {
	sp, ok := planStruct(reflect.TypeFor[planTest](), 0)
	if !ok {
		t.Fatal("no plan")
	}
	for doc, fast := range map[string]bool{
		`{"i":-128,"j":-9007199254740993,"u":65535,"b":true,"s":"x","r":["a","b"],"t":"2026-01-02T03:04:05.123Z","p":"2026-01-02T03:04:05-07:00","e":[{"a":"1"},{"a":"2","n":255}],"o":{"a":"o"}}`: true,
		`{"i":0,"j":-0,"u":0,"b":false,"r":[],"e":[],"p":null,"o":{}}`: true,
		`{"i":127}`:                 true,
		`{"i":128}`:                 false, // overflow: encoding/json's error
		`{"i":-129}`:                false,
		`{"u":65536}`:               false,
		`{"u":-1}`:                  false,
		`{"u":-0}`:                  false,
		`{"j":1.0}`:                 false,
		`{"j":1e3}`:                 false,
		`{"j":01}`:                  false,
		`{"j":9999999999999999999}`: false,
		`{"j":"1"}`:                 false,
		`{"J":1}`:                   false,
		`{"no":"x"}`:                false,
		`{"o":{"a":"x","a":"y"}}`:   false,
		`{"e":[{"a":1}]}`:           false,
	} {
		var want planTest
		werr := json.Unmarshal([]byte(doc), &want)
		var got planTest
		s := scanner{b: []byte(doc)}
		ok := sp.decode(&s, reflect.ValueOf(&got).Elem()) && s.i == len(doc)
		if ok != fast {
			t.Errorf("%s: fast path %v, want %v (encoding/json: %v)", doc, ok, fast, werr)
		}
		if ok && (werr != nil || !reflect.DeepEqual(got, want)) {
			t.Errorf("%s: fast path %+v\nencoding/json %+v (%v)", doc, got, want, werr)
		}
	}
}
