package console

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"sspemu/gpconnect"
	"sspemu/proxy"
)

// jwtView is the decoded bearer token with a verdict per claim.
type jwtView struct {
	Mode string `json:"mode"` // ssp.jwt when the request was judged
	// Envelope is set when the Authorization header or the JWT around the
	// claims is wrong, so no claim could be read.
	Envelope *claimVerdict  `json:"envelope,omitempty"`
	Claims   []claimVerdict `json:"claims"`
	// Complete is false when judging stopped before every claim had a
	// verdict; the claims without one say "not judged".
	Complete bool `json:"complete"`
}

// claimVerdict is one claim's value as sent and what the rules say of it.
type claimVerdict struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	Verdict string `json:"verdict"` // passed | failed | not judged
	Reason  string `json:"reason,omitempty"`
}

const verdictNotJudged = "not judged"

// claimOrder is the order of the claims in the specification's example.
var claimOrder = []string{
	gpconnect.ClaimIssuer, gpconnect.ClaimSubject, gpconnect.ClaimAudience,
	gpconnect.ClaimExpiresAt, gpconnect.ClaimIssuedAt, gpconnect.ClaimReasonForRequest,
	gpconnect.ClaimRequestedScope, gpconnect.ClaimRequestingDevice,
	gpconnect.ClaimRequestingOrganization, gpconnect.ClaimRequestingPractitioner,
}

// judgeToken gives every claim of the token in authz its own verdict. The
// GP Connect rules (gpconnect.JWTPolicy, CheckAudience) name only the first
// claim that fails, so each failing claim, once named, is replaced by a
// valid value and the token judged again, until it passes: every claim
// named on the way failed, every other one passed. The rules stay the ones
// the jwt step applied, at the time it applied them; this runs on the
// console's goroutine, never on the request's.
func judgeToken(authz string, in gpconnect.Interaction, serviceRoot string, skew time.Duration, now time.Time) jwtView {
	var v jwtView
	tok, perr := gpconnect.ParseAuthorization(authz)
	if tok == nil {
		v.Envelope = &claimVerdict{Name: "Authorization", Verdict: proxy.VerdictFailed, Reason: "no bearer token could be read"}
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
	var ref *gpconnect.Token // made only when a claim needs a stand-in
	w := *tok
	policy := gpconnect.JWTPolicy{Skew: skew}
	repaired := map[string]int{}
	for range 3 * (len(claimOrder) + 1) {
		cerr := policy.Check(&w, in, now)
		if cerr == nil {
			cerr = gpconnect.CheckAudience(&w, serviceRoot)
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
	sent := payload(tok.Raw)
	names := claimOrder
	if c.RequestedRecord != nil || failed[gpconnect.ClaimRequestedRecord] != "" {
		names = append(names[:len(names):len(names)], gpconnect.ClaimRequestedRecord)
	}
	for _, name := range names {
		cv := claimVerdict{Name: name, Value: claimValue(c, sent, name), Verdict: proxy.VerdictPassed}
		if r, ok := failed[name]; ok {
			cv.Verdict, cv.Reason = proxy.VerdictFailed, r
		} else if !v.Complete {
			cv.Verdict = verdictNotJudged
		}
		v.Claims = append(v.Claims, cv)
	}
	// A rule may name something that is not one claim (the envelope);
	// keep it visible rather than lose it.
	for _, name := range order {
		if !slices.Contains(names, name) {
			v.Claims = append(v.Claims, claimVerdict{Name: name, Verdict: proxy.VerdictFailed, Reason: failed[name]})
		}
	}
	return v
}

// payloadMembers is the set of member names of the token's payload, or nil
// when it cannot be read as a JSON object.
func payloadMembers(raw string) map[string]bool {
	members := payload(raw)
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
func payload(raw string) map[string]json.RawMessage {
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
func referenceToken(in gpconnect.Interaction, serviceRoot, sub string, now time.Time) *gpconnect.Token {
	audience := serviceRoot
	if audience == "" {
		audience = gpconnect.LegacyAudience
	}
	spec := gpconnect.DefaultTokenSpec(in, audience, now)
	if spec.Scope == "" {
		spec.Scope = gpconnect.ScopeOrgRead
	}
	policy := gpconnect.JWTPolicy{}
	build := func(s gpconnect.TokenSpec) *gpconnect.Token {
		t, err := gpconnect.ParseAuthorization("Bearer " + s.Encode())
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
func repair(w, ref *gpconnect.Token, claim string, attempt int) bool {
	if attempt > 2 || (attempt > 1 && claim != gpconnect.ClaimSubject) {
		return false
	}
	if claim != gpconnect.ClaimSubject {
		return w.ReplaceClaim(claim, ref)
	}
	switch id := w.Claims.RequestingPractitioner.ID; {
	case attempt == 1 && id != "":
		w.Claims.Subject = id
	case attempt == 1:
		w.ReplaceClaim(claim, ref) // the practitioner's own failure is named on its own
	default:
		w.ReplaceClaim(claim, ref)
		w.ReplaceClaim(gpconnect.ClaimRequestingPractitioner, ref)
	}
	return true
}

// claimValue is a claim as sent, for display: strings as they are, times
// with their UTC reading, resources as indented JSON from the payload as
// sent (the typed claims drop members the rules refuse).
func claimValue(c gpconnect.Claims, sent map[string]json.RawMessage, name string) string {
	unix := func(n int64) string {
		if n == 0 {
			return ""
		}
		return strconv.FormatInt(n, 10) + " (" + time.Unix(n, 0).UTC().Format(time.RFC3339) + ")"
	}
	switch name {
	case gpconnect.ClaimIssuer:
		return c.Issuer
	case gpconnect.ClaimSubject:
		return c.Subject
	case gpconnect.ClaimAudience:
		return c.Audience
	case gpconnect.ClaimIssuedAt:
		return unix(c.IssuedAt)
	case gpconnect.ClaimExpiresAt:
		return unix(c.ExpiresAt)
	case gpconnect.ClaimReasonForRequest:
		return c.ReasonForRequest
	case gpconnect.ClaimRequestedScope:
		return c.RequestedScope
	case gpconnect.ClaimRequestingDevice:
		return indent(sent[gpconnect.ClaimRequestingDevice])
	case gpconnect.ClaimRequestingOrganization:
		return indent(sent[gpconnect.ClaimRequestingOrganization])
	case gpconnect.ClaimRequestingPractitioner:
		return indent(sent[gpconnect.ClaimRequestingPractitioner])
	case gpconnect.ClaimRequestedRecord:
		return indent(sent[gpconnect.ClaimRequestedRecord])
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
