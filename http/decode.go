package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// decodeJSON decodes the request body strictly: JSON content type, one object,
// no unknown fields. Errors name the field.
func decodeJSON(c *fiber.Ctx, dst any) error {
	mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mt != fiber.MIMEApplicationJSON {
		return validation("Content-Type must be application/json")
	}
	body, err := requestBody(c)
	if err != nil {
		return err
	}
	return decodeBody(body, dst)
}

// errEncodedBody answers a request whose body carries a content coding
// (Content-Encoding: gzip, deflate, br, …): bodies are taken as they arrive,
// never decompressed, so the body limit bounds what a request costs (outside
// check 14d: Fiber's Body() inflated a 501-byte gzip body to 200 MB).
var errEncodedBody = &Error{http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE",
	"Content-Encoding is not supported: send the request body uncompressed"}

// requestBody returns the request body as it arrived: never Fiber's Body(),
// which decodes every listed Content-Encoding without a limit. A body with a
// content coding other than identity is refused (errEncodedBody).
func requestBody(c *fiber.Ctx) ([]byte, error) {
	if !identityEncoded(&c.Request().Header) {
		return nil, errEncodedBody
	}
	return c.Request().Body(), nil
}

// identityEncoded reports whether every Content-Encoding header of the
// request (there may be several, each a list) names no coding but identity.
func identityEncoded(h *fasthttp.RequestHeader) bool {
	ok := true
	h.VisitAll(func(k, v []byte) {
		if !strings.EqualFold(string(k), fiber.HeaderContentEncoding) {
			return
		}
		for _, coding := range strings.Split(string(v), ",") {
			if c := strings.TrimSpace(coding); c != "" && !strings.EqualFold(c, "identity") {
				ok = false
			}
		}
	})
	return ok
}

func decodeBody(body []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return validation(describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return validation("request body must hold a single JSON object")
	}
	return nil
}

func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "request body is empty"
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("%s: must be %s", typ.Field, typ.Type.String())
		}
		return "request body must be a JSON object"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ") + " is not allowed"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: unexpected end of input"
	}
	return "malformed JSON"
}

// required reports the first empty field among name/value pairs: empty or
// only white space.
func required(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if strings.TrimSpace(pairs[i+1]) == "" {
			return validation(pairs[i] + ": is required")
		}
	}
	return nil
}

// requiredNewPassword reports a new password field that was not sent. One of
// spaces was: the password policy answers it (must not be blank), rather
// than "is required".
func requiredNewPassword(name, value string) error {
	if value == "" {
		return validation(name + ": is required")
	}
	return nil
}
