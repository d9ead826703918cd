package commands_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
	"github.com/infracast/auth/events/commands"
)

// failingAfter is a log that fails (events.ErrUnavailable) the next heads
// Head calls and appends Append calls once an append holding an event of
// type armOn was stored: the event store failing right after a request's
// own batch, while what follows from it is under way.
type failingAfter struct {
	*stream
	mu             sync.Mutex
	armOn          string
	armHeads       int
	armAppends     int
	heads, appends int
}

func (f *failingAfter) arm(typ string, heads, appends int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armOn, f.armHeads, f.armAppends = typ, heads, appends
}

// take uses up one of the failures counted in *n, if any is left.
func (f *failingAfter) take(n *int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if *n > 0 {
		*n--
		return true
	}
	return false
}

func (f *failingAfter) Head(ctx context.Context) (uint64, error) {
	if f.take(&f.heads) {
		return 0, fmt.Errorf("%w: head: no responders", events.ErrUnavailable)
	}
	return f.stream.Head(ctx)
}

func (f *failingAfter) Append(ctx context.Context, msgs ...events.Message) (uint64, error) {
	if f.take(&f.appends) {
		return 0, fmt.Errorf("%w: append: no responders", events.ErrUnavailable)
	}
	seq, err := f.stream.Append(ctx, msgs...)
	if err != nil {
		return seq, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range msgs {
		env, _, derr := events.Decode(m.Data)
		if derr == nil && f.armOn != "" && env.Type == f.armOn {
			f.heads, f.appends, f.armOn = f.armHeads, f.armAppends, ""
			break
		}
	}
	return seq, nil
}

// followUpReplica is a replica over a failingAfter log, retrying failed
// follow-ups after a millisecond; closed at the test's end.
func followUpReplica(t *testing.T) (*replicaModel, *commands.Service, *failingAfter) {
	t.Helper()
	s := &stream{}
	log := &failingAfter{stream: s}
	r, svc, _ := replicaWith(t, s, log, func(c *commands.Config) { c.FollowUpRetry = time.Millisecond })
	t.Cleanup(svc.Close)
	return r, svc, log
}

// scimSetup configures okta, a platform connection over prod (mappings
// as given) and a user it provisions, in a group "ops" of it.
func scimSetup(t *testing.T, svc *commands.Service, mappings ...domain.RoleMapping) (connID, userID, groupID string) {
	t.Helper()
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	configureOktaAndAzure(t, svc, admin, "prod")
	c, _, err := svc.CreateSCIMConnection(ctx, admin, commands.SCIMConnectionInput{Provider: "okta", Tenants: []string{"prod"}, GroupMappings: mappings, Platform: true, OwnerID: "user-admin"})
	if err != nil {
		t.Fatal(err)
	}
	meta := events.Meta{Actor: events.Actor{Type: "scim", ID: c.ID}}
	userID, err = svc.SCIMCreateUser(ctx, meta, c.ID, commands.SCIMUserInput{Profile: domain.SCIMProfile{UserName: "tess"}, Active: true})
	if err != nil {
		t.Fatal(err)
	}
	groupID, err = svc.SCIMCreateGroup(ctx, meta, c.ID, commands.SCIMGroupInput{DisplayName: "ops", Members: []string{userID}})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID, userID, groupID
}

// roleIn is userID's role in tenant as r has it ("" for none).
func roleIn(r *replicaModel, userID, tenant string) domain.Role {
	u, _, _ := r.model.User(userID)
	return u.Tenants[tenant]
}

// TestSCIMGroupStoredThoughTheFollowUpFails: the event store fails right
// after a group's batch was stored, while its roles are reconciled: the
// create answers the group's ID, not an error — which said that nothing
// was changed (503), so the identity provider sent it again, got 409 and
// never learned the group's ID (outside check 16e). The failure is counted.
func TestSCIMGroupStoredThoughTheFollowUpFails(t *testing.T) {
	r, svc, log := followUpReplica(t)
	connID, userID, _ := scimSetup(t, svc, domain.RoleMapping{Group: "eng", Tenant: "prod", Role: domain.RoleEditor})
	meta := events.Meta{Actor: events.Actor{Type: "scim", ID: connID}}
	log.arm(domain.TypeSCIMGroupCreated, 1, 0)
	id, err := svc.SCIMCreateGroup(context.Background(), meta, connID, commands.SCIMGroupInput{DisplayName: "eng", Members: []string{userID}})
	if err != nil {
		t.Fatalf("a group stored, its follow-up failing: %v, want its ID", err)
	}
	if g, _, ok := r.model.SCIMGroup(id); !ok || !g.Exists() {
		t.Fatalf("group %s not stored", id)
	}
	if roleIn(r, userID, "prod") != domain.RoleEditor {
		t.Error("the member's role, in the group's own batch, is missing")
	}
	if svc.FollowUpFailures() == 0 {
		t.Error("the failed follow-up was not counted")
	}
}

// TestSCIMMappingRolesConvergeInTheBackground: a connection's new mapping
// is stored, and the event store fails while its roles are brought along:
// the update succeeds, and the roles follow in the background without the
// identity provider's help. Before, the update answered 503 "nothing was
// changed" and the roles waited for a later change of those users.
func TestSCIMMappingRolesConvergeInTheBackground(t *testing.T) {
	r, svc, log := followUpReplica(t)
	connID, userID, _ := scimSetup(t, svc)
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	// The stream says when the background retry stores the grant.
	granted := make(chan struct{}, 1)
	r.s.after = func(msgs []events.Message) {
		for _, m := range msgs {
			if strings.Contains(string(m.Data), domain.TypeUserRoleGranted) {
				select {
				case granted <- struct{}{}:
				default:
				}
			}
		}
	}
	log.arm(domain.TypeSCIMConnectionUpdated, 2, 0) // the request's reconciliation and the first retry
	mappings := []domain.RoleMapping{{Group: "ops", Tenant: "prod", Role: domain.RoleEditor}}
	ctx := context.Background()
	if _, _, err := svc.UpdateSCIMConnection(ctx, admin, connID, nil, mappings, nil, "", "", nil); err != nil {
		t.Fatalf("new mappings stored, their follow-up failing: %v, want success", err)
	}
	select {
	case <-granted:
	case <-time.After(10 * time.Second):
		t.Fatalf("the member's role never followed the new mapping (%d follow-up failures)", svc.FollowUpFailures())
	}
	if head, _ := r.s.Head(ctx); r.WaitFor(ctx, head) != nil || roleIn(r, userID, "prod") != domain.RoleEditor {
		t.Fatal("the grant the background retry stored is not the member's role")
	}
	if n := svc.FollowUpFailures(); n != 2 {
		t.Errorf("%d follow-up failures counted, want 2", n)
	}
}

// TestSCIMRetriedPatchReconciles: when the background retries are stopped
// (the replica shutting down), the identity provider's retry of a change —
// which finds nothing left to write — still reconciles its users. Before,
// a commit with nothing to write returned at once.
func TestSCIMRetriedPatchReconciles(t *testing.T) {
	r, svc, log := followUpReplica(t)
	connID, userID, groupID := scimSetup(t, svc)
	svc.Close() // no background retry
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	log.arm(domain.TypeSCIMConnectionUpdated, 1, 0)
	mappings := []domain.RoleMapping{{Group: "ops", Tenant: "prod", Role: domain.RoleEditor}}
	if _, _, err := svc.UpdateSCIMConnection(context.Background(), admin, connID, nil, mappings, nil, "", "", nil); err != nil {
		t.Fatalf("new mappings stored, their follow-up failing: %v, want success", err)
	}
	if roleIn(r, userID, "prod") != "" {
		t.Fatal("the role came without a reconciliation (the test's failure did not happen)")
	}
	meta := events.Meta{Actor: events.Actor{Type: "scim", ID: connID}}
	if err := svc.SCIMUpdateGroup(context.Background(), meta, connID, groupID, commands.SCIMGroupUpdate{Add: []string{userID}}); err != nil {
		t.Fatal(err)
	}
	if roleIn(r, userID, "prod") != domain.RoleEditor {
		t.Error("a change with nothing left to write did not reconcile its users")
	}
}

// TestDeactivationStoredThoughTheTokenRetirementFails: a user's
// deactivation is stored, and the event store fails while the tokens of
// the SCIM connections they own are retired: the answer is ErrIncomplete
// (503 "the change was stored, …: send the same request again"), not the
// store's "nothing was changed"; and the same request again — through the
// API, and through SCIM (active: false for a user inactive already) —
// retires them.
func TestDeactivationStoredThoughTheTokenRetirementFails(t *testing.T) {
	for _, through := range []string{"api", "scim"} {
		t.Run(through, func(t *testing.T) {
			r, svc, log := followUpReplica(t)
			connID, userID, _ := scimSetup(t, svc)
			ctx := context.Background()
			admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
			owned, _, err := svc.CreateSCIMConnection(ctx, admin, commands.SCIMConnectionInput{Provider: "azure", Tenants: []string{"prod"}, OwnerID: userID})
			if err != nil {
				t.Fatal(err)
			}
			deactivate := func() error {
				if through == "api" {
					_, err := svc.DeactivateUser(ctx, admin, userID, "left")
					return err
				}
				no := false
				return svc.SCIMUpdateUser(ctx, events.Meta{Actor: events.Actor{Type: "scim", ID: connID}}, connID, userID, commands.SCIMUserUpdate{Active: &no})
			}
			log.arm(domain.TypeUserDeactivated, 0, 1)
			err = deactivate()
			if !errors.Is(err, commands.ErrIncomplete) || errors.Is(err, events.ErrUnavailable) {
				t.Fatalf("deactivation stored, retirement failing: %v, want %v (and not the store's unavailability)", err, commands.ErrIncomplete)
			}
			if u, _, _ := r.model.User(userID); u.Active {
				t.Fatal("the deactivation was not stored")
			}
			if c, _, _ := r.model.SCIMConnection(owned.ID); c.TokenHash != owned.TokenHash {
				t.Fatal("the token was retired (the test's failure did not happen)")
			}
			// The same request again, failing at once: nothing stored,
			// so the error as it is, not ErrIncomplete (re-check 16r4).
			other, err := svc.CreateUser(ctx, admin, commands.CreateUserInput{Username: "arming", Password: "arming-passphrase-long"})
			if err != nil {
				t.Fatal(err)
			}
			log.arm(domain.TypeUserRoleGranted, 0, 1) // armed by the grant below, failing the next append
			if _, err := svc.ExecuteUser(ctx, admin, other.ID, domain.GrantRole{Tenant: "prod", Role: string(domain.RoleViewer)}); err != nil {
				t.Fatal(err)
			}
			if err := deactivate(); errors.Is(err, commands.ErrIncomplete) || !errors.Is(err, events.ErrUnavailable) {
				t.Fatalf("again, its first append failing: %v, want the store's unavailability (nothing was stored)", err)
			}
			if err := deactivate(); err != nil {
				t.Fatalf("the same request again: %v", err)
			}
			if c, _, _ := r.model.SCIMConnection(owned.ID); c.TokenHash == owned.TokenHash {
				t.Error("the same request again did not retire the token of the connection the user owns")
			}
		})
	}
}

// TestSCIMAdoptionStoredThoughItsFollowUpsFail: an identity provider's
// create adopts kim, an inactive user it deleted before (a rehire, found by
// her identity: an inactive user is not adopted by name); the adoption is
// stored, and the event store fails at the activation that follows it. The
// answer is ErrIncomplete, not the store's "nothing was changed" (outside
// check 16e); nothing is retried in the background, where a replayed
// activation undid a deactivation made meanwhile (re-check 16r3); the
// provider's update activates kim.
func TestSCIMAdoptionStoredThoughItsFollowUpsFail(t *testing.T) {
	r, svc, log := followUpReplica(t)
	connID, _, _ := scimSetup(t, svc)
	ctx := context.Background()
	meta := events.Meta{Actor: events.Actor{Type: "scim", ID: connID}}
	in := commands.SCIMUserInput{Profile: domain.SCIMProfile{UserName: "kim", ExternalID: "00u-kim"}, Active: true}
	kimID, err := svc.SCIMCreateUser(ctx, meta, connID, in)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.SCIMDeleteUser(ctx, meta, connID, kimID); err != nil {
		t.Fatal(err)
	}
	log.arm(domain.TypeSCIMUserAdopted, 0, 1) // the activation's append fails once
	id, err := svc.SCIMCreateUser(ctx, meta, connID, in)
	if id != kimID || !errors.Is(err, commands.ErrIncomplete) || errors.Is(err, events.ErrUnavailable) {
		t.Fatalf("the adoption stored, its activation failing: %q %v, want kim's ID and ErrIncomplete", id, err)
	}
	if l, _, ok := r.model.SCIMLink(connID, kimID); !ok || !l.Linked {
		t.Fatal("kim is not the connection's user")
	}
	yes := true
	if err := svc.SCIMUpdateUser(ctx, meta, connID, kimID, commands.SCIMUserUpdate{Active: &yes}); err != nil {
		t.Fatalf("the provider's update: %v", err)
	}
	if u, _, _ := r.model.User(kimID); !u.Active {
		t.Fatal("kim is not active after the provider's update")
	}
}

// TestSCIMUserChangesStoredInPartsAreIncomplete: a SCIM change made of
// several writes — a new userName, then a password or a deactivation; a
// deactivation, then the user's unlink — whose later write fails once the
// first is stored answers ErrIncomplete, not the store's "nothing was
// changed" (outside check 16r2), and the same request again completes it.
func TestSCIMUserChangesStoredInPartsAreIncomplete(t *testing.T) {
	no := false
	for _, c := range []struct {
		name  string
		armOn string
		do    func(svc *commands.Service, meta events.Meta, connID, userID string) error
		done  func(r *replicaModel, connID, userID string) bool
	}{
		{"a new userName, then a deactivation", domain.TypeUserProfileChanged,
			func(svc *commands.Service, meta events.Meta, connID, userID string) error {
				return svc.SCIMUpdateUser(context.Background(), meta, connID, userID, commands.SCIMUserUpdate{Profile: &domain.SCIMProfile{UserName: "tess2"}, Active: &no})
			},
			func(r *replicaModel, _, userID string) bool { u, _, _ := r.model.User(userID); return !u.Active }},
		{"a new userName, then a password", domain.TypeUserProfileChanged,
			func(svc *commands.Service, meta events.Meta, connID, userID string) error {
				return svc.SCIMUpdateUser(context.Background(), meta, connID, userID, commands.SCIMUserUpdate{Profile: &domain.SCIMProfile{UserName: "tess3"}, Password: "a-long-new-password-42x"})
			},
			func(r *replicaModel, _, userID string) bool {
				return len(r.s.msgs) > 0 && strings.Contains(string(r.s.msgs[len(r.s.msgs)-1].Data), domain.TypeUserPasswordChanged)
			}},
		{"a deactivation, then the unlink", domain.TypeUserDeactivated,
			func(svc *commands.Service, meta events.Meta, connID, userID string) error {
				return svc.SCIMDeleteUser(context.Background(), meta, connID, userID)
			},
			func(r *replicaModel, connID, userID string) bool {
				l, _, _ := r.model.SCIMLink(connID, userID)
				return !l.Linked
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, svc, log := followUpReplica(t)
			connID, userID, _ := scimSetup(t, svc)
			meta := events.Meta{Actor: events.Actor{Type: "scim", ID: connID}}
			log.arm(c.armOn, 0, 1)
			if err := c.do(svc, meta, connID, userID); !errors.Is(err, commands.ErrIncomplete) || errors.Is(err, events.ErrUnavailable) {
				t.Fatalf("the second write failing: %v, want ErrIncomplete (not \"nothing was changed\")", err)
			}
			if err := c.do(svc, meta, connID, userID); err != nil {
				t.Fatalf("the same request again: %v", err)
			}
			if head, _ := r.s.Head(context.Background()); r.WaitFor(context.Background(), head) != nil || !c.done(r, connID, userID) {
				t.Fatal("the same request again did not complete it")
			}
		})
	}
}

// TestPartialRevocationsAreIncomplete: a tenant admin's revocation of a
// user's sessions (one append each), an MFA reset (then the user's
// sessions ended), and a revocation of 501 sessions (two appends of
// batchMax at most), whose later append fails once one is stored, answer
// ErrIncomplete, not "nothing was changed" (re-checks 16r2, by reading
// writeBatch, and 16r3); the same request again ends the rest.
func TestPartialRevocationsAreIncomplete(t *testing.T) {
	for _, c := range []struct {
		name     string
		sessions int
		armOn    string
		do       func(svc *commands.Service, userID string) error
	}{
		{"a revocation in batches", 501, domain.TypeSessionRevoked, func(svc *commands.Service, userID string) error {
			_, err := svc.RevokeUserSessions(context.Background(), events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}, userID, domain.RevokeReasonAdmin, nil)
			return err
		}},
		{"a tenant admin's revocation", 3, domain.TypeSessionRevoked, func(svc *commands.Service, userID string) error {
			_, err := svc.RevokeUserSessions(context.Background(), events.Meta{Actor: events.Actor{Type: "user", ID: "user-tadmin"}}, userID,
				domain.RevokeReasonAdmin, func(domain.User) error { return nil })
			return err
		}},
		{"an MFA reset", 3, domain.TypeMFAReset, func(svc *commands.Service, userID string) error {
			_, err := svc.ResetMFA(context.Background(), events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}, userID, "lost phone", nil)
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, svc, log := followUpReplica(t)
			ctx := context.Background()
			admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
			u, err := svc.CreateUser(ctx, admin, commands.CreateUserInput{Username: "sam", Password: "sam-passphrase-long"})
			if err != nil {
				t.Fatal(err)
			}
			for range c.sessions {
				if _, err := svc.Login(ctx, events.Meta{}, commands.LoginInput{Username: "sam", Password: "sam-passphrase-long"}); err != nil {
					t.Fatal(err)
				}
			}
			log.arm(c.armOn, 0, 1)
			if err := c.do(svc, u.ID); !errors.Is(err, commands.ErrIncomplete) || errors.Is(err, events.ErrUnavailable) {
				t.Fatalf("a later append failing: %v, want ErrIncomplete", err)
			}
			if err := c.do(svc, u.ID); err != nil {
				t.Fatalf("the same request again: %v", err)
			}
			if live := r.model.UserSessionIDs(u.ID, time.Now()); len(live) != 0 {
				t.Fatalf("%d sessions left", len(live))
			}
		})
	}
}

