package domain

import (
	"hash/crc32"
	"math/big"
	"math/rand/v2"
	"testing"
)

// TestChecksumMatchesBigIntEncoding: the allocation-free checksum is exactly
// the base62 encoding of the CRC-32 the first keys were issued with, so every
// key issued before still parses.
func TestChecksumMatchesBigIntEncoding(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	inputs := []string{"", "ic_live_", "ic_test_0000000000000000000000000000000000000000000"}
	for i := 0; i < 20000; i++ {
		b := make([]byte, r.IntN(80))
		for j := range b {
			b[j] = byte(r.IntN(256))
		}
		inputs = append(inputs, string(b))
	}
	for _, s := range inputs {
		want := encodeBase62(big.NewInt(int64(crc32.ChecksumIEEE([]byte(s)))), keyChecksumLen)
		if got := checksum(s); string(got[:]) != want {
			t.Fatalf("checksum(%q) = %s, want %s", s, got, want)
		}
	}
	// The extremes of a CRC-32.
	for _, crc := range []uint32{0, 1, 61, 62, 62 * 62, 1<<32 - 1} {
		want := encodeBase62(big.NewInt(int64(crc)), keyChecksumLen)
		n := uint64(crc)
		var got [keyChecksumLen]byte
		for i := keyChecksumLen - 1; i >= 0; i-- {
			got[i], n = base62[n%62], n/62
		}
		if string(got[:]) != want {
			t.Fatalf("crc %d: %s, want %s", crc, got, want)
		}
	}
}

func BenchmarkParseAPIKey(b *testing.B) {
	key := FormatAPIKey(KeyEnvLive, [32]byte{1, 2, 3})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := ParseAPIKey(key); err != nil {
			b.Fatal(err)
		}
	}
}
