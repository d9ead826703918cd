package http

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// Cursor pagination of the list endpoints (GET /users, /api-keys, the
// sessions lists): `limit` (1..1000) and `cursor` (a page's next_cursor)
// in, next_cursor out. A list is ordered by a key unique to each item (a
// user's username then ID, a key's or session's ID), and a cursor is the key
// of the last item of its page: the next page starts after it. So a walk
// through the pages sees every item that exists throughout it exactly once —
// items created or removed meanwhile move no other item — and a cursor works
// on every replica. The audit log has cursors of its own (audit.go).
//
// GET /users and GET /api-keys answered their whole list before they had
// pages; without limit and cursor they still do, so that existing clients
// keep seeing every item. The sessions lists page by default.

const (
	pageMax     = 1000
	pageDefault = 100
)

// pageReq is a requested page: at most limit items (0: all of them) after
// the item whose key is after ("": from the first).
type pageReq struct {
	limit int
	after string
	kind  string // which list the cursor belongs to
}

// parsePage reads limit and cursor for the list kind. Without either, the
// page is pageDefault items, or with whole the whole list. Any other query
// parameter than these and extra, or one given twice, is refused
// (queryParams), as the audit log does: ?limitt=2 answered the whole list,
// and ?limit=1&limit=3 took the first (outside check 14d).
func parsePage(c *fiber.Ctx, kind string, whole bool, extra ...string) (pageReq, error) {
	p := pageReq{limit: pageDefault, kind: kind}
	q, err := queryParams(c, append([]string{"limit", "cursor"}, extra...)...)
	if err != nil {
		return p, err
	}
	l, hasLimit := q["limit"]
	cur, hasCursor := q["cursor"]
	if whole && !hasLimit && !hasCursor {
		p.limit = 0
		return p, nil
	}
	if hasLimit {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > pageMax {
			return p, validation(fmt.Sprintf("limit: must be a whole number from 1 to %d", pageMax))
		}
		p.limit = n
	}
	if hasCursor {
		after, ok := parseCursor(kind, cur)
		if !ok {
			return p, validation("cursor: is not a next_cursor of this list")
		}
		p.after = after
	}
	return p, nil
}

// cursorOf is the opaque cursor after key in list kind.
func cursorOf(kind, key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + key))
}

func parseCursor(kind, cur string) (string, bool) {
	if cur == "" || len(cur) > 1024 {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(cur)
	if err != nil {
		return "", false
	}
	key, ok := strings.CutPrefix(string(b), kind+":")
	return key, ok && key != ""
}

// paginate returns the page p of items, which are sorted by key, strictly
// ascending, and the next page's cursor ("" when the page is the last).
func paginate[T any](items []T, key func(T) string, p pageReq) ([]T, string) {
	start := 0
	if p.after != "" {
		start = sort.Search(len(items), func(i int) bool { return key(items[i]) > p.after })
	}
	items = items[start:]
	if p.limit == 0 || len(items) <= p.limit {
		return items, ""
	}
	items = items[:p.limit]
	return items, cursorOf(p.kind, key(items[len(items)-1]))
}
