package gpconnect

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The identifier systems the JWT rules look for.
const (
	SystemODSCode       = "https://fhir.nhs.uk/Id/ods-organization-code"
	SystemODSCodeLegacy = "http://fhir.nhs.net/Id/ods-organization-code"
	SystemSDSUserID     = "https://fhir.nhs.uk/Id/sds-user-id"
	SystemSDSRoleID     = "https://fhir.nhs.uk/Id/sds-role-profile-id"
)

// The JWT claim names of GP Connect 1.2.x.
const (
	ClaimIssuer                 = "iss"
	ClaimSubject                = "sub"
	ClaimAudience               = "aud"
	ClaimIssuedAt               = "iat"
	ClaimExpiresAt              = "exp"
	ClaimReasonForRequest       = "reason_for_request"
	ClaimRequestedScope         = "requested_scope"
	ClaimRequestingDevice       = "requesting_device"
	ClaimRequestingOrganization = "requesting_organization"
	ClaimRequestingPractitioner = "requesting_practitioner"
	ClaimRequestedRecord        = "requested_record"
)

// TokenLifetime is the only lifetime GP Connect allows: exp - iat.
const TokenLifetime = 300 * time.Second

// ClaimError says which part of the token is wrong and what to change.
//
// Status is 422 (INVALID_RESOURCE) when a resource claim holds something
// that is not a valid FHIR STU3 resource of the expected type: a missing or
// wrong resourceType, an element STU3 does not define for that type, or an
// element of the wrong JSON type (the NHS conformance suite's JWT.feature
// expects 422 for these). Everything else is 400 (BAD_REQUEST): the
// envelope, a claim missing, null or of the wrong JSON type, wrong values,
// and a valid resource lacking an element GP Connect requires (the suite
// expects 400 for a missing ODS code or SDS user ID).
type ClaimError struct {
	Claim  string // a claim name, or "Authorization", "header", "payload", "signature"
	Status int
	Reason string
}

// Error returns the reason with the claim it concerns, for logs.
func (e *ClaimError) Error() string {
	return fmt.Sprintf("jwt %s: %s", e.Claim, e.Reason)
}

// Code returns the provider error code that goes with Status.
func (e *ClaimError) Code() string {
	if e.Status == 422 {
		return CodeInvalidResource
	}
	return CodeBadRequest
}

func badRequest(claim, format string, args ...any) *ClaimError {
	return &ClaimError{Claim: claim, Status: 400, Reason: fmt.Sprintf(format, args...)}
}

func invalidResource(claim, format string, args ...any) *ClaimError {
	return &ClaimError{Claim: claim, Status: 422, Reason: fmt.Sprintf(format, args...)}
}

// Identifier is a FHIR Identifier reduced to what the rules read.
type Identifier struct{ System, Value string }

// HumanName is a FHIR STU3 HumanName reduced to what the rules read.
type HumanName struct {
	Family string
	Given  []string
	Prefix []string
}

// Device is the requesting_device claim, decoded.
type Device struct {
	ResourceType   string
	Identifiers    []Identifier
	Model, Version string
}

// Organization is the requesting_organization claim, decoded.
type Organization struct {
	ResourceType string
	ID, Name     string
	Identifiers  []Identifier
}

// Practitioner is the requesting_practitioner claim, decoded.
type Practitioner struct {
	ResourceType string
	ID           string
	Names        []HumanName
	Identifiers  []Identifier
}

// Claims are the decoded claims of a GP Connect token. The resource claims
// are kept both decoded (what the audit reads) and as sent (what Check
// validates as FHIR).
type Claims struct {
	Issuer, Subject, Audience        string
	IssuedAt, ExpiresAt              int64
	ReasonForRequest, RequestedScope string

	RequestingDevice       Device
	RequestingOrganization Organization
	RequestingPractitioner Practitioner

	RequestingDeviceJSON       json.RawMessage
	RequestingOrganizationJSON json.RawMessage
	RequestingPractitionerJSON json.RawMessage
	// RequestedRecordJSON is set when the token carries the DSTU2-era
	// requested_record claim, which a 1.2.x provider refuses.
	RequestedRecordJSON json.RawMessage
}

// ClaimSummary is what the audit keeps of a token.
type ClaimSummary struct {
	Issuer, Subject, SDSUserID, RoleProfileID, ODSCode, Device string
}