// TestLoginWhoseRecordFailsStillAnswersItsSession: a login's session is
// stored, then its user.login_succeeded fails: the login answers the
// session (it is live), and the failure is counted. Before, it answered
// "nothing was changed", and an MFA step's spent code could not be used
// again (re-check 16r4).
func TestLoginWhoseRecordFailsStillAnswersItsSession(t *testing.T) {
	r, svc, log := followUpReplica(t)
	ctx := context.Background()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	if _, err := svc.CreateUser(ctx, admin, commands.CreateUserInput{Username: "lou", Password: "lou-passphrase-long"}); err != nil {
		t.Fatal(err)
	}
	log.arm(domain.TypeSessionStarted, 0, 1)
	res, err := svc.Login(ctx, events.Meta{}, commands.LoginInput{Username: "lou", Password: "lou-passphrase-long"})
	if err != nil {
		t.Fatalf("a login whose record failed: %v, want its session", err)
	}
	if s, _, ok := r.model.Session(res.Session.ID); !ok || s.ID == "" {
		t.Fatal("the answered session is not stored")
	}
	if svc.FollowUpFailures() != 1 {
		t.Errorf("%d follow-up failures counted, want 1", svc.FollowUpFailures())
	}
}

// TestSCIMAdoptionInactiveWithAPassword: a create that adopts kim, active,
// as inactive and with a password, sets the password and deactivates her
// in the adoption's one write, and succeeds. Before, the password was set
// after the write had deactivated her, was refused (no password change for
// an inactive user), and every such create answered 503 (re-check 16r4).
func TestSCIMAdoptionInactiveWithAPassword(t *testing.T) {
	r, svc, _ := followUpReplica(t)
	connID, _, _ := scimSetup(t, svc)
	ctx := context.Background()
	kim := kimInProd(t, svc)
	before, _, _ := r.model.User(kim.ID)
	meta := events.Meta{Actor: events.Actor{Type: "scim", ID: connID}}
	id, err := svc.SCIMCreateUser(ctx, meta, connID, commands.SCIMUserInput{Profile: domain.SCIMProfile{UserName: "kim"}, Password: "orchid-lantern-42", Active: false})
	if err != nil || id != kim.ID {
		t.Fatalf("adopting kim inactive with a password: %q %v", id, err)
	}
	u, _, _ := r.model.User(kim.ID)
	if u.Active || u.PasswordHashSealed == before.PasswordHashSealed {
		t.Fatalf("kim after the adoption: active %v, password changed %v; want inactive with the pushed password", u.Active, u.PasswordHashSealed != before.PasswordHashSealed)
	}
}

