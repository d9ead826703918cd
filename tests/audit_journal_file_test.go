package tests

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestAuditJournalOnFile: a history longer than a chunk of the audit
// journal (1,024 events) has its full chunks in a file of the replica's,
// under DataDir/audit-journal, and the audit log and the access questions
// read them there: every event found, in order, both ways; a key's grant
// named by the event that made it. A restart on the same data empties the
// folder, rebuilds the journal from the stream into a new file, and
// answers the same.
func TestAuditJournalOnFile(t *testing.T) {
	dir := t.TempDir()
	in := Start(t, WithDataDir(dir))
	admin := in.AdminToken()
	const n = 1100
	ids := make([]string, 0, n)
	var firstAt string
	owner := admin
	for i := range n {
		if i == 1000 { // an owner holds at most 1,000 keys: another makes the rest
			in.CreateUser(admin, "acme-admin", "acme-admin-passphrase", map[string]string{"acme": "admin"})
			owner = in.Login("acme-admin", "acme-admin-passphrase").String("token")
		}
		r := in.Do("POST", "/api/v1/api-keys", owner, map[string]any{
			"name": fmt.Sprintf("k%04d", i), "tenants": []string{"acme"}, "permissions": []string{"findings:read"}})
		if r.Status != 201 {
			t.Fatalf("create key %d: %d %s", i, r.Status, r.Raw)
		}
		ids = append(ids, r.String("id"))
		if i == 0 {
			firstAt = in.Clock.Now().Add(50 * time.Millisecond).Format(time.RFC3339Nano)
		}
		in.Clock.Advance(100 * time.Millisecond)
	}
	journalFile := func() (string, error) {
		files, err := filepath.Glob(filepath.Join(dir, "audit-journal", "journal-*.bin"))
		if err != nil {
			return "", err
		}
		if len(files) != 1 {
			return "", fmt.Errorf("journal files: %v", files)
		}
		st, err := os.Stat(files[0])
		if err != nil {
			return "", err
		}
		if st.Size() == 0 {
			return "", fmt.Errorf("%s is empty", files[0])
		}
		return files[0], nil
	}
	var first string
	Eventually(t, 10*time.Second, func() (err error) { first, err = journalFile(); return err })

	// What the audit API and the access questions answer, read through the
	// chunks on file.
	answers := func(in *Instance) string {
		t.Helper()
		var all []string
		for _, order := range []string{"asc", "desc"} {
			var got []string
			cursor := ""
			for {
				q := url.Values{"type": {"apikey.created"}, "limit": {"1000"}, "order": {order}}
				if cursor != "" {
					q.Set("cursor", cursor)
				}
				r := in.Do("GET", "/api/v1/audit/events?"+q.Encode(), admin, nil)
				if r.Status != 200 {
					t.Fatalf("audit events: %d %s", r.Status, r.Raw)
				}
				var page struct {
					Events []struct {
						Sequence    uint64 `json:"sequence"`
						AggregateID string `json:"aggregate_id"`
					} `json:"events"`
					NextCursor string `json:"next_cursor"`
				}
				if err := json.Unmarshal(r.Raw, &page); err != nil {
					t.Fatal(err)
				}
				for _, e := range page.Events {
					got = append(got, e.AggregateID)
				}
				if cursor = page.NextCursor; cursor == "" {
					break
				}
			}
			if len(got) != n {
				t.Fatalf("%s: %d key creations, want %d", order, len(got), n)
			}
			for i := range got {
				want := ids[i]
				if order == "desc" {
					want = ids[n-1-i]
				}
				if got[i] != want {
					t.Fatalf("%s, %d: %s, want %s", order, i, got[i], want)
				}
			}
			all = append(all, got...)
		}
		key := in.Do("GET", "/api/v1/api-keys/"+ids[0]+"/access?at="+url.QueryEscape(firstAt), admin, nil)
		tenant := in.Do("GET", "/api/v1/tenants/acme/access?permission=findings:read&at="+url.QueryEscape(firstAt), admin, nil)
		if key.Status != 200 || tenant.Status != 200 {
			t.Fatalf("access: %d %s; %d %s", key.Status, key.Raw, tenant.Status, tenant.Raw)
		}
		var acc struct {
			Tenants []struct {
				Grants []struct {
					GrantedBy struct {
						Type  string `json:"type"`
						Actor struct {
							ID string `json:"id"`
						} `json:"actor"`
					} `json:"granted_by"`
				} `json:"grants"`
			} `json:"tenants"`
		}
		if err := json.Unmarshal(key.Raw, &acc); err != nil {
			t.Fatal(err)
		}
		if len(acc.Tenants) != 1 || len(acc.Tenants[0].Grants) != 1 || acc.Tenants[0].Grants[0].GrantedBy.Type != "apikey.created" ||
			acc.Tenants[0].Grants[0].GrantedBy.Actor.ID == "" {
			t.Fatalf("the first key's access just after its creation: %s", key.Raw)
		}
		return fmt.Sprint(all) + string(key.Raw) + string(tenant.Raw)
	}
	want := answers(in)

	in.Stop()
	in2 := Start(t, WithDataDir(dir))
	var again string
	Eventually(t, 10*time.Second, func() (err error) {
		again, err = journalFile()
		if err == nil && again == first {
			err = fmt.Errorf("the journal file of the first start is still there: %s", first)
		}
		return err
	})
	if got := answers(in2); got != want {
		t.Fatalf("after a restart on the same data, the answers differ:\n%s\nwant\n%s", got, want)
	}
}