// Summary extracts the audit fields: who (SDS user and role profile), from
// where (ODS code) and with what (device model and version).
func (c Claims) Summary() ClaimSummary {
	s := ClaimSummary{Issuer: c.Issuer, Subject: c.Subject}
	for _, id := range c.RequestingPractitioner.Identifiers {
		switch id.System {
		case SystemSDSUserID:
			s.SDSUserID = id.Value
		case SystemSDSRoleID:
			s.RoleProfileID = id.Value
		}
	}
	for _, id := range c.RequestingOrganization.Identifiers {
		if isODSSystem(id.System) {
			s.ODSCode = id.Value
			break
		}
	}
	s.Device = strings.TrimSpace(c.RequestingDevice.Model + " " + c.RequestingDevice.Version)
	return s
}

// Token is a parsed bearer token: the raw JWT and its claims.
type Token struct {
	Raw    string
	Claims Claims

	// decoded holds ParseAuthorization's strict decoding of the three
	// resource claims, so Check does not decode them again; Check uses it
	// only while the claims' bytes are the ones it was made from.
	decoded *decodedResources
}

type decodedResources struct {
	devRaw, orgRaw, prRaw json.RawMessage
	dev                   Device
	devErr                *ClaimError
	org                   Organization
	orgErr                *ClaimError
	pr                    Practitioner
	prErr                 *ClaimError
}

// device, organization and practitioner return the strict decoding of
// each resource claim: ParseAuthorization's when the bytes are unchanged,
// else a fresh one (a Token built or edited by hand).
func (t *Token) device() (Device, *ClaimError) {
	if d := t.decoded; d != nil && bytes.Equal(d.devRaw, t.Claims.RequestingDeviceJSON) {
		return d.dev, copyErr(d.devErr)
	}
	return decodeDevice(t.Claims.RequestingDeviceJSON)
}

func (t *Token) organization() (Organization, *ClaimError) {
	if d := t.decoded; d != nil && bytes.Equal(d.orgRaw, t.Claims.RequestingOrganizationJSON) {
		return d.org, copyErr(d.orgErr)
	}
	return decodeOrganization(t.Claims.RequestingOrganizationJSON)
}

func (t *Token) practitioner() (Practitioner, *ClaimError) {
	if d := t.decoded; d != nil && bytes.Equal(d.prRaw, t.Claims.RequestingPractitionerJSON) {
		return d.pr, copyErr(d.prErr)
	}
	return decodePractitioner(t.Claims.RequestingPractitionerJSON)
}

func copyErr(e *ClaimError) *ClaimError {
	if e == nil {
		return nil
	}
	c := *e
	return &c
}

// ParseAuthorization decodes an Authorization header value strictly as
// GP Connect 1.2.x requires: "Bearer " and an unsigned JWT whose header is
// exactly {"alg":"none","typ":"JWT"}, base64url without padding, an empty
// signature, and a payload holding every mandatory claim with the right JSON
// type. It does not judge claim values: that is Check. When the payload
// decodes as a JSON object the token is returned even with an error, holding
// what could be read, so a caller in log-only mode can still audit it.
func ParseAuthorization(header string) (*Token, *ClaimError) {
	if header == "" {
		return nil, badRequest("Authorization", "the Authorization header is missing: send \"Bearer \" followed by an unsigned JWT")
	}
	raw, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		scheme, _, _ := strings.Cut(header, " ")
		return nil, badRequest("Authorization", "the Authorization header must start with \"Bearer \" (that case, one space), got %q", truncate(scheme, 40))
	}
	if strings.ContainsAny(raw, " \t\r\n") {
		return nil, badRequest("Authorization", "the JWT must follow \"Bearer \" directly and contain no spaces or line breaks")
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, badRequest("Authorization", "the bearer token must be a JWT of three dot-separated parts (header.payload.), got %d part(s)", len(parts))
	}
	headerJSON, cerr := decodePart("header", parts[0])
	if cerr != nil {
		return nil, cerr
	}
	if cerr := checkJOSEHeader(headerJSON); cerr != nil {
		return nil, cerr
	}
	if parts[2] != "" {
		return nil, badRequest("signature", "GP Connect tokens are unsigned: the token must end with \".\" and carry no signature, got %d signature characters", len(parts[2]))
	}
	payload, cerr := decodePart("payload", parts[1])
	if cerr != nil {
		return nil, cerr
	}
	members, _, err := objectMembers(payload)
	if err != nil {
		return nil, badRequest("payload", "the JWT payload must be one JSON object: %v", err)
	}
	t := &Token{Raw: raw, decoded: &decodedResources{}}
	return t, decodeClaims(members, &t.Claims, t.decoded)
}

