package main

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/infracast/auth/http/client"
)

func (a *app) loginCommand() *cobra.Command {
	var username, tenant, code string
	cmd := &cobra.Command{
		Use:   "login --username NAME [--code CODE]",
		Short: "Log in and keep the refresh token (mode 0600 under your config folder)",
		Long: `Log in with a username and password. The password is read from the terminal
without echo; when standard input is not a terminal, from INFRACAST_PASSWORD, else
from the first line of standard input. INFRACAST_PASSWORD, when set, is used in any
case.

A user with a second factor (TOTP) is then asked for a code: a TOTP code or a
recovery code, from --code, else INFRACAST_MFA_CODE, else the terminal without echo.
Without any of them (standard input not a terminal) login exits 4 saying so.

The refresh token (and the current access token) are kept in
$XDG_CONFIG_HOME/infracast/credentials.json, mode 0600, for the service's URL;
later commands refresh the access token when less than 5 minutes remain (a fifth
of its life, for a token that lives less than half an hour). A login over a
stored one ends the session it replaces.`,
		Args: cobra.NoArgs,
		RunE: wrap(func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("code") && strings.TrimSpace(code) == "" {
				return usagef("--code: must not be empty")
			}
			// A file that does not parse, or that others may read, is
			// replaced by this login (mode 0600), as the commands that
			// refuse it say.
			creds, err := loadCredentialsToReplace()
			if err != nil {
				return err
			}
			base, err := a.baseURL(creds)
			if err != nil {
				return err
			}
			if base == "" {
				return errNoURL
			}
			c, err := a.newClient(base)
			if err != nil {
				return err
			}
			password, err := a.secret("INFRACAST_PASSWORD", "Password")
			if err != nil {
				return err
			}
			res, err := c.Login(cmd.Context(), client.LoginRequest{Username: username, Password: password, Tenant: tenant})
			var step *client.Error
			if errors.As(err, &step) && step.MFAToken != "" {
				// The password was right; the second step takes the code.
				second, cerr := a.mfaCode(code)
				if cerr != nil {
					return cerr
				}
				res, err = c.LoginMFA(cmd.Context(), client.MFALoginRequest{MFAToken: step.MFAToken, Code: second})
			}
			if errors.Is(err, client.ErrMFAEnrollmentRequired) && errors.As(err, &step) {
				// The service's message speaks of its enrollment_token,
				// which the CLI does not hand out: say what a user can do.
				return &client.Error{Status: step.Status, Code: step.Code, RequestID: step.RequestID,
					Message: "a policy requires a second factor and this user has none: enrol one on " + base + "/login (a browser), then log in again"}
			}
			if err != nil {
				return err
			}
			// The file as it is now, under its lock: other commands may have
			// stored renewed tokens since it was read.
			var replaced string // the refresh token of the login this one replaces
			err = changeCredentials(cmd.Context(), loadCredentialsToReplace, func(creds *credentials) {
				if old := creds.Servers[base]; old != nil {
					replaced = old.RefreshToken
				}
				creds.Servers[base] = &serverCreds{Username: res.User.Username, UserID: res.User.ID, RefreshToken: res.RefreshToken, AccessToken: res.Token, ExpiresAt: res.ExpiresAt}
				creds.Current = base
			})
			if err != nil {
				return fmt.Errorf("logged in, but the tokens could not be stored: %w", err)
			}
			if replaced != "" && replaced != res.RefreshToken {
				// The replaced login's session is held by nobody now: end
				// it rather than leave it live until it expires (outside
				// check 20c: each login left one more). Best effort, once
				// the new login is stored: a command still running with it
				// takes the new tokens at its next refresh.
				if err := c.Revoke(cmd.Context(), replaced); err != nil {
					fmt.Fprintf(a.stderr, "infracast: note: the session of the login replaced was not ended (%s); it ends when it expires\n", oneLine(err.Error()))
				}
			}
			out := struct {
				URL       string      `json:"url"`
				User      client.User `json:"user"`
				ExpiresAt string      `json:"expires_at"`
			}{base, res.User, ts(res.ExpiresAt)}
			return a.print(out, func() {
				fmt.Fprintf(a.stdout, "Logged in to %s as %s (%s).\n", base, res.User.Username, res.User.ID)
			})
		}),
	}
	cmd.Flags().StringVar(&username, "username", "", "username (required)")
	cmd.Flags().StringVar(&tenant, "tenant", "", "scope the session to this one tenant")
	cmd.Flags().StringVar(&code, "code", "", "a second factor's code, TOTP or recovery (default $INFRACAST_MFA_CODE, else asked on the terminal)")
	requireFlags(cmd, "username")
	return cmd
}

// mfaCode is the code of a login's second step: flag (--code), else
// INFRACAST_MFA_CODE, else read from the terminal without echo. Without any
// (no terminal) it is a 403 MFA_REQUIRED that says how to give one.
func (a *app) mfaCode(flag string) (string, error) {
	if c := strings.TrimSpace(flag); c != "" {
		return c, nil
	}
	if c := strings.TrimSpace(a.getenv("INFRACAST_MFA_CODE")); c != "" {
		return c, nil
	}
	if c, ok, err := a.ask("Code (authenticator app, or a recovery code)"); ok {
		return strings.TrimSpace(c), err
	}
	return "", &client.Error{Status: http.StatusForbidden, Code: client.ErrMFARequired.Code,
		Message: "this user has a second factor: give a TOTP or recovery code with --code CODE or INFRACAST_MFA_CODE, or log in on a terminal to be asked for it"}
}

func (a *app) logoutCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "End the stored session (revoke its refresh token) and forget it",
		Args:  cobra.NoArgs,
		RunE: wrap(func(cmd *cobra.Command, _ []string) error {
			_, base, sc, err := a.storedLogin()
			if err != nil {
				return err
			}
			c, err := a.newClient(base)
			if err != nil {
				return err
			}
			// Revoking the refresh token ends the whole session.
			if err := c.Revoke(cmd.Context(), sc.RefreshToken); err != nil {
				return err
			}
			err = updateCredentials(cmd.Context(), func(creds *credentials) {
				delete(creds.Servers, base)
				if creds.Current == base {
					creds.Current = ""
				}
			})
			if err != nil {
				return err
			}
			return a.print(map[string]string{"url": base, "status": "logged out"}, func() {
				fmt.Fprintf(a.stdout, "Logged out of %s.\n", base)
			})
		}),
	}
}

func (a *app) whoamiCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who you are: user or API key, tenants and live permissions",
		Args:  cobra.NoArgs,
		RunE: wrap(func(cmd *cobra.Command, _ []string) error {
			c, err := a.authed()
			if err != nil {
				return err
			}
			me, err := c.Me(cmd.Context())
			if err != nil {
				return err
			}
			return a.print(me, func() {
				name := me.Username
				if me.Type == "apikey" {
					name = me.Name
				}
				a.fields("type", me.Type, "id", me.ID, "name", name, "roles", list(me.Roles), "scoped to", or(me.Tenant, "-"), "expires", tsp(me.ExpiresAt))
				var rows [][]string
				for _, t := range me.Tenants {
					rows = append(rows, []string{t.ID, or(t.Role, "-"), list(t.Permissions)})
				}
				if len(rows) > 0 {
					fmt.Fprintln(a.stdout)
					a.table([]string{"TENANT", "ROLE", "PERMISSIONS"}, rows)
				}
			})
		}),
	}
}
