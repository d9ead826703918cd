// Command infracast is the admin CLI of Infracast Auth: log in, manage
// users, tenant roles, sessions, API keys, SSO providers and signing keys,
// read the audit log (and tail it), and ask who had access when. It speaks
// the public HTTP API through the Go client (http/client) and nothing else.
//
//	infracast --url https://auth.example.com login --username admin
//	infracast users list -o json
//	infracast keys create --name ci --tenant prod --permission nodes:read -o json
//	infracast keys revoke key-01J…
//	infracast audit --subject user-01J… --follow
//
// The service URL comes from --url, else INFRACAST_URL, else the last login
// (with INFRACAST_TOKEN too). login keeps the refresh token (and the current
// access token) in $XDG_CONFIG_HOME/infracast/credentials.json
// (os.UserConfigDir), mode 0600; INFRACAST_TOKEN (an API key or an access
// token) is used instead when set.
// Exit codes are listed in exitCodes (and by infracast --help).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/infracast/auth/http/client"
)

// Exit codes scripts can rely on.
const (
	exitOK           = 0
	exitFailure      = 1 // anything not below: the service unreachable, a 5xx, a local file, a redirect, an interrupt
	exitUsage        = 2 // bad flags or arguments, or input the service refused (400 VALIDATION_ERROR, 413, 415)
	exitUnauthorized = 3 // not logged in, the session ended, or credentials refused (401)
	exitForbidden    = 4 // 403: no access to this tenant or permission, a second factor required, …
	exitNotFound     = 5 // 404: no such user, key, provider, …
	exitConflict     = 6 // 409: duplicate username, already active, …
	exitRateLimited  = 7 // 429: too many attempts (after the retries); Retry-After is printed
	exitUnavailable  = 8 // 503: the service is unavailable (after the retries); a change may or may not have been made when the service did not say it was not
)

const exitCodes = `Exit codes:
  0  success
  1  failure not listed below (service unreachable, server error, local file,
     a redirect: never followed, the message names where to; interrupted);
     after a proxy's 502 or 504, or a connection lost, on a change: it may or
     may not have been made (the message says so): check before repeating it
  2  usage: bad flags or arguments, or input the service refused (400, 413, 415)
  3  not logged in, session ended, or credentials refused (401)
  4  forbidden (403), or a second factor required and no code given
  5  not found (404)
  6  conflict (409)
  7  rate limited (429), after retrying
  8  service unavailable (503), after retrying; a change the service did not
     say it refused may have been made: check before repeating it`

func main() {
	// The first Ctrl-C (or SIGTERM: 'timeout' in a script) ends the
	// command, after the token refresh under way, if any, is stored (run
	// waits up to refreshGrace); a second one exits at once.
	ctx, interrupt := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		interrupt()
		<-sigs
		fmt.Fprintln(os.Stderr, "infracast: interrupted again: exiting at once")
		os.Exit(exitFailure)
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	signal.Stop(sigs)
	os.Exit(code)
}

// refreshGrace is how long an interrupted command waits for a token
// refresh under way to end and its tokens to be stored. With rotation, the
// service that made the refresh spent the stored refresh token: exiting
// before storing its successor left the spent one in the file, and the
// next command, presenting it after the reuse interval (10 s by default),
// ended the session as stolen (outside check 20c: 'timeout 1 infracast
// users list'). Five seconds cover a refresh's answer on a slow link
// without holding up a Ctrl-C for long; a second Ctrl-C does not wait.
const refreshGrace = 5 * time.Second

