package http

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/crewjam/saml/xmlenc"
	"github.com/gofiber/fiber/v2"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/infracast/auth/domain"
)

// SAML 2.0 service provider (github.com/crewjam/saml): SP-initiated login
// with the HTTP-Redirect binding, answers with the HTTP-POST binding at the
// ACS. The AuthnRequest ID travels in the flow cookie (InResponseTo); the
// response or assertion must be signed by a configured certificate, and
// audience, destination, recipient, conditions and timing are checked by
// crewjam/saml. A consumed assertion ID is an event on a subject that must be
// new, so a replay is refused by every replica.

const samlMaxResponse = 256 << 10

// samlDeliveryDelay is how long crewjam/saml allows by default between an
// IdP issuing a Response and the ACS receiving it (saml.MaxIssueDelay).
const samlDeliveryDelay = 90 * time.Second

// raiseSAMLIssueDelay makes the clock skew crewjam/saml tolerates
// symmetric: it accepts an IssueInstant up to saml.MaxClockSkew (180 s)
// ahead of our clock but only saml.MaxIssueDelay (90 s) behind it, so an
// IdP whose clock was 100 s slow was refused (outside check 14f). Behind,
// it is now the delivery delay plus the same skew. Assertions are single
// use here (consumeSSOAssertion), so the longer window gives a replay
// nothing.
//
// crewjam/saml keeps both in package variables that it reads as it
// validates. This one is set once, as the package is initialized, before
// any goroutine can read it: changing it as a service provider is built
// would race with every other reader. It is only ever raised, so no other
// user of crewjam/saml in the binary (the service has none; its tests'
// identity provider) refuses anything it accepted before.
func init() { raiseSAMLIssueDelay() }

func raiseSAMLIssueDelay() {
	if want := samlDeliveryDelay + saml.MaxClockSkew; saml.MaxIssueDelay < want {
		saml.MaxIssueDelay = want
	}
}

// parseCertsLenient parses the PEM certificates of s (one, or up to
// domain.MaxSAMLCertificates during a rollover) without checking their
// validity periods (for display, and for the IdP metadata: goxmldsig
// refuses a signature under a certificate that is not valid at the time).
func parseCertsLenient(s string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := []byte(s)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM block")
	}
	return certs, nil
}

// serviceProvider builds the crewjam/saml service provider for p (nil p: for
// the metadata alone).
func (s *Server) serviceProvider(c *fiber.Ctx, p *domain.SSOProvider) (*saml.ServiceProvider, error) {
	if s.cfg.SSO.SAMLKeys == nil {
		return nil, errors.New("http: SAML service provider key is not configured")
	}
	key, spCert, err := s.cfg.SSO.SAMLKeys()
	if err != nil {
		return nil, err
	}
	base := s.baseURL(c)
	metadataURL, err := url.Parse(base + flowPath + "saml/metadata")
	if err != nil {
		return nil, err
	}
	acsURL, err := url.Parse(base + flowPath + "saml/acs")
	if err != nil {
		return nil, err
	}
	sp := &saml.ServiceProvider{
		EntityID: metadataURL.String(), Key: key, Certificate: spCert,
		MetadataURL: *metadataURL, AcsURL: *acsURL,
		AssertionConsumerServiceBindings: []string{saml.HTTPPostBinding},
		Clock:                            dsig.NewFakeClockAt(s.cfg.Now()),
		RejectSHA1Signatures:             true,
		RequireSignedResponseForCBC:      true,
		RejectUnknownConditions:          true,
		AuthnNameIDFormat:                saml.UnspecifiedNameIDFormat,
	}
	if p != nil {
		certs, err := parseCertsLenient(p.Certificate)
		if err != nil {
			return nil, fmt.Errorf("http: SAML IdP certificate: %w", err)
		}
		// One signing key per certificate: a signature valid under any of
		// them is accepted (a rollover).
		var keys []saml.KeyDescriptor
		for _, cert := range certs {
			keys = append(keys, saml.KeyDescriptor{
				Use: "signing",
				KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{X509Certificates: []saml.X509Certificate{
					{Data: base64.StdEncoding.EncodeToString(cert.Raw)},
				}}},
			})
		}
		sp.IDPMetadata = &saml.EntityDescriptor{
			EntityID: p.EntityID,
			IDPSSODescriptors: []saml.IDPSSODescriptor{{
				SSODescriptor: saml.SSODescriptor{RoleDescriptor: saml.RoleDescriptor{
					ProtocolSupportEnumeration: "urn:oasis:names:tc:SAML:2.0:protocol",
					KeyDescriptors:             keys,
				}},
				SingleSignOnServices: []saml.Endpoint{{Binding: saml.HTTPRedirectBinding, Location: p.SSOURL}},
			}},
		}
	}
	return sp, nil
}

