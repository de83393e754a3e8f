package gpconnect

import (
	"bytes"
	"encoding/json"
	"strconv"

	jsonv2 "github.com/go-json-experiment/json"

	"sspemu/fhir"
)

// payload is what golang-jwt decodes the claims set into. Reading the
// resource claims as any, which the FHIR rules of jwt_fhir.go need in
// order to see member names exactly as sent, cost most of the JWT's time
// and a quarter of the bytes the SSP allocated per request. Yet nearly
// every token is plain: each claim once, spelt exactly, of its JSON type,
// no null, and in the resource claims only the elements the rules read.
// Such a payload is read typed, by the strict decoder of
// github.com/go-json-experiment/json (encoding/json v2 as a module,
// already in the module graph through chromedp, which the console's
// browser test uses), which refuses, by default or as asked, all
// that GP Connect's rules refuse and encoding/json v1 lets through: a
// member sent twice, a name in another case, bytes that are not UTF-8, a
// value of another JSON type, a member the type does not define. Null it
// takes for absent, so a payload holding the bytes "null" anywhere (even
// inside a string) is not tried. Whatever it refuses, and a resource claim
// of the wrong resourceType, is read the generic way, sentPayload, which
// names the defect: the typed way never decides a token the generic rules
// would decide otherwise, it only decides the plain ones sooner
// (TestTypedMatchesGeneric).
type payload struct {
	sentPayload
	// typed is set when the payload was read typed; generic keeps it
	// from being tried.
	typed   *typedPayload
	generic bool
}

// UnmarshalJSON is called by encoding/json, inside golang-jwt, with the
// whole payload, which it has checked is valid JSON.
func (p *payload) UnmarshalJSON(b []byte) error {
	if !p.generic && !bytes.Contains(b, []byte("null")) {
		t := new(typedPayload)
		if jsonv2.Unmarshal(b, t, jsonv2.RejectUnknownMembers(true)) == nil && t.resourceTypesRight() {
			p.typed = t
			t.sent(&p.sentPayload)
			return nil
		}
	}
	return json.Unmarshal(b, &p.sentPayload)
}

// typedPayload is a plain payload. A pointer is nil when its claim was not
// sent (null is never read this way).
type typedPayload struct {
	Issuer                 *string            `json:"iss"`
	Subject                *string            `json:"sub"`
	Audience               *string            `json:"aud"`
	ExpiresAt              *int64             `json:"exp"`
	IssuedAt               *int64             `json:"iat"`
	ReasonForRequest       *string            `json:"reason_for_request"`
	RequestedScope         *string            `json:"requested_scope"`
	RequestingDevice       *typedDevice       `json:"requesting_device"`
	RequestingOrganization *typedOrganization `json:"requesting_organization"`
	RequestingPractitioner *typedPractitioner `json:"requesting_practitioner"`
}

// The resource claims read typed: the elements the rules read, all of
// which FHIR STU3 defines for the resource (or the datatype) and the
// generic way decodes.
type (
	typedIdentifier struct {
		System string `json:"system"`
		Value  string `json:"value"`
	}
	typedDevice struct {
		ResourceType string            `json:"resourceType"`
		ID           string            `json:"id"`
		Identifiers  []typedIdentifier `json:"identifier"`
		Model        string            `json:"model"`
		Version      string            `json:"version"`
	}
	typedOrganization struct {
		ResourceType string            `json:"resourceType"`
		ID           string            `json:"id"`
		Identifiers  []typedIdentifier `json:"identifier"`
		Name         string            `json:"name"`
	}
	typedPractitioner struct {
		ResourceType string            `json:"resourceType"`
		ID           string            `json:"id"`
		Identifiers  []typedIdentifier `json:"identifier"`
		Names        []typedName       `json:"name"`
	}
	typedName struct {
		Family string   `json:"family"`
		Given  []string `json:"given"`
		Prefix []string `json:"prefix"`
	}
)

// resourceTypesRight holds when each resource claim sent names its own
// resourceType; the generic way words any other.
func (t *typedPayload) resourceTypesRight() bool {
	return (t.RequestingDevice == nil || t.RequestingDevice.ResourceType == "Device") &&
		(t.RequestingOrganization == nil || t.RequestingOrganization.ResourceType == "Organization") &&
		(t.RequestingPractitioner == nil || t.RequestingPractitioner.ResourceType == "Practitioner")
}

// sent records the plain claims as the generic way would have, sent once
// each, so that decode judges them the same way.
func (t *typedPayload) sent(p *sentPayload) {
	for _, c := range [...]struct {
		v   *string
		dst *sentClaim
	}{
		{t.Issuer, &p.Issuer}, {t.Subject, &p.Subject}, {t.Audience, &p.Audience},
		{t.ReasonForRequest, &p.ReasonForRequest}, {t.RequestedScope, &p.RequestedScope},
	} {
		if c.v != nil {
			*c.dst = sentClaim{times: 1, kind: '"', text: *c.v}
		}
	}
	for _, c := range [...]struct {
		v   *int64
		dst *sentClaim
	}{{t.IssuedAt, &p.IssuedAt}, {t.ExpiresAt, &p.ExpiresAt}} {
		if c.v != nil {
			text := strconv.FormatInt(*c.v, 10)
			*c.dst = sentClaim{times: 1, kind: text[0], text: text}
		}
	}
}

// decode fills the resource claims of c, which have no FHIR defect, and
// returns the first claim missing; a claim missing goes to def as well, as
// the generic way puts it.
func (t *typedPayload) decode(c *Claims, def *resourceDefects) *ClaimError {
	var first *ClaimError
	if d := t.RequestingDevice; d != nil {
		c.RequestingDevice = Device{ResourceType: d.ResourceType, ID: d.ID, Identifiers: typedIdentifiers(d.Identifiers), Model: d.Model, Version: d.Version}
	} else {
		first = objectClaim(ClaimRequestingDevice, notSent{}, "Device")
		c.RequestingDevice, def.device = decodeDevice(nil)
	}
	if o := t.RequestingOrganization; o != nil {
		c.RequestingOrganization = Organization{ResourceType: o.ResourceType, ID: o.ID, Identifiers: typedIdentifiers(o.Identifiers), Name: o.Name}
	} else {
		if first == nil {
			first = objectClaim(ClaimRequestingOrganization, notSent{}, "Organization")
		}
		c.RequestingOrganization, def.organization = decodeOrganization(nil)
	}
	if pr := t.RequestingPractitioner; pr != nil {
		c.RequestingPractitioner = Practitioner{ResourceType: pr.ResourceType, ID: pr.ID, Identifiers: typedIdentifiers(pr.Identifiers)}
		if pr.Names != nil {
			c.RequestingPractitioner.Names = make([]fhir.HumanName, len(pr.Names))
			for i, n := range pr.Names {
				c.RequestingPractitioner.Names[i] = fhir.HumanName{Family: n.Family, Given: n.Given, Prefix: n.Prefix}
			}
		}
	} else {
		if first == nil {
			first = objectClaim(ClaimRequestingPractitioner, notSent{}, "Practitioner")
		}
		c.RequestingPractitioner, def.practitioner = decodePractitioner(nil)
	}
	return first
}

func typedIdentifiers(ids []typedIdentifier) []fhir.Identifier {
	if ids == nil {
		return nil
	}
	out := make([]fhir.Identifier, len(ids))
	for i, id := range ids {
		out[i] = fhir.Identifier{System: id.System, Value: id.Value}
	}
	return out
}
