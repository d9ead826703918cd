package http

import (
	_ "embed"

	"github.com/gofiber/fiber/v2"
)

// openAPIDocument is the OpenAPI 3 description of the whole API, written by
// hand. openapi_test.go keeps it true: every registered route is documented
// and every documented one registered, request bodies match the Go request
// types, and the end-to-end tests validate real answers against it.
//
//go:embed openapi.json
var openAPIDocument []byte

// openAPI: GET /openapi.json.
func (s *Server) openAPI(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(openAPIDocument)
}