// settle waits, when the command was interrupted (ctx ended) while its
// token source refreshed, up to refreshGrace for that refresh to end and
// its tokens to be stored (OnToken), saying so on stderr.
func (a *app) settle(ctx context.Context) {
	if a.ts == nil || ctx.Err() == nil {
		return // a command that ran to its end waited for its refreshes
	}
	done, ok := a.ts.Refreshing()
	if !ok {
		return
	}
	fmt.Fprintf(a.stderr, "infracast: interrupted: storing the renewed tokens first (up to %s; interrupt again to exit at once)\n", refreshGrace)
	t := time.NewTimer(refreshGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		fmt.Fprintf(a.stderr, "infracast: the token refresh did not end within %s: if the next command says the session has ended, run 'infracast login' again\n", refreshGrace)
	}
}

// run executes one command line and returns its exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	a.settle(ctx)
	if saveErr := a.savingError(); saveErr != nil {
		fmt.Fprintf(stderr, "infracast: could not store the renewed tokens: %v\n", saveErr)
		if err == nil {
			return exitFailure
		}
	}
	if err == nil {
		return exitOK
	}
	code, msg := classify(err)
	var apiErr *client.Error
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized && a.session != "" && !errors.Is(err, client.ErrLoginRequired) {
		// The stored login's access token was refused, and the one refresh
		// and retry after it did not help (outside check 12d: the message
		// said nothing of what to do).
		msg += map[string]string{
			"stored": " (run 'infracast login' again)",
			"token":  " (INFRACAST_TOKEN was refused: set a valid API key or access token)",
		}[a.session]
	}
	fmt.Fprintln(stderr, "infracast: "+oneLine(msg))
	if isUsage(err) {
		// Every usage error, cobra's and a command's own check of a flag's
		// value (outside check 15b: "audit --order sideways" had no line).
		if cmd == nil {
			cmd = root
		}
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// runErr marks an error returned by a command's own work, as opposed to
// one of cobra's (flags, arguments): those are usage errors.
type runErr struct{ err error }

func (e runErr) Error() string { return e.err.Error() }
func (e runErr) Unwrap() error { return e.err }

func isRunErr(err error) bool {
	var r runErr
	return errors.As(err, &r)
}

// usageErr is input refused before anything is sent.
type usageErr struct{ msg string }

func (e usageErr) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageErr{fmt.Sprintf(format, args...)} }

// isUsage reports whether err is a usage error: cobra's (flags,
// arguments), or input a command refused before sending anything. Not
// input the service refused (400, 413): that error is the service's.
func isUsage(err error) bool {
	var u usageErr
	return !isRunErr(err) || errors.As(err, &u)
}

// oneLine is msg as the one line after "infracast: ": without the prefix
// the client's own errors start with (or repeat inside), and without line
// breaks.
func oneLine(msg string) string {
	for {
		m, ok := strings.CutPrefix(msg, "infracast: ")
		if !ok {
			break
		}
		msg = m
	}
	msg = strings.ReplaceAll(msg, ": infracast: ", ": ")
	return strings.Join(strings.Fields(msg), " ")
}

// notLoggedIn: no credentials for the service (url), or no service at all
// (url empty: no URL given and no stored login).
type notLoggedIn struct{ url string }

func (e notLoggedIn) Error() string {
	if e.url == "" {
		return "not logged in: run 'infracast --url URL login --username NAME' (or set INFRACAST_URL and INFRACAST_TOKEN)"
	}
	return fmt.Sprintf("not logged in to %s: run 'infracast --url %s login --username NAME' (or set INFRACAST_TOKEN)", e.url, e.url)
}

// notFound is a name that matched nothing (a username, for example).
type notFound struct{ msg string }

func (e notFound) Error() string { return e.msg }

