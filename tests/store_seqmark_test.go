package tests

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBinaryRefusesAStreamBehindItsDataFolder: the data folder's marker
// (stream-sequence: the highest sequence its replica applied) outlives the
// store's files, and a stream's sequence never goes back. A msgs/ folder
// removed whole, index and all (nats-server then loads the stream as new),
// a jetstream/ folder removed, or replaced by an older copy while the rest
// of the data folder stays: the binary exits 1 naming the marker's sequence
// and the stream's and what to do, and creates nothing — no new bootstrap
// admin, no event (an outside check, 18r2: it started afresh). Removing the
// marker, as the refusal says, starts on the stream as it is; a whole-folder
// backup brings its own marker and starts; so do a plain restart and a data
// folder without a marker (an older build's).
func TestBinaryRefusesAStreamBehindItsDataFolder(t *testing.T) {
	t.Parallel()
	const adminCreated = "bootstrap admin created"
	env := func(data string) []string {
		return []string{"INFRACAST_DATA_DIR=" + data, "INFRACAST_BOOTSTRAP_PASSWORD=" + shippedAdminPassword, "INFRACAST_LISTEN=" + freeAddr(t)}
	}
	addrOf := func(env []string) string { return "http://" + strings.TrimPrefix(env[len(env)-1], "INFRACAST_LISTEN=") }
	// run starts the binary on data, signs in n times (events after the
	// admin's) and stops it; it returns what it printed.
	run := func(t *testing.T, data string, n int) string {
		t.Helper()
		e := env(data)
		p := startBinary(t, e...)
		waitReady(t, addrOf(e), p)
		for range n {
			res, err := http.Post(addrOf(e)+"/api/v1/auth/token", "application/json",
				strings.NewReader(`{"username":"admin","password":"`+shippedAdminPassword+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("login: %d", res.StatusCode)
			}
		}
		p.stop(t)
		return p.output()
	}
	marker := func(t *testing.T, data string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(data, "stream-sequence"))
		if err != nil {
			t.Fatalf("no marker after a clean shutdown: %v", err)
		}
		return strings.TrimSpace(string(b))
	}
	refused := func(t *testing.T, data string, want ...string) {
		t.Helper()
		p := startBinary(t, env(data)...)
		if err := p.exited(t, 60*time.Second); err == nil {
			t.Fatalf("exited 0:\n%s", p.output())
		}
		out := p.output()
		want = append(want, "restore the store from your backup", "remove the file "+filepath.Join(data, "stream-sequence"))
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Fatalf("the refusal does not say %q:\n%s", w, out)
			}
		}
		if strings.Contains(out, adminCreated) {
			t.Fatalf("started afresh:\n%s", out)
		}
	}
	stream := func(data string) string {
		return filepath.Join(data, "jetstream", "jetstream", "$G", "streams", "INFRACAST_AUTH")
	}

	t.Run("msgs-removed", func(t *testing.T) {
		t.Parallel()
		data := t.TempDir()
		run(t, data, 3)
		seq := marker(t, data)
		if err := os.RemoveAll(filepath.Join(stream(data), "msgs")); err != nil {
			t.Fatal(err)
		}
		refused(t, data, "the stream INFRACAST_AUTH ends at sequence 0", "recorded sequence "+seq)
		// Nothing was appended to the stream nats-server loaded as new.
		blocks, err := filepath.Glob(filepath.Join(stream(data), "msgs", "*.blk"))
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			if info, err := os.Stat(b); err != nil || info.Size() != 0 {
				t.Fatalf("%s was written: %v", b, err)
			}
		}
		if m := marker(t, data); m != seq {
			t.Fatalf("the refused start changed the marker: %s, was %s", m, seq)
		}
		// Starting afresh on purpose: the marker removed, as the refusal says.
		if err := os.Remove(filepath.Join(data, "stream-sequence")); err != nil {
			t.Fatal(err)
		}
		if out := run(t, data, 0); !strings.Contains(out, adminCreated) {
			t.Fatalf("no fresh start without the marker:\n%s", out)
		}
	})
	t.Run("jetstream-removed", func(t *testing.T) {
		t.Parallel()
		data := t.TempDir()
		run(t, data, 1)
		seq := marker(t, data)
		if err := os.RemoveAll(filepath.Join(data, "jetstream")); err != nil {
			t.Fatal(err)
		}
		refused(t, data, "the stream INFRACAST_AUTH does not exist", "recorded sequence "+seq)
	})
	t.Run("older-jetstream", func(t *testing.T) {
		t.Parallel()
		data, backup := t.TempDir(), filepath.Join(t.TempDir(), "backup")
		run(t, data, 0)
		if err := os.CopyFS(backup, os.DirFS(data)); err != nil { // the stopped-copy backup (operations.md)
			t.Fatal(err)
		}
		old := marker(t, backup)
		run(t, data, 3)
		seq := marker(t, data)
		if seq == old {
			t.Fatalf("the marker did not move: %s", seq)
		}
		// Only jetstream/ put back from the backup: refused.
		if err := os.RemoveAll(filepath.Join(data, "jetstream")); err != nil {
			t.Fatal(err)
		}
		if err := os.CopyFS(filepath.Join(data, "jetstream"), os.DirFS(filepath.Join(backup, "jetstream"))); err != nil {
			t.Fatal(err)
		}
		refused(t, data, "the stream INFRACAST_AUTH ends at sequence "+old, "recorded sequence "+seq)
		// The whole folder restored, its marker with it: it starts on the
		// backup's state, with no new admin.
		restored := filepath.Join(t.TempDir(), "restored")
		if err := os.CopyFS(restored, os.DirFS(backup)); err != nil {
			t.Fatal(err)
		}
		if out := run(t, restored, 1); strings.Contains(out, adminCreated) {
			t.Fatalf("the restored folder started afresh:\n%s", out)
		}
	})
	t.Run("restart-and-upgrade", func(t *testing.T) {
		t.Parallel()
		data := t.TempDir()
		run(t, data, 1)
		first := marker(t, data)
		if out := run(t, data, 1); strings.Contains(out, adminCreated) {
			t.Fatalf("a restart started afresh:\n%s", out)
		}
		// A data folder of a build before the marker: no check, and the
		// marker is written.
		if err := os.Remove(filepath.Join(data, "stream-sequence")); err != nil {
			t.Fatal(err)
		}
		if out := run(t, data, 1); strings.Contains(out, adminCreated) {
			t.Fatalf("a data folder without a marker started afresh:\n%s", out)
		}
		if m := marker(t, data); m == first {
			t.Fatalf("the marker was not brought up: %s", m)
		}
	})
}