// kimInProd creates kim, a platform admin's user with a role in prod (which
// scimSetup's connection governs: a user it may adopt).
func kimInProd(t *testing.T, svc *commands.Service) domain.User {
	t.Helper()
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	kim, err := svc.CreateUser(context.Background(), admin, commands.CreateUserInput{Username: "kim", Password: "kim-old-passphrase",
		Tenants: []domain.TenantRole{{Tenant: "prod", Role: domain.RoleViewer}}})
	if err != nil {
		t.Fatal(err)
	}
	return kim
}

// TestMFAStepWhoseSessionFailsIsSpent: a second step spends its recovery
// code (stored), then the session's append fails: the answer is
// ErrSignInSpent — neither the store's "nothing was changed", which
// promised a retry (re-check 16r5), nor ErrIncomplete's "send the same
// request again" (re-check 16r6): the same request is refused, the code
// and the MFA token being spent; the user signs in anew.
func TestMFAStepWhoseSessionFailsIsSpent(t *testing.T) {
	_, svc, log := followUpReplica(t)
	ctx := context.Background()
	u := newMFAUser(t, svc, "mona")
	self := events.Meta{Actor: events.Actor{Type: "user", ID: u.ID}}
	confirmedTOTP(t, svc, self, u)
	codes, err := svc.RegenerateRecoveryCodes(ctx, self, u.ID)
	if err != nil || len(codes) < 2 {
		t.Fatalf("recovery codes: %v", err)
	}
	step := firstStep(t, svc, u)
	log.arm(domain.TypeMFARecoveryCodeUsed, 0, 1)
	in := commands.MFAInput{Token: step.Token, Code: codes[0]}
	if _, err := svc.CompleteMFA(ctx, events.Meta{}, in); !errors.Is(err, commands.ErrSignInSpent) || errors.Is(err, events.ErrUnavailable) {
		t.Fatalf("the code spent, the session failing: %v, want ErrSignInSpent", err)
	}
	if _, err := svc.CompleteMFA(ctx, events.Meta{}, in); !errors.Is(err, commands.ErrMFATokenInvalid) {
		t.Fatalf("the same request again: %v, want the spent token refused (which is why the answer says to sign in again)", err)
	}
	if _, err := svc.CompleteMFA(ctx, events.Meta{}, commands.MFAInput{Token: firstStep(t, svc, u).Token, Code: codes[1]}); err != nil {
		t.Fatalf("signing in anew: %v", err)
	}
}

