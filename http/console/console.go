// Package console serves the admin console at /console: a single-page
// application (Preact, TypeScript, bundled by esbuild) whose built assets in
// dist/ are embedded in the binary, so the service serves it with no npm
// step and no CDN. Its sources are in src/; `npm ci && npm run build` in this
// folder rebuilds dist/ (docs/console.md). The console calls the service's
// own HTTP API with the browser session of the login page (the HttpOnly
// cookie and its CSRF token): it has no API of its own and no other kind of
// session, so it sees and changes exactly what its user may through the API.
//
// The handler serves index.html (a template: the configured identity
// providers' sign-in links and the refresh rules the console must keep go
// in as data attributes, never as script) for
// /console and for any path under it that names no asset, and the assets
// with an ETag, gzip-compressed when the browser accepts it. The caller sets
// the security headers (the server's strict Content-Security-Policy).
package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

//go:embed dist
var dist embed.FS

// Prefix is where the console is served.
const Prefix = "/console"

// Provider is an identity provider's sign-in link on the sign-in screen.
type Provider struct {
	Name  string `json:"name"`
	Label string `json:"label"`
	URL   string `json:"url"`
}

// Options configure the handler.
type Options struct {
	// Providers lists the identity providers to offer on the sign-in
	// screen (nil: none).
	Providers func() []Provider
	// RefreshRotation and RefreshReuseInterval are the service's refresh
	// rules (INFRACAST_REFRESH_ROTATION, INFRACAST_REFRESH_REUSE_INTERVAL).
	// The console retries a refresh whose answer it lost only while the
	// refresh token it may have spent is still within the reuse interval:
	// presented later, it revokes the session (outside check 18w).
	RefreshRotation      bool
	RefreshReuseInterval time.Duration
}

type asset struct {
	body, gz    []byte
	contentType string
	etag        string
}

// Handler serves the console.
type Handler struct {
	opts   Options
	index  *template.Template
	assets map[string]asset // by path below dist/, e.g. "app.js"
}

// New loads the embedded assets.
func New(opts Options) (*Handler, error) {
	h := &Handler{opts: opts, assets: map[string]asset{}}
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		return nil, err
	}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		if p == "index.html" {
			h.index, err = template.New("index").Parse(string(b))
			return err
		}
		a := asset{body: b, contentType: mime.TypeByExtension(path.Ext(p))}
		if a.contentType == "" {
			a.contentType = "application/octet-stream"
		}
		sum := sha256.Sum256(b)
		a.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
		if a.gz, err = gzipBytes(b); err != nil {
			return err
		}
		h.assets[p] = a
		return nil
	})
	if err != nil {
		return nil, err
	}
	if h.index == nil {
		return nil, fmt.Errorf("console: dist/index.html is missing (run npm ci && npm run build in http/console)")
	}
	return h, nil
}

func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Sizes returns each embedded asset's size and gzip-compressed size, by
// path (index.html included, as embedded).
func Sizes() (map[string][2]int, error) {
	out := map[string][2]int{}
	err := fs.WalkDir(dist, "dist", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(dist, p)
		if err != nil {
			return err
		}
		gz, err := gzipBytes(b)
		if err != nil {
			return err
		}
		out[strings.TrimPrefix(p, "dist/")] = [2]int{len(b), len(gz)}
		return nil
	})
	return out, err
}

// Assets lists the embedded assets' paths, sorted.
func (h *Handler) Assets() []string {
	out := make([]string, 0, len(h.assets))
	for p := range h.assets {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

type indexData struct {
	Providers string // JSON, in a data attribute
	// RefreshRotation ("true" or "false") and RefreshReuseMs (the reuse
	// interval in whole milliseconds), in data attributes.
	RefreshRotation string
	RefreshReuseMs  string
}

// Serve answers GET /console and GET /console/*.
func (h *Handler) Serve(c *fiber.Ctx) error {
	rel := strings.TrimPrefix(strings.TrimPrefix(c.Path(), Prefix), "/")
	if a, ok := h.assets[rel]; ok {
		return h.serveAsset(c, a)
	}
	if strings.HasPrefix(rel, "assets/") || path.Ext(rel) != "" {
		return fiber.ErrNotFound
	}
	var providers []Provider
	if h.opts.Providers != nil {
		providers = h.opts.Providers()
	}
	if providers == nil {
		providers = []Provider{}
	}
	js, err := json.Marshal(providers)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	data := indexData{
		Providers:       string(js),
		RefreshRotation: strconv.FormatBool(h.opts.RefreshRotation),
		RefreshReuseMs:  strconv.FormatInt(h.opts.RefreshReuseInterval.Milliseconds(), 10),
	}
	if err := h.index.Execute(&buf, data); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Send(buf.Bytes())
}

func (h *Handler) serveAsset(c *fiber.Ctx, a asset) error {
	gz := strings.Contains(c.Get(fiber.HeaderAcceptEncoding), "gzip")
	etag := a.etag
	if gz {
		// Another representation, another strong ETag (RFC 9110 §8.8.3).
		etag = etag[:len(etag)-1] + `-gz"`
	}
	c.Set(fiber.HeaderContentType, a.contentType)
	c.Set(fiber.HeaderETag, etag)
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderVary, fiber.HeaderAcceptEncoding)
	if noneMatch(c.Get(fiber.HeaderIfNoneMatch), etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	if gz {
		c.Set(fiber.HeaderContentEncoding, "gzip")
		return c.Send(a.gz)
	}
	return c.Send(a.body)
}

// noneMatch reports whether an If-None-Match header names etag: "*", or a
// list of entity tags one of which matches it by the weak comparison
// (RFC 9110 §13.1.2: "W/" aside, the same opaque tag) — a proxy that
// weakens ETags still gets its 304.
func noneMatch(header, etag string) bool {
	header = strings.TrimSpace(header)
	if header == "*" {
		return true
	}
	etag = strings.TrimPrefix(etag, "W/")
	for tag := range strings.SplitSeq(header, ",") {
		if strings.TrimPrefix(strings.TrimSpace(tag), "W/") == etag {
			return true
		}
	}
	return false
}
