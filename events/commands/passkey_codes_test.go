package commands_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/infracast/auth/domain"
	"github.com/infracast/auth/events"
)

// TestPasskeyRegisteredThoughItsFirstCodesFail: a user's first factor, a
// passkey, is stored (its registration token spent), then the append of
// the first recovery codes fails: the registration answers the passkey
// without codes, and the failure is counted. Before, the answer was the
// store's "nothing was changed" for a stored passkey, and the same request
// was refused after it (re-check 16r6).
func TestPasskeyRegisteredThoughItsFirstCodesFail(t *testing.T) {
	r, svc, log := followUpReplica(t)
	ctx := context.Background()
	u := newMFAUser(t, svc, "penny")
	self := events.Meta{Actor: events.Actor{Type: "user", ID: u.ID}}
	tok, creation, err := svc.BeginPasskeyRegistration(ctx, u.ID, testRP)
	if err != nil {
		t.Fatal(err)
	}
	cred := noneAttestation(t, creation.Response.Challenge.String())
	log.arm(domain.TypeMFAPasskeyRegistered, 0, 1)
	pk, codes, err := svc.RegisterPasskey(ctx, self, u.ID, tok, "Laptop", cred, testRP)
	if err != nil || pk.ID == "" || codes != nil {
		t.Fatalf("the passkey stored, its codes failing: %+v %v %v, want the passkey, no codes, no error", pk, codes, err)
	}
	if m, _ := r.model.MFA(u.ID); len(m.Passkeys) != 1 || len(m.RecoveryHashes) != 0 {
		t.Fatalf("stored: %d passkeys, %d recovery codes; want 1 and 0", len(m.Passkeys), len(m.RecoveryHashes))
	}
	if svc.FollowUpFailures() != 1 {
		t.Errorf("%d follow-up failures counted, want 1", svc.FollowUpFailures())
	}
	// The user makes a set afterwards.
	if codes, err := svc.RegenerateRecoveryCodes(ctx, self, u.ID); err != nil || len(codes) == 0 {
		t.Fatalf("a set afterwards: %v", err)
	}
}

// noneAttestation answers a registration ceremony's challenge as a
// software authenticator: a fresh P-256 key, attestation format "none",
// user present and verified, for testRP.
func noneAttestation(t *testing.T, challenge string) json.RawMessage {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x, y := make([]byte, 32), make([]byte, 32)
	key.PublicKey.X.FillBytes(x)
	key.PublicKey.Y.FillBytes(y)
	// COSE_Key {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y}.
	cose := cborMapHead(5)
	cose = append(cborInt(cborInt(cose, 1), 2), cborInt(cborInt(nil, 3), -7)...)
	cose = append(cose, cborInt(cborInt(nil, -1), 1)...)
	cose = cborBytes(cborInt(cose, -2), x)
	cose = cborBytes(cborInt(cose, -3), y)
	credID := make([]byte, 16)
	if _, err := rand.Read(credID); err != nil {
		t.Fatal(err)
	}
	rpHash := sha256.Sum256([]byte(testRP.ID))
	auth := append([]byte{}, rpHash[:]...)
	auth = append(auth, 0x45, 0, 0, 0, 0)    // flags UP|UV|AT, sign count 0
	auth = append(auth, make([]byte, 16)...) // AAGUID
	auth = binary.BigEndian.AppendUint16(auth, uint16(len(credID)))
	auth = append(append(auth, credID...), cose...)
	// {"fmt": "none", "attStmt": {}, "authData": auth}
	att := cborMapHead(3)
	att = cborText(cborText(att, "fmt"), "none")
	att = append(cborText(att, "attStmt"), 0xa0)
	att = cborBytes(cborText(att, "authData"), auth)
	cd, err := json.Marshal(map[string]string{"type": "webauthn.create", "challenge": challenge, "origin": testRP.Origins[0]})
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	raw, err := json.Marshal(map[string]any{"id": b64(credID), "rawId": b64(credID), "type": "public-key",
		"response": map[string]string{"clientDataJSON": b64(cd), "attestationObject": b64(att)}})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// The few CBOR items (RFC 8949) an attestation object needs.
func cborHead(b []byte, major byte, n uint64) []byte {
	switch {
	case n < 24:
		return append(b, major<<5|byte(n))
	case n < 256:
		return append(b, major<<5|24, byte(n))
	default:
		return binary.BigEndian.AppendUint16(append(b, major<<5|25), uint16(n))
	}
}

func cborMapHead(n uint64) []byte { return cborHead(nil, 5, n) }

func cborInt(b []byte, v int) []byte {
	if v < 0 {
		return cborHead(b, 1, uint64(-1-v))
	}
	return cborHead(b, 0, uint64(v))
}

func cborBytes(b, v []byte) []byte { return append(cborHead(b, 2, uint64(len(v))), v...) }

func cborText(b []byte, v string) []byte { return append(cborHead(b, 3, uint64(len(v))), v...) }
