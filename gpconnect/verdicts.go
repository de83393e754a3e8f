package gpconnect

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TokenVerdicts is a decoded bearer token with a verdict per claim. It was
// the console's (console/claims.go) and moved here so the SSP's audit and
// the report judge a token by the very same rules.
type TokenVerdicts struct {
	// Envelope is set when the Authorization header or the JWT around the
	// claims is wrong, so no claim could be read.
	Envelope *ClaimVerdict  `json:"envelope,omitempty"`
	Claims   []ClaimVerdict `json:"claims"`
	// Complete is false when judging stopped before every claim had a
	// verdict; the claims without one say "not judged".
	Complete bool `json:"complete"`
}

// ClaimVerdict is one claim's value as sent and what the rules say of it.
type ClaimVerdict struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	Verdict string `json:"verdict"` // passed | failed | not judged
	Reason  string `json:"reason,omitempty"`
}

// The verdicts of one claim.
const (
	VerdictPassed    = "passed"
	VerdictFailed    = "failed"
	VerdictNotJudged = "not judged"
)

// claimOrder is the order of the claims in the specification's example.
var claimOrder = []string{
	ClaimIssuer, ClaimSubject, ClaimAudience,
	ClaimExpiresAt, ClaimIssuedAt, ClaimReasonForRequest,
	ClaimRequestedScope, ClaimRequestingDevice,
	ClaimRequestingOrganization, ClaimRequestingPractitioner,
}

// Verdicts gives every claim of the token in authz its own verdict. The
// GP Connect rules (JWTPolicy, CheckAudience) name only the first
// claim that fails, so each failing claim, once named, is replaced by a
// valid value and the token judged again, until it passes: every claim
// named on the way failed, every other one passed. The rules stay the ones
// the jwt step applied, at the time it applied them; this runs on the
// console's goroutine, never on the request's.
func (p JWTPolicy) Verdicts(authz string, in Interaction, serviceRoot string, now time.Time) TokenVerdicts {
	var v TokenVerdicts
	tok, perr := ParseAuthorization(authz)
	if tok == nil {
		v.Envelope = &ClaimVerdict{Name: "Authorization", Verdict: VerdictFailed, Reason: "no bearer token could be read"}
		if perr != nil {
			v.Envelope.Name, v.Envelope.Reason = perr.Claim, perr.Reason
		}
		return v
	}
	failed := map[string]string{}
	var order []string // failing claims, in the order the rules named them
	fail := func(claim, reason string) {
		if _, seen := failed[claim]; !seen {
			failed[claim] = reason
			order = append(order, claim)
		}
	}
	if perr != nil && perr.Claim != "" {
		fail(perr.Claim, perr.Reason)
	}
	var ref *Token // made only when a claim needs a stand-in
	w := *tok
	policy := p
	repaired := map[string]int{}
	for range 3 * (len(claimOrder) + 1) {
		cerr := policy.Check(&w, in, now)
		if cerr == nil {
			cerr = CheckAudience(&w, serviceRoot)
		}
		if cerr == nil {
			v.Complete = true
			break
		}
		fail(cerr.Claim, cerr.Reason)
		repaired[cerr.Claim]++
		if ref == nil {
			id := tok.Claims.RequestingPractitioner.ID
			if id == "" {
				id = tok.Claims.Subject
			}
			ref = referenceToken(in, serviceRoot, id, now)
		}
		if ref == nil || !repair(&w, ref, cerr.Claim, repaired[cerr.Claim]) {
			break
		}
	}
	// The rules name one of iat and exp, and the first claim missing; the
	// payload's own members say which others are absent.
	present := payloadMembers(tok.Raw)
	for _, name := range claimOrder {
		if present != nil && !present[name] {
			fail(name, "the "+name+" claim is missing")
		}
	}
	c := tok.Claims
	sent := tokenPayload(tok.Raw)
	names := claimOrder
	if c.RequestedRecord != nil || failed[ClaimRequestedRecord] != "" {
		names = append(names[:len(names):len(names)], ClaimRequestedRecord)
	}
	for _, name := range names {
		cv := ClaimVerdict{Name: name, Value: claimValue(c, sent, name), Verdict: VerdictPassed}
		if r, ok := failed[name]; ok {
			cv.Verdict, cv.Reason = VerdictFailed, r
		} else if !v.Complete {
			cv.Verdict = VerdictNotJudged
		}
		v.Claims = append(v.Claims, cv)
	}
	// A rule may name something that is not one claim (the envelope);
	// keep it visible rather than lose it.
	for _, name := range order {
		if !slices.Contains(names, name) {
			v.Claims = append(v.Claims, ClaimVerdict{Name: name, Verdict: VerdictFailed, Reason: failed[name]})
		}
	}
	return v
}