// decodePart base64url-decodes one JWT part, naming the defect precisely.
func decodePart(name, part string) ([]byte, *ClaimError) {
	if strings.Contains(part, "=") {
		return nil, badRequest(name, "the JWT %s has base64 padding (=): encode it as base64url without padding", name)
	}
	if strings.ContainsAny(part, "+/") {
		return nil, badRequest(name, "the JWT %s uses standard base64 (+ or /): encode it as base64url (- and _) without padding", name)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(part)
	if err != nil {
		return nil, badRequest(name, "the JWT %s is not base64url: %v", name, err)
	}
	return b, nil
}

// checkJOSEHeader requires exactly the members alg=none and typ=JWT.
func checkJOSEHeader(b []byte) *ClaimError {
	members, names, err := objectMembers(b)
	if err != nil {
		return badRequest("header", "the JWT header must be the JSON object {\"alg\":\"none\",\"typ\":\"JWT\"}: %v", err)
	}
	for _, n := range names {
		if n != "alg" && n != "typ" {
			return badRequest("header", "the JWT header must hold only alg and typ ({\"alg\":\"none\",\"typ\":\"JWT\"}); remove %q", n)
		}
	}
	for _, want := range [][2]string{{"alg", "none"}, {"typ", "JWT"}} {
		rawv, ok := members[want[0]]
		if !ok {
			return badRequest("header", "the JWT header lacks %q: it must be {\"alg\":\"none\",\"typ\":\"JWT\"}", want[0])
		}
		var v string
		if unmarshalString(rawv, &v) != nil || v != want[1] {
			return badRequest("header", "the JWT header %s must be %q, got %s", want[0], want[1], truncate(string(rawv), 40))
		}
	}
	return nil
}

// decodeClaims fills c from the payload members and returns the first
// problem, in claim order. It carries on past problems so c holds all that
// could be read.
func decodeClaims(m map[string]json.RawMessage, c *Claims, d *decodedResources) *ClaimError {
	var first *ClaimError
	keep := func(e *ClaimError) {
		if first == nil && e != nil {
			first = e
		}
	}
	keep(stringClaim(m, ClaimIssuer, &c.Issuer, "the consumer system's URL"))
	keep(stringClaim(m, ClaimSubject, &c.Subject, "the user's ID, equal to requesting_practitioner.id"))
	keep(stringClaim(m, ClaimAudience, &c.Audience, "the provider's service root URL"))
	keep(intClaim(m, ClaimIssuedAt, &c.IssuedAt))
	keep(intClaim(m, ClaimExpiresAt, &c.ExpiresAt))
	keep(stringClaim(m, ClaimReasonForRequest, &c.ReasonForRequest, `"directcare"`))
	keep(stringClaim(m, ClaimRequestedScope, &c.RequestedScope, "the interaction's scope, e.g. "+ScopePatientRead))
	keep(objectClaim(m, ClaimRequestingDevice, &c.RequestingDeviceJSON, "Device"))
	keep(objectClaim(m, ClaimRequestingOrganization, &c.RequestingOrganizationJSON, "Organization"))
	keep(objectClaim(m, ClaimRequestingPractitioner, &c.RequestingPractitionerJSON, "Practitioner"))
	if rr, ok := m[ClaimRequestedRecord]; ok {
		c.RequestedRecordJSON = rr
	}
	d.dev, d.devErr = decodeDevice(c.RequestingDeviceJSON)
	d.org, d.orgErr = decodeOrganization(c.RequestingOrganizationJSON)
	d.pr, d.prErr = decodePractitioner(c.RequestingPractitionerJSON)
	d.devRaw, d.orgRaw, d.prRaw = c.RequestingDeviceJSON, c.RequestingOrganizationJSON, c.RequestingPractitionerJSON
	c.RequestingDevice, c.RequestingOrganization, c.RequestingPractitioner = d.dev, d.org, d.pr
	return first
}

func stringClaim(m map[string]json.RawMessage, name string, dst *string, want string) *ClaimError {
	raw, ok := m[name]
	if !ok {
		return badRequest(name, "the %s claim is missing: it must hold %s", name, want)
	}
	if isNull(raw) {
		return badRequest(name, "the %s claim is null: it must hold %s", name, want)
	}
	if raw[0] != '"' {
		return badRequest(name, "the %s claim must be a JSON string (%s), got %s", name, want, jsonKind(raw))
	}
	if err := unmarshalString(raw, dst); err != nil {
		return badRequest(name, "the %s claim is not a valid JSON string: %v", name, err)
	}
	if *dst == "" {
		return badRequest(name, "the %s claim is empty: it must hold %s", name, want)
	}
	return nil
}

func intClaim(m map[string]json.RawMessage, name string, dst *int64) *ClaimError {
	raw, ok := m[name]
	if !ok {
		return badRequest(name, "the %s claim is missing: it must hold integer seconds since 1970 (exp = iat + 300)", name)
	}
	if isNull(raw) {
		return badRequest(name, "the %s claim is null: it must hold integer seconds since 1970", name)
	}
	if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return badRequest(name, "the %s claim must be a JSON number of whole seconds, got %s", name, jsonKind(raw))
	}
	if bytes.ContainsAny(raw, ".eE") {
		return badRequest(name, "the %s claim must be whole seconds with no fraction or exponent, got %s", name, truncate(string(raw), 40))
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return badRequest(name, "the %s claim is not a usable integer: %v", name, err)
	}
	*dst = v
	return nil
}

