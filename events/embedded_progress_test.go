package events

import (
	"strings"
	"testing"
	"time"
)

// TestEmbeddedProgressFollowsTheNotices: the progress told while the
// embedded NATS starts follows nats-server's notices, in its own words
// (v2.15.2): the stream under way, and after its messages are restored the
// stream whose consumers it recovers — not "starting" with no stream named,
// as re-check 20r5 saw for 6 s after the restore of INFRACAST_AUTH.
func TestEmbeddedProgressFollowsTheNotices(t *testing.T) {
	l := &fatalLogger{err: make(chan string, 1)}
	if s := l.progress(time.Second).String(); !strings.Contains(s, "is starting") {
		t.Fatalf("before any notice: %q", s)
	}
	l.Noticef("  Starting restore for stream '%s > %s'", "$G", StreamName)
	if s := l.progress(2 * time.Second).String(); !strings.Contains(s, "recovering the stream "+StreamName) {
		t.Fatalf("during the restore: %q", s)
	}
	l.Noticef("  Restored %s messages for stream '%s > %s' in %v", "6,000,000", "$G", StreamName, 19*time.Second)
	p := l.progress(25 * time.Second)
	if p.Recovering != "" || p.Restored != StreamName || p.Recovered != 1 {
		t.Fatalf("after the restore: %+v", p)
	}
	if s := p.String(); !strings.Contains(s, "restored the messages of the stream "+StreamName+" and recovers its consumers") {
		t.Fatalf("after the restore: %q", s)
	}
	l.Noticef("  Starting restore for stream '%s > %s'", "$G", "KV_other")
	if p := l.progress(26 * time.Second); p.Recovering != "KV_other" || p.Restored != "" {
		t.Fatalf("the next stream: %+v", p)
	}
}
