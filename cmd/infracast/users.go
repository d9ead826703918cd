package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/infracast/auth/http/client"
)

var tenantRoleNames = []string{"viewer", "editor", "admin"}

func (a *app) usersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Users, their tenant roles and sessions",
		Long: `Users, their tenant roles and sessions. USER is a user ID (user-…) or a
username.`,
	}
	group(cmd)
	cmd.AddCommand(a.usersList(), a.usersGet(), a.usersCreate(), a.usersGrant(), a.usersRemoveRole(),
		a.usersSetActive("deactivate", "Deactivate a user: every token, session and API key stops at once"),
		a.usersSetActive("activate", "Let a deactivated user log in again (nothing revoked comes back)"),
		a.usersSessions(), a.usersRevokeSessions())
	return cmd
}

// userID resolves USER: an ID (user- and a ULID) as is, else a username
// (case-insensitive) — "user-bob" too, a username the service accepts
// (outside check 17d: it was taken for an ID, and not found). No username
// has the shape of an ID (the service refuses one: client.UserID),
// so an ID is never looked up as a name: a command given someone's ID acts
// on them or gets the service's answer, never on another user (re-check
// 17r3: a fallback to the name after a 404 found the user named after an
// ID the caller could not see).
func (a *app) userID(ctx context.Context, c *client.Client, arg string) (string, error) {
	if id, ok := client.UserID(arg); ok {
		return id, nil // as the service writes it: a ULID in upper case
	}
	id, found, err := userNamed(ctx, c, arg)
	if err != nil {
		return "", err
	}
	if !found {
		return "", notFound{fmt.Sprintf("no user named %q (that you may see)", arg)}
	}
	return id, nil
}

// userNamed finds the user the caller may see whose username is name (in
// any case), through the list's search (q) rather than the whole list.
func userNamed(ctx context.Context, c *client.Client, name string) (string, bool, error) {
	var page client.UserPage
	if err := c.Do(ctx, http.MethodGet, "/api/v1/users", url.Values{"q": {name}}, nil, &page); err != nil {
		return "", false, err
	}
	for _, u := range page.Users {
		if strings.EqualFold(u.Username, name) {
			return u.ID, true, nil
		}
	}
	return "", false, nil
}

// authedUser is an authenticated client and the id of the user arg names.
func (a *app) authedUser(cmd *cobra.Command, arg string) (*client.Client, string, error) {
	c, err := a.authed()
	if err != nil {
		return nil, "", err
	}
	id, err := a.userID(cmd.Context(), c, arg)
	if err != nil {
		return nil, "", err
	}
	return c, id, nil
}

func (a *app) usersList() *cobra.Command {
	var limit int
	var cursor string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the users you may see",
		Args:  cobra.NoArgs,
		RunE: wrap(func(cmd *cobra.Command, _ []string) error {
			c, err := a.authed()
			if err != nil {
				return err
			}
			page, err := c.ListUsers(cmd.Context(), client.Page{Limit: limit, Cursor: cursor})
			if err != nil {
				return err
			}
			return a.print(page, func() {
				a.userRows(page.Users)
				a.more(page.NextCursor)
			})
		}),
	}
	pageFlags(cmd, &limit, &cursor, "page size (1–1000; default: every user)")
	return cmd
}

func (a *app) usersGet() *cobra.Command {
	return &cobra.Command{
		Use:   "get USER",
		Short: "Show one user",
		Args:  cobra.ExactArgs(1),
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			c, id, err := a.authedUser(cmd, args[0])
			if err != nil {
				return err
			}
			u, err := c.GetUser(cmd.Context(), id)
			if err != nil {
				return err
			}
			return a.printUser(u)
		}),
	}
}

func (a *app) printUser(u *client.User) error {
	return a.print(u, func() { a.userRows([]client.User{*u}) })
}

