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

// FormatAPIKey builds a key for env from 32 random bytes.
func FormatAPIKey(env string, random [32]byte) string {
	body := encodeBase62(new(big.Int).SetBytes(random[:]), keyBodyLen)
	prefix := "ic_" + env + "_" + body
	return prefix + encodeBase62(big.NewInt(int64(crc32.ChecksumIEEE([]byte(prefix)))), keyChecksumLen)
}

// ParseAPIKey checks a key's shape and checksum and returns its environment.
func ParseAPIKey(s string) (env string, err error) {
	rest, ok := strings.CutPrefix(s, "ic_")
	if !ok {
		return "", ErrMalformedKey
	}
	env, rest, ok = strings.Cut(rest, "_")
	if !ok || (env != KeyEnvLive && env != KeyEnvTest) || len(rest) != keyBodyLen+keyChecksumLen {
		return "", ErrMalformedKey
	}
	for i := 0; i < len(rest); i++ {
		if strings.IndexByte(base62, rest[i]) < 0 {
			return "", ErrMalformedKey
		}
	}
	prefix := s[:len(s)-keyChecksumLen]
	want := encodeBase62(big.NewInt(int64(crc32.ChecksumIEEE([]byte(prefix)))), keyChecksumLen)
	if s[len(s)-keyChecksumLen:] != want {
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
