package tests

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestREADMEWalkthroughAsWritten follows the README's walkthrough in order,
// as a new user would: the service started by the walkthrough's own first
// command (the built binary, its shipped defaults, nothing else but another
// port and data folder), then every command of the walkthrough run by bash
// exactly as written (only the base URL changed), each answer compared with
// the response the README shows after it ("# …" lines of a sh block, or the
// lines after a "$ curl" line); its infracast commands run the CLI built from
// this tree (cmd/infracast). Every variable a command uses is set by an
// earlier command of the README (set -u: an unset one fails the script).
//
// Responses are compared after making run-specific values alike (IDs, times,
// tokens, keys); "…" in the README stands for anything.
func TestREADMEWalkthroughAsWritten(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			missingTool(t, tool)
		}
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	steps := walkthroughSteps(t, string(readme))
	if len(steps) < 20 {
		t.Fatalf("found only %d commands in the walkthrough", len(steps))
	}

	// The first command starts the service.
	start := steps[0].command
	m := regexp.MustCompile(`^INFRACAST_BOOTSTRAP_PASSWORD='([^']+)' go run ./cmd/infracast-auth$`).FindStringSubmatch(start)
	if m == nil {
		t.Fatalf("the walkthrough no longer starts with the command this test knows: %q", start)
	}
	addr := freeAddr(t)
	base := "http://" + addr
	p := startBinary(t, "INFRACAST_BOOTSTRAP_PASSWORD="+m[1], "INFRACAST_LISTEN="+addr, "INFRACAST_DATA_DIR="+t.TempDir())
	Eventually(t, 60*time.Second, func() error {
		res, err := http.Get(base + "/ready")
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return Errorf("/ready %d", res.StatusCode)
		}
		return nil
	})

	// One bash script, so variables carry from one command to the next.
	dir := t.TempDir()
	var script strings.Builder
	script.WriteString("set -u\n")
	for i, s := range steps[1:] {
		cmd := strings.ReplaceAll(s.command, "http://localhost:8080", base)
		fmt.Fprintf(&script, "echo '<<<%d>>>'\n{ %s\n} > %s/out 2> %s/err\ncat %s/out\n", i+1, cmd, dir, dir, dir)
	}
	fmt.Fprintf(&script, "echo '<<<%d>>>'\n", len(steps))
	// The walkthrough's infracast commands run the CLI built from this tree,
	// first on PATH, with a config folder of its own (login writes there).
	cli, err := goBuild("../cmd/infracast")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Env = binaryEnv("PATH="+filepath.Dir(cli)+string(os.PathListSeparator)+os.Getenv("PATH"), "XDG_CONFIG_HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the walkthrough script failed: %v\n%s", err, out)
	}
	outputs := splitOutputs(string(out), len(steps))
	for i, s := range steps[1:] {
		got := outputs[i+1]
		for _, problem := range s.check(got) {
			t.Errorf("README line %d: %s\n  command: %s\n  answer:  %s", s.line, problem, s.command, strings.TrimSpace(got))
		}
	}
	if t.Failed() {
		t.Logf("service output:\n%s", p.output())
	}
}

// walkthroughStep is one command of the README and the response shown after it.
type walkthroughStep struct {
	line     int
	command  string
	expected []string
}

// walkthroughSteps reads the commands of the README from "## Walkthrough" to
// the next "## " section: each command of a sh block with the "# " lines
// after it, and each "$ " line of a plain block with the lines after it.
func walkthroughSteps(t *testing.T, readme string) []walkthroughStep {
	t.Helper()
	lines := strings.Split(readme, "\n")
	var steps []walkthroughStep
	in, kind := false, ""
	var cur *walkthroughStep
	flush := func() {
		if cur != nil {
			steps = append(steps, *cur)
			cur = nil
		}
	}
	section := false
	for n, l := range lines {
		if strings.HasPrefix(l, "## ") {
			if section {
				break
			}
			section = l == "## Walkthrough"
			continue
		}
		if !section {
			continue
		}
		if strings.HasPrefix(l, "```") {
			if in {
				flush()
				in = false
				continue
			}
			in, kind = true, strings.TrimPrefix(l, "```")
			continue
		}
		if !in {
			continue
		}
		switch {
		case kind == "sh":
			switch {
			case strings.HasPrefix(l, "#"):
				if cur != nil {
					cur.expected = append(cur.expected, strings.TrimSpace(strings.TrimPrefix(l, "#")))
				}
			case strings.TrimSpace(l) == "":
				flush()
			case cur != nil && len(cur.expected) == 0:
				cur.command += "\n" + l // one command until its response or a blank line
			default:
				flush()
				cur = &walkthroughStep{line: n + 1, command: l}
			}
		case kind == "":
			switch {
			case strings.HasPrefix(l, "$ "):
				flush()
				cur = &walkthroughStep{line: n + 1, command: strings.TrimPrefix(l, "$ ")}
			case cur != nil && len(cur.expected) == 0 && strings.HasSuffix(cur.command, "\\"):
				cur.command += "\n" + l
			case cur != nil && strings.TrimSpace(l) != "":
				cur.expected = append(cur.expected, strings.TrimSpace(l))
			}
		}
	}
	flush()
	return steps
}