func objectClaim(m map[string]json.RawMessage, name string, dst *json.RawMessage, resourceType string) *ClaimError {
	raw, ok := m[name]
	if !ok {
		return badRequest(name, "the %s claim is missing: it must hold a FHIR STU3 %s resource", name, resourceType)
	}
	if isNull(raw) {
		return badRequest(name, "the %s claim is null: it must hold a FHIR STU3 %s resource", name, resourceType)
	}
	if raw[0] != '{' {
		return badRequest(name, "the %s claim must be a JSON object (a FHIR STU3 %s resource), got %s", name, resourceType, jsonKind(raw))
	}
	*dst = raw
	return nil
}

// JWTPolicy holds the tunable part of the JWT rules.
type JWTPolicy struct {
	// Skew is how far iat may lie in the future and exp in the past. Zero
	// means 300 s: the NHS suite sends iat = now + 200 s and expects success.
	Skew time.Duration
}

func (p JWTPolicy) skew() time.Duration {
	if p.Skew <= 0 {
		return 300 * time.Second
	}
	return p.Skew
}

// CheckAuthorization parses the header and checks the token for in.
func (p JWTPolicy) CheckAuthorization(header string, in Interaction, now time.Time) (*Token, *ClaimError) {
	t, err := ParseAuthorization(header)
	if err != nil {
		return t, err
	}
	return t, p.Check(t, in, now)
}

// Check applies the GP Connect 1.2.x claim rules to a parsed token for
// interaction in: timing, reason, scope (skipped when in.Scope is empty),
// the three resource claims, sub = requesting_practitioner.id, and no
// DSTU2 requested_record. It also repeats the presence checks of
// ParseAuthorization, so a Token built by hand is judged the same way.
func (p JWTPolicy) Check(t *Token, in Interaction, now time.Time) *ClaimError {
	if t == nil {
		return badRequest("Authorization", "no bearer token: send \"Bearer \" followed by an unsigned JWT")
	}
	c := t.Claims
	for _, s := range []struct{ name, v string }{
		{ClaimIssuer, c.Issuer}, {ClaimSubject, c.Subject}, {ClaimAudience, c.Audience},
		{ClaimReasonForRequest, c.ReasonForRequest}, {ClaimRequestedScope, c.RequestedScope},
	} {
		if s.v == "" {
			return badRequest(s.name, "the %s claim is missing or empty", s.name)
		}
	}
	if c.RequestedRecordJSON != nil {
		return badRequest(ClaimRequestedRecord, "requested_record belongs to the DSTU2 versions of GP Connect; remove it from a 1.2.x token")
	}
	if d := c.ExpiresAt - c.IssuedAt; d != int64(TokenLifetime/time.Second) {
		return badRequest(ClaimExpiresAt, "exp must be exactly iat + 300, got exp - iat = %d", d)
	}
	skew := p.skew()
	if exp := time.Unix(c.ExpiresAt, 0); exp.Before(now.Add(-skew)) {
		return badRequest(ClaimExpiresAt, "the token expired at %s, more than %s before now (%s): make a new token for every request",
			exp.UTC().Format(time.RFC3339), skew, now.UTC().Format(time.RFC3339))
	}
	if iat := time.Unix(c.IssuedAt, 0); iat.After(now.Add(skew)) {
		return badRequest(ClaimIssuedAt, "iat %s is more than %s after now (%s): check the consumer's clock",
			iat.UTC().Format(time.RFC3339), skew, now.UTC().Format(time.RFC3339))
	}
	if c.ReasonForRequest != "directcare" {
		return badRequest(ClaimReasonForRequest, "reason_for_request must be \"directcare\", got %q", truncate(c.ReasonForRequest, 60))
	}
	if cerr := checkScope(c.RequestedScope, in); cerr != nil {
		return cerr
	}
	if cerr := checkDevice(t.device()); cerr != nil {
		return cerr
	}
	if cerr := checkOrganization(t.organization()); cerr != nil {
		return cerr
	}
	pr, cerr := checkPractitioner(t.practitioner())
	if cerr != nil {
		return cerr
	}
	if c.Subject != pr.ID {
		return badRequest(ClaimSubject, "sub must equal requesting_practitioner.id: sub is %q, id is %q", truncate(c.Subject, 60), truncate(pr.ID, 60))
	}
	return nil
}

