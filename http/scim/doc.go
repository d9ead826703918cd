// Package scim is the SCIM 2.0 protocol layer (RFC 7643, RFC 7644) of
// Infracast Auth's provisioning: Okta and Microsoft Entra ID push users and
// groups through it. It knows nothing of NATS or the read models: it parses
// and answers SCIM, and calls a Backend (backend.go) that the service
// implements over its commands and read models.
//
// # Mounting
//
//	h := scim.New(backend, scim.Options{AcceptPasswords: true})
//	g := app.Group("/scim/v2", authenticateSCIMToken) // calls scim.SetConn, or answers scim.WriteError(c, scim.ErrUnauthorized)
//	h.Register(g)
//
// Register takes the group of the SCIM base (it answers 404 for any other
// path under it, so never the app itself). The authentication middleware
// sets the request's Conn with SetConn; a request without one is answered
// 401. Every answer, errors included, is application/scim+json; bodies are
// accepted as application/scim+json or application/json.
//
// # What is served
//
// GET /ServiceProviderConfig, /ResourceTypes[/{name}], /Schemas[/{id}]:
// patch and filter supported (filter.maxResults = Options.MaxResults), bulk,
// sort and etag not, changePassword as Options.AcceptPasswords, the
// authentication scheme oauthbearertoken. /Users and /Groups: POST, GET
// (one, or a list with filter, startIndex, count, attributes,
// excludedAttributes), PUT, PATCH, DELETE. Group PATCH answers 204 (as
// Microsoft asks; 200 with the group when attributes= is given); user
// PATCH answers 200 with the user.
//
// User attributes kept: id, externalId, userName (caseExact false), name
// {formatted, givenName, familyName}, displayName, emails {value, type,
// primary}, active, password (write-only, never returned), groups
// (read-only), meta, and the enterprise extension's employeeNumber and
// department. The other attributes RFC 7643 defines (title, locale,
// phoneNumbers, addresses, name.middleName, the extension's manager, …) are
// accepted and ignored, in bodies and in PATCH paths alike: they are not in
// /Schemas and cannot be filtered on. Any other attribute is refused: 400
// invalidValue in a body, invalidPath in a PATCH path, invalidFilter in a
// filter. Group attributes: id, externalId, displayName, members {value,
// type, display (read-only), $ref; displayName, which Microsoft's SCIM
// reference code sends, is ignored}.
//
// # Rules
//
//   - A body's schemas must hold the resource type's core schema (else 400
//     invalidSyntax); other URNs there are tolerated. Read-only attributes in a
//     POST or PUT body (id, meta, groups) are ignored, as RFC 7644 says; a
//     PATCH that targets one is 400 mutability (except Okta's replace of id
//     with the same id).
//   - A PATCH is resolved in full against a copy of the resource (GetUser or
//     GetGroup) before the Backend is called, once, with the result and the
//     attributes that changed: any failing operation changes nothing. A
//     PATCH that changes nothing does not call the Backend.
//   - PUT replaces what a client may set; an absent active is left as it is,
//     an absent password unchanged. POST without active creates an active
//     user.
//   - The clients' quirks that work: op in any case ("Replace"); booleans as
//     strings ("False"); PATCH without path whose value's keys are paths
//     (`emails[type eq "work"].value`, "name.givenName",
//     "urn:…:enterprise:2.0:User:department") or an extension's URN;
//     members removed with {"op":"remove","path":"members","value":[{"value":…}]}
//     or with path `members[value eq "…"]` (nothing to remove is no error);
//     a value filter that matches nothing, in add or replace, adds the value
//     it describes (`emails[type eq "work"].value` on a user without a work
//     address); filter values as bare words (`externalId eq jyoung`) and
//     `emails[type eq "work"].value eq "…"`; members of an operation other
//     than op, path and value (Microsoft's "name": "addMember") are ignored.
//   - Filters (ParseFilter) are parsed here, with limits on length and
//     nesting; ListUsers and ListGroups get them checked and canonical, with
//     Filter.Equality to find the term an index answers and
//     Filter.MatchUser/MatchGroup (and Paginate) for the rest. String
//     comparisons follow each attribute's caseExact.
//   - Errors are in the SCIM error schema, status as a string, with scimType
//     where RFC 7644 defines one. They name the attribute or the place in a
//     filter; no value from a body is echoed (a password never is). This is
//     the SCIM clients' contract under the SCIM base, in place of the rest of
//     the API's {"error":{"code","message"}}.
//
// # Testing
//
// Package scimtest holds Okta's and Entra ID's documented request
// sequences, verbatim, with hooks for what lies behind the answers: this
// package's tests replay them against an in-memory Backend, the end-to-end
// tests against the running service.
package scim
