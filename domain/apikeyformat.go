package domain

import (
	"errors"
	"hash/crc32"
	"math/big"
	"strings"
)

// API key format: "ic_" + environment ("live" or "test") + "_" + 43 base62
// characters carrying 256 random bits + 6 base62 characters of CRC-32 over
// everything before them. The checksum lets secret scanners and the server
// reject a mistyped or made-up key without a lookup.
const (
	KeyEnvLive     = "live"
	KeyEnvTest     = "test"
	keyBodyLen     = 43 // ceil(256 / log2(62))
	keyChecksumLen = 6  // ceil(32 / log2(62))
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ErrMalformedKey: the string is not a well-formed Infracast API key.
var ErrMalformedKey = errors.New("domain: malformed API key")

// LooksLikeAPIKey reports whether a bearer credential claims to be an API key.
func LooksLikeAPIKey(s string) bool { return strings.HasPrefix(s, "ic_") }

// isBase62 marks the bytes of the base62 alphabet.
var isBase62 = func() (t [256]bool) {
	for i := 0; i < len(base62); i++ {
		t[base62[i]] = true
	}
	return t
}()

// FormatAPIKey builds a key for env from 32 random bytes.
func FormatAPIKey(env string, random [32]byte) string {
	body := encodeBase62(new(big.Int).SetBytes(random[:]), keyBodyLen)
	prefix := "ic_" + env + "_" + body
	sum := checksum(prefix)
	return prefix + string(sum[:])
}

// checksum is the base62 CRC-32 (IEEE) of s, zero-padded. It is on the path
// of every request with an API key: no allocation (the table-driven CRC
// reads the string as is; a CRC-32 is below 62^6, so uint64 arithmetic
// suffices).
func checksum(s string) [keyChecksumLen]byte {
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = crc32.IEEETable[byte(crc)^s[i]] ^ (crc >> 8)
	}
	n := uint64(^crc)
	var out [keyChecksumLen]byte
	for i := keyChecksumLen - 1; i >= 0; i-- {
		out[i] = base62[n%62]
		n /= 62
	}
	return out
}

// APIKeyEnv checks only a key's prefix, environment and length, and returns
// its environment: enough for a key found by the hash of its secret, which
// this service issued well-formed. ParseAPIKey checks the rest.
func APIKeyEnv(s string) (env string, ok bool) {
	rest, ok := strings.CutPrefix(s, "ic_")
	if !ok {
		return "", false
	}
	env, rest, ok = strings.Cut(rest, "_")
	if !ok || (env != KeyEnvLive && env != KeyEnvTest) || len(rest) != keyBodyLen+keyChecksumLen {
		return "", false
	}
	return env, true
}

// ParseAPIKey checks a key's shape and checksum and returns its environment.
func ParseAPIKey(s string) (env string, err error) {
	env, ok := APIKeyEnv(s)
	if !ok {
		return "", ErrMalformedKey
	}
	rest := s[len("ic_")+len(env)+1:]
	for i := 0; i < len(rest); i++ {
		if !isBase62[rest[i]] {
			return "", ErrMalformedKey
		}
	}
	want := checksum(s[:len(s)-keyChecksumLen])
	if s[len(s)-keyChecksumLen:] != string(want[:]) {
		return "", ErrMalformedKey
	}
	return env, nil
}

func encodeBase62(n *big.Int, width int) string {
	out := make([]byte, width)
	base := big.NewInt(62)
	mod := new(big.Int)
	n = new(big.Int).Set(n)
	for i := width - 1; i >= 0; i-- {
		n.DivMod(n, base, mod)
		out[i] = base62[mod.Int64()]
	}
	return string(out)
}
