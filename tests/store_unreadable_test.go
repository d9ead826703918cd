package tests

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/infracast/auth/events/natstest"
)

// TestBinaryRefusesAStreamItCannotRead: a data folder with one message block
// the service's user cannot read is refused — the binary exits 1 naming the
// file, the stream's files are untouched and no admin is created. Before,
// nats-server deleted the stream it could not open, and the service started
// afresh with a new bootstrap admin (an outside check, 18r: chown root of
// one block, the service running as nobody). Run as root, the block goes to
// root (mode 0600) and the service runs as nobody; otherwise it is made
// mode 0000 for the test's own user.
func TestBinaryRefusesAStreamItCannotRead(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	addr := freeAddr(t)
	p := startBinary(t, "INFRACAST_LISTEN="+addr, "INFRACAST_DATA_DIR="+data, "INFRACAST_BOOTSTRAP_PASSWORD="+shippedAdminPassword)
	waitReady(t, "http://"+addr, p)
	p.stop(t)

	streamDir := filepath.Join(data, "jetstream", "jetstream", "$G", "streams", "INFRACAST_AUTH")
	blocks, err := filepath.Glob(filepath.Join(streamDir, "msgs", "*.blk"))
	if err != nil || len(blocks) == 0 {
		t.Fatalf("no message block in %s: %v", streamDir, err)
	}
	block := blocks[0]
	bin, err := goBuild("../cmd/infracast-auth")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	withoutAccessTo(t, cmd, data, block)
	before := natstest.Listing(t, streamDir)
	p = startCommand(t, cmd, "INFRACAST_LISTEN="+freeAddr(t), "INFRACAST_DATA_DIR="+data)
	err, out := p.exited(t, 60*time.Second), p.output()
	if err == nil {
		t.Fatalf("exited 0 on a stream it cannot read:\n%s", out)
	}
	if s := out; !strings.Contains(s, block) || !strings.Contains(s, "permission denied") || strings.Contains(s, "admin created") || strings.Contains(s, "created platform admin") {
		t.Fatalf("want an error naming %s (permission denied) and no admin created:\n%s", block, s)
	}
	if after := natstest.Listing(t, streamDir); after != before {
		t.Fatalf("the stream's files changed:\nbefore %s\nafter  %s", before, after)
	}
}

// withoutAccessTo makes cmd (the service's binary) run without access to the
// file unreadable in its data folder data, as the outside checks did. Run as
// root, the folder goes to nobody but for that file (root's, mode 0600), and
// cmd runs as nobody from a copy of its binary that nobody may reach;
// otherwise the file is made mode 0000 for the test's own user. The file's
// mode is restored at the end for the cleanup of t.TempDir.
func withoutAccessTo(t *testing.T, cmd *exec.Cmd, data, unreadable string) {
	t.Helper()
	t.Cleanup(func() {
		if err := os.Chmod(unreadable, 0o600); err != nil && !os.IsNotExist(err) {
			t.Error(err)
		}
	})
	if os.Getuid() != 0 {
		if err := os.Chmod(unreadable, 0); err != nil {
			t.Fatal(err)
		}
		return
	}
	const nobody = 65534
	// The service as nobody: its binary and folder reachable by it,
	// the folder its own but for the one file.
	own := t.TempDir()
	copied := filepath.Join(own, "infracast-auth")
	b, err := os.ReadFile(cmd.Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copied, b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{own, filepath.Dir(own), filepath.Dir(data)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := filepath.WalkDir(data, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, nobody, nobody)
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(unreadable, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(unreadable, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd.Path = copied
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
}
