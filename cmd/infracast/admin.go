package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/infracast/auth/http/client"
)

// ---------------------------------------------------------------- signing keys

func (a *app) signingKeysCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "signing-keys",
		Short: "Access-token signing keys: list, add (EdDSA for offline verification), activate, retire",
	}
	printKeys := func(ks []client.SigningKey, v any) error {
		return a.print(v, func() {
			var rows [][]string
			for _, k := range ks {
				rows = append(rows, []string{k.ID, k.Algorithm, k.Source, yesNo(k.Signing), yesNo(k.Pending), yesNo(k.Retired), tsp(k.AddedAt), tsp(k.RetiredAt)})
			}
			a.table([]string{"ID", "ALGORITHM", "SOURCE", "SIGNING", "PENDING", "RETIRED", "ADDED", "RETIRED AT"}, rows)
		})
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the signing keys (never their key material)",
		Args:  cobra.NoArgs,
		RunE: wrap(func(cmd *cobra.Command, _ []string) error {
			c, err := a.authed()
			if err != nil {
				return err
			}
			ks, err := c.ListSigningKeys(cmd.Context())
			if err != nil {
				return err
			}
			return printKeys(ks, map[string]any{"signing_keys": ks})
		}),
	}
	var alg string
	var pending, addFallBack, activateFallBack bool
	add := &cobra.Command{
		Use:   "add [--algorithm EdDSA|HS256] [--pending] [--fall-back-to-hs256]",
		Short: "Add a signing key; it signs new tokens from now on, or with --pending once activated (EdDSA: published in the JWKS at once)",
		Args:  cobra.NoArgs,
		RunE: wrap(func(cmd *cobra.Command, _ []string) error {
			if alg != "EdDSA" && alg != "HS256" {
				return usagef("--algorithm %q: want EdDSA or HS256", alg)
			}
			c, err := a.authed()
			if err != nil {
				return err
			}
			add := c.AddSigningKey
			switch {
			case pending:
				add = c.AddPendingSigningKey
			case addFallBack:
				add = c.AddSigningKeyFallingBackToHS256
			}
			k, err := add(cmd.Context(), alg)
			if err != nil {
				return err
			}
			return printKeys([]client.SigningKey{*k}, k)
		}),
	}
	add.Flags().StringVar(&alg, "algorithm", "EdDSA", "EdDSA (verifiable offline with the JWKS) or HS256")
	add.Flags().BoolVar(&pending, "pending", false, "publish the key without signing: activate it once offline verifiers have fetched the JWKS (5 min)")
	add.Flags().BoolVar(&addFallBack, "fall-back-to-hs256", false, "add an HS256 key that signs while an EdDSA key signs all the same: tokens are HS256 again, which offline verifiers refuse")
	activate := &cobra.Command{
		Use:   "activate KEY-ID [--fall-back-to-hs256]",
		Short: "Make a key the one that signs new tokens (a --pending one); retire the old one an access-token lifetime later",
		Args:  cobra.ExactArgs(1),
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			c, err := a.authed()
			if err != nil {
				return err
			}
			activate := c.ActivateSigningKey
			if activateFallBack {
				activate = c.ActivateSigningKeyFallingBackToHS256
			}
			k, err := activate(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printKeys([]client.SigningKey{*k}, k)
		}),
	}
	activate.Flags().BoolVar(&activateFallBack, "fall-back-to-hs256", false, "activate an HS256 key while an EdDSA key signs all the same: tokens are HS256 again, which offline verifiers refuse")
	var fallBack bool
	retire := &cobra.Command{
		Use:   "retire KEY-ID [--fall-back-to-hs256]",
		Short: "Retire a signing key: the tokens it signed stop verifying (offline verifiers: at their next JWKS fetch)",
		Args:  cobra.ExactArgs(1),
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			c, err := a.authed()
			if err != nil {
				return err
			}
			retire := c.RetireSigningKey
			if fallBack {
				retire = c.RetireSigningKeyFallingBackToHS256
			}
			k, err := retire(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printKeys([]client.SigningKey{*k}, k)
		}),
	}
	retire.Flags().BoolVar(&fallBack, "fall-back-to-hs256", false, "retire the last EdDSA key that signs all the same: tokens are HS256 again, which offline verifiers refuse")
	group(cmd)
	cmd.AddCommand(list, add, activate, retire)
	return cmd
}

