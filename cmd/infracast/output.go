package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/infracast/auth/http/client"
)

// print writes v as JSON with -o json; else calls table.
func (a *app) print(v any, table func()) error {
	if a.output == "json" {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	}
	table()
	return nil
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
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	_ = tw.Flush() // a write error to stdout has nowhere to be reported
}

// fields prints name: value lines, aligned.
func (a *app) fields(kv ...string) {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 1, ' ', 0)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[i], kv[i+1])
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
