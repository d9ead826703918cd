package client

import (
	"strings"

	"github.com/oklog/ulid/v2"
)

// UserID reports whether s is a user ID — "user-" and a ULID, in any letter
// case — and returns it as the service writes it (the ULID in upper case:
// a ULID is the same in any case, the service's lookup is not). No username
// has this shape: the service refuses one (the rule of its domain package,
// domain.LooksLikeUserID), so a tool taking "an ID or a username" can tell
// them apart by it and never find someone by another's ID.
func UserID(s string) (string, bool) {
	rest, ok := strings.CutPrefix(strings.ToLower(s), "user-")
	if !ok {
		return "", false
	}
	if _, err := ulid.ParseStrict(rest); err != nil {
		return "", false
	}
	return "user-" + strings.ToUpper(rest), true
}