// ---------------------------------------------------------------- audit

func (a *app) auditCommand() *cobra.Command {
	var q client.AuditQuery
	var since, until, order string
	var limit int
	var follow bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "audit [--subject ID] [--type TYPE] [--since 24h] [--follow]",
		Short: "Query the audit log, or tail it with --follow",
		Long: `Query the audit log: up to --limit events matching the filters, oldest first
(--order desc: newest first). With --follow, the last --limit events matching,
then every new one as it happens, until interrupted (with -o json: one event per
line). While the service cannot be reached (a network error, a restart, 429, 502,
503, 504) --follow says so on stderr and tries again, backing off up to 30s, from
where it was: no event is missed. It ends on 401 (the login refused), 403, 404
or any other error. --since and --until take an RFC 3339 time or a duration back from
now (24h, 7d).`,
		Args: cobra.NoArgs,
		RunE: wrap(func(cmd *cobra.Command, _ []string) error {
			var err error
			if q.Since, err = parseMoment("since", since, -1); err != nil {
				return err
			}
			if q.Until, err = parseMoment("until", until, -1); err != nil {
				return err
			}
			if order != "asc" && order != "desc" {
				return usagef("--order %q: want asc or desc", order)
			}
			if limit < 0 {
				return usagef("--limit %d: want 0 or more", limit)
			}
			if interval <= 0 {
				return usagef("--interval %s: want a duration above 0, e.g. 2s", interval)
			}
			if follow && (order == "desc" || until != "") {
				return usagef("--follow goes forward in time: it takes neither --order desc nor --until")
			}
			q.Desc = order == "desc"
			// A user ID in any letter case, as the USER arguments take it:
			// the service's filters compare IDs as written (re-check 17r5:
			// --subject user-01m98… showed an empty log).
			for _, id := range []*string{&q.Subject, &q.Actor} {
				if canonical, ok := client.UserID(*id); ok {
					*id = canonical
				}
			}
			c, err := a.authed()
			if err != nil {
				return err
			}
			if follow {
				return a.followAudit(cmd.Context(), c, q, limit, interval)
			}
			page, err := a.auditUpTo(cmd.Context(), c, q, limit)
			if err != nil {
				return err
			}
			return a.print(page, func() { a.auditTable(page.Events) })
		}),
	}
	f := cmd.Flags()
	f.StringVar(&q.Tenant, "tenant", "", "events that concern this tenant")
	f.StringVar(&q.Actor, "actor", "", "events caused by this user or key ID")
	f.StringVar(&q.Subject, "subject", "", "events of this user, key, session or provider ID")
	f.StringVar(&q.Type, "type", "", `an event type (user.created), or a prefix ending in "." (apikey.)`)
	f.StringVar(&since, "since", "", "from this moment (inclusive)")
	f.StringVar(&until, "until", "", "until this moment (exclusive)")
	f.StringVar(&q.Result, "result", "", "logins only: succeeded or failed")
	f.StringVar(&order, "order", "asc", "asc (oldest first) or desc (newest first)")
	f.IntVar(&limit, "limit", 100, "at most this many events (0: all)")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new events as they happen")
	f.DurationVar(&interval, "interval", 2*time.Second, "with --follow: how often to ask for new events")
	return cmd
}

// auditUpTo reads pages until limit events (0: all) or the end.
func (a *app) auditUpTo(ctx context.Context, c *client.Client, q client.AuditQuery, limit int) (*client.AuditPage, error) {
	out := &client.AuditPage{Events: []client.AuditEvent{}}
	for {
		q.Limit = 1000
		if limit > 0 {
			q.Limit = min(1000, limit-len(out.Events))
		}
		page, err := c.AuditEvents(ctx, q)
		if err != nil {
			return nil, err
		}
		out.Events = append(out.Events, page.Events...)
		out.NextCursor = page.NextCursor
		if page.NextCursor == "" || (limit > 0 && len(out.Events) >= limit) {
			return out, nil
		}
		q.Cursor = page.NextCursor
	}
}

