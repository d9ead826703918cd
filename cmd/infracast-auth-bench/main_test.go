package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// A case without a baseline (the audit latencies) shows "-" for its baseline
// and ratio, leaves them out of its JSON line, and its legend line does not
// call what it measures a baseline (outside check 15g).
func TestResultWithoutBaseline(t *testing.T) {
	s := sample{n: 3}
	r := latencyResult("audit.page", "GET /audit/events, a filtered page of 100", &s, 50)
	with := throughput("catch_up.login", "logins/s", &sample{n: 1}, &sample{n: 1}, "the same logins on a lone replica")
	with.Baseline, with.Ratio = 800, 0.9

	line, err := jsonLine(r)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"baseline", "ratio"} {
		if _, ok := got[k]; ok {
			t.Errorf("the JSON line of a case without a baseline has %q: %s", k, line)
		}
	}
	if got["name"] != "audit.page" || got["target"] != "value < 50.0" {
		t.Errorf("JSON line = %s", line)
	}
	line, err = jsonLine(with)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(line, []byte(`"baseline":800,"ratio":0.9,`)) {
		t.Errorf("the JSON line of a case with a baseline lacks it: %s", line)
	}
	if bytes.Contains(line, []byte(`\u003e`)) {
		t.Errorf("the JSON line escapes HTML characters: %s", line)
	}

	var out strings.Builder
	printTable(&out, []result{r, with})
	for _, l := range strings.Split(out.String(), "\n") {
		switch {
		case strings.HasPrefix(l, "audit.page"):
			cells := strings.Split(l, "|")
			if strings.TrimSpace(cells[3]) != "-" || strings.TrimSpace(cells[4]) != "-" {
				t.Errorf("table row without a baseline: baseline %q, ratio %q, want - and -", cells[3], cells[4])
			}
		case strings.HasPrefix(l, "catch_up.login"):
			cells := strings.Split(l, "|")
			if strings.TrimSpace(cells[3]) != "800" || strings.TrimSpace(cells[4]) != "0.900" {
				t.Errorf("table row with a baseline: baseline %q, ratio %q", cells[3], cells[4])
			}
		case strings.Contains(l, "audit.page") && strings.Contains(l, "baseline:"):
			t.Errorf("legend calls the request a baseline: %q", l)
		}
	}
	if !strings.Contains(strings.Join(strings.Fields(out.String()), " "), "audit.page measures: GET /audit/events") {
		t.Errorf("no legend line for audit.page:\n%s", out.String())
	}
}

// catch_up.login counts logins, as performance.md says (outside check 15g).
func TestCatchUpUnits(t *testing.T) {
	want := map[string]string{"catch_up.list": "req/s", "catch_up.not_found": "req/s", "catch_up.login": "logins/s"}
	reqs := catchUpRequests(32)
	if len(reqs) != len(want) {
		t.Fatalf("%d catch-up requests, want %d", len(reqs), len(want))
	}
	for _, r := range reqs {
		if r.unit != want[r.name] {
			t.Errorf("%s: unit %q, want %q", r.name, r.unit, want[r.name])
		}
	}
}

// jsonLine encodes r as run prints it.
func jsonLine(r result) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(r)
	return bytes.TrimSpace(buf.Bytes()), err
}

// TestLoginUsersPerClient: the login case spreads its logins over enough
// users that none reaches half the session limit at 1.5 × the rate it
// measured (at the figures of docs/performance.md, 76.5 verifications/s
// for 16 s, 8 clients: 5 users each); without a limit, one user a client.
func TestLoginUsersPerClient(t *testing.T) {
	for _, tc := range []struct {
		rate          float64
		d             time.Duration
		clients, want int
		limit         int
	}{
		{76.5, 16 * time.Second, 8, 5, 100},
		{10, time.Second, 8, 1, 100},
		{5000, 31 * time.Second, 256, 19, 100},
		{76.5, 16 * time.Second, 8, 1, 0},
	} {
		got := loginUsersPerClient(tc.rate, tc.d, tc.clients, tc.limit)
		if got != tc.want {
			t.Errorf("loginUsersPerClient(%v/s, %s, %d clients, limit %d) = %d, want %d", tc.rate, tc.d, tc.clients, tc.limit, got, tc.want)
		}
		if per := 1.5 * tc.rate * tc.d.Seconds() / float64(tc.clients*got); tc.limit > 0 && per > float64(tc.limit/2) {
			t.Errorf("%v/s for %s over %d×%d users: %.0f logins a user, over half the limit %d", tc.rate, tc.d, tc.clients, got, per, tc.limit)
		}
	}
}
