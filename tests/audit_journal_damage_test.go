package tests

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAuditJournalDamagedFailsNeverAnswersWrong: the outside check's
// scenario (18r) on a running service — random bytes of
// DataDir/audit-journal/journal-*.bin flipped, then the audit log paged
// under each filter. Every question is answered either exactly as before
// the damage or with a 500 (docs/audit.md: "if it cannot be read, the
// question fails with a 500, never a wrong answer"), never with an event of
// another type nor without a real one; the damage is logged. The bytes put
// back, the questions answer again.
func TestAuditJournalDamagedFailsNeverAnswersWrong(t *testing.T) {
	dir := t.TempDir()
	logs := &LogBuffer{}
	in := StartLogged(t, logs, WithDataDir(dir))
	admin := in.AdminToken()
	const n = 1100 // key creations: with their revocations, more than a chunk (1,024 entries)
	var ids []string
	for i := range n {
		r := in.Do("POST", "/api/v1/api-keys", admin, map[string]any{
			"name": fmt.Sprintf("k%04d", i), "tenants": []string{"acme"}, "permissions": []string{"findings:read"}})
		if r.Status != 201 {
			t.Fatalf("create key %d: %d %s", i, r.Status, r.Raw)
		}
		ids = append(ids, r.String("id"))
		if i%3 == 0 {
			if r := in.Do("DELETE", "/api/v1/api-keys/"+ids[i], admin, nil); r.Status/100 != 2 {
				t.Fatalf("revoke key %d: %d %s", i, r.Status, r.Raw)
			}
		}
		in.Clock.Advance(100 * time.Millisecond)
	}
	var file string
	Eventually(t, 10*time.Second, func() error {
		files, err := filepath.Glob(filepath.Join(dir, "audit-journal", "journal-*.bin"))
		if err != nil {
			return err
		}
		if len(files) != 1 {
			return fmt.Errorf("journal files: %v", files)
		}
		st, err := os.Stat(files[0])
		if err != nil || st.Size() == 0 {
			return fmt.Errorf("journal file: %v (%v)", st, err)
		}
		file = files[0]
		return nil
	})
	var first struct {
		Events []struct {
			Actor struct {
				ID string `json:"id"`
			} `json:"actor"`
		} `json:"events"`
	}
	if err := json.Unmarshal(in.Do("GET", "/api/v1/audit/events?type=apikey.created&limit=1", admin, nil).Raw, &first); err != nil ||
		len(first.Events) != 1 || first.Events[0].Actor.ID == "" {
		t.Fatalf("the first key's creation: %v %+v", err, first)
	}
	me := first.Events[0].Actor.ID
	queries := []url.Values{
		{"type": {"apikey.created"}}, {"type": {"apikey.revoked"}}, {"type": {"apikey."}, "order": {"desc"}},
		{"tenant": {"acme"}}, {"actor": {me}, "type": {"apikey.revoked"}}, {"subject": {ids[n/2]}},
		{"since": {in.Clock.Now().Add(-50 * time.Second).Format(time.RFC3339Nano)}, "type": {"apikey.created"}},
	}
	// page reads every page of q: the events' sequences and types, or the
	// status of the first page that was not a 200.
	page := func(q url.Values) (string, int) {
		t.Helper()
		var b strings.Builder
		cursor := ""
		for {
			p := url.Values{"limit": {"1000"}}
			for k, v := range q {
				p[k] = v
			}
			if cursor != "" {
				p.Set("cursor", cursor)
			}
			r := in.Do("GET", "/api/v1/audit/events?"+p.Encode(), admin, nil)
			if r.Status != 200 {
				return string(r.Raw), r.Status
			}
			var pg struct {
				Events []struct {
					Sequence uint64 `json:"sequence"`
					Type     string `json:"type"`
				} `json:"events"`
				NextCursor string `json:"next_cursor"`
			}
			if err := json.Unmarshal(r.Raw, &pg); err != nil {
				t.Fatal(err)
			}
			for _, e := range pg.Events {
				fmt.Fprintf(&b, "%d %s\n", e.Sequence, e.Type)
			}
			if cursor = pg.NextCursor; cursor == "" {
				return b.String(), 200
			}
		}
	}
	want := make([]string, len(queries))
	for i, q := range queries {
		var status int
		if want[i], status = page(q); status != 200 || want[i] == "" {
			t.Fatalf("undamaged, %v: %d %s", q, status, want[i])
		}
	}

	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(18, 18))
	flip := func(offs []int64) {
		for _, off := range offs {
			var b [1]byte
			if _, err := f.ReadAt(b[:], off); err != nil {
				t.Fatal(err)
			}
			b[0] ^= 0x5a
			if _, err := f.WriteAt(b[:], off); err != nil {
				t.Fatal(err)
			}
		}
	}
	for trial := range 8 {
		offs := make([]int64, 1+rng.IntN(200))
		for i := range offs {
			offs[i] = rng.Int64N(st.Size())
		}
		flip(offs)
		failed := 0
		for i, q := range queries {
			got, status := page(q)
			switch {
			case status == 500:
				failed++
			case status != 200:
				t.Fatalf("trial %d, %v: %d %s", trial, q, status, got)
			case got != want[i]:
				t.Fatalf("trial %d (%d bytes flipped), %v answered wrong:\n%s\nundamaged:\n%s", trial, len(offs), q, got, want[i])
			}
		}
		if failed == 0 {
			t.Fatalf("trial %d: %d bytes flipped, and every question answered", trial, len(offs))
		}
		flip(offs) // put back
		for i, q := range queries {
			if got, status := page(q); status != 200 || got != want[i] {
				t.Fatalf("trial %d, the bytes put back, %v: %d\n%s", trial, q, status, got)
			}
		}
	}
	if !strings.Contains(logs.String(), "a chunk is damaged") {
		t.Fatalf("the damage was not logged:\n%s", logs.String())
	}
}