func (a *app) followAudit(ctx context.Context, c *client.Client, q client.AuditQuery, last int, interval time.Duration) error {
	// The last events first (newest-first, shown oldest first), then on.
	tail := q
	tail.Desc = true
	var from uint64
	var fromCursor string // the newest event's own cursor (it names the event)
	newest := func(e client.AuditEvent) {
		if e.Sequence > from {
			from, fromCursor = e.Sequence, e.Cursor
		}
	}
	if last > 0 {
		page, err := a.auditUpTo(ctx, c, tail, last)
		if err != nil {
			return err
		}
		slices.Reverse(page.Events)
		if a.output != "json" {
			fmt.Fprintf(a.stdout, "%-8s %-30s %-26s %-36s %-36s %s\n", "SEQ", "TIME", "TYPE", "ACTOR", "SUBJECT", "TENANTS")
		}
		for _, e := range page.Events {
			a.auditLine(e)
			newest(e)
		}
	} else {
		// Nothing before now: start after the newest event.
		tail.Limit = 1
		page, err := c.AuditEvents(ctx, tail)
		if err != nil {
			return err
		}
		if len(page.Events) > 0 {
			newest(page.Events[0])
		}
	}
	switch {
	case fromCursor != "":
		q.Cursor = fromCursor
	case from > 0: // a service from before events' cursors
		q.Cursor = client.AuditCursorAfter(from)
	}
	// A network error, a restart of the service, a 429, 502, 503 or 504 does
	// not end it (outside check 15b: the first one did, exit 1): the client
	// tries again from the same cursor, and stderr says so once, and once
	// more when it resumed.
	err := c.FollowAudit(ctx, q, interval, func(e client.AuditEvent) error {
		a.auditLine(e)
		return nil
	}, client.OnFollowInterrupted(func(err error, _ time.Duration) {
		_, msg := classify(runErr{err})
		fmt.Fprintf(a.stderr, "infracast: audit --follow: %s; trying again until the service answers (no event is missed)\n", oneLine(msg))
	}), client.OnFollowResumed(func() {
		fmt.Fprintln(a.stderr, "infracast: audit --follow: the service answers again; following on")
	}))
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // interrupted: the normal end of --follow
	}
	return err
}

// auditLine prints one event as it comes: a JSON line, or a table row.
func (a *app) auditLine(e client.AuditEvent) {
	if a.output == "json" {
		b, err := json.Marshal(e)
		if err != nil {
			fmt.Fprintf(a.stderr, "event %d: %v\n", e.Sequence, err)
			return
		}
		fmt.Fprintf(a.stdout, "%s\n", jsonShown(b))
		return
	}
	fmt.Fprintf(a.stdout, "%-8d %-30s %-26s %-36s %-36s %s\n", e.Sequence, e.Time.UTC().Format(time.RFC3339Nano), shown(e.Type), shown(actor(e.Actor)), shown(e.AggregateID), shown(list(e.Tenants)))
}

func actor(x client.Actor) string {
	if x.ID == "" {
		return x.Type
	}
	return x.Type + ":" + x.ID
}

func (a *app) auditTable(es []client.AuditEvent) {
	var rows [][]string
	for _, e := range es {
		rows = append(rows, []string{fmt.Sprint(e.Sequence), e.Time.UTC().Format(time.RFC3339Nano), e.Type, actor(e.Actor), e.AggregateID, list(e.Tenants)})
	}
	a.table([]string{"SEQ", "TIME", "TYPE", "ACTOR", "SUBJECT", "TENANTS"}, rows)
}

// ---------------------------------------------------------------- access

