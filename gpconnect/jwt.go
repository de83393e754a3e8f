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
	// strings.IndexByte, four times, is much faster on a long token than
	// strings.ContainsAny, which tests each byte against the set.
	if strings.IndexByte(raw, ' ') >= 0 || strings.IndexByte(raw, '\t') >= 0 || strings.IndexByte(raw, '\r') >= 0 || strings.IndexByte(raw, '\n') >= 0 {
		return nil, badRequest("Authorization", "the JWT must follow \"Bearer \" directly and contain no spaces or line breaks")
	}
	if dots := strings.Count(raw, "."); dots != 2 {
		return nil, badRequest("Authorization", "the bearer token must be a JWT of three dot-separated parts (header.payload.), got %d part(s)", dots+1)
	}
	head, rest, _ := strings.Cut(raw, ".")
	body, sig, _ := strings.Cut(rest, ".")
	// Nearly every token carries the one header allowed, encoded the one
	// usual way; only another needs decoding and judging.
	if head != plainJOSEHeader {
		headerJSON, cerr := decodePart("header", head)
		if cerr != nil {
			return nil, cerr
		}
		if cerr := checkJOSEHeader(string(headerJSON)); cerr != nil {
			return nil, cerr
		}
	}
	if sig != "" {
		return nil, badRequest("signature", "GP Connect tokens are unsigned: the token must end with \".\" and carry no signature, got %d signature characters", len(sig))
	}
	payload, cerr := decodePart("payload", body)
	if cerr != nil {
		return nil, cerr
	}
	// The claims are read from a string copy of the payload, so names and
	// plain strings are slices of it; the resource claims keep slices of
	// the bytes, as json.RawMessage.
	text := string(payload)
	var buf [16]member
	ms, err := readObject(text, true, buf[:0])
	if err != nil {
		return nil, badRequest("payload", "the JWT payload must be one JSON object: %v", err)
	}
	// One allocation holds the token, its decoded resources and their
	// slices.
	a := &struct {
		t Token
		d decodedResources
		s tokenSlices
	}{}
	a.t.Raw, a.t.decoded = raw, &a.d
	return &a.t, decodeClaims(text, payload, ms, &a.t.Claims, &a.d, &a.s)
}

// plainJOSEHeader is {"alg":"none","typ":"JWT"} in base64url, the header
// that decodePart and checkJOSEHeader would accept; ParseAuthorization
// takes it as it stands (TestPlainJOSEHeader checks that they agree).
const plainJOSEHeader = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"

// decodePart base64url-decodes one JWT part, naming the defect precisely.
// The part holds no space or line break (ParseAuthorization refused
// those, which the decoder would skip), so a part it decodes has no "=",
// "+" or "/" either: those are looked for only to word a failure.
func decodePart(name, part string) ([]byte, *ClaimError) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(part)
	if err == nil {
		return b, nil
	}
	if strings.IndexByte(part, '=') >= 0 {
		return nil, badRequest(name, "the JWT %s has base64 padding (=): encode it as base64url without padding", name)
	}
	if strings.IndexByte(part, '+') >= 0 || strings.IndexByte(part, '/') >= 0 {
		return nil, badRequest(name, "the JWT %s uses standard base64 (+ or /): encode it as base64url (- and _) without padding", name)
	}
	return nil, badRequest(name, "the JWT %s is not base64url: %v", name, err)
}

// checkJOSEHeader requires exactly the members alg=none and typ=JWT.
func checkJOSEHeader(s string) *ClaimError {
	var buf [4]member
	ms, err := readObject(s, true, buf[:0])
	if err != nil {
		return badRequest("header", "the JWT header must be the JSON object {\"alg\":\"none\",\"typ\":\"JWT\"}: %v", err)
	}
	for _, m := range ms {
		if m.name != "alg" && m.name != "typ" {
			return badRequest("header", "the JWT header must hold only alg and typ ({\"alg\":\"none\",\"typ\":\"JWT\"}); remove %q", m.name)
		}
	}
	for _, want := range [][2]string{{"alg", "none"}, {"typ", "JWT"}} {
		rawv, ok := lookup(s, ms, want[0])
		if !ok {
			return badRequest("header", "the JWT header lacks %q: it must be {\"alg\":\"none\",\"typ\":\"JWT\"}", want[0])
		}
		if v, ok := stringValue(rawv); !ok || v != want[1] {
			return badRequest("header", "the JWT header %s must be %q, got %s", want[0], want[1], truncate(rawv, 40))
		}
	}
	return nil
}