var scopes = []string{ScopePatientRead, ScopePatientWrite, ScopeOrgRead, ScopeOrgWrite}

func checkScope(scope string, in Interaction) *ClaimError {
	if !slices.Contains(scopes, scope) {
		return badRequest(ClaimRequestedScope, "requested_scope must be one of %s, got %q", strings.Join(scopes, ", "), truncate(scope, 60))
	}
	if in.Scope != "" && scope != in.Scope {
		return badRequest(ClaimRequestedScope, "requested_scope is %s but %s (%s) needs %s", scope, in.Name, in.ID, in.Scope)
	}
	return nil
}

func checkDevice(d Device, cerr *ClaimError) *ClaimError {
	if cerr != nil {
		return cerr
	}
	const n = ClaimRequestingDevice
	if len(d.Identifiers) == 0 || d.Identifiers[0].System == "" || d.Identifiers[0].Value == "" {
		return badRequest(n, "requesting_device needs identifier[0] with both system and value (the consumer's device identifier)")
	}
	if d.Model == "" {
		return badRequest(n, "requesting_device needs model (the consumer product's name)")
	}
	if d.Version == "" {
		return badRequest(n, "requesting_device needs version (the consumer product's version)")
	}
	return nil
}

func checkOrganization(o Organization, cerr *ClaimError) *ClaimError {
	if cerr != nil {
		return cerr
	}
	const n = ClaimRequestingOrganization
	if o.Name == "" {
		return badRequest(n, "requesting_organization needs name (the requesting organisation's name)")
	}
	for _, id := range o.Identifiers {
		if isODSSystem(id.System) {
			if id.Value == "" {
				return badRequest(n, "requesting_organization's identifier with system %s has an empty value: put the organisation's ODS code there", id.System)
			}
			return nil
		}
	}
	return badRequest(n, "requesting_organization has no identifier with system %s (the organisation's ODS code)", SystemODSCode)
}

func checkPractitioner(pr Practitioner, cerr *ClaimError) (Practitioner, *ClaimError) {
	if cerr != nil {
		return pr, cerr
	}
	const n = ClaimRequestingPractitioner
	if pr.ID == "" {
		return pr, badRequest(n, "requesting_practitioner needs id (the user's local ID; sub must equal it)")
	}
	if len(pr.Names) == 0 || pr.Names[0].Family == "" {
		return pr, badRequest(n, "requesting_practitioner needs name[0].family (the user's family name)")
	}
	if len(pr.Names[0].Given) == 0 || pr.Names[0].Given[0] == "" {
		return pr, badRequest(n, "requesting_practitioner needs name[0].given[0] (the user's given name)")
	}
	var sds, local bool
	for _, id := range pr.Identifiers {
		switch id.System {
		case SystemSDSUserID:
			if id.Value == "" {
				return pr, badRequest(n, "requesting_practitioner's %s identifier has an empty value: send the SDS user ID or UNK", SystemSDSUserID)
			}
			sds = true
		case SystemSDSRoleID:
			if id.Value == "" {
				return pr, badRequest(n, "requesting_practitioner's %s identifier has an empty value: send the SDS role profile ID or UNK, or leave the identifier out", SystemSDSRoleID)
			}
		default:
			if id.System != "" && id.Value != "" {
				local = true
			}
		}
	}
	if !sds {
		return pr, badRequest(n, "requesting_practitioner has no identifier with system %s: send the SDS user ID, or UNK when there is none", SystemSDSUserID)
	}
	if !local {
		return pr, badRequest(n, "requesting_practitioner has no local user ID: add an identifier with the consumer's own system and the user's local ID")
	}
	return pr, nil
}

func isODSSystem(s string) bool { return s == SystemODSCode || s == SystemODSCodeLegacy }

// The elements FHIR STU3 defines on every DomainResource and on the three
// resource types a token carries.
var (
	domainResourceElements = []string{"resourceType", "id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension"}
	deviceElements         = []string{"identifier", "udi", "status", "type", "lotNumber", "manufacturer", "manufactureDate", "expirationDate", "model", "version", "patient", "owner", "contact", "location", "url", "note", "safety"}
	organizationElements   = []string{"identifier", "active", "type", "name", "alias", "telecom", "address", "partOf", "contact", "endpoint"}
	practitionerElements   = []string{"identifier", "active", "name", "telecom", "address", "gender", "birthDate", "photo", "qualification", "communication"}
	identifierElements     = []string{"id", "extension", "use", "type", "system", "value", "period", "assigner"}
	humanNameElements      = []string{"id", "extension", "use", "text", "family", "given", "prefix", "suffix", "period"}
)