// TestNothingStoredIsNotIncomplete: through replica B, behind A, an
// identity provider's change whose first write turns out to store nothing
// — the activation of a user A activated, the deactivation of a user A
// deactivated — and whose next write fails answers the store's error, not
// ErrIncomplete: nothing was stored (re-check 16r5: the user as read
// before the request decided it, wrongly).
func TestNothingStoredIsNotIncomplete(t *testing.T) {
	no, yes := false, true
	for _, c := range []struct {
		name   string
		before *bool // what A does first
		do     func(svc *commands.Service, meta events.Meta, connID, userID string) error
	}{
		{"an activation, then a password", &yes, func(svc *commands.Service, meta events.Meta, connID, userID string) error {
			return svc.SCIMUpdateUser(context.Background(), meta, connID, userID, commands.SCIMUserUpdate{Active: &yes, Password: "orchid-lantern-42-x"})
		}},
		{"a deactivation, then the unlink", nil, func(svc *commands.Service, meta events.Meta, connID, userID string) error {
			return svc.SCIMDeleteUser(context.Background(), meta, connID, userID)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &stream{}
			_, svcA := replicaOn(t, s, s)
			logB := &failingAfter{stream: s}
			rB, svcB, _ := replicaWith(t, s, logB, nil)
			ctx := context.Background()
			connID, userID, _ := scimSetup(t, svcA)
			meta := events.Meta{Actor: events.Actor{Type: "scim", ID: connID}}
			if c.before != nil { // deactivated, and B knows it
				if err := svcA.SCIMUpdateUser(ctx, meta, connID, userID, commands.SCIMUserUpdate{Active: &no}); err != nil {
					t.Fatal(err)
				}
			}
			if err := svcB.CatchUpHead(ctx); err != nil {
				t.Fatal(err)
			}
			// Then A changes the user, and B has not applied it yet.
			target := &no
			if c.before != nil {
				target = c.before
			}
			if err := svcA.SCIMUpdateUser(ctx, meta, connID, userID, commands.SCIMUserUpdate{Active: target}); err != nil {
				t.Fatal(err)
			}
			if u, _, _ := rB.model.User(userID); u.Active == *target {
				t.Fatal("B is not behind A")
			}
			before := len(s.msgs)
			logB.mu.Lock()
			logB.appends = 1 // the next append through B fails
			logB.mu.Unlock()
			err := c.do(svcB, meta, connID, userID)
			if len(s.msgs) != before {
				t.Fatalf("B stored %d events", len(s.msgs)-before)
			}
			if errors.Is(err, commands.ErrIncomplete) || !errors.Is(err, events.ErrUnavailable) {
				t.Fatalf("nothing stored, the next write failing: %v, want the store's unavailability", err)
			}
		})
	}
}