// The claims decodeClaims looks for, as indexes of its table of members.
const (
	slotIssuer = iota
	slotSubject
	slotAudience
	slotIssuedAt
	slotExpiresAt
	slotReasonForRequest
	slotRequestedScope
	slotRequestingDevice
	slotRequestingOrganization
	slotRequestingPractitioner
	slotRequestedRecord
	claimSlots
)

// claimSlot returns the slot of a claim name, or -1 for a member the rules
// do not read.
func claimSlot(name string) int {
	switch name {
	case ClaimIssuer:
		return slotIssuer
	case ClaimSubject:
		return slotSubject
	case ClaimAudience:
		return slotAudience
	case ClaimIssuedAt:
		return slotIssuedAt
	case ClaimExpiresAt:
		return slotExpiresAt
	case ClaimReasonForRequest:
		return slotReasonForRequest
	case ClaimRequestedScope:
		return slotRequestedScope
	case ClaimRequestingDevice:
		return slotRequestingDevice
	case ClaimRequestingOrganization:
		return slotRequestingOrganization
	case ClaimRequestingPractitioner:
		return slotRequestingPractitioner
	case ClaimRequestedRecord:
		return slotRequestedRecord
	}
	return -1
}

// decodeClaims fills c from the payload's members (ms, read from text,
// whose bytes are data) and returns the first problem, in claim order. It
// carries on past problems so c holds all that could be read.
func decodeClaims(text string, data []byte, ms []member, c *Claims, d *decodedResources, a *tokenSlices) *ClaimError {
	// One pass over the members finds every claim; readObject refused a
	// name given twice, so each slot is filled at most once.
	var at [claimSlots]int // 1 + the member's index; 0 when absent
	for i, m := range ms {
		if slot := claimSlot(m.name); slot >= 0 {
			at[slot] = i + 1
		}
	}
	claim := func(slot int) claimText {
		if at[slot] == 0 {
			return claimText{}
		}
		m := ms[at[slot]-1]
		return claimText{raw: text[m.start:m.end], sent: true}
	}
	raw := func(slot int) json.RawMessage {
		m := ms[at[slot]-1]
		return data[m.start:m.end]
	}
	var first *ClaimError
	keep := func(e *ClaimError) {
		if first == nil && e != nil {
			first = e
		}
	}
	keep(stringClaim(ClaimIssuer, claim(slotIssuer), &c.Issuer, "the consumer system's URL"))
	keep(stringClaim(ClaimSubject, claim(slotSubject), &c.Subject, "the user's ID, equal to requesting_practitioner.id"))
	keep(stringClaim(ClaimAudience, claim(slotAudience), &c.Audience, "the provider's service root URL"))
	keep(intClaim(ClaimIssuedAt, claim(slotIssuedAt), &c.IssuedAt))
	keep(intClaim(ClaimExpiresAt, claim(slotExpiresAt), &c.ExpiresAt))
	keep(stringClaim(ClaimReasonForRequest, claim(slotReasonForRequest), &c.ReasonForRequest, `"directcare"`))
	keep(stringClaim(ClaimRequestedScope, claim(slotRequestedScope), &c.RequestedScope, "the interaction's scope, e.g. "+ScopePatientRead))
	// The resource claims are decoded from the text when they are objects;
	// "" stands for a claim that is not, as a nil RawMessage does.
	var devText, orgText, prText string
	if cerr := objectClaim(ClaimRequestingDevice, claim(slotRequestingDevice), "Device"); cerr == nil {
		devText = claim(slotRequestingDevice).raw
		c.RequestingDeviceJSON = raw(slotRequestingDevice)
	} else {
		keep(cerr)
	}
	if cerr := objectClaim(ClaimRequestingOrganization, claim(slotRequestingOrganization), "Organization"); cerr == nil {
		orgText = claim(slotRequestingOrganization).raw
		c.RequestingOrganizationJSON = raw(slotRequestingOrganization)
	} else {
		keep(cerr)
	}
	if cerr := objectClaim(ClaimRequestingPractitioner, claim(slotRequestingPractitioner), "Practitioner"); cerr == nil {
		prText = claim(slotRequestingPractitioner).raw
		c.RequestingPractitionerJSON = raw(slotRequestingPractitioner)
	} else {
		keep(cerr)
	}
	if at[slotRequestedRecord] != 0 {
		c.RequestedRecordJSON = raw(slotRequestedRecord)
	}
	d.dev, d.devErr = decodeDeviceText(devText, false, a)
	d.org, d.orgErr = decodeOrganizationText(orgText, false, a)
	d.pr, d.prErr = decodePractitionerText(prText, false, a)
	d.devRaw, d.orgRaw, d.prRaw = c.RequestingDeviceJSON, c.RequestingOrganizationJSON, c.RequestingPractitionerJSON
	c.RequestingDevice, c.RequestingOrganization, c.RequestingPractitioner = d.dev, d.org, d.pr
	return first
}