// resource checks that raw is a FHIR STU3 resource of type want defining only
// known elements, none null, and returns its members. Failures are 422.
func resource(claim string, raw json.RawMessage, want string, elements []string) (map[string]json.RawMessage, *ClaimError) {
	if len(raw) == 0 {
		return nil, badRequest(claim, "the %s claim is missing: it must hold a FHIR STU3 %s resource", claim, want)
	}
	m, names, err := objectMembers(raw)
	if err != nil {
		return nil, invalidResource(claim, "%s is not a valid JSON object: %v", claim, err)
	}
	rt, ok := m["resourceType"]
	var got string
	if !ok || unmarshalString(rt, &got) != nil {
		return m, invalidResource(claim, "%s has no resourceType: it must be a FHIR STU3 %s with \"resourceType\": %q", claim, want, want)
	}
	if got != want {
		return m, invalidResource(claim, "%s must be a FHIR %s resource, got resourceType %q", claim, want, truncate(got, 40))
	}
	for _, n := range names {
		base := strings.TrimPrefix(n, "_")
		if (!slices.Contains(domainResourceElements, base) && !slices.Contains(elements, base)) || n == "_resourceType" {
			return m, invalidResource(claim, "%s has %q, which FHIR STU3 %s does not define; remove it", claim, truncate(n, 40), want)
		}
		if isNull(m[n]) {
			return m, invalidResource(claim, "%s.%s is null; FHIR JSON leaves absent elements out instead", claim, n)
		}
	}
	if id, ok := m["id"]; ok {
		var s string
		if unmarshalString(id, &s) != nil || !IsLogicalID(s) {
			return m, invalidResource(claim, "%s.id must be a FHIR id (1-64 of A-Z a-z 0-9 - .), got %s", claim, truncate(string(id), 40))
		}
	}
	return m, nil
}

// elementString decodes a string element; a non-string is 422.
func elementString(claim string, m map[string]json.RawMessage, name string, dst *string) *ClaimError {
	raw, ok := m[name]
	if !ok {
		return nil
	}
	if len(raw) == 0 || raw[0] != '"' || unmarshalString(raw, dst) != nil {
		return invalidResource(claim, "%s.%s must be a JSON string, got %s", claim, name, jsonKind(raw))
	}
	return nil
}

// elementStringAt is elementString for an element inside an array item;
// where names the item and is called only to word an error, so a valid
// token formats no paths.
func elementStringAt(claim string, where func() string, m map[string]json.RawMessage, name string, dst *string) *ClaimError {
	raw, ok := m[name]
	if !ok {
		return nil
	}
	if len(raw) == 0 || raw[0] != '"' || unmarshalString(raw, dst) != nil {
		return invalidResource(claim, "%s.%s must be a JSON string, got %s", where(), name, jsonKind(raw))
	}
	return nil
}

func identifiers(claim string, m map[string]json.RawMessage) ([]Identifier, *ClaimError) {
	raw, ok := m["identifier"]
	if !ok {
		return nil, nil
	}
	var items []json.RawMessage
	if len(raw) == 0 || raw[0] != '[' || splitArray(raw, &items) != nil {
		return nil, invalidResource(claim, "%s.identifier must be a JSON array of Identifier objects, got %s", claim, jsonKind(raw))
	}
	var out []Identifier
	for i, it := range items {
		path := func() string { return fmt.Sprintf("%s.identifier[%d]", claim, i) }
		im, names, err := members(it) // json.Unmarshal validated the items
		if err != nil {
			return out, invalidResource(claim, "%s must be an Identifier object: %v", path(), err)
		}
		if n, bad := unknownMember(names, identifierElements); bad {
			return out, invalidResource(claim, "%s has %q, which a FHIR Identifier does not define; remove it", path(), truncate(n, 40))
		}
		var id Identifier
		if cerr := elementStringAt(claim, path, im, "system", &id.System); cerr != nil {
			return out, cerr
		}
		if cerr := elementStringAt(claim, path, im, "value", &id.Value); cerr != nil {
			return out, cerr
		}
		out = append(out, id)
	}
	return out, nil
}