func splitOutputs(out string, n int) []string {
	res := make([]string, n)
	for i := 1; i < n; i++ {
		start := strings.Index(out, fmt.Sprintf("<<<%d>>>\n", i))
		end := strings.Index(out, fmt.Sprintf("<<<%d>>>\n", i+1))
		if start >= 0 && end > start {
			res[i] = out[start+len(fmt.Sprintf("<<<%d>>>\n", i)) : end]
		}
	}
	return res
}

var (
	statusLine = regexp.MustCompile(`^HTTP/1\.1 (\d{3})`)
	headerLine = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*: `)
	// What differs from run to run, made alike before comparing.
	runSpecific = []struct {
		re   *regexp.Regexp
		repl string
	}{
		{regexp.MustCompile(`eyJ[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]*){0,2}`), "<JWT>"},
		{regexp.MustCompile(`ic_(live|test)_[A-Za-z0-9]+`), "<KEY>"},
		{regexp.MustCompile(`\b(user|key|sess|tok|sk)-[0-9A-Z]{2,26}`), "<ID>"},
		{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`), "<TIME>"},
		{regexp.MustCompile(`"(refresh_token|x)":"[^"]*"`), `"$1":"<SECRET>"`},
		{regexp.MustCompile(`"applied_sequence":\d+`), `"applied_sequence":<N>`},
	}
)

func alike(s string) string {
	for _, r := range runSpecific {
		s = r.re.ReplaceAllString(s, r.repl)
	}
	return s
}

// check compares an answer with the response the README shows: its status
// line, each header line shown, and its body, in which "…" stands for
// anything (and "(…)" lines are prose).
func (s walkthroughStep) check(got string) []string {
	var problems []string
	gotLines := strings.Split(strings.ReplaceAll(got, "\r\n", "\n"), "\n")
	var body []string
	for _, e := range s.expected {
		switch {
		case strings.HasPrefix(e, "("):
		case statusLine.MatchString(e):
			want := statusLine.FindString(e)
			if len(gotLines) == 0 || !strings.HasPrefix(gotLines[0], want) {
				problems = append(problems, fmt.Sprintf("status: want %q", want))
			}
		case headerLine.MatchString(e) && !strings.HasPrefix(e, "{"):
			found := false
			for _, g := range gotLines {
				if strings.EqualFold(alike(strings.TrimSpace(g)), alike(e)) {
					found = true
				}
			}
			if !found {
				problems = append(problems, fmt.Sprintf("header %q missing", e))
			}
		default:
			body = append(body, e)
		}
	}
	if len(body) == 0 {
		return problems
	}
	// The answer's body: after the headers with curl -i, else all of it.
	gotBody := got
	if len(gotLines) > 0 && statusLine.MatchString(gotLines[0]) {
		if i := strings.Index(strings.ReplaceAll(got, "\r\n", "\n"), "\n\n"); i >= 0 {
			gotBody = strings.ReplaceAll(got, "\r\n", "\n")[i+2:]
		}
	}
	gotBody = alike(strings.Join(strings.Fields(gotBody), ""))
	want := alike(strings.Join(strings.Fields(strings.Join(body, "")), ""))
	// In order, each piece between two "…".
	rest := gotBody
	for i, piece := range strings.Split(want, "…") {
		piece = strings.TrimSuffix(strings.TrimPrefix(piece, ","), ",")
		if piece == "" {
			continue
		}
		j := strings.Index(rest, piece)
		if j < 0 || (i == 0 && !strings.HasPrefix(want, "…") && j != 0) {
			problems = append(problems, fmt.Sprintf("body: want %s (piece %q not found in order)", strings.Join(body, " "), piece))
			break
		}
		rest = rest[j+len(piece):]
	}
	return problems
}