// samlMetadata: GET /api/v1/auth/sso/saml/metadata.
func (s *Server) samlMetadata(c *fiber.Ctx) error {
	sp, err := s.serviceProvider(c, nil)
	if err != nil {
		return err
	}
	md := sp.Metadata()
	onlyGCM(md)
	b, err := xml.MarshalIndent(md, "", "  ")
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "application/samlmetadata+xml")
	return c.Send(append([]byte(xml.Header), b...))
}

// samlMetadataMethods are the EncryptionMethods the SP metadata lists with
// its encryption key. crewjam/saml lists AES-CBC too, but the ACS refuses a
// CBC-encrypted assertion unless the Response around it is signed
// (RequireSignedResponseForCBC: CBC has no integrity of its own, and the
// signature inside the assertion can only be checked after decrypting,
// which is what padding-oracle attacks need). Entra ID and AD FS sign only
// the assertion by default, so an IdP that reads the metadata is offered
// AES-GCM alone.
var samlMetadataMethods = map[string]bool{
	xmlenc.AES256GCM.Algorithm(): true,
	xmlenc.AES128GCM.Algorithm(): true,
	// Key transport, not block ciphers.
	"http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p": true,
	"http://www.w3.org/2009/xmlenc11#rsa-oaep":        true,
}

// onlyGCM drops from md's encryption keys the EncryptionMethods that are
// not samlMetadataMethods.
func onlyGCM(md *saml.EntityDescriptor) {
	for i := range md.SPSSODescriptors {
		kds := md.SPSSODescriptors[i].KeyDescriptors
		for j := range kds {
			if kds[j].Use != "encryption" {
				continue
			}
			kds[j].EncryptionMethods = slices.DeleteFunc(kds[j].EncryptionMethods, func(m saml.EncryptionMethod) bool {
				return !samlMetadataMethods[m.Algorithm]
			})
		}
	}
}

// samlCBCHint explains, for the log, why a Response was refused when it
// carries an assertion encrypted with AES-CBC and no signature of its own
// (see samlMetadataMethods), or returns "" for any other Response. raw has
// already been parsed by crewjam/saml; only element names are read here.
func samlCBCHint(raw []byte) string {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil || doc.Root() == nil {
		return ""
	}
	resp := doc.Root()
	if resp.SelectElement("Signature") != nil {
		return ""
	}
	for _, ea := range resp.SelectElements("EncryptedAssertion") {
		for _, m := range ea.FindElements("./EncryptedData/EncryptionMethod") {
			if alg := m.SelectAttrValue("Algorithm", ""); strings.HasSuffix(alg, "-cbc") {
				return "the identity provider encrypts the assertion with AES-CBC (" + alg + ") but signs only the assertion inside, " +
					"which cannot be checked before decrypting: have it sign the response and the assertion " +
					`(Entra ID: SAML signing option "Sign SAML response and assertion"; ` +
					"AD FS: Set-AdfsRelyingPartyTrust -TargetName <name> -SamlResponseSignature MessageAndAssertion), " +
					"or encrypt with AES-GCM, or switch assertion encryption off"
			}
		}
	}
	return ""
}