func humanNames(claim string, m map[string]json.RawMessage) ([]HumanName, *ClaimError) {
	raw, ok := m["name"]
	if !ok {
		return nil, nil
	}
	var items []json.RawMessage
	if len(raw) == 0 || raw[0] != '[' || splitArray(raw, &items) != nil {
		return nil, invalidResource(claim, "%s.name must be a JSON array of HumanName objects, got %s", claim, jsonKind(raw))
	}
	var out []HumanName
	for i, it := range items {
		path := func() string { return fmt.Sprintf("%s.name[%d]", claim, i) }
		nm, names, err := members(it) // json.Unmarshal validated the items
		if err != nil {
			return out, invalidResource(claim, "%s must be a HumanName object: %v", path(), err)
		}
		if n, bad := unknownMember(names, humanNameElements); bad {
			return out, invalidResource(claim, "%s has %q, which a FHIR HumanName does not define; remove it", path(), truncate(n, 40))
		}
		var hn HumanName
		if cerr := elementStringAt(claim, path, nm, "family", &hn.Family); cerr != nil {
			return out, invalidResource(claim, "%s.family must be one JSON string in STU3 (DSTU2 used an array), got %s", path(), jsonKind(nm["family"]))
		}
		for _, list := range []struct {
			name string
			dst  *[]string
		}{{"given", &hn.Given}, {"prefix", &hn.Prefix}} {
			if r, ok := nm[list.name]; ok {
				if len(r) == 0 || r[0] != '[' || json.Unmarshal(r, list.dst) != nil {
					return out, invalidResource(claim, "%s.%s must be a JSON array of strings, got %s", path(), list.name, jsonKind(r))
				}
			}
		}
		out = append(out, hn)
	}
	return out, nil
}

func unknownMember(names, known []string) (string, bool) {
	for _, n := range names {
		if !slices.Contains(known, strings.TrimPrefix(n, "_")) {
			return n, true
		}
	}
	return "", false
}

func withClaim(e *ClaimError, claim string) *ClaimError {
	e.Claim = claim
	return e
}

func decodeDevice(raw json.RawMessage) (Device, *ClaimError) {
	const n = ClaimRequestingDevice
	var d Device
	m, cerr := resource(n, raw, "Device", deviceElements)
	if m != nil {
		_ = unmarshalString(m["resourceType"], &d.ResourceType)
	}
	if cerr != nil {
		return d, cerr
	}
	var err *ClaimError
	if d.Identifiers, err = identifiers(n, m); err != nil {
		return d, err
	}
	if err := elementString(n, m, "model", &d.Model); err != nil {
		return d, err
	}
	if err := elementString(n, m, "version", &d.Version); err != nil {
		return d, err
	}
	return d, nil
}

func decodeOrganization(raw json.RawMessage) (Organization, *ClaimError) {
	const n = ClaimRequestingOrganization
	var o Organization
	m, cerr := resource(n, raw, "Organization", organizationElements)
	if m != nil {
		_ = unmarshalString(m["resourceType"], &o.ResourceType)
	}
	if cerr != nil {
		return o, cerr
	}
	var err *ClaimError
	if o.Identifiers, err = identifiers(n, m); err != nil {
		return o, err
	}
	if err := elementString(n, m, "id", &o.ID); err != nil {
		return o, err
	}
	if err := elementString(n, m, "name", &o.Name); err != nil {
		return o, err
	}
	return o, nil
}

func decodePractitioner(raw json.RawMessage) (Practitioner, *ClaimError) {
	const n = ClaimRequestingPractitioner
	var p Practitioner
	m, cerr := resource(n, raw, "Practitioner", practitionerElements)
	if m != nil {
		_ = unmarshalString(m["resourceType"], &p.ResourceType)
	}
	if cerr != nil {
		return p, cerr
	}
	if err := elementString(n, m, "id", &p.ID); err != nil {
		return p, err
	}
	var err *ClaimError
	if p.Identifiers, err = identifiers(n, m); err != nil {
		return p, err
	}
	if p.Names, err = humanNames(n, m); err != nil {
		return p, err
	}
	return p, nil
}

// objectMembers decodes data as exactly one JSON object, refusing invalid
// UTF-8, duplicate member names and anything after the object. It returns
// the members and their names in document order. The values are slices of
// data. Once json.Valid has accepted data, a plain scan finds the member
// boundaries: this runs several times per request, and a json.Decoder
// cost most of the JWT check.
func objectMembers(data []byte) (map[string]json.RawMessage, []string, error) {
	if !utf8.Valid(data) {
		return nil, nil, fmt.Errorf("not valid UTF-8")
	}
	if !json.Valid(data) {
		return nil, nil, fmt.Errorf("not valid JSON")
	}
	return members(data)
}

