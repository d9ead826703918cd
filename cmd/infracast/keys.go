package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/infracast/auth/http/client"
)

// parseDuration is time.ParseDuration that also takes days ("90d").
func parseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a number of days", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// parseMoment reads an RFC 3339 time, or a duration counted from now
// (sign: +1 for the future, -1 for the past).
func parseMoment(flag, s string, sign int) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := parseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, usagef("--%s %q: want an RFC 3339 time (2030-01-02T15:04:05Z) or a duration (90m, 12h, 30d)", flag, s)
	}
	return time.Now().Add(time.Duration(sign) * d).UTC().Truncate(time.Second), nil
}

func (a *app) keysCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "keys",
		Aliases: []string{"api-keys"},
		Short:   "API keys: create (the secret is shown once), list, rotate, revoke",
	}
	group(cmd)
	cmd.AddCommand(a.keysCreate(), a.keysList(), a.keysGet(), a.keysRotate(), a.keysRevoke())
	return cmd
}

// printKeyWithSecret shows a key with its secret, which is shown this once,
// and says so on stderr in every format (outside check 15b: with -o json,
// the form scripts use, nothing said it).
func (a *app) printKeyWithSecret(k *client.APIKey) error {
	err := a.print(k, func() {
		a.fields("id", k.ID, "name", k.Name, "tenants", list(k.Tenants), "permissions", list(k.Permissions),
			"allowed ips", list(k.AllowedIPs), "expires", tsp(k.ExpiresAt), "key", k.Key)
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stderr, "The key is shown this once: store it now (a secrets manager). It cannot be retrieved later.")
	return nil
}

func (a *app) keysCreate() *cobra.Command {
	var req client.CreateAPIKeyRequest
	var expires string
	cmd := &cobra.Command{
		Use:   "create --name NAME [--tenant TENANT]… [--permission PERMISSION]…",
		Short: "Create an API key; its secret is printed this once",
		Long: `Create an API key. Its secret (ic_live_…) is printed this once, in "key";
the service keeps only its hash. Without --tenant and --permission the key gets the
tenants you administer and read-only permissions. A key holds no more than you do.`,
		Args: cobra.NoArgs,
		RunE: wrap(func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(req.Name) == "" {
				return usagef("--name: must not be empty")
			}
			exp, err := parseMoment("expires", expires, +1)
			if err != nil {
				return err
			}
			if !exp.IsZero() {
				req.ExpiresAt = &exp
			}
			c, err := a.authed()
			if err != nil {
				return err
			}
			k, err := c.CreateAPIKey(cmd.Context(), req)
			if err != nil {
				return err
			}
			return a.printKeyWithSecret(k)
		}),
	}
	cmd.Flags().StringVar(&req.Name, "name", "", "the key's name (required)")
	cmd.Flags().StringArrayVar(&req.Tenants, "tenant", nil, `a tenant of the key ("*": every tenant, platform admins); repeat for several`)
	cmd.Flags().StringArrayVar(&req.Permissions, "permission", nil, "a permission (nodes:read, findings:write, audit:read, admin:*, …); repeat for several")
	cmd.Flags().StringArrayVar(&req.AllowedIPs, "allowed-ip", nil, "an address or CIDR range the key may be used from; repeat for several")
	cmd.Flags().StringVar(&expires, "expires", "", "expiry: an RFC 3339 time, or a duration from now (90d, 720h); default never")
	requireFlags(cmd, "name")
	cobra.CheckErr(cmd.RegisterFlagCompletionFunc("permission", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"nodes:read", "nodes:write", "findings:read", "findings:write", "jobs:read", "jobs:write", "reports:read", "audit:read", "admin:*"}, cobra.ShellCompDirectiveNoFileComp
	})) // fails only for a flag not defined: a mistake here, reported at start
	return cmd
}

func (a *app) keysList() *cobra.Command {
	var limit int
	var cursor string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the API keys you own or administer (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: wrap(func(cmd *cobra.Command, _ []string) error {
			c, err := a.authed()
			if err != nil {
				return err
			}
			page, err := c.ListAPIKeys(cmd.Context(), client.Page{Limit: limit, Cursor: cursor})
			if err != nil {
				return err
			}
			return a.print(page, func() {
				a.keyRows(page.APIKeys)
				a.more(page.NextCursor)
			})
		}),
	}
	pageFlags(cmd, &limit, &cursor, "page size (1–1000; default: every key)")
	return cmd
}

func (a *app) keysGet() *cobra.Command {
	return &cobra.Command{
		Use:   "get KEY-ID",
		Short: "Show one API key (never its secret)",
		Args:  cobra.ExactArgs(1),
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			c, err := a.authed()
			if err != nil {
				return err
			}
			k, err := c.GetAPIKey(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.print(k, func() { a.keyRows([]client.APIKey{*k}) })
		}),
	}
}

func (a *app) keysRotate() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate KEY-ID",
		Short: "Give a key a new secret (printed this once); the old one stops at once",
		Args:  cobra.ExactArgs(1),
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			c, err := a.authed()
			if err != nil {
				return err
			}
			k, err := c.RotateAPIKey(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printKeyWithSecret(k)
		}),
	}
}

func (a *app) keysRevoke() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke KEY-ID",
		Short: "Revoke a key: refused everywhere from the next request on",
		Args:  cobra.ExactArgs(1),
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			c, err := a.authed()
			if err != nil {
				return err
			}
			if err := c.RevokeAPIKey(cmd.Context(), args[0]); err != nil {
				return err
			}
			return a.print(map[string]any{"id": args[0], "revoked": true}, func() {
				fmt.Fprintf(a.stdout, "%s revoked.\n", args[0])
			})
		}),
	}
}