func (a *app) usersCreate() *cobra.Command {
	var req client.CreateUserRequest
	var tenants []string
	cmd := &cobra.Command{
		Use:   "create --username NAME --email ADDRESS [--tenant TENANT=ROLE]…",
		Short: "Create a user (the password from INFRACAST_NEW_PASSWORD, the terminal or standard input)",
		Args:  cobra.NoArgs,
		RunE: wrap(func(cmd *cobra.Command, _ []string) error {
			for _, t := range tenants {
				id, role, ok := strings.Cut(t, "=")
				if !ok || id == "" || role == "" {
					return usagef("--tenant %q: want TENANT=ROLE (role: %s)", t, strings.Join(tenantRoleNames, ", "))
				}
				req.Tenants = append(req.Tenants, client.TenantRole{ID: id, Role: role})
			}
			c, err := a.authed()
			if err != nil {
				return err
			}
			req.Password, err = a.secret("INFRACAST_NEW_PASSWORD", "Password of the new user")
			if err != nil {
				return err
			}
			u, err := c.CreateUser(cmd.Context(), req)
			if err != nil {
				return err
			}
			return a.printUser(u)
		}),
	}
	cmd.Flags().StringVar(&req.Username, "username", "", "username (required)")
	cmd.Flags().StringVar(&req.Email, "email", "", "e-mail address (required)")
	cmd.Flags().StringArrayVar(&tenants, "tenant", nil, "a tenant role, TENANT=ROLE (viewer, editor, admin); repeat for several")
	cmd.Flags().StringArrayVar(&req.Roles, "role", nil, "a global role (admin: platform admin)")
	requireFlags(cmd, "username", "email")
	return cmd
}

func (a *app) usersGrant() *cobra.Command {
	return &cobra.Command{
		Use:   "grant USER TENANT ROLE",
		Short: "Give a user ROLE (viewer, editor, admin) in TENANT, replacing the role held there",
		Args:  cobra.ExactArgs(3),
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 2 {
				return tenantRoleNames, cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			c, id, err := a.authedUser(cmd, args[0])
			if err != nil {
				return err
			}
			u, err := c.GrantRole(cmd.Context(), id, args[1], args[2])
			if err != nil {
				return err
			}
			return a.printUser(u)
		}),
	}
}

func (a *app) usersRemoveRole() *cobra.Command {
	return &cobra.Command{
		Use:     "remove-role USER TENANT",
		Aliases: []string{"revoke-role"},
		Short:   "Remove a user's role in TENANT",
		Args:    cobra.ExactArgs(2),
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			c, id, err := a.authedUser(cmd, args[0])
			if err != nil {
				return err
			}
			u, err := c.RemoveRole(cmd.Context(), id, args[1])
			if err != nil {
				return err
			}
			return a.printUser(u)
		}),
	}
}

func (a *app) usersSetActive(verb, short string) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " USER",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			c, id, err := a.authedUser(cmd, args[0])
			if err != nil {
				return err
			}
			var u *client.User
			if verb == "activate" {
				u, err = c.Activate(cmd.Context(), id)
			} else {
				u, err = c.Deactivate(cmd.Context(), id)
			}
			if err != nil {
				return err
			}
			return a.printUser(u)
		}),
	}
}

func (a *app) usersSessions() *cobra.Command {
	var limit int
	var cursor string
	cmd := &cobra.Command{
		Use:   "sessions USER",
		Short: "List a user's live sessions",
		Args:  cobra.ExactArgs(1),
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			c, id, err := a.authedUser(cmd, args[0])
			if err != nil {
				return err
			}
			page, err := c.UserSessions(cmd.Context(), id, client.Page{Limit: limit, Cursor: cursor})
			if err != nil {
				return err
			}
			return a.print(page, func() {
				a.sessionRows(page.Sessions)
				a.more(page.NextCursor)
			})
		}),
	}
	pageFlags(cmd, &limit, &cursor, "page size (1–1000)")
	return cmd
}

func (a *app) usersRevokeSessions() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke-sessions USER [SESSION-ID]",
		Short: "End one session of a user, or all of them",
		Args:  cobra.RangeArgs(1, 2),
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			c, id, err := a.authedUser(cmd, args[0])
			if err != nil {
				return err
			}
			n := 1
			if len(args) == 2 {
				err = c.RevokeUserSession(cmd.Context(), id, args[1])
			} else {
				n, err = c.RevokeUserSessions(cmd.Context(), id)
			}
			if err != nil {
				return err
			}
			return a.print(map[string]int{"revoked": n}, func() {
				fmt.Fprintf(a.stdout, "Revoked %d session(s) of %s.\n", n, id)
			})
		}),
	}
}