// members splits a JSON object that is already known to be valid (a value
// sliced from a validated document, or an item json.Unmarshal accepted)
// into its members. It never indexes past data, so even invalid input
// gives an error, not a panic.
func members(data []byte) (map[string]json.RawMessage, []string, error) {
	at := func(i int) byte {
		if i < len(data) {
			return data[i]
		}
		return 0
	}
	i := skipSpace(data, 0)
	if at(i) != '{' {
		return nil, nil, fmt.Errorf("a JSON %s, not an object", jsonKind(bytes.TrimSpace(data)))
	}
	m := make(map[string]json.RawMessage, 8)
	names := make([]string, 0, 8)
	if i = skipSpace(data, i+1); at(i) == '}' {
		return m, names, nil
	}
	for {
		if at(i) != '"' {
			return nil, nil, fmt.Errorf("not valid JSON")
		}
		end := stringEnd(data, i)
		name, err := unquoteName(data[i:end])
		if err != nil {
			return nil, nil, fmt.Errorf("reading member name: %w", err)
		}
		if i = skipSpace(data, end); at(i) != ':' {
			return nil, nil, fmt.Errorf("not valid JSON")
		}
		i = skipSpace(data, i+1)
		if i >= len(data) {
			return nil, nil, fmt.Errorf("not valid JSON")
		}
		vend := valueEnd(data, i)
		if _, dup := m[name]; dup {
			return nil, nil, fmt.Errorf("member %q appears twice", truncate(name, 40))
		}
		m[name] = json.RawMessage(data[i:vend])
		names = append(names, name)
		switch i = skipSpace(data, vend); at(i) {
		case '}':
			return m, names, nil
		case ',':
			i = skipSpace(data, i+1)
		default:
			return nil, nil, fmt.Errorf("not valid JSON")
		}
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the string that opens at data[i].
func stringEnd(data []byte, i int) int {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(data)
}

// valueEnd returns the index just past the valid JSON value at data[i].
func valueEnd(data []byte, i int) int {
	switch data[i] {
	case '"':
		return stringEnd(data, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				j = stringEnd(data, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(data)
	}
	j := i
	for j < len(data) && !strings.ContainsRune(",}] \t\r\n", rune(data[j])) {
		j++
	}
	return j
}

// unquoteName turns a quoted member name into its text; most names have no
// escapes and need no decoding.
func unquoteName(quoted []byte) (string, error) {
	if len(quoted) < 2 {
		return "", fmt.Errorf("not valid JSON")
	}
	if bytes.IndexByte(quoted, '\\') < 0 {
		return string(quoted[1 : len(quoted)-1]), nil
	}
	var s string
	err := json.Unmarshal(quoted, &s)
	return s, err
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// jsonKind names the JSON type of raw for messages.
func jsonKind(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// truncate shortens untrusted text quoted in reasons.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// unmarshalString decodes a JSON string value. Most claim strings have no
// escapes and are taken as they stand; anything else goes to encoding/json,
// which also gives the error for a value that is not a string.
func unmarshalString(raw []byte, dst *string) error {
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' {
		plain := true
		for _, c := range raw[1 : n-1] {
			if c == '\\' || c == '"' || c < ' ' {
				plain = false
				break
			}
		}
		if plain && utf8.Valid(raw) {
			*dst = string(raw[1 : n-1])
			return nil
		}
	}
	return json.Unmarshal(raw, dst)
}

// splitArray splits a JSON array that is part of an already validated
// document into its items, as json.Unmarshal into []json.RawMessage would;
// anything it does not expect goes to encoding/json, which judges it.
func splitArray(raw []byte, dst *[]json.RawMessage) error {
	at := func(i int) byte {
		if i < len(raw) {
			return raw[i]
		}
		return 0
	}
	i := skipSpace(raw, 0)
	if at(i) != '[' {
		return json.Unmarshal(raw, dst)
	}
	items := make([]json.RawMessage, 0, 4)
	if i = skipSpace(raw, i+1); at(i) == ']' {
		if skipSpace(raw, i+1) != len(raw) {
			return json.Unmarshal(raw, dst)
		}
		*dst = items
		return nil
	}
	for i < len(raw) {
		end := valueEnd(raw, i)
		items = append(items, json.RawMessage(raw[i:end]))
		switch i = skipSpace(raw, end); at(i) {
		case ']':
			if skipSpace(raw, i+1) != len(raw) {
				return json.Unmarshal(raw, dst)
			}
			*dst = items
			return nil
		case ',':
			i = skipSpace(raw, i+1)
		default:
			return json.Unmarshal(raw, dst)
		}
	}
	return json.Unmarshal(raw, dst)
}

// LegacyAudience is the aud value of earlier GP Connect versions, still
// sent by some consumers and accepted (ssp-behaviour §5).
const LegacyAudience = "https://authorize.fhir.nhs.net/token"

// CheckAudience requires aud to be the provider's service root, byte for
// byte, or the legacy authorisation-server URL. Check cannot do it: only the
// caller knows which provider the token is for.
func CheckAudience(t *Token, serviceRoot string) *ClaimError {
	if t == nil || serviceRoot == "" {
		return nil
	}
	aud := t.Claims.Audience
	if aud == serviceRoot || aud == LegacyAudience {
		return nil
	}
	return badRequest(ClaimAudience, "aud must be the provider's service root %s (or the legacy %s), got %q",
		serviceRoot, LegacyAudience, truncate(aud, 200))
}
