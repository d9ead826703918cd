package tests

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"testing"
)

// gzipBomb is n MiB of zeros gzipped `layers` times: a few hundred bytes
// on the wire for two layers.
func gzipBomb(t testing.TB, mib, layers int) []byte {
	t.Helper()
	var inner bytes.Buffer
	zw, err := gzip.NewWriterLevel(&inner, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for range mib {
		if _, err := zw.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	b := inner.Bytes()
	for range layers - 1 {
		var out bytes.Buffer
		zw, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := zw.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		b = out.Bytes()
	}
	return b
}

// TestCompressedBodiesAreRefused: a request body with a Content-Encoding
// other than identity is refused with 415 UNSUPPORTED_MEDIA_TYPE (SCIM: its
// own 415 error) before anything decompresses it, on every route that reads
// a body — unauthenticated ones included. Outside check 14d: Fiber's Body()
// decoded every listed coding without a limit, and a 501-byte gzip bomb on
// POST /api/v1/auth/token became 200 MB in memory. An uncompressed body, or
// one marked identity, is still read.
func TestCompressedBodiesAreRefused(t *testing.T) {
	t.Parallel()
	in := Start(t)
	admin := in.AdminToken()
	_, scimTok := newConnection(t, in, admin, admin, []string{"prod"})
	bomb := gzipBomb(t, 64, 2) // 64 MiB behind two layers of gzip
	if len(bomb) > 64<<10 {
		t.Fatalf("the bomb is %d bytes on the wire, over the body limit", len(bomb))
	}
	const js = "application/json"
	for _, enc := range []string{"gzip, gzip", "gzip", "deflate", "br", "GZIP", "identity, gzip"} {
		hdr := map[string]string{"Content-Encoding": enc}
		for _, c := range []struct {
			what string
			req  request
		}{
			{"login", request{Method: "POST", Path: "/api/v1/auth/token", ContentType: js}},
			{"create user", request{Method: "POST", Path: "/api/v1/users", Token: admin, ContentType: js}},
			{"add signing key", request{Method: "POST", Path: "/api/v1/admin/signing-keys", Token: admin, ContentType: js}},
			{"SAML ACS", request{Method: "POST", Path: "/api/v1/auth/sso/saml/acs", ContentType: "multipart/form-data; boundary=b"}},
		} {
			c.req.Header, c.req.Body = hdr, bomb
			r := doReq(t, in, c.req)
			expectError(t, c.what+" with Content-Encoding "+enc, r, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "Content-Encoding")
		}
		r := doReq(t, in, request{Method: "POST", Path: "/scim/v2/Users", Token: scimTok,
			ContentType: "application/scim+json", Header: hdr, Body: bomb})
		wantSCIMError(t, "SCIM create with Content-Encoding "+enc, r, http.StatusUnsupportedMediaType, "")
	}

	// Two Content-Encoding lines count as one list (RFC 9110 5.3).
	req, err := http.NewRequest("POST", in.URL+"/api/v1/auth/token", bytes.NewReader(bomb))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", js)
	req.Header.Add("Content-Encoding", "identity")
	req.Header.Add("Content-Encoding", "gzip")
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Body.Close(); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("two Content-Encoding lines (identity, gzip): %d, want 415", res.StatusCode)
	}

	login := jsonBody(map[string]string{"username": AdminUser, "password": AdminPassword})
	for _, hdr := range []map[string]string{nil, {"Content-Encoding": "identity"}} {
		r := doReq(t, in, request{Method: "POST", Path: "/api/v1/auth/token", ContentType: js, Header: hdr, Body: login})
		expectStatus(t, "login with Content-Encoding "+hdr["Content-Encoding"], r, http.StatusOK)
	}
}