// claimText is a claim's JSON text as sent, and whether it was sent.
type claimText struct {
	raw  string
	sent bool
}

// stringClaim, intClaim and objectClaim require a claim to be sent, not
// null, and of its JSON type; stringClaim and intClaim also store its
// value. want says what the claim must hold, for the reason.
func stringClaim(name string, v claimText, dst *string, want string) *ClaimError {
	raw := v.raw
	if !v.sent {
		return badRequest(name, "the %s claim is missing: it must hold %s", name, want)
	}
	if raw == "null" {
		return badRequest(name, "the %s claim is null: it must hold %s", name, want)
	}
	if raw[0] != '"' {
		return badRequest(name, "the %s claim must be a JSON string (%s), got %s", name, want, jsonKind(raw))
	}
	str, _ := unquote(raw) // the payload was judged valid
	if *dst = str; str == "" {
		return badRequest(name, "the %s claim is empty: it must hold %s", name, want)
	}
	return nil
}

func intClaim(name string, v claimText, dst *int64) *ClaimError {
	raw := v.raw
	if !v.sent {
		return badRequest(name, "the %s claim is missing: it must hold integer seconds since 1970 (exp = iat + 300)", name)
	}
	if raw == "null" {
		return badRequest(name, "the %s claim is null: it must hold integer seconds since 1970", name)
	}
	if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return badRequest(name, "the %s claim must be a JSON number of whole seconds, got %s", name, jsonKind(raw))
	}
	if strings.ContainsAny(raw, ".eE") {
		return badRequest(name, "the %s claim must be whole seconds with no fraction or exponent, got %s", name, truncate(raw, 40))
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return badRequest(name, "the %s claim is not a usable integer: %v", name, err)
	}
	*dst = n
	return nil
}

