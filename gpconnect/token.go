package gpconnect

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
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

// The payload is built from structs, not maps, so members come out in the
// order of the specification's example token.
type (
	jwtPayload struct {
		Iss                    string          `json:"iss"`
		Sub                    string          `json:"sub"`
		Aud                    string          `json:"aud"`
		Exp                    int64           `json:"exp"`
		Iat                    int64           `json:"iat"`
		ReasonForRequest       string          `json:"reason_for_request"`
		RequestedScope         string          `json:"requested_scope"`
		RequestingDevice       jwtDevice       `json:"requesting_device"`
		RequestingOrganization jwtOrganization `json:"requesting_organization"`
		RequestingPractitioner jwtPractitioner `json:"requesting_practitioner"`
	}
	jwtIdentifier struct {
		System string `json:"system,omitempty"`
		Value  string `json:"value,omitempty"`
	}
	jwtDevice struct {
		ResourceType string          `json:"resourceType"`
		Identifier   []jwtIdentifier `json:"identifier,omitempty"`
		Model        string          `json:"model,omitempty"`
		Version      string          `json:"version,omitempty"`
	}
	jwtOrganization struct {
		ResourceType string          `json:"resourceType"`
		Identifier   []jwtIdentifier `json:"identifier,omitempty"`
		Name         string          `json:"name,omitempty"`
	}
	jwtName struct {
		Family string   `json:"family,omitempty"`
		Given  []string `json:"given,omitempty"`
	}
	jwtPractitioner struct {
		ResourceType string          `json:"resourceType"`
		ID           string          `json:"id,omitempty"`
		Identifier   []jwtIdentifier `json:"identifier,omitempty"`
		Name         []jwtName       `json:"name,omitempty"`
	}
)

// joseHeader is the only JWT header GP Connect accepts, already encoded.
var joseHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))

// Encode renders the unsigned token: header {"alg":"none","typ":"JWT"},
// base64url without padding, empty signature (so it ends with ".").
// exp = iat + Lifetime, both whole seconds.
func (s TokenSpec) Encode() string {
	iat := s.IssuedAt.Unix()
	p := jwtPayload{
		Iss:              s.Issuer,
		Sub:              s.Subject,
		Aud:              s.Audience,
		Exp:              iat + int64(s.Lifetime/time.Second),
		Iat:              iat,
		ReasonForRequest: s.ReasonForRequest,
		RequestedScope:   s.Scope,
		RequestingDevice: jwtDevice{
			ResourceType: "Device",
			Identifier:   identifierList(jwtIdentifier{s.DeviceSystem, s.DeviceValue}),
			Model:        s.DeviceModel,
			Version:      s.DeviceVersion,
		},
		RequestingOrganization: jwtOrganization{
			ResourceType: "Organization",
			Identifier:   identifierList(jwtIdentifier{SystemODSCode, s.ODSCode}),
			Name:         s.OrgName,
		},
		RequestingPractitioner: jwtPractitioner{
			ResourceType: "Practitioner",
			ID:           s.PractitionerID,
			Identifier:   s.practitionerIdentifiers(),
		},
	}
	if s.Family != "" || s.Given != "" {
		n := jwtName{Family: s.Family}
		if s.Given != "" {
			n.Given = []string{s.Given}
		}
		p.RequestingPractitioner.Name = []jwtName{n}
	}
	body, _ := json.Marshal(p) // plain structs of strings and ints always marshal
	return joseHeader + "." + base64.RawURLEncoding.EncodeToString(body) + "."
}

func (s TokenSpec) practitionerIdentifiers() []jwtIdentifier {
	system := s.LocalUserSystem
	if system == "" && s.Issuer != "" {
		system = strings.TrimSuffix(s.Issuer, "/") + "/Id/user-guid"
	}
	value := s.LocalUserID
	if value == "" {
		value = s.PractitionerID
	}
	var out []jwtIdentifier
	if s.SDSUserID != "" {
		out = append(out, jwtIdentifier{SystemSDSUserID, s.SDSUserID})
	}
	if s.RoleProfileID != "" {
		out = append(out, jwtIdentifier{SystemSDSRoleID, s.RoleProfileID})
	}
	if system != "" && value != "" {
		out = append(out, jwtIdentifier{system, value})
	}
	return out
}

// identifierList drops an identifier with neither system nor value.
func identifierList(id jwtIdentifier) []jwtIdentifier {
	if id.System == "" && id.Value == "" {
		return nil
	}
	return []jwtIdentifier{id}
}
