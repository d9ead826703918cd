package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/infracast/auth/http/client"
)

// credentials is the file login writes: per service URL, the tokens of the
// last login, and which URL was used last.
type credentials struct {
	Current string                  `json:"current"`
	Servers map[string]*serverCreds `json:"servers"`
}

type serverCreds struct {
	Username     string    `json:"username"`
	UserID       string    `json:"user_id,omitempty"` // absent in files written before it was kept
	RefreshToken string    `json:"refresh_token"`
	AccessToken  string    `json:"access_token,omitempty"`
	ExpiresAt    time.Time `json:"expires_at,omitzero"`
}

// credentialsPath is $XDG_CONFIG_HOME/infracast/credentials.json (or the
// platform's equivalent, os.UserConfigDir).
func credentialsPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no configuration folder to keep the login in: %w", err)
	}
	return filepath.Join(dir, "infracast", "credentials.json"), nil
}

// loadCredentials reads the file; a missing file is no credentials. A file
// others may read is refused: it holds refresh tokens.
func loadCredentials() (*credentials, error) { return readCredentials(false) }

// loadCredentialsToReplace is loadCredentials for login, which writes the
// file anew (mode 0600): a file others may read is read all the same, and
// one that does not parse is no credentials — the messages that refuse
// them say to log in again, and login refused them too (outside check 17d).
func loadCredentialsToReplace() (*credentials, error) { return readCredentials(true) }

func readCredentials(replacing bool) (*credentials, error) {
	p, err := credentialsPath()
	if err != nil {
		return nil, err
	}
	c := &credentials{Servers: map[string]*serverCreds{}}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 && !replacing {
		return nil, fmt.Errorf("%s is readable by others (mode %#o): it holds refresh tokens; run 'chmod 600 %s', or log in again (which writes it anew, mode 0600)", p, fi.Mode().Perm(), p)
	}
	if err := json.NewDecoder(f).Decode(c); err != nil {
		if replacing {
			return &credentials{Servers: map[string]*serverCreds{}}, nil
		}
		return nil, fmt.Errorf("%s: %w (log in again to replace it)", p, err)
	}
	if c.Servers == nil {
		c.Servers = map[string]*serverCreds{}
	}
	return c, nil
}

// save writes the file atomically with mode 0600 (its folder 0700).
func (c *credentials) save() error {
	p, err := credentialsPath()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".credentials-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename there is nothing left to remove
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	// On disk before the rename, and the rename itself after it: a crash
	// (or power loss) leaves the old file or the new one, never an empty
	// one (outside check 20c) — with rotation, losing the new refresh
	// token is losing the session.
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return err
	}
	return syncDir(filepath.Dir(p))
}

// lockCredentials takes the lock on the credentials file (an advisory lock
// on credentials.json.lock beside it), waiting for another infracast that
// holds it until ctx ends, and returns the function that releases it. It is
// held from reading the file to writing it: by a refresh (with rotation, two
// commands refreshing with the same refresh token end the session as
// stolen), login and logout.
func lockCredentials(ctx context.Context) (func(), error) {
	p, err := credentialsPath()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		ok, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		if ok {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("waiting for another infracast to release %s: %w", f.Name(), ctx.Err())
		case <-t.C:
		}
	}
	return func() {
		// Closing the file releases the lock in any case.
		if err := unlockFile(f); err != nil {
			fmt.Fprintf(os.Stderr, "infracast: release %s: %v\n", f.Name(), err)
		}
		f.Close()
	}, nil
}

// updateCredentials applies change to the credentials file as it is now,
// under its lock, and writes it.
func updateCredentials(ctx context.Context, change func(*credentials)) error {
	return changeCredentials(ctx, loadCredentials, change)
}