func objectClaim(name string, v claimText, resourceType string) *ClaimError {
	raw := v.raw
	if !v.sent {
		return badRequest(name, "the %s claim is missing: it must hold a FHIR STU3 %s resource", name, resourceType)
	}
	if raw == "null" {
		return badRequest(name, "the %s claim is null: it must hold a FHIR STU3 %s resource", name, resourceType)
	}
	if raw[0] != '{' {
		return badRequest(name, "the %s claim must be a JSON object (a FHIR STU3 %s resource), got %s", name, resourceType, jsonKind(raw))
	}
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

// The elements FHIR STU3 defines on every DomainResource, on the three
// resource types a token carries, and on the two data types the rules read.
// They are switches, not lists, because every member of every resource
// claim is looked up in them.

func domainResourceElement(n string) bool {
	switch n {
	case "resourceType", "id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension":
		return true
	}
	return false
}

func deviceElement(n string) bool {
	switch n {
	case "identifier", "udi", "status", "type", "lotNumber", "manufacturer", "manufactureDate", "expirationDate", "model",
		"version", "patient", "owner", "contact", "location", "url", "note", "safety":
		return true
	}
	return false
}

func organizationElement(n string) bool {
	switch n {
	case "identifier", "active", "type", "name", "alias", "telecom", "address", "partOf", "contact", "endpoint":
		return true
	}
	return false
}

func practitionerElement(n string) bool {
	switch n {
	case "identifier", "active", "name", "telecom", "address", "gender", "birthDate", "photo", "qualification", "communication":
		return true
	}
	return false
}

func identifierElement(n string) bool {
	switch n {
	case "id", "extension", "use", "type", "system", "value", "period", "assigner":
		return true
	}
	return false
}

func humanNameElement(n string) bool {
	switch n {
	case "id", "extension", "use", "text", "family", "given", "prefix", "suffix", "period":
		return true
	}
	return false
}

// resource checks that s is a FHIR STU3 resource of type want defining only
// known elements, none null, and returns its members and its resourceType
// when that is a string. Failures are 422. With check, s is judged as JSON
// first (a claim edited by hand); without, it is a slice of the payload,
// judged already.
func resource(claim, s string, check bool, want string, element func(string) bool, ms []member) (string, []member, *ClaimError) {
	if len(s) == 0 {
		return "", nil, badRequest(claim, "the %s claim is missing: it must hold a FHIR STU3 %s resource", claim, want)
	}
	ms, err := readObject(s, check, ms)
	if err != nil {
		return "", nil, invalidResource(claim, "%s is not a valid JSON object: %v", claim, err)
	}
	// encoding/json, which this replaces, took null for an empty string.
	rt, ok := lookup(s, ms, "resourceType")
	got, isString := stringValue(rt)
	if !ok || (!isString && rt != "null") {
		return "", ms, invalidResource(claim, "%s has no resourceType: it must be a FHIR STU3 %s with \"resourceType\": %q", claim, want, want)
	}
	if got != want {
		return got, ms, invalidResource(claim, "%s must be a FHIR %s resource, got resourceType %q", claim, want, truncate(got, 40))
	}
	for _, m := range ms {
		base := strings.TrimPrefix(m.name, "_")
		if (!domainResourceElement(base) && !element(base)) || m.name == "_resourceType" {
			return got, ms, invalidResource(claim, "%s has %q, which FHIR STU3 %s does not define; remove it", claim, truncate(m.name, 40), want)
		}
		if s[m.start:m.end] == "null" {
			return got, ms, invalidResource(claim, "%s.%s is null; FHIR JSON leaves absent elements out instead", claim, m.name)
		}
	}
	if id, ok := lookup(s, ms, "id"); ok {
		if v, isString := stringValue(id); !isString || !IsLogicalID(v) {
			return got, ms, invalidResource(claim, "%s.id must be a FHIR id (1-64 of A-Z a-z 0-9 - .), got %s", claim, truncate(id, 40))
		}
	}
	return got, ms, nil
}

// elementString decodes a string element of the object ms read from s; a
// non-string is 422. where names the object, and is called only to word
// an error, so a valid token formats no paths.
func elementString(claim string, where func() string, s string, ms []member, name string, dst *string) *ClaimError {
	raw, ok := lookup(s, ms, name)
	if !ok {
		return nil
	}
	v, isString := stringValue(raw)
	if !isString {
		return invalidResource(claim, "%s.%s must be a JSON string, got %s", where(), name, jsonKind(raw))
	}
	*dst = v
	return nil
}

// itemPath words the path of an array item for an error.
func itemPath(claim, array string, i int) string { return fmt.Sprintf("%s.%s[%d]", claim, array, i) }

// identifiers decodes the identifier element of a resource (ms, read from
// s): an array of Identifier objects defining only STU3's elements, with
// string system and value. On an error it returns the items decoded
// before it, as the decoder it replaced did, so a log-only audit sees them.
func identifiers(claim, s string, ms []member, a *tokenSlices) ([]Identifier, *ClaimError) {
	raw, ok := lookup(s, ms, "identifier")
	if !ok {
		return nil, nil
	}
	if len(raw) == 0 || raw[0] != '[' {
		return nil, invalidResource(claim, "%s.identifier must be a JSON array of Identifier objects, got %s", claim, jsonKind(raw))
	}
	var tmp [8]Identifier
	out := tmp[:0]
	var buf [8]member
	items := newArrayItems(raw)
	for i := 0; ; i++ {
		im, more, err := items.nextObject(buf[:0])
		if !more {
			return lendIdentifiers(a, out), nil
		}
		path := func() string { return itemPath(claim, "identifier", i) }
		if err != nil {
			return lendIdentifiers(a, out), invalidResource(claim, "%s must be an Identifier object: %v", path(), err)
		}
		if n, bad := unknownMember(im, identifierElement); bad {
			return lendIdentifiers(a, out), invalidResource(claim, "%s has %q, which a FHIR Identifier does not define; remove it", path(), truncate(n, 40))
		}
		var id Identifier
		if cerr := elementString(claim, path, raw, im, "system", &id.System); cerr != nil {
			return lendIdentifiers(a, out), cerr
		}
		if cerr := elementString(claim, path, raw, im, "value", &id.Value); cerr != nil {
			return lendIdentifiers(a, out), cerr
		}
		out = append(out, id)
	}
}

// humanNames decodes a practitioner's name element as identifiers decodes
// identifier: family must be one string (STU3, not DSTU2's array), given
// and prefix arrays of strings.
func humanNames(claim, s string, ms []member, a *tokenSlices) ([]HumanName, *ClaimError) {
	raw, ok := lookup(s, ms, "name")
	if !ok {
		return nil, nil
	}
	if len(raw) == 0 || raw[0] != '[' {
		return nil, invalidResource(claim, "%s.name must be a JSON array of HumanName objects, got %s", claim, jsonKind(raw))
	}
	var tmp [2]HumanName
	out := tmp[:0]
	var buf [8]member
	items := newArrayItems(raw)
	for i := 0; ; i++ {
		nm, more, err := items.nextObject(buf[:0])
		if !more {
			return lendNames(a, out), nil
		}
		path := func() string { return itemPath(claim, "name", i) }
		if err != nil {
			return lendNames(a, out), invalidResource(claim, "%s must be a HumanName object: %v", path(), err)
		}
		if n, bad := unknownMember(nm, humanNameElement); bad {
			return lendNames(a, out), invalidResource(claim, "%s has %q, which a FHIR HumanName does not define; remove it", path(), truncate(n, 40))
		}
		var hn HumanName
		if family, ok := lookup(raw, nm, "family"); ok {
			v, isString := stringValue(family)
			if !isString {
				return lendNames(a, out), invalidResource(claim, "%s.family must be one JSON string in STU3 (DSTU2 used an array), got %s", path(), jsonKind(family))
			}
			hn.Family = v
		}
		for _, list := range [2]string{"given", "prefix"} {
			r, ok := lookup(raw, nm, list)
			if !ok {
				continue
			}
			v, ok := stringList(r, a)
			if !ok {
				return lendNames(a, out), invalidResource(claim, "%s.%s must be a JSON array of strings, got %s", path(), list, jsonKind(r))
			}
			if list == "given" {
				hn.Given = v
			} else {
				hn.Prefix = v
			}
		}
		out = append(out, hn)
	}
}

// stringList decodes v, a JSON value already judged valid, as
// encoding/json decodes into a nil []string: an array, even an empty one,
// gives a non-nil slice, and a null item an empty string.
func stringList(v string, a *tokenSlices) ([]string, bool) {
	if len(v) == 0 || v[0] != '[' {
		return nil, false
	}
	var tmp [4]string
	out := tmp[:0]
	items := newArrayItems(v)
	for {
		it, more := items.next()
		if !more {
			if len(out) == 0 {
				return []string{}, true
			}
			if a == nil {
				return slices.Clone(out), true
			}
			return lend(a.strs[:], &a.nStrs, out), true
		}
		if it == "null" {
			out = append(out, "")
			continue
		}
		s, ok := stringValue(it)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
}

// tokenSlices lends the slices of one token's decoded resources out of the
// allocation that holds the token, so the usual few identifiers, a name and
// its given names cost no allocation of their own. A nil *tokenSlices lends
// nothing: a claim decoded outside ParseAuthorization gets its own slices.
type tokenSlices struct {
	ids                 [8]Identifier
	names               [2]HumanName
	strs                [4]string
	nIDs, nNames, nStrs int
}

// lend copies v into buf after its first *n elements and returns the copy,
// capped at its length so that a caller's append copies it rather than
// overwrite what follows; when buf is full it returns a copy of its own.
func lend[T any](buf []T, n *int, v []T) []T {
	if *n+len(v) > len(buf) {
		return slices.Clone(v)
	}
	out := buf[*n : *n+len(v) : *n+len(v)]
	copy(out, v)
	*n += len(v)
	return out
}

// lendIdentifiers and lendNames keep what the decoders built on their
// stacks: nil when there is nothing, as encoding/json left it.
func lendIdentifiers(a *tokenSlices, v []Identifier) []Identifier {
	switch {
	case len(v) == 0:
		return nil
	case a == nil:
		return slices.Clone(v)
	}
	return lend(a.ids[:], &a.nIDs, v)
}

func lendNames(a *tokenSlices, v []HumanName) []HumanName {
	switch {
	case len(v) == 0:
		return nil
	case a == nil:
		return slices.Clone(v)
	}
	return lend(a.names[:], &a.nNames, v)
}

// unknownMember returns the first member of ms, in document order, whose
// name (less a leading "_", FHIR's primitive extensions) is not known.
func unknownMember(ms []member, known func(string) bool) (string, bool) {
	for _, m := range ms {
		if !known(strings.TrimPrefix(m.name, "_")) {
			return m.name, true
		}
	}
	return "", false
}

// decodeDevice, decodeOrganization and decodePractitioner decode a
// resource claim that did not come from ParseAuthorization, judging its
// JSON first.
func decodeDevice(raw json.RawMessage) (Device, *ClaimError) {
	return decodeDeviceText(string(raw), true, nil)
}

func decodeOrganization(raw json.RawMessage) (Organization, *ClaimError) {
	return decodeOrganizationText(string(raw), true, nil)
}

func decodePractitioner(raw json.RawMessage) (Practitioner, *ClaimError) {
	return decodePractitionerText(string(raw), true, nil)
}

// decodeDeviceText, decodeOrganizationText and decodePractitionerText
// decode a resource claim's text s, judging its JSON when check is set,
// and take the resource's slices from a when it is not nil. The resource
// is returned with what was read even with an error.
func decodeDeviceText(s string, check bool, a *tokenSlices) (Device, *ClaimError) {
	const n = ClaimRequestingDevice
	var d Device
	var buf [16]member
	rt, m, cerr := resource(n, s, check, "Device", deviceElement, buf[:0])
	if d.ResourceType = rt; cerr != nil {
		return d, cerr
	}
	where := func() string { return n }
	var err *ClaimError
	if d.Identifiers, err = identifiers(n, s, m, a); err != nil {
		return d, err
	}
	if err := elementString(n, where, s, m, "model", &d.Model); err != nil {
		return d, err
	}
	if err := elementString(n, where, s, m, "version", &d.Version); err != nil {
		return d, err
	}
	return d, nil
}

func decodeOrganizationText(s string, check bool, a *tokenSlices) (Organization, *ClaimError) {
	const n = ClaimRequestingOrganization
	var o Organization
	var buf [16]member
	rt, m, cerr := resource(n, s, check, "Organization", organizationElement, buf[:0])
	if o.ResourceType = rt; cerr != nil {
		return o, cerr
	}
	where := func() string { return n }
	var err *ClaimError
	if o.Identifiers, err = identifiers(n, s, m, a); err != nil {
		return o, err
	}
	if err := elementString(n, where, s, m, "id", &o.ID); err != nil {
		return o, err
	}
	if err := elementString(n, where, s, m, "name", &o.Name); err != nil {
		return o, err
	}
	return o, nil
}

func decodePractitionerText(s string, check bool, a *tokenSlices) (Practitioner, *ClaimError) {
	const n = ClaimRequestingPractitioner
	var p Practitioner
	var buf [16]member
	rt, m, cerr := resource(n, s, check, "Practitioner", practitionerElement, buf[:0])
	if p.ResourceType = rt; cerr != nil {
		return p, cerr
	}
	where := func() string { return n }
	if err := elementString(n, where, s, m, "id", &p.ID); err != nil {
		return p, err
	}
	var err *ClaimError
	if p.Identifiers, err = identifiers(n, s, m, a); err != nil {
		return p, err
	}
	if p.Names, err = humanNames(n, s, m, a); err != nil {
		return p, err
	}
	return p, nil
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
