package tests

import (
	"testing"

	"github.com/infracast/auth/domain"
	authclient "github.com/infracast/auth/http/client"
)

// TestUserIDShapeAgrees: the client's rule for a user ID (which the CLI
// uses to tell an ID from a username) and the service's (which refuses
// usernames of that shape) are the same rule, each in its own layer.
func TestUserIDShapeAgrees(t *testing.T) {
	for _, s := range []string{
		"user-01M98KXWSYJ4B8K99KPW8DNNGE", "user-01m98kxwsyj4b8k99kpw8dnnge", "USER-01M98KXWSYJ4B8K99KPW8DNNGE",
		"user-81M98KXWSYJ4B8K99KPW8DNNGE", "user-01M98KXWSYJ4B8K99KPW8DNNG", "user-01M98KXWSYJ4B8K99KPW8DNNGEX",
		"user-01M98KXWSYJ4B8K99KPW8DNNGI", "user-01M98KXWSYJ4B8K99KPW8DNNGU", "user-bob", "key-01M98KXWSYJ4B8K99KPW8DNNGE", "",
	} {
		_, ok := authclient.UserID(s)
		if ok != domain.LooksLikeUserID(s) {
			t.Errorf("%q: the client says %v, the service %v", s, ok, domain.LooksLikeUserID(s))
		}
	}
}