func (a *app) accessCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "access",
		Short: "Who had access when: a tenant's principals, a user's or key's grants, a credential's state",
	}
	var at string
	cmd.PersistentFlags().StringVar(&at, "at", "", "the moment: an RFC 3339 time or a duration back from now (default now)")
	moment := func() (time.Time, error) { return parseMoment("at", at, -1) }

	var permission string
	tenant := &cobra.Command{
		Use:   "tenant TENANT [--permission PERMISSION] [--at TIME]",
		Short: "Every principal with access to a tenant (holding PERMISSION), and why",
		Args:  cobra.ExactArgs(1),
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			t, err := moment()
			if err != nil {
				return err
			}
			c, err := a.authed()
			if err != nil {
				return err
			}
			acc, err := c.TenantAccess(cmd.Context(), args[0], permission, t)
			if err != nil {
				return err
			}
			return a.print(acc, func() {
				var rows [][]string
				for _, p := range acc.Principals {
					for _, g := range p.Grants {
						rows = append(rows, []string{p.Type, p.ID, p.Name, list(g.Permissions), via(g), grantedBy(g.GrantedBy)})
					}
				}
				fmt.Fprintf(a.stdout, "Access to %s at %s%s:\n", acc.Tenant, atMoment(acc.At), map[bool]string{true: " with " + acc.Permission}[acc.Permission != ""])
				a.table([]string{"TYPE", "ID", "NAME", "PERMISSIONS", "VIA", "GRANTED BY"}, rows)
			})
		}),
	}
	tenant.Flags().StringVar(&permission, "permission", "", "only the principals holding this permission")

	principal := func(use, short string, get func(ctx context.Context, c *client.Client, id string, at time.Time) (*client.PrincipalAccess, error)) *cobra.Command {
		return &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: wrap(func(cmd *cobra.Command, args []string) error {
				t, err := moment()
				if err != nil {
					return err
				}
				c, err := a.authed()
				if err != nil {
					return err
				}
				acc, err := get(cmd.Context(), c, args[0], t)
				if err != nil {
					return err
				}
				return a.print(acc, func() {
					var rows [][]string
					for _, t := range acc.Tenants {
						for _, g := range t.Grants {
							rows = append(rows, []string{t.ID, list(g.Permissions), via(g), grantedBy(g.GrantedBy)})
						}
					}
					fmt.Fprintf(a.stdout, "Access of %s (%s) at %s:\n", acc.Name, acc.ID, atMoment(acc.At))
					a.table([]string{"TENANT", "PERMISSIONS", "VIA", "GRANTED BY"}, rows)
				})
			}),
		}
	}
	user := principal("user USER [--at TIME]", "What a user could do in each tenant, and why",
		func(ctx context.Context, c *client.Client, arg string, at time.Time) (*client.PrincipalAccess, error) {
			id, err := a.userID(ctx, c, arg)
			if err != nil {
				return nil, err
			}
			return c.UserAccess(ctx, id, at)
		})
	key := principal("key KEY-ID [--at TIME]", "What an API key could do in each tenant, and why",
		func(ctx context.Context, c *client.Client, id string, at time.Time) (*client.PrincipalAccess, error) {
			return c.APIKeyAccess(ctx, id, at)
		})

	check := &cobra.Command{
		Use:   "check [--at TIME]",
		Short: "Whether a token or API key was usable at a moment, and if not why and since when",
		Long: `Whether one credential (an access token, a refresh token or an API key) was
usable at a moment. The credential is read from INFRACAST_CREDENTIAL, the terminal
(without echo) or standard input, never from the command line.`,
		Args: cobra.NoArgs,
		RunE: wrap(func(cmd *cobra.Command, _ []string) error {
			t, err := moment()
			if err != nil {
				return err
			}
			c, err := a.authed()
			if err != nil {
				return err
			}
			cred, err := a.secret("INFRACAST_CREDENTIAL", "Token or API key")
			if err != nil {
				return err
			}
			req := client.CredentialCheckRequest{Token: cred, At: t}
			if strings.HasPrefix(cred, "ic_") {
				req = client.CredentialCheckRequest{Key: cred, At: t}
			}
			res, err := c.CheckCredential(cmd.Context(), req)
			if err != nil {
				return err
			}
			return a.print(res, func() {
				kv := []string{"kind", res.Kind, "usable", yesNo(res.Usable), "at", ts(res.At)}
				if res.Reason != "" {
					kv = append(kv, "reason", res.Reason)
				}
				if res.Since != nil {
					kv = append(kv, "since", ts(res.Since.Time)+" "+res.Since.Type)
				}
				if res.Subject != nil {
					kv = append(kv, "subject", actor(*res.Subject))
				}
				a.fields(kv...)
				for _, n := range res.Notes {
					fmt.Fprintln(a.stdout, "note: "+n)
				}
			})
		}),
	}
	group(cmd)
	cmd.AddCommand(tenant, user, key, check)
	return cmd
}

func via(g client.Grant) string {
	if g.Role != "" {
		return g.Via + ":" + g.Role
	}
	return g.Via
}

func grantedBy(e client.EventRef) string {
	return fmt.Sprintf("%s #%d %s", e.Type, e.Sequence, ts(e.Time))
}