// TestSCIMPasswordForAUserWhoStaysInactiveIsRefusedFirst: a SCIM change of
// an inactive user's userName with a password (and no activation) is
// refused before anything is stored; before, the rename was stored, the
// password refused after it, and the answer said to send the request
// again, which was refused then (re-check 16r6).
func TestSCIMPasswordForAUserWhoStaysInactiveIsRefusedFirst(t *testing.T) {
	r, svc, _ := followUpReplica(t)
	connID, userID, _ := scimSetup(t, svc)
	ctx := context.Background()
	meta := events.Meta{Actor: events.Actor{Type: "scim", ID: connID}}
	no := false
	if err := svc.SCIMUpdateUser(ctx, meta, connID, userID, commands.SCIMUserUpdate{Active: &no}); err != nil {
		t.Fatal(err)
	}
	before := len(r.s.msgs)
	err := svc.SCIMUpdateUser(ctx, meta, connID, userID, commands.SCIMUserUpdate{Profile: &domain.SCIMProfile{UserName: "tess-renamed"}, Password: "orchid-lantern-42-x"})
	if !errors.Is(err, domain.ErrUserInactive) || errors.Is(err, commands.ErrIncomplete) {
		t.Fatalf("a rename with a password for an inactive user: %v, want the refusal", err)
	}
	onlyAFailedLogin(t, r.s.msgs[before:])
}