// samlLoginStart: GET /api/v1/auth/sso/saml/login[?return_to=].
func (s *Server) samlLoginStart(c *fiber.Ctx) error {
	p, err := s.ssoProvider(string(domain.SSOSAML))
	if err != nil {
		return err
	}
	returnTo := c.Query("return_to")
	if returnTo != "" {
		if _, ok := s.checkReturnTo(returnTo); !ok {
			return errBadReturnTo
		}
	}
	sp, err := s.serviceProvider(c, &p)
	if err != nil {
		return err
	}
	req, err := sp.MakeAuthenticationRequest(p.SSOURL, saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		return err
	}
	f := ssoFlow{
		Provider: p.Name, State: randomToken(), RequestID: req.ID, ReturnTo: returnTo,
		Expires: s.cfg.Now().Add(s.flowTTL()).Unix(), Started: time.Now().UnixNano(),
	}
	target, err := req.Redirect(f.State, sp)
	if err != nil {
		return err
	}
	if err := s.setFlowCookie(c, f, true); err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Redirect(target.String(), fiber.StatusFound)
}

// samlACS: POST /api/v1/auth/sso/saml/acs (HTTP-POST binding).
func (s *Server) samlACS(c *fiber.Ctx) error {
	// FormValue parses a multipart body, which fasthttp gunzips without a
	// limit: an encoded body is refused before any form is read.
	if !identityEncoded(&c.Request().Header) {
		return errEncodedBody
	}
	f, ok := s.takeFlow(c)
	if !ok || f.Provider != string(domain.SSOSAML) || f.RequestID == "" {
		return errSSOState
	}
	if !sameString(f.State, c.FormValue("RelayState")) {
		return errSSOState
	}
	p, err := s.ssoProvider(string(domain.SSOSAML))
	if err != nil {
		return err
	}
	encoded := c.FormValue("SAMLResponse")
	if encoded == "" {
		return validation("SAMLResponse: is required")
	}
	if len(encoded) > samlMaxResponse {
		return validation("SAMLResponse: too large")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
	if err != nil {
		return validation("SAMLResponse: is not base64")
	}
	sp, err := s.serviceProvider(c, &p)
	if err != nil {
		return err
	}
	assertion, err := sp.ParseXMLResponse(raw, []string{f.RequestID}, sp.AcsURL)
	if err != nil {
		var ire *saml.InvalidResponseError
		if errors.As(err, &ire) {
			err = ire.PrivateErr
		}
		if hint := samlCBCHint(raw); hint != "" {
			err = fmt.Errorf("%w: %s", err, hint)
		}
		s.ssoReject(c, "SAML response refused", err)
		return errSSOFailed
	}
	login, expires, err := samlIdentity(p, assertion)
	if err != nil {
		s.ssoReject(c, "SAML assertion unusable", err)
		return errSSOFailed
	}
	if err := s.consumeSSOAssertion(c, p.Name, assertion.ID, expires, "SAML assertion replayed"); err != nil {
		return err
	}
	res, err := s.ssoLogin(c, login)
	if err != nil {
		// A second factor (or its enrolment) first: on the login page, as
		// for OpenID Connect, even without a return_to — the browser posted
		// the IdP's form here, and a JSON answer would leave it stranded.
		return s.ssoMFAStep(c, err, f.ReturnTo, true)
	}
	return s.finishSSOLogin(c, res, f.ReturnTo)
}

// Attribute names read from SAML assertions (by Name or FriendlyName), each
// list in order of preference: the first name the assertion carries with a
// value wins, wherever it stands in the assertion.
var (
	samlEmailAttrs  = []string{"email", "mail", "emailaddress", "urn:oid:0.9.2342.19200300.100.1.3", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"}
	samlGroupAttrs  = []string{"groups", "memberof", "eduPersonAffiliation", "urn:oid:1.3.6.1.4.1.5923.1.1.1.1", "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"}
	samlUserAttrs   = []string{"uid", "username", "urn:oid:0.9.2342.19200300.100.1.1"}
	errTransientNID = errors.New("the NameID is transient: configure the IdP to send a persistent or e-mail NameID")
)

// samlIdentity reads the identity out of a verified assertion: the NameID is
// the subject; e-mail, username and groups come from attributes.
func samlIdentity(p domain.SSOProvider, a *saml.Assertion) (domain.SSOLogin, time.Time, error) {
	if a.Subject == nil || a.Subject.NameID == nil || strings.TrimSpace(a.Subject.NameID.Value) == "" {
		return domain.SSOLogin{}, time.Time{}, errors.New("assertion has no NameID")
	}
	nid := a.Subject.NameID
	if nid.Format == string(saml.TransientNameIDFormat) {
		return domain.SSOLogin{}, time.Time{}, errTransientNID
	}
	expires := a.IssueInstant.Add(saml.MaxIssueDelay + saml.MaxClockSkew)
	if a.Conditions != nil && a.Conditions.NotOnOrAfter.After(expires) {
		expires = a.Conditions.NotOnOrAfter.Add(saml.MaxClockSkew)
	}
	// attr returns the values of the first of names (in their order, not
	// the assertion's) that the assertion carries with a value: taken in
	// assertion order, an eduPersonAffiliation (member, staff) before the
	// memberOf naming the mapped groups hid them (outside check 12). Each
	// value is trimmed, as the NameID is: an IdP that pretty-prints its XML
	// surrounds them with white space, and an untrimmed address was dropped
	// as invalid (no e-mail, no link by e-mail) and an untrimmed group
	// mapped no role (re-check 14r2).
	//
	// Two attributes a name matches in two spellings ("email" and "Email")
	// make the assertion ambiguous, and it is refused (ambiguous): which of
	// them is the address depended on their order, and another reader of
	// the assertion may take the one spelled exactly — as an OpenID Connect
	// claim given twice in two letter cases is (exactClaims; outside check
	// 18s).
	var ambiguous error
	attr := func(names []string) []string {
		for _, n := range names {
			var out []string
			spelled := ""
			for _, st := range a.AttributeStatements {
				for _, at := range st.Attributes {
					// A-Z folded only (domain.SameEmail): "groupſ" (LONG S) is
					// not "groups".
					as := at.Name
					if !domain.SameEmail(as, n) {
						as = at.FriendlyName
					}
					if !domain.SameEmail(as, n) {
						continue
					}
					if spelled != "" && as != spelled && ambiguous == nil {
						ambiguous = fmt.Errorf("the assertion carries attribute %.64q as %.64q and %.64q", n, spelled, as)
					}
					spelled = as
					for _, v := range at.Values {
						if v := strings.TrimSpace(v.Value); v != "" {
							out = append(out, v)
						}
					}
				}
			}
			if len(out) > 0 {
				return out
			}
		}
		return nil
	}
	// The identity is (IdP entity ID, NameID): crewjam/saml checked that
	// the assertion's issuer is the configured entity ID.
	in := domain.SSOLogin{Provider: p.Name, Issuer: p.IdentityIssuer(), Subject: strings.TrimSpace(nid.Value)}
	if v := attr(samlEmailAttrs); len(v) > 0 {
		in.Email = v[0]
	} else if nid.Format == string(saml.EmailAddressNameIDFormat) {
		in.Email = strings.TrimSpace(nid.Value)
	}
	// The IdP is configured by a platform admin and signs the assertion:
	// the addresses it asserts count as verified.
	in.EmailVerified = in.Email != ""
	if v := attr(samlUserAttrs); len(v) > 0 {
		in.Username = v[0]
	}
	groupNames := samlGroupAttrs
	if p.GroupsClaim != "" {
		groupNames = []string{p.GroupsClaim}
	}
	in.Groups = attr(groupNames)
	if ambiguous != nil {
		return domain.SSOLogin{}, time.Time{}, ambiguous
	}
	return in, expires, nil
}