// classify gives an error's exit code and the message to print.
func classify(err error) (int, string) {
	var apiErr *client.Error
	var reqErr *client.RequestError
	var u usageErr
	var nl notLoggedIn
	var nf notFound
	var lr loginReplaced
	var redirect *client.RedirectError
	switch {
	case !isRunErr(err):
		return exitUsage, err.Error()
	case errors.As(err, &u):
		return exitUsage, u.msg
	case errors.As(err, &nl):
		return exitUnauthorized, nl.Error()
	case errors.As(err, &nf):
		return exitNotFound, nf.msg
	case errors.As(err, &lr):
		return exitUnauthorized, lr.Error()
	case errors.Is(err, client.ErrLoginRequired):
		return exitUnauthorized, "the session has ended (signed out, expired or revoked): run 'infracast login' again"
	case errors.Is(err, context.Canceled):
		return exitFailure, "interrupted"
	case errors.As(err, &redirect):
		// Not followed (outside check 20c): the URL is not the service's
		// API, or not as given.
		return exitFailure, err.Error()
	case errors.As(err, &reqErr):
		msg := err.Error()
		if isWrite(reqErr.Method, reqErr.Path) && !reqErr.NotSent() {
			// The connection broke, or timed out, after a write was sent:
			// the service may have made it (outside check 15b: said only
			// for a 503).
			msg += outcomeUnknownNote
		}
		return exitFailure, msg
	case errors.As(err, &apiErr):
		msg := apiErr.Code + ": " + apiErr.Message
		if errors.Is(apiErr, client.ErrReauthenticationRequired) {
			msg += " (run 'infracast login' again, then repeat the command)"
		}
		if apiErr.RetryAfter > 0 {
			msg += fmt.Sprintf(" (retry after %s)", apiErr.RetryAfter)
		}
		if outcomeUnknown(apiErr) {
			// A 503 without Retry-After may follow a write the event store
			// did not confirm (outside check 12d: exit 8 said "nothing was
			// changed" in any case); a proxy's 502 or 504, one the service
			// received (outside check 15b).
			msg += outcomeUnknownNote
		}
		return apiExit(apiErr), msg
	}
	return exitFailure, err.Error()
}

// outcomeUnknownNote is added to the message of an error that leaves open
// whether the change the command asked for was made.
const outcomeUnknownNote = " (a change this command makes may or may not have been made: check before repeating it)"

// isWrite reports whether a request may change what the command asked to
// change: not a read, nor the refresh of a read's token (outside check 12r4
// found the outcome note added for reads too). A request whose method is
// unknown counts as a write.
func isWrite(method, path string) bool {
	if client.ChangesNothing(method, path) {
		return false // a read, the credential check's POST too
	}
	return !strings.HasSuffix(path, "/api/v1/auth/refresh")
}

// outcomeUnknown reports whether an answer leaves a write's outcome open:
// a proxy's 502 or 504 (the service may have received the write and its
// answer been lost), or a 503 without Retry-After (which the service sends
// when it refused the request before starting it) whose message does not
// say that nothing was changed.
func outcomeUnknown(e *client.Error) bool {
	if !isWrite(e.Method, e.Path) {
		return false
	}
	switch e.Status {
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return true
	case http.StatusServiceUnavailable:
		// A sign-in that spent its code and started no session says so
		// ("sign in again"): nothing to check (re-check 16r7).
		return e.RetryAfter == 0 &&
			!strings.Contains(e.Message, "nothing was changed") && !strings.Contains(e.Message, "may have been applied") &&
			!strings.Contains(e.Message, "sign in again")
	}
	return false
}

// apiExit is the exit code of an error the service answered: by its HTTP
// status, whatever its code (every 403 is exitForbidden: FORBIDDEN,
// MFA_REQUIRED, MFA_ENROLLMENT_REQUIRED, …).
func apiExit(e *client.Error) int {
	switch e.Status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		// Input refused, nothing changed (415: a body with a
		// Content-Encoding; outside check 15b found it exit 1).
		return exitUsage
	case http.StatusUnauthorized:
		return exitUnauthorized
	case http.StatusForbidden:
		return exitForbidden
	case http.StatusNotFound:
		return exitNotFound
	case http.StatusConflict:
		return exitConflict
	case http.StatusTooManyRequests:
		return exitRateLimited
	case http.StatusServiceUnavailable:
		return exitUnavailable
	}
	return exitFailure
}