// TestBinaryRefusesASeqMarkItCannotRead: a stream-sequence marker the
// service's user may not read (left owned by root, the service running as
// nobody) refuses the start, and the refusal says to fix the file's owner
// and permissions — as for an unreadable file of jetstream/ — not to
// restore the data folder or remove the file: the file is sound, and
// removing it would drop the check (an outside check, 19r1). A damaged
// marker (here a folder in its place) keeps the restore-or-remove advice.
func TestBinaryRefusesASeqMarkItCannotRead(t *testing.T) {
	t.Parallel()
	bin, err := goBuild("../cmd/infracast-auth")
	if err != nil {
		t.Fatal(err)
	}
	// start runs the binary on data (prepared by the caller) and returns
	// what it printed, failing the test if it did not exit non-zero.
	start := func(t *testing.T, data string, prepare func(*exec.Cmd)) string {
		t.Helper()
		cmd := exec.Command(bin)
		prepare(cmd)
		p := startCommand(t, cmd, "INFRACAST_LISTEN="+freeAddr(t), "INFRACAST_DATA_DIR="+data, "INFRACAST_BOOTSTRAP_PASSWORD="+shippedAdminPassword)
		runErr, out := p.exited(t, 60*time.Second), p.output()
		if runErr == nil {
			t.Fatalf("exited 0:\n%s", out)
		}
		if strings.Contains(out, "bootstrap admin created") {
			t.Fatalf("started afresh:\n%s", out)
		}
		return out
	}

	t.Run("unreadable", func(t *testing.T) {
		data := t.TempDir()
		path := filepath.Join(data, "stream-sequence")
		if err := os.WriteFile(path, []byte("212\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out := start(t, data, func(cmd *exec.Cmd) { withoutAccessTo(t, cmd, data, path) })
		for _, w := range []string{path, "permission denied", "fix the owner and permissions of " + path} {
			if !strings.Contains(out, w) {
				t.Fatalf("the refusal does not say %q:\n%s", w, out)
			}
		}
		for _, w := range []string{"remove the file", "restore the data folder"} {
			if strings.Contains(out, w) {
				t.Fatalf("the refusal of a sound marker it may not read says %q:\n%s", w, out)
			}
		}
	})
	t.Run("damaged", func(t *testing.T) {
		data := t.TempDir()
		path := filepath.Join(data, "stream-sequence")
		if err := os.Mkdir(path, 0o700); err != nil {
			t.Fatal(err)
		}
		out := start(t, data, func(*exec.Cmd) {})
		for _, w := range []string{"restore the data folder from your backup", "remove the file " + path} {
			if !strings.Contains(out, w) {
				t.Fatalf("the refusal does not say %q:\n%s", w, out)
			}
		}
		if strings.Contains(out, "fix the owner") {
			t.Fatalf("a damaged marker's refusal says to fix the owner:\n%s", out)
		}
	})
}
