package tests

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestAuditCursorFromARestoredStore: a cursor names the event at its
// position, so a data folder restored from a backup refuses a cursor read
// before the restore even once it has grown past that position again —
// where it answered the page after it, skipping its own events up to there
// without a word (outside check 16c: 'infracast audit --follow' went on
// from seq 39 over a restored store's events 22–38). Each event carries
// its own cursor, which the client follows from.
func TestAuditCursorFromARestoredStore(t *testing.T) {
	t.Parallel()
	dir, backup := t.TempDir(), t.TempDir()
	in := Start(t, WithDataDir(dir))
	in.CreateUser(in.AdminToken(), "bob", "bob-password-1", nil)
	in.Stop()
	if err := os.CopyFS(backup, os.DirFS(dir)); err != nil { // the stopped-copy backup (operations.md)
		t.Fatal(err)
	}

	in = Start(t, WithDataDir(dir))
	admin := in.AdminToken()
	for _, name := range []string{"carol", "dave", "erin"} {
		in.CreateUser(admin, name, name+"-password-1", nil)
	}
	page := auditGet(t, in, admin, url.Values{"limit": {"1000"}})
	expectStatus(t, "the log", page, 200)
	evs := page.JSON["events"].([]any)
	newest := evs[len(evs)-1].(map[string]any)
	cur, _ := newest["cursor"].(string)
	seq := uint64(newest["sequence"].(float64))
	if !regexp.MustCompile(fmt.Sprintf(`^a%d-[0-9a-f]{8}$`, seq)).MatchString(cur) {
		t.Fatalf("the newest event's cursor: %q (sequence %d)", cur, seq)
	}
	// On the store it was read from, an event's cursor asks for what follows it.
	mid := evs[len(evs)-2].(map[string]any)
	after := auditGet(t, in, admin, url.Values{"cursor": {mid["cursor"].(string)}})
	expectStatus(t, "after an event's cursor", after, 200)
	if got := after.JSON["events"].([]any); len(got) != 1 || got[0].(map[string]any)["sequence"] != newest["sequence"] {
		t.Fatalf("after the second newest event's cursor: %s, want the newest event alone", after.Raw)
	}
	in.Stop()

	// The folder restored from the backup: shorter than the cursor at first...
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(dir, os.DirFS(backup)); err != nil {
		t.Fatal(err)
	}
	in = Start(t, WithDataDir(dir))
	admin = in.AdminToken()
	expectError(t, "the cursor right after the restore", auditGet(t, in, admin, url.Values{"cursor": {cur}}), 400, "VALIDATION_ERROR", "cursor", "past the end")
	// ... then grown past it by new events of its own.
	var head uint64
	for i := 0; head < seq; i++ {
		if i > 50 {
			t.Fatalf("the restored store did not grow past %d", seq)
		}
		in.CreateUser(admin, fmt.Sprintf("user%d", i), "user-password-1", nil)
		r := auditGet(t, in, admin, url.Values{"order": {"desc"}, "limit": {"1"}})
		head = uint64(r.JSON["events"].([]any)[0].(map[string]any)["sequence"].(float64))
	}
	r := auditGet(t, in, admin, url.Values{"cursor": {cur}})
	expectError(t, "the cursor once the restored store grew past it", r, 400, "VALIDATION_ERROR", "cursor", "does not match the event at its position")
	if !strings.Contains(string(r.Raw), "start again without a cursor") {
		t.Fatalf("the refusal does not say what to do: %s", r.Raw)
	}
	// A cursor from before marks ("a<seq>") names no event: taken, as it was.
	expectStatus(t, "a cursor without a mark", auditGet(t, in, admin, url.Values{"cursor": {fmt.Sprintf("a%d", seq)}}), 200)
	// The restored store's own cursors work.
	own := auditGet(t, in, admin, url.Values{"limit": {"2"}})
	expectStatus(t, "the restored log", own, 200)
	first := own.JSON["events"].([]any)[0].(map[string]any)
	next := auditGet(t, in, admin, url.Values{"cursor": {first["cursor"].(string)}, "limit": {"1"}})
	expectStatus(t, "after the restored store's own cursor", next, 200)
	if got := next.JSON["events"].([]any); len(got) != 1 || got[0].(map[string]any)["sequence"] != own.JSON["events"].([]any)[1].(map[string]any)["sequence"] {
		t.Fatalf("after the restored store's first event: %s, want its second", next.Raw)
	}
	if nc, _ := own.JSON["next_cursor"].(string); !regexp.MustCompile(`^a\d+-[0-9a-f]{8}$`).MatchString(nc) {
		t.Fatalf("next_cursor %q", nc)
	}
}