// app is one invocation: its streams, settings and credentials.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	url    string // --url
	output string // -o
	// saveErr: storing renewed tokens failed (reported at the end); set
	// by the token source's refresh, which an interrupted command may not
	// have waited for: under saveMu.
	saveMu  sync.Mutex
	saveErr error
	// session is how the command authenticated: "stored" (the stored
	// login), "token" (INFRACAST_TOKEN), "" (not yet), for what a 401 says.
	session string
	ts      *client.TokenSource // the stored login's, when used
	warned  bool                // the plain-http warning was given
}

func (a *app) setSaveErr(err error) {
	a.saveMu.Lock()
	defer a.saveMu.Unlock()
	a.saveErr = err
}

func (a *app) savingError() error {
	a.saveMu.Lock()
	defer a.saveMu.Unlock()
	return a.saveErr
}

// wrap makes fn a cobra RunE whose errors are told apart from cobra's own.
func wrap(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := fn(cmd, args); err != nil {
			return runErr{err}
		}
		return nil
	}
}

// requireFlags marks cmd's flags names as required.
func requireFlags(cmd *cobra.Command, names ...string) {
	for _, n := range names {
		cobra.CheckErr(cmd.MarkFlagRequired(n)) // fails only for a flag the caller did not define
	}
}

// pageFlags adds a list's --limit (described by limitHelp) and --cursor.
func pageFlags(cmd *cobra.Command, limit *int, cursor *string, limitHelp string) {
	cmd.Flags().IntVar(limit, "limit", 0, limitHelp)
	cmd.Flags().StringVar(cursor, "cursor", "", "the next page's cursor")
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "infracast",
		Short: "Administer Infracast Auth: users, roles, sessions, API keys, SSO, signing keys, audit",
		Long: `infracast administers an Infracast Auth service through its HTTP API.

The service URL comes from --url, else INFRACAST_URL, else the last login's
(also with INFRACAST_TOKEN); it must be http(s)://host[:port][/path].
'infracast login' keeps a refresh token in a file only you can read
(` + "`" + `$XDG_CONFIG_HOME/infracast/credentials.json` + "`" + `, mode 0600); set INFRACAST_TOKEN
(an API key or an access token) to use that instead. A user with a second
factor gives its code to login (--code, INFRACAST_MFA_CODE, or the prompt).
Ctrl-C (or SIGTERM) ends a command after a token refresh under way, if any,
is stored (up to 5s); a second Ctrl-C exits at once. Redirects are never
followed, and plain http to another host is warned of.

` + exitCodes,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if a.output != "table" && a.output != "json" {
				return fmt.Errorf("-o %q: want table or json", a.output)
			}
			return nil
		},
	}
	root.PersistentFlags().StringVar(&a.url, "url", "", "service URL (default $INFRACAST_URL, else the last login's)")
	root.PersistentFlags().StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	cobra.CheckErr(root.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp
	})) // fails only for a flag not defined: a mistake here, reported at start
	root.AddCommand(a.loginCommand(), a.logoutCommand(), a.whoamiCommand(), a.usersCommand(), a.keysCommand(),
		a.ssoCommand(), a.signingKeysCommand(), a.auditCommand(), a.accessCommand())
	// cobra's own completion command, made now rather than when run, so
	// that an unknown shell is refused like any unknown subcommand
	// (re-check 15r3: 'completion tcsh' printed the help, exit 0).
	root.InitDefaultCompletionCmd()
	for _, cmd := range root.Commands() {
		if cmd.Name() == "completion" {
			group(cmd)
		}
	}
	return root
}

// group makes cmd, a command with subcommands only, refuse an unknown
// subcommand (exit 2, a usage error: run adds where to find the usage)
// instead of printing its help as a success.
func group(cmd *cobra.Command) *cobra.Command {
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
		}
		return cmd.Help()
	}
	return cmd
}
