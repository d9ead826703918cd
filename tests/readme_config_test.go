package tests

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// helpSetting is one setting as the binary's -h shows it: built from the
// command's table of settings (cmd/infracast-auth), or from any flag added
// beside it.
type helpSetting struct {
	flag, env, def, usage string
}

var (
	helpFlagLine = regexp.MustCompile(`^  -([a-z0-9-]+)(?: \w+)?$`)
	helpDefault  = regexp.MustCompile(` \(default ("(?:[^"\\]|\\.)*"|\S+)\)$`)
	helpEnv      = regexp.MustCompile(`\((INFRACAST_[A-Z0-9_]+)\)`)
)

// parseHelp reads the settings out of the flag package's -h output:
//
//	-name string
//	    usage (INFRACAST_NAME) (default "value")
func parseHelp(t *testing.T, out string) []helpSetting {
	t.Helper()
	var settings []helpSetting
	for _, line := range strings.Split(out, "\n") {
		if m := helpFlagLine.FindStringSubmatch(line); m != nil {
			settings = append(settings, helpSetting{flag: m[1]})
			continue
		}
		if len(settings) == 0 || !strings.HasPrefix(line, "    \t") {
			continue
		}
		s := &settings[len(settings)-1]
		usage := strings.TrimPrefix(line, "    \t")
		if m := helpDefault.FindStringSubmatch(usage); m != nil {
			s.def = m[1]
			if v, err := strconv.Unquote(m[1]); err == nil {
				s.def = v
			}
			usage = strings.TrimSuffix(usage, m[0])
		}
		if m := helpEnv.FindAllStringSubmatch(usage, -1); m != nil {
			s.env = m[len(m)-1][1]
		}
		s.usage = strings.TrimSpace(s.usage + " " + usage)
	}
	if len(settings) < 10 {
		t.Fatalf("-h shows %d settings; is this the flag package's output?\n%s", len(settings), out)
	}
	return settings
}

// readmeSetting is one row of the README's configuration table.
type readmeSetting struct {
	variable, flag, def, rawDef string
	line                        int
}

var backticked = regexp.MustCompile("`([^`]*)`")

// readmeSettings reads the table under "## Configuration" (Variable | Flag |
// Default | Meaning). A default is the first `code` in its cell; a cell that
// is empty or starts with a parenthesis — *(generated)*, (empty: CORS off)
// — documents an empty default; a remark after the code, like `168h` (7
// days), is for the reader.
func readmeSettings(t *testing.T) ([]readmeSetting, []string) {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows []readmeSetting
	var problems []string
	in, table := false, false
	for i, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			in = line == "## Configuration"
			table = false
		case in && strings.HasPrefix(line, "| Variable | Flag | Default |"):
			table = true
		case table && !strings.HasPrefix(line, "|"):
			table = false
		case table && !strings.HasPrefix(line, "|---"):
			cells := strings.Split(line, "|")
			if len(cells) < 6 {
				problems = append(problems, "README.md:"+strconv.Itoa(i+1)+": not a row of four cells: "+line)
				continue
			}
			r := readmeSetting{line: i + 1, rawDef: strings.TrimSpace(cells[3])}
			r.variable = strings.Trim(strings.TrimSpace(cells[1]), "`")
			r.flag = strings.TrimPrefix(strings.Trim(strings.TrimSpace(cells[2]), "`"), "-")
			switch d := r.rawDef; {
			case d == "" || strings.HasPrefix(d, "(") || strings.HasPrefix(d, "*("):
			case backticked.MatchString(d):
				r.def = backticked.FindStringSubmatch(d)[1]
			default:
				problems = append(problems, "README.md:"+strconv.Itoa(r.line)+": "+r.variable+": default "+strconv.Quote(d)+" is neither `code` nor (a remark)")
			}
			rows = append(rows, r)
		}
	}
	if len(rows) < 10 {
		t.Fatalf("README.md: found %d rows in the Configuration table", len(rows))
	}
	return rows, problems
}

// sameDefault compares a default as the binary shows it with the README's:
// durations by value (1h = 1h0m0s, 168h = 168h0m0s).
func sameDefault(binary, readme string) bool {
	if binary == readme {
		return true
	}
	b, errB := time.ParseDuration(binary)
	r, errR := time.ParseDuration(readme)
	return errB == nil && errR == nil && b == r
}

// TestReadmeConfigurationTable: the README's configuration table is the
// binary's: every setting -h shows is a row with its variable, its flag and
// its default, and every row is a setting that exists. Every mismatch is
// listed at once.
func TestReadmeConfigurationTable(t *testing.T) {
	out, _ := runBinary(t, []string{"-h"})
	settings := parseHelp(t, out)
	rows, problems := readmeSettings(t)

	byVariable := map[string]readmeSetting{}
	for _, r := range rows {
		if _, dup := byVariable[r.variable]; dup {
			problems = append(problems, "README.md:"+strconv.Itoa(r.line)+": "+r.variable+" has a second row")
		}
		byVariable[r.variable] = r
	}
	known := map[string]bool{}
	for _, s := range settings {
		if s.flag == "h" || s.flag == "help" {
			continue
		}
		env := "INFRACAST_" + strings.ToUpper(strings.ReplaceAll(s.flag, "-", "_"))
		known[env] = true
		if s.env != env {
			problems = append(problems, "binary: -"+s.flag+" names the variable "+strconv.Quote(s.env)+" in -h, want "+env+" (flag and variable share a name)")
		}
		r, ok := byVariable[env]
		if !ok {
			problems = append(problems, "README.md: no row for "+env+" (-"+s.flag+", default "+strconv.Quote(s.def)+")")
			continue
		}
		if r.flag != s.flag {
			problems = append(problems, "README.md:"+strconv.Itoa(r.line)+": "+env+": flag -"+r.flag+", the binary's is -"+s.flag)
		}
		if !sameDefault(s.def, r.def) {
			problems = append(problems, "README.md:"+strconv.Itoa(r.line)+": "+env+": default "+r.rawDef+", the binary's is "+strconv.Quote(s.def))
		}
	}
	for _, r := range rows {
		if !known[r.variable] {
			problems = append(problems, "README.md:"+strconv.Itoa(r.line)+": "+r.variable+" (-"+r.flag+") is not a setting of the binary")
		}
	}
	if len(problems) > 0 {
		t.Fatalf("the README's configuration table and the binary disagree (%d):\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
}
