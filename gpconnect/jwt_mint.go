package gpconnect

import (
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"sspemu/fhir"
)

// TokenSpec is everything `sspemu token` can set in a GP Connect 1.2.7 JWT.
// Empty optional fields (RoleProfileID, DeviceSystem, Given, ...) leave the
// element out, which lets tests and users build deliberately bad tokens.
type TokenSpec struct {
	Issuer, Subject, Audience string
	IssuedAt                  time.Time
	Lifetime                  time.Duration
	Scope, ReasonForRequest   string

	ODSCode, OrgName                                      string
	SDSUserID, RoleProfileID, PractitionerID              string
	Family, Given                                         string
	DeviceSystem, DeviceValue, DeviceModel, DeviceVersion string
	// LocalUserSystem and LocalUserID form the practitioner's local user
	// identifier; empty LocalUserSystem means Issuer + "/Id/user-guid"
	// (trailing slash trimmed), empty LocalUserID means PractitionerID.
	LocalUserSystem, LocalUserID string
}

// DefaultTokenSpec returns a spec whose token passes every rule for in:
// scope from the catalogue, lifetime 300 s from now, sub equal to the
// practitioner's ID, and the default consumer's identities.
func DefaultTokenSpec(in Interaction, audience string, now time.Time) TokenSpec {
	return TokenSpec{
		Issuer:           "https://consumer.sspemu.localhost/",
		Subject:          "1",
		Audience:         audience,
		IssuedAt:         now,
		Lifetime:         TokenLifetime,
		Scope:            in.Scope,
		ReasonForRequest: "directcare",
		ODSCode:          "Y12345",
		OrgName:          "Example consumer",
		SDSUserID:        "111222333444",
		RoleProfileID:    "444555666777",
		PractitionerID:   "1",
		Family:           "Example",
		Given:            "Alex",
		DeviceSystem:     "https://consumer.sspemu.localhost/Id/device-identifier",
		DeviceValue:      "sspemu-token",
		DeviceModel:      "sspemu",
		DeviceVersion:    "1.0",
	}
}

// Encode mints the unsigned token with golang-jwt: header
// {"alg":"none","typ":"JWT"}, the claims in the order of the
// specification's example token, base64url without padding, and an empty
// signature, so it ends with ".". exp = iat + Lifetime, both whole
// seconds.
func (s TokenSpec) Encode() string {
	iat := s.IssuedAt.Unix()
	c := Claims{
		Issuer:           s.Issuer,
		Subject:          s.Subject,
		Audience:         s.Audience,
		ExpiresAt:        iat + int64(s.Lifetime/time.Second),
		IssuedAt:         iat,
		ReasonForRequest: s.ReasonForRequest,
		RequestedScope:   s.Scope,
		RequestingDevice: Device{
			ResourceType: "Device",
			Identifiers:  identifierList(fhir.Identifier{System: s.DeviceSystem, Value: s.DeviceValue}),
			Model:        s.DeviceModel,
			Version:      s.DeviceVersion,
		},
		RequestingOrganization: Organization{
			ResourceType: "Organization",
			Identifiers:  identifierList(fhir.Identifier{System: SystemODSCode, Value: s.ODSCode}),
			Name:         s.OrgName,
		},
		RequestingPractitioner: Practitioner{
			ResourceType: "Practitioner",
			ID:           s.PractitionerID,
			Identifiers:  s.practitionerIdentifiers(),
		},
	}
	if s.Family != "" || s.Given != "" {
		n := fhir.HumanName{Family: s.Family}
		if s.Given != "" {
			n.Given = []string{s.Given}
		}
		c.RequestingPractitioner.Names = []fhir.HumanName{n}
	}
	// Claims of strings, integers and slices always marshal, and the none
	// method signs whenever it is handed its permission: there is no error
	// to return.
	raw, _ := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
	return raw
}

func (s TokenSpec) practitionerIdentifiers() []fhir.Identifier {
	system := s.LocalUserSystem
	if system == "" && s.Issuer != "" {
		system = strings.TrimSuffix(s.Issuer, "/") + "/Id/user-guid"
	}
	value := s.LocalUserID
	if value == "" {
		value = s.PractitionerID
	}
	var out []fhir.Identifier
	if s.SDSUserID != "" {
		out = append(out, fhir.Identifier{System: SystemSDSUserID, Value: s.SDSUserID})
	}
	if s.RoleProfileID != "" {
		out = append(out, fhir.Identifier{System: SystemSDSRoleID, Value: s.RoleProfileID})
	}
	if system != "" && value != "" {
		out = append(out, fhir.Identifier{System: system, Value: value})
	}
	return out
}

// identifierList drops an identifier with neither system nor value.
func identifierList(id fhir.Identifier) []fhir.Identifier {
	if id.System == "" && id.Value == "" {
		return nil
	}
	return []fhir.Identifier{id}
}
