package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/infracast/auth/http/client"
	"github.com/infracast/auth/http/invisible"
)

// print writes v as JSON with -o json; else calls table.
func (a *app) print(v any, table func()) error {
	if a.output == "json" {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return err
		}
		_, err := a.stdout.Write(jsonShown(b.Bytes()))
		return err
	}
	table()
	return nil
}

// What the service answers is printed to a terminal, and some of it anyone
// may have written: a user agent (an anonymous failed login records one), a
// SCIM display name. A control character there acts on the terminal — C1's
// CSI and OSC (U+009B, U+009D) clear the screen or set its title in terminals
// that read UTF-8 controls — a tab forges a table's column, a direction
// override (U+202E) reorders what follows (an outside check, 18v). Such
// characters, and the others that show nothing of themselves, are printed as
// escapes: the console's HIDDEN set (http/console/src/ui.tsx), the C0
// controls and invisible.Rune's, which the CSV exports escape too.
func hidden(r rune) bool { return r < 0x20 || invisible.Rune(r) }

// shown is s for a table or a field: hidden characters as Go escapes
// (\t, \x1b, \u202e), as are bytes that are not UTF-8 (\xff).
func shown(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return hidden(r) || r == utf8.RuneError }) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case hidden(r) && r < 0x80:
			q := strconv.QuoteRune(r) // '\t', '\x1b', '\x7f'
			b.WriteString(q[1 : len(q)-1])
		case hidden(r) && r > 0xffff:
			fmt.Fprintf(&b, `\U%08x`, r)
		case hidden(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// jsonShown is JSON text with the hidden characters encoding/json leaves as
// they are (those from U+007F up) written as \u escapes: the same JSON.
func jsonShown(doc []byte) []byte {
	if !bytes.ContainsFunc(doc, func(r rune) bool { return r >= 0x7f && hidden(r) }) {
		return doc
	}
	var b bytes.Buffer
	for _, r := range string(doc) {
		if r >= 0x7f && hidden(r) {
			if r > 0xffff { // JSON escapes UTF-16: a surrogate pair
				r1, r2 := utf16.EncodeRune(r)
				fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
				continue
			}
			fmt.Fprintf(&b, `\u%04x`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.Bytes()
}

// more tells, on stderr, how to get the next page when there is one.
func (a *app) more(nextCursor string) {
	if nextCursor != "" {
		fmt.Fprintf(a.stderr, "More: --cursor %s\n", nextCursor)
	}
}

// table prints rows under a header, aligned.
func (a *app) table(header []string, rows [][]string) {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = shown(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	_ = tw.Flush() // a write error to stdout has nowhere to be reported
}

// fields prints name: value lines, aligned.
func (a *app) fields(kv ...string) {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 1, ' ', 0)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[i], shown(kv[i+1]))
	}
	_ = tw.Flush() // a write error to stdout has nowhere to be reported
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// atMoment is the moment an access answer is for, to the nanosecond the
// service answered it: cut to the second, two answers a few milliseconds
// apart — before and after a revocation — were headed with the same moment
// and said different things (outside check 17n).
func atMoment(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func tsp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return ts(*t)
}

func list(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}

func or(s, dflt string) string {
	if s == "" {
		return dflt
	}
	return s
}

func tenantRoles(trs []client.TenantRole) string {
	var out []string
	for _, t := range trs {
		out = append(out, t.ID+"="+t.Role)
	}
	sort.Strings(out)
	return list(out)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (a *app) userRows(users []client.User) {
	var rows [][]string
	for _, u := range users {
		rows = append(rows, []string{u.ID, u.Username, or(u.Email, "-"), list(u.Roles), withOthers(tenantRoles(u.Tenants), u.OtherTenants), yesNo(u.Active), ts(u.CreatedAt)})
	}
	a.table([]string{"ID", "USERNAME", "EMAIL", "ROLES", "TENANTS", "ACTIVE", "CREATED"}, rows)
}

func (a *app) keyRows(keys []client.APIKey) {
	var rows [][]string
	for _, k := range keys {
		state := "active"
		switch {
		case k.Revoked:
			state = "revoked"
		case k.ExpiresAt != nil && !k.ExpiresAt.After(time.Now()):
			state = "expired"
		}
		rows = append(rows, []string{k.ID, k.Name, withOthers(list(k.Tenants), k.OtherTenants), list(k.Permissions), state, tsp(k.ExpiresAt), tsp(k.LastUsedAt)})
	}
	a.table([]string{"ID", "NAME", "TENANTS", "PERMISSIONS", "STATE", "EXPIRES", "LAST USED"}, rows)
}

// withOthers is a tenants cell, saying when the service left tenants the
// caller does not administer out of it (other_tenants): a tenant admin
// then may not deactivate the user, or rotate or revoke the key, and
// learned why from a bare 403 only (re-check 17r3).
func withOthers(cell string, others bool) string {
	if !others {
		return cell
	}
	if cell == "-" || cell == "" {
		return "(others not shown)"
	}
	return cell + " (+ others not shown)"
}

func (a *app) sessionRows(ss []client.Session) {
	var rows [][]string
	for _, s := range ss {
		rows = append(rows, []string{s.ID, ts(s.StartedAt), tsp(s.LastRefreshedAt), ts(s.ExpiresAt), or(s.Method, "-"), or(s.IP, "-"), or(s.UserAgent, "-"), or(s.Tenant, "-")})
	}
	a.table([]string{"ID", "STARTED", "REFRESHED", "EXPIRES", "METHOD", "IP", "USER AGENT", "TENANT"}, rows)
}
