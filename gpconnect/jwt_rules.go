package gpconnect

import (
	"slices"
	"strings"
	"time"
)

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
// DSTU2 requested_record. It judges the typed claims, so a Token built by
// hand is judged the same way as a parsed one, after the FHIR JSON defects
// ParseAuthorization found in the resource claims as sent.
func (p JWTPolicy) Check(t *Token, in Interaction, now time.Time) *ClaimError {
	if t == nil {
		return badRequest("Authorization", "no bearer token: send \"Bearer \" followed by an unsigned JWT")
	}
	c := &t.Claims
	for _, s := range [...]struct{ name, v string }{
		{ClaimIssuer, c.Issuer}, {ClaimSubject, c.Subject}, {ClaimAudience, c.Audience},
		{ClaimReasonForRequest, c.ReasonForRequest}, {ClaimRequestedScope, c.RequestedScope},
	} {
		if s.v == "" {
			return badRequest(s.name, "the %s claim is missing or empty", s.name)
		}
	}
	if c.RequestedRecord != nil {
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
	if cerr := checkDevice(&c.RequestingDevice, t.sent.device); cerr != nil {
		return cerr
	}
	if cerr := checkOrganization(&c.RequestingOrganization, t.sent.organization); cerr != nil {
		return cerr
	}
	pr := &c.RequestingPractitioner
	if cerr := checkPractitioner(pr, t.sent.practitioner); cerr != nil {
		return cerr
	}
	if c.Subject != pr.ID {
		return badRequest(ClaimSubject, "sub must equal requesting_practitioner.id: sub is %q, id is %q", truncate(c.Subject, 60), truncate(pr.ID, 60))
	}
	return nil
}

var scopes = [...]string{ScopePatientRead, ScopePatientWrite, ScopeOrgRead, ScopeOrgWrite}

func checkScope(scope string, in Interaction) *ClaimError {
	if !slices.Contains(scopes[:], scope) {
		return badRequest(ClaimRequestedScope, "requested_scope must be one of %s, got %q", strings.Join(scopes[:], ", "), truncate(scope, 60))
	}
	if in.Scope != "" && scope != in.Scope {
		return badRequest(ClaimRequestedScope, "requested_scope is %s but %s (%s) needs %s", scope, in.Name, in.ID, in.Scope)
	}
	return nil
}

// checkResource judges what every resource claim must be: free of FHIR
// JSON defects as sent (sent, from ParseAuthorization), of resource type
// want (a hand-built claim may have none: then the claim is missing), and
// with an id, when it has one, that is a FHIR id.
func checkResource(claim string, sent *ClaimError, resourceType, want, id string) *ClaimError {
	if sent != nil {
		c := *sent // the token keeps its own
		return &c
	}
	if resourceType == "" {
		return badRequest(claim, "the %s claim is missing: it must hold a FHIR STU3 %s resource", claim, want)
	}
	if resourceType != want {
		return invalidResource(claim, "%s must be a FHIR %s resource, got resourceType %q", claim, want, truncate(resourceType, 40))
	}
	if id != "" && !IsLogicalID(id) {
		return invalidResource(claim, "%s.id must be a FHIR id (1-64 of A-Z a-z 0-9 - .), got %q", claim, truncate(id, 40))
	}
	return nil
}

func checkDevice(d *Device, sent *ClaimError) *ClaimError {
	const n = ClaimRequestingDevice
	if cerr := checkResource(n, sent, d.ResourceType, "Device", d.ID); cerr != nil {
		return cerr
	}
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

func checkOrganization(o *Organization, sent *ClaimError) *ClaimError {
	const n = ClaimRequestingOrganization
	if cerr := checkResource(n, sent, o.ResourceType, "Organization", o.ID); cerr != nil {
		return cerr
	}
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

func checkPractitioner(pr *Practitioner, sent *ClaimError) *ClaimError {
	const n = ClaimRequestingPractitioner
	if cerr := checkResource(n, sent, pr.ResourceType, "Practitioner", pr.ID); cerr != nil {
		return cerr
	}
	if pr.ID == "" {
		return badRequest(n, "requesting_practitioner needs id (the user's local ID; sub must equal it)")
	}
	if len(pr.Names) == 0 || pr.Names[0].Family == "" {
		return badRequest(n, "requesting_practitioner needs name[0].family (the user's family name)")
	}
	if len(pr.Names[0].Given) == 0 || pr.Names[0].Given[0] == "" {
		return badRequest(n, "requesting_practitioner needs name[0].given[0] (the user's given name)")
	}
	// The role profile and the consumer's local user ID "are not always
	// present" (Cross-organisation audit and provenance): only the SDS user
	// ID (or UNK) is required.
	sds := false
	for _, id := range pr.Identifiers {
		switch id.System {
		case SystemSDSUserID:
			if id.Value == "" {
				return badRequest(n, "requesting_practitioner's %s identifier has an empty value: send the SDS user ID or UNK", SystemSDSUserID)
			}
			sds = true
		case SystemSDSRoleID:
			if id.Value == "" {
				return badRequest(n, "requesting_practitioner's %s identifier has an empty value: send the SDS role profile ID or UNK, or leave the identifier out", SystemSDSRoleID)
			}
		}
	}
	if !sds {
		return badRequest(n, "requesting_practitioner has no identifier with system %s: send the SDS user ID, or UNK when there is none", SystemSDSUserID)
	}
	return nil
}

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