// changeCredentials is updateCredentials reading the file with load.
func changeCredentials(ctx context.Context, load func() (*credentials, error), change func(*credentials)) error {
	unlock, err := lockCredentials(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	creds, err := load()
	if err != nil {
		return err
	}
	change(creds)
	return creds.save()
}

// baseURL is --url, else INFRACAST_URL, else the last login's (creds nil:
// none), checked as client.New checks it (a usage error otherwise); "" when
// there is none at all.
func (a *app) baseURL(creds *credentials) (string, error) {
	u := a.url
	if u == "" {
		u = a.getenv("INFRACAST_URL")
	}
	if u == "" && creds != nil {
		u = creds.Current
	}
	if u == "" {
		return "", nil
	}
	if _, err := client.New(u); err != nil {
		return "", usageErr{err.Error()}
	}
	return strings.TrimSuffix(u, "/"), nil
}

// errNoURL: a command that needs the service's URL has none to go by.
var errNoURL = usagef("no service URL: pass --url URL or set INFRACAST_URL")

// stored is the stored credentials and the service's URL (baseURL), which
// may be "".
func (a *app) stored() (*credentials, string, error) {
	creds, err := loadCredentials()
	if err != nil {
		return nil, "", err
	}
	base, err := a.baseURL(creds)
	if err != nil {
		return nil, "", err
	}
	return creds, base, nil
}

// storedLogin is the stored credentials, the service's URL and its login:
// notLoggedIn without one (and without any URL to go by: not logged in at
// all).
func (a *app) storedLogin() (*credentials, string, *serverCreds, error) {
	creds, base, err := a.stored()
	if err != nil {
		return nil, "", nil, err
	}
	sc := creds.Servers[base]
	if base == "" || sc == nil || sc.RefreshToken == "" {
		return nil, "", nil, notLoggedIn{base}
	}
	return creds, base, sc, nil
}

// sameUser reports whether two logins are the same user's: by user ID when
// both have one, else by username.
func sameUser(a, b *serverCreds) bool {
	if a.UserID != "" && b.UserID != "" {
		return a.UserID == b.UserID
	}
	return a.Username == b.Username
}

// loginReplaced: the stored login is another user's now ('infracast login
// --username other' in another terminal): a command that started as the
// previous user ends rather than carry on as the new one. It is a
// client.ErrLoginRequired (the token source ends its session, exit 3).
type loginReplaced struct{ url, was, now string }

func (e loginReplaced) Error() string {
	return fmt.Sprintf("the stored login to %s is now %s's, not %s's (logged in again elsewhere): this command's session is no longer used; run it again", e.url, e.now, e.was)
}

func (e loginReplaced) Unwrap() error { return client.ErrLoginRequired }

// newClient is an unauthenticated client of the service.
func (a *app) newClient(base string, opts ...client.Option) (*client.Client, error) {
	c, err := client.New(base, append([]client.Option{client.WithUserAgent("infracast-cli")}, opts...)...)
	if err != nil {
		return nil, usageErr{err.Error()}
	}
	if c.SendsInTheClear() && !a.warned {
		// A warning, not a refusal: like curl, vault and kubectl, which
		// speak plain http when told to (a lab, a service behind a
		// trusted network), but not silently (outside check 20c).
		a.warned = true
		fmt.Fprintf(a.stderr, "infracast: warning: %s is plain http to another host: the password and tokens cross the network unencrypted; use https://\n", base)
	}
	return c, nil
}

// authed is a client authenticated with INFRACAST_TOKEN, or with the stored
// login's tokens (refreshed when due, and stored again when renewed).
func (a *app) authed() (*client.Client, error) {
	if tok := a.getenv("INFRACAST_TOKEN"); tok != "" {
		// The URL in the same order as without it: the credentials file is
		// read only when neither --url nor INFRACAST_URL gives one.
		base, err := a.baseURL(nil)
		if err != nil {
			return nil, err
		}
		if base == "" {
			if _, base, err = a.stored(); err != nil {
				return nil, err
			}
		}
		if base == "" {
			return nil, errNoURL
		}
		a.session = "token"
		return a.newClient(base, client.WithAccessToken(tok))
	}
	_, base, sc, err := a.storedLogin()
	if err != nil {
		return nil, err
	}
	c, err := a.newClient(base)
	if err != nil {
		return nil, err
	}
	a.session = "stored"
	// Other infracast commands may run at the same time (a shell loop, an
	// 'audit --follow' in another terminal), each with the tokens it read
	// at its start: with rotation, one that refreshed spent the refresh
	// token the others hold, and their refresh with it ended the session
	// as stolen (outside check 12d). So each refresh takes the file's lock,
	// reads the file again and takes the tokens another command stored,
	// refreshing (and storing) only when those are due too — only while
	// they are the same user's: after 'infracast login --username other'
	// elsewhere the command ends (outside check 12r4: an 'audit --follow'
	// went on as the other user, and refreshed that user's session).
	var latest *credentials // the file as read under the lock
	ts := c.RefreshTokenSource(client.Token{AccessToken: sc.AccessToken, ExpiresAt: sc.ExpiresAt, RefreshToken: sc.RefreshToken},
		client.WithSharedTokens(func(ctx context.Context) (client.Token, func(), error) {
			unlock, err := lockCredentials(ctx)
			if err != nil {
				return client.Token{}, nil, err
			}
			creds, err := loadCredentials()
			if err != nil {
				unlock()
				return client.Token{}, nil, err
			}
			latest = creds
			var stored client.Token
			if s := creds.Servers[base]; s != nil {
				if !sameUser(s, sc) {
					unlock()
					return client.Token{}, nil, loginReplaced{url: base, was: sc.Username, now: s.Username}
				}
				stored = client.Token{AccessToken: s.AccessToken, ExpiresAt: s.ExpiresAt, RefreshToken: s.RefreshToken}
			}
			return stored, unlock, nil
		}),
		client.OnToken(func(t client.Token) {
			// A refresh renewed the tokens (with rotation, the refresh token
			// too, and the old one is spent): keep them for the next run,
			// in the file as read under the lock (still held).
			s := latest.Servers[base]
			if s == nil {
				s = &serverCreds{Username: sc.Username, UserID: sc.UserID}
				latest.Servers[base] = s
			}
			s.AccessToken, s.ExpiresAt, s.RefreshToken = t.AccessToken, t.ExpiresAt, t.RefreshToken
			if err := latest.save(); err != nil {
				a.setSaveErr(err)
			}
		}))
	a.ts = ts
	return c.With(client.WithTokenSource(ts)), nil
}

// secret reads a secret: from the environment variable env when set, else
// from the terminal without echo (prompting on stderr), else the first line
// of standard input.
func (a *app) secret(env, prompt string) (string, error) {
	if v := a.getenv(env); v != "" {
		return v, nil
	}
	if v, ok, err := a.ask(prompt); ok {
		return v, err
	}
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usagef("%s: set %s, or give it on standard input", strings.ToLower(prompt), env)
	}
	return line, nil
}

// ask reads a secret from the terminal without echo, after prompting on
// stderr; ok is false, and nothing is read, when standard input is not a
// terminal.
func (a *app) ask(prompt string) (v string, ok bool, err error) {
	f, isFile := a.stdin.(*os.File)
	if !isFile || !term.IsTerminal(int(f.Fd())) {
		return "", false, nil
	}
	fmt.Fprint(a.stderr, prompt+": ")
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(a.stderr)
	if err != nil {
		return "", true, err
	}
	if len(b) == 0 {
		return "", true, usagef("%s: nothing entered", strings.ToLower(prompt))
	}
	return string(b), true, nil
}