// onlyAFailedLogin: a refused SCIM password stored nothing of the change —
// only its check, one user.login_failed (reason scim_password): a wrong
// guess of the password counts toward the lockout (re-check 17r4).
func onlyAFailedLogin(t *testing.T, msgs []events.Message) {
	t.Helper()
	if len(msgs) != 1 {
		t.Fatalf("%d events stored by a refused change, want the failed login alone", len(msgs))
	}
	env, _, err := events.Decode(msgs[0].Data)
	if err != nil || env.Type != "user.login_failed" || !strings.Contains(string(env.Data), `"scim_password"`) {
		t.Fatalf("a refused change stored %s %s (%v), want user.login_failed (scim_password)", env.Type, env.Data, err)
	}
}

// TestSCIMDeactivationWithAPasswordSentAgain: an identity provider's PUT
// of the whole user with its password and active false, sent again (its
// answer lost, or ErrIncomplete's "send the same request again"), is
// answered as the first was, and stores nothing more; before, the user
// being inactive by then, the password was refused (outside check 17c).
// Another password for the inactive user is refused still.
func TestSCIMDeactivationWithAPasswordSentAgain(t *testing.T) {
	s := &stream{}
	r, svc, _ := replicaWith(t, s, &failingAfter{stream: s}, func(c *commands.Config) {
		c.FollowUpRetry = time.Millisecond
		c.Throttle = domain.LoginThrottle{MaxFailures: 5, LockoutFor: 15 * time.Minute}
		c.AddressThrottle = domain.LoginThrottle{MaxFailures: 2, LockoutFor: 15 * time.Minute}
	})
	t.Cleanup(svc.Close)
	connID, userID, _ := scimSetup(t, svc)
	ctx := context.Background()
	// The requests come from the identity provider's address.
	meta := events.Meta{Actor: events.Actor{Type: "scim", ID: connID}, Request: events.RequestInfo{IP: "203.0.113.7"}}
	no := false
	put := commands.SCIMUserUpdate{Profile: &domain.SCIMProfile{UserName: "tess"}, Active: &no, Password: "orchid-lantern-42-x"}
	if err := svc.SCIMUpdateUser(ctx, meta, connID, userID, put); err != nil {
		t.Fatal(err)
	}
	if u, _, _ := r.model.User(userID); u.Active {
		t.Fatal("the user is active after the deactivating PUT")
	}
	before := len(r.s.msgs)
	if err := svc.SCIMUpdateUser(ctx, meta, connID, userID, put); err != nil {
		t.Fatalf("the same PUT again: %v", err)
	}
	if n := len(r.s.msgs) - before; n != 0 {
		t.Fatalf("the same PUT again stored %d events", n)
	}
	put.Password = "another-orchid-lantern-43"
	if err := svc.SCIMUpdateUser(ctx, meta, connID, userID, put); !errors.Is(err, domain.ErrUserInactive) {
		t.Fatalf("another password for the inactive user: %v, want the refusal", err)
	}
	onlyAFailedLogin(t, r.s.msgs[before:])
	// Counted as a login's: after the lockout's failures, the user's own
	// password too is refused 429, and nothing tells it from another.
	for range 4 {
		if err := svc.SCIMUpdateUser(ctx, meta, connID, userID, put); !errors.Is(err, domain.ErrUserInactive) {
			t.Fatalf("another password for the inactive user: %v, want the refusal", err)
		}
	}
	put.Password = "orchid-lantern-42-x"
	if err := svc.SCIMUpdateUser(ctx, meta, connID, userID, put); !errors.Is(err, domain.ErrThrottled) {
		t.Fatalf("the user's own password after five wrong ones: %v, want the lockout", err)
	}
	// The user's count, not the address's: the identity provider's address
	// is not locked for others (re-check 17r5), and the failures carry no
	// address.
	admin := events.Meta{Actor: events.Actor{Type: "user", ID: "user-admin"}}
	if _, err := svc.CreateUser(ctx, admin, commands.CreateUserInput{Username: "uma", Password: "uma-passphrase-long"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Login(ctx, events.Meta{Request: events.RequestInfo{IP: "203.0.113.7"}}, commands.LoginInput{Username: "uma", Password: "uma-passphrase-long"}); err != nil {
		t.Fatalf("another user's login from the identity provider's address: %v", err)
	}
	for _, m := range r.s.msgs[before:] {
		if env, _, err := events.Decode(m.Data); err == nil && env.Type == "user.login_failed" && env.Request.IP != "" {
			t.Fatalf("a SCIM password check's failure carries the address %q", env.Request.IP)
		}
	}
}
