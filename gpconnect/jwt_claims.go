package gpconnect

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"sspemu/fhir"
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

// LegacyAudience is the aud value of earlier GP Connect versions, still
// sent by some consumers and accepted (ssp-behaviour §5).
const LegacyAudience = "https://authorize.fhir.nhs.net/token"

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

// Device is the requesting_device claim: the elements of a FHIR STU3 Device
// that the rules read.
type Device struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id,omitempty"`
	Identifiers  []fhir.Identifier `json:"identifier,omitempty"`
	Model        string            `json:"model,omitempty"`
	Version      string            `json:"version,omitempty"`
}

// Organization is the requesting_organization claim: the elements of a
// FHIR STU3 Organization that the rules read.
type Organization struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id,omitempty"`
	Identifiers  []fhir.Identifier `json:"identifier,omitempty"`
	Name         string            `json:"name,omitempty"`
}

// Practitioner is the requesting_practitioner claim: the elements of a FHIR
// STU3 Practitioner that the rules read.
type Practitioner struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id,omitempty"`
	Identifiers  []fhir.Identifier `json:"identifier,omitempty"`
	Names        []fhir.HumanName  `json:"name,omitempty"`
}

// RequestedRecord is the DSTU2-era requested_record claim, which a 1.2.x
// provider refuses; it is decoded only so that an audit shows what was
// asked for.
type RequestedRecord struct {
	ResourceType string            `json:"resourceType,omitempty"`
	Identifiers  []fhir.Identifier `json:"identifier,omitempty"`
}

// Claims are the claims of a GP Connect 1.2.x token, typed. ParseAuthorization
// fills them; `sspemu token` marshals them, in this field order, which is the
// order of the specification's example token. They satisfy jwt.Claims so
// that golang-jwt can mint them; decode a token with ParseAuthorization,
// which applies FHIR JSON's rules that plain encoding/json would not.
type Claims struct {
	Issuer           string `json:"iss"`
	Subject          string `json:"sub"`
	Audience         string `json:"aud"`
	ExpiresAt        int64  `json:"exp"`
	IssuedAt         int64  `json:"iat"`
	ReasonForRequest string `json:"reason_for_request"`
	RequestedScope   string `json:"requested_scope"`

	RequestingDevice       Device       `json:"requesting_device"`
	RequestingOrganization Organization `json:"requesting_organization"`
	RequestingPractitioner Practitioner `json:"requesting_practitioner"`
	// RequestedRecord is set when the token carries requested_record.
	RequestedRecord *RequestedRecord `json:"requested_record,omitempty"`
}

// GetExpirationTime, GetIssuedAt, GetNotBefore, GetIssuer, GetSubject and
// GetAudience make Claims a jwt.Claims. GP Connect has no nbf.
func (c Claims) GetExpirationTime() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.ExpiresAt, 0)), nil
}

func (c Claims) GetIssuedAt() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.IssuedAt, 0)), nil
}

func (c Claims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }
func (c Claims) GetIssuer() (string, error)              { return c.Issuer, nil }
func (c Claims) GetSubject() (string, error)             { return c.Subject, nil }
func (c Claims) GetAudience() (jwt.ClaimStrings, error)  { return jwt.ClaimStrings{c.Audience}, nil }

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

func isODSSystem(s string) bool { return s == SystemODSCode || s == SystemODSCodeLegacy }

// Token is a parsed bearer token: the raw JWT and its claims.
type Token struct {
	Raw    string
	Claims Claims

	// sent holds what ParseAuthorization found wrong with the resource
	// claims as FHIR JSON: an unknown or null element, an element of the
	// wrong JSON type. The typed Claims cannot show these, so Check
	// reports them from here before judging the typed values.
	sent resourceDefects
}

// ReplaceClaim puts from's value of one claim in t's place, with what
// ParseAuthorization found wrong with it as sent, so that a tool judging
// claims one by one (the console) can stand a valid value in for a failing
// one. iat and exp travel together; requested_record is dropped when from
// has none. It reports false for a name that is not a claim of the token.
func (t *Token) ReplaceClaim(claim string, from *Token) bool {
	c, f := &t.Claims, &from.Claims
	switch claim {
	case ClaimIssuer:
		c.Issuer = f.Issuer
	case ClaimSubject:
		c.Subject = f.Subject
	case ClaimAudience:
		c.Audience = f.Audience
	case ClaimIssuedAt, ClaimExpiresAt:
		c.IssuedAt, c.ExpiresAt = f.IssuedAt, f.ExpiresAt
	case ClaimReasonForRequest:
		c.ReasonForRequest = f.ReasonForRequest
	case ClaimRequestedScope:
		c.RequestedScope = f.RequestedScope
	case ClaimRequestingDevice:
		c.RequestingDevice, t.sent.device = f.RequestingDevice, from.sent.device
	case ClaimRequestingOrganization:
		c.RequestingOrganization, t.sent.organization = f.RequestingOrganization, from.sent.organization
	case ClaimRequestingPractitioner:
		c.RequestingPractitioner, t.sent.practitioner = f.RequestingPractitioner, from.sent.practitioner
	case ClaimRequestedRecord:
		c.RequestedRecord = f.RequestedRecord
	default:
		return false
	}
	return true
}

// resourceDefects are the first FHIR JSON defect of each resource claim,
// nil where it has none.
type resourceDefects struct {
	device, organization, practitioner *ClaimError
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