// payloadMembers is the set of member names of the token's payload, or nil
// when it cannot be read as a JSON object.
func payloadMembers(raw string) map[string]bool {
	members := tokenPayload(raw)
	if members == nil {
		return nil
	}
	out := make(map[string]bool, len(members))
	for k, v := range members {
		out[k] = string(v) != "null"
	}
	return out
}

// payload is the token's payload as sent, member by member; nil when it
// cannot be read.
func tokenPayload(raw string) map[string]json.RawMessage {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var members map[string]json.RawMessage
	if json.Unmarshal(data, &members) != nil {
		return nil
	}
	return members
}

// referenceToken is a token that passes every rule for in, with
// requesting_practitioner.id (and so sub) kept as sent when that still
// passes: the source of the valid values that stand in for failing claims.
func referenceToken(in Interaction, serviceRoot, sub string, now time.Time) *Token {
	audience := serviceRoot
	if audience == "" {
		audience = LegacyAudience
	}
	spec := DefaultTokenSpec(in, audience, now)
	if spec.Scope == "" {
		spec.Scope = ScopeOrgRead
	}
	policy := JWTPolicy{}
	build := func(s TokenSpec) *Token {
		t, err := ParseAuthorization("Bearer " + s.Encode())
		if err != nil || policy.Check(t, in, now) != nil {
			return nil
		}
		return t
	}
	if sub != "" {
		keep := spec
		keep.Subject, keep.PractitionerID = sub, sub
		if t := build(keep); t != nil {
			return t
		}
	}
	return build(spec)
}

// repair puts the reference's valid value in place of a failing claim.
// The attempt counts how often the claim failed: sub is first made to
// agree with the practitioner it names, then taken whole from the
// reference with its practitioner. It reports false when the claim cannot
// be repaired, which ends the judging.
func repair(w, ref *Token, claim string, attempt int) bool {
	if attempt > 2 || (attempt > 1 && claim != ClaimSubject) {
		return false
	}
	if claim != ClaimSubject {
		return w.ReplaceClaim(claim, ref)
	}
	switch id := w.Claims.RequestingPractitioner.ID; {
	case attempt == 1 && id != "":
		w.Claims.Subject = id
	case attempt == 1:
		w.ReplaceClaim(claim, ref) // the practitioner's own failure is named on its own
	default:
		w.ReplaceClaim(claim, ref)
		w.ReplaceClaim(ClaimRequestingPractitioner, ref)
	}
	return true
}

// claimValue is a claim as sent, for display: strings as they are, times
// with their UTC reading, resources as indented JSON from the payload as
// sent (the typed claims drop members the rules refuse).
func claimValue(c Claims, sent map[string]json.RawMessage, name string) string {
	unix := func(n int64) string {
		if n == 0 {
			return ""
		}
		return strconv.FormatInt(n, 10) + " (" + time.Unix(n, 0).UTC().Format(time.RFC3339) + ")"
	}
	switch name {
	case ClaimIssuer:
		return c.Issuer
	case ClaimSubject:
		return c.Subject
	case ClaimAudience:
		return c.Audience
	case ClaimIssuedAt:
		return unix(c.IssuedAt)
	case ClaimExpiresAt:
		return unix(c.ExpiresAt)
	case ClaimReasonForRequest:
		return c.ReasonForRequest
	case ClaimRequestedScope:
		return c.RequestedScope
	case ClaimRequestingDevice:
		return indent(sent[ClaimRequestingDevice])
	case ClaimRequestingOrganization:
		return indent(sent[ClaimRequestingOrganization])
	case ClaimRequestingPractitioner:
		return indent(sent[ClaimRequestingPractitioner])
	case ClaimRequestedRecord:
		return indent(sent[ClaimRequestedRecord])
	}
	return ""
}

func indent(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		return string(raw)
	}
	return b.String()
}

// ClaimNames is the claims Verdicts always judges, in the specification's
// order.
func ClaimNames() []string { return slices.Clone(claimOrder) }
