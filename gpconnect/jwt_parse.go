package gpconnect

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// jwtParser reads every bearer token. GP Connect tokens are unsigned, so
// "none" is the only method and the key function hands golang-jwt its
// explicit permission for it; golang-jwt then also requires the signature
// to be empty. Its base64url refuses padding (no WithPaddingAllowed), and
// WithStrictDecoding refuses stray trailing bits. It validates no claims:
// Check applies GP Connect's own rules, with their own clock skew, and
// names each defect. The parser is never changed after this, so it is
// safe to share.
var jwtParser = jwt.NewParser(
	jwt.WithValidMethods([]string{jwt.SigningMethodNone.Alg()}),
	jwt.WithStrictDecoding(),
	jwt.WithoutClaimsValidation(),
)

func allowNone(*jwt.Token) (any, error) { return jwt.UnsafeAllowNoneSignatureType, nil }

// ParseAuthorization decodes an Authorization header value strictly as
// GP Connect 1.2.x requires: "Bearer " and an unsigned JWT whose header is
// exactly {"alg":"none","typ":"JWT"}, base64url without padding, an empty
// signature, and a payload holding every mandatory claim with the right JSON
// type. It does not judge claim values: that is Check. When the payload
// decodes as a JSON object the token is returned even with an error, holding
// what could be read, so a caller in log-only mode can still audit it.
func ParseAuthorization(header string) (*Token, *ClaimError) {
	return parseAuthorization(header, false)
}

// parseAuthorization is ParseAuthorization; generic makes it read every
// payload the generic way, for the test that holds the typed way to it.
func parseAuthorization(header string, generic bool) (*Token, *ClaimError) {
	if header == "" {
		return nil, badRequest("Authorization", "the Authorization header is missing: send \"Bearer \" followed by an unsigned JWT")
	}
	raw, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		scheme, _, _ := strings.Cut(header, " ")
		return nil, badRequest("Authorization", "the Authorization header must start with \"Bearer \" (that case, one space), got %q", truncate(scheme, 40))
	}
	// The base64 decoder would skip line breaks, so they are refused here,
	// with spaces, before golang-jwt sees the token. strings.IndexByte, four
	// times, is much faster on a long token than strings.ContainsAny.
	if strings.IndexByte(raw, ' ') >= 0 || strings.IndexByte(raw, '\t') >= 0 || strings.IndexByte(raw, '\r') >= 0 || strings.IndexByte(raw, '\n') >= 0 {
		return nil, badRequest("Authorization", "the JWT must follow \"Bearer \" directly and contain no spaces or line breaks")
	}
	if dots := strings.Count(raw, "."); dots != 2 {
		return nil, badRequest("Authorization", "the bearer token must be a JWT of three dot-separated parts (header.payload.), got %d part(s)", dots+1)
	}
	p := newPayload()
	p.generic = generic
	jt, err := jwtParser.ParseWithClaims(raw, p, allowNone)
	if err != nil {
		return nil, envelopeError(raw, err)
	}
	if cerr := checkJOSEHeader(jt.Header); cerr != nil {
		return nil, cerr
	}
	// A payload read typed (jwt_typed.go) is well formed: the strict
	// decoder refused duplicates, bytes that are not UTF-8 and anything
	// but an object.
	if p.typed == nil {
		if cerr := p.wellFormed(raw); cerr != nil {
			return nil, cerr
		}
	}
	t := &Token{Raw: raw}
	return t, p.decode(&t.Claims, &t.sent)
}

// envelopeError words what golang-jwt refused. Its errors say which check
// failed but not in which part or how to put it right, so on this error
// path the parts are judged again, in order, to name the defect.
func envelopeError(raw string, err error) *ClaimError {
	head, rest, _ := strings.Cut(raw, ".")
	body, sig, _ := strings.Cut(rest, ".")
	headJSON, cerr := decodePart("header", head)
	if cerr != nil {
		return cerr
	}
	var h map[string]any
	if err := json.Unmarshal(headJSON, &h); err != nil {
		return badRequest("header", "the JWT header must be the JSON object {\"alg\":\"none\",\"typ\":\"JWT\"}: %v", err)
	}
	if cerr := checkJOSEHeader(h); cerr != nil {
		return cerr
	}
	if _, cerr := decodePart("payload", body); cerr != nil {
		return cerr
	}
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return badRequest("payload", "the JWT payload must be one JSON object: %v", syntax)
	}
	var kind *json.UnmarshalTypeError
	if errors.As(err, &kind) {
		if strings.HasPrefix(kind.Value, "number ") {
			// A number inside a resource claim, too large for the float64
			// that encoding/json decodes it into.
			return badRequest("payload", "the JWT payload holds a number too large for a 64-bit float: %s", truncate(strings.TrimPrefix(kind.Value, "number "), 40))
		}
		return badRequest("payload", "the JWT payload must be one JSON object, got a JSON %s", kind.Value)
	}
	if sig != "" {
		return badRequest("signature", "GP Connect tokens are unsigned: the token must end with \".\" and carry no signature, got %d signature characters", len(sig))
	}
	return badRequest("Authorization", "the bearer token is not a usable JWT: %v", err)
}

// decodePart base64url-decodes one JWT part as golang-jwt does, naming the
// defect precisely. The part holds no space or line break
// (ParseAuthorization refused those), so a part that decodes has no "=",
// "+" or "/" either: those are looked for only to word a failure.
func decodePart(name, part string) ([]byte, *ClaimError) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(part)
	if err == nil {
		return b, nil
	}
	if strings.IndexByte(part, '=') >= 0 {
		return nil, badRequest(name, "the JWT %s has base64 padding (=): encode it as base64url without padding", name)
	}
	if strings.ContainsAny(part, "+/") {
		return nil, badRequest(name, "the JWT %s uses standard base64 (+ or /): encode it as base64url (- and _) without padding", name)
	}
	return nil, badRequest(name, "the JWT %s is not base64url: %v", name, err)
}

// checkJOSEHeader requires exactly the members alg=none and typ=JWT.
// golang-jwt has checked alg already when the token parsed; typ and
// extra members are GP Connect's rule.
func checkJOSEHeader(h map[string]any) *ClaimError {
	if name, ok := firstMember(h, func(n string) bool { return n != "alg" && n != "typ" }); ok {
		return badRequest("header", "the JWT header must hold only alg and typ ({\"alg\":\"none\",\"typ\":\"JWT\"}); remove %q", truncate(name, 40))
	}
	for _, want := range [...][2]string{{"alg", "none"}, {"typ", "JWT"}} {
		v, ok := h[want[0]]
		if !ok {
			return badRequest("header", "the JWT header lacks %q: it must be {\"alg\":\"none\",\"typ\":\"JWT\"}", want[0])
		}
		if s, _ := v.(string); s != want[1] {
			return badRequest("header", "the JWT header %s must be %q, got %s", want[0], want[1], truncate(jsonText(v), 40))
		}
	}
	return nil
}

// payload is the claims set as golang-jwt decodes it: each claim GP Connect
// defines, as sent. encoding/json alone would hide what the rules must name:
// it keeps the last of a claim sent twice, replaces bytes that are not
// UTF-8, and takes null for "nothing" and a value of another JSON type for
// an error about Go types. So the plain claims are sentClaims, which
// record all that, and the resource claims are decoded as any, which keeps
// their member names exactly as sent (encoding/json matches struct fields
// regardless of case) for the FHIR rules of jwt_fhir.go. A resource claim
// sent twice is taken as its last, as RFC 7519 §4 allows: telling would
// take a second decoding of each resource claim, nearly doubling the cost.
// golang-jwt validates no claims (WithoutClaimsValidation), so the
// jwt.Claims methods below are never called. Most tokens take a faster
// way, read typed (jwt_typed.go); this is the way for all the others.
type sentPayload struct {
	Issuer           sentClaim `json:"iss"`
	Subject          sentClaim `json:"sub"`
	Audience         sentClaim `json:"aud"`
	IssuedAt         sentClaim `json:"iat"`
	ExpiresAt        sentClaim `json:"exp"`
	ReasonForRequest sentClaim `json:"reason_for_request"`
	RequestedScope   sentClaim `json:"requested_scope"`

	RequestingDevice       any `json:"requesting_device"`
	RequestingOrganization any `json:"requesting_organization"`
	RequestingPractitioner any `json:"requesting_practitioner"`
	RequestedRecord        any `json:"requested_record"`
}

// notSent marks a resource claim the payload did not carry: encoding/json
// replaces it with the value sent, or with nil for null.
type notSent struct{}

func newPayload() *payload {
	return &payload{sentPayload: sentPayload{
		RequestingDevice:       notSent{},
		RequestingOrganization: notSent{},
		RequestingPractitioner: notSent{},
		RequestedRecord:        notSent{},
	}}
}

func (*payload) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (*payload) GetIssuedAt() (*jwt.NumericDate, error)       { return nil, nil }
func (*payload) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (*payload) GetIssuer() (string, error)                   { return "", nil }
func (*payload) GetSubject() (string, error)                  { return "", nil }
func (*payload) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

// sentClaim is one plain claim as sent: how many times, its JSON kind (the
// value's first byte: '"', '{', '[', 'n', 't', 'f', or a number's), and a
// string's value or a number's literal.
type sentClaim struct {
	times int
	kind  byte
	text  string
}

// UnmarshalJSON records the claim. encoding/json calls it once for each
// member whose name matches the claim's (regardless of case), with b a
// complete JSON value.
func (c *sentClaim) UnmarshalJSON(b []byte) error {
	c.times++
	c.kind, c.text = b[0], ""
	switch b[0] {
	case '"':
		if bytes.IndexByte(b, '\\') < 0 {
			c.text = string(b[1 : len(b)-1])
			return nil
		}
		return json.Unmarshal(b, &c.text)
	case '{', '[', 'n', 't', 'f':
		return nil
	}
	c.text = string(b)
	return nil
}

// wellFormed refuses what encoding/json let through but a strict JSON
// reader refuses: a claim sent twice, and bytes that are not UTF-8 (which
// encoding/json replaces); and it words a payload that is not an object at
// all, such as null, which encoding/json decodes as nothing. It decodes the
// payload a second time to see its bytes, which costs far less than
// decoding its JSON.
func (p *payload) wellFormed(raw string) *ClaimError {
	for _, c := range [...]struct {
		name string
		v    *sentClaim
	}{
		{ClaimIssuer, &p.Issuer}, {ClaimSubject, &p.Subject}, {ClaimAudience, &p.Audience},
		{ClaimIssuedAt, &p.IssuedAt}, {ClaimExpiresAt, &p.ExpiresAt},
		{ClaimReasonForRequest, &p.ReasonForRequest}, {ClaimRequestedScope, &p.RequestedScope},
	} {
		if c.v.times > 1 {
			return badRequest("payload", "the JWT payload sends the %s claim %d times (names that differ only in case count too): send each claim once", c.name, c.v.times)
		}
	}
	_, rest, _ := strings.Cut(raw, ".")
	body, _, _ := strings.Cut(rest, ".")
	b, err := jwtParser.DecodeSegment(body)
	if err != nil { // golang-jwt decoded it already
		return badRequest("payload", "the JWT payload is not base64url: %v", err)
	}
	if !utf8.Valid(b) {
		return badRequest("payload", "the JWT payload must be UTF-8 JSON: it holds bytes that are not UTF-8")
	}
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 {
		return badRequest("payload", "the JWT payload must be one JSON object, got nothing")
	} else if t[0] != '{' {
		return badRequest("payload", "the JWT payload must be one JSON object, got %s", kindName(t[0]))
	}
	return nil
}

// decode fills c from the payload and returns the first problem, in claim
// order; it carries on past problems, so c holds all that could be read.
// The FHIR defects of the resource claims go to d, for Check.
func (p *payload) decode(c *Claims, d *resourceDefects) *ClaimError {
	var first *ClaimError
	keep := func(e *ClaimError) {
		if first == nil && e != nil {
			first = e
		}
	}
	keep(stringClaim(ClaimIssuer, &p.Issuer, &c.Issuer, "the consumer system's URL"))
	keep(stringClaim(ClaimSubject, &p.Subject, &c.Subject, "the user's ID, equal to requesting_practitioner.id"))
	keep(stringClaim(ClaimAudience, &p.Audience, &c.Audience, "the provider's service root URL"))
	keep(intClaim(ClaimIssuedAt, &p.IssuedAt, &c.IssuedAt))
	keep(intClaim(ClaimExpiresAt, &p.ExpiresAt, &c.ExpiresAt))
	keep(stringClaim(ClaimReasonForRequest, &p.ReasonForRequest, &c.ReasonForRequest, `"directcare"`))
	keep(stringClaim(ClaimRequestedScope, &p.RequestedScope, &c.RequestedScope, "the interaction's scope, e.g. "+ScopePatientRead))
	if p.typed != nil {
		keep(p.typed.decode(c, d))
		return first
	}
	keep(objectClaim(ClaimRequestingDevice, p.RequestingDevice, "Device"))
	keep(objectClaim(ClaimRequestingOrganization, p.RequestingOrganization, "Organization"))
	keep(objectClaim(ClaimRequestingPractitioner, p.RequestingPractitioner, "Practitioner"))
	dev, _ := p.RequestingDevice.(map[string]any)
	org, _ := p.RequestingOrganization.(map[string]any)
	pr, _ := p.RequestingPractitioner.(map[string]any)
	c.RequestingDevice, d.device = decodeDevice(dev)
	c.RequestingOrganization, d.organization = decodeOrganization(org)
	c.RequestingPractitioner, d.practitioner = decodePractitioner(pr)
	if _, absent := p.RequestedRecord.(notSent); !absent {
		rec, _ := p.RequestedRecord.(map[string]any)
		c.RequestedRecord = decodeRequestedRecord(rec)
	}
	return first
}

// stringClaim, intClaim and objectClaim require a claim to be sent, not
// null, and of its JSON type; stringClaim and intClaim also store its
// value. want says what the claim must hold, for the reason.
func stringClaim(name string, v *sentClaim, dst *string, want string) *ClaimError {
	switch {
	case v.times == 0:
		return badRequest(name, "the %s claim is missing: it must hold %s", name, want)
	case v.kind == 'n':
		return badRequest(name, "the %s claim is null: it must hold %s", name, want)
	case v.kind != '"':
		return badRequest(name, "the %s claim must be a JSON string (%s), got %s", name, want, kindName(v.kind))
	}
	if *dst = v.text; v.text == "" {
		return badRequest(name, "the %s claim is empty: it must hold %s", name, want)
	}
	return nil
}

func intClaim(name string, v *sentClaim, dst *int64) *ClaimError {
	switch {
	case v.times == 0:
		return badRequest(name, "the %s claim is missing: it must hold integer seconds since 1970 (exp = iat + 300)", name)
	case v.kind == 'n':
		return badRequest(name, "the %s claim is null: it must hold integer seconds since 1970", name)
	case v.kind != '-' && (v.kind < '0' || v.kind > '9'):
		return badRequest(name, "the %s claim must be a JSON number of whole seconds, got %s", name, kindName(v.kind))
	case strings.ContainsAny(v.text, ".eE"):
		return badRequest(name, "the %s claim must be whole seconds with no fraction or exponent, got %s", name, truncate(v.text, 40))
	}
	n, err := strconv.ParseInt(v.text, 10, 64)
	if err != nil {
		return badRequest(name, "the %s claim is not a usable integer: %v", name, err)
	}
	*dst = n
	return nil
}

func objectClaim(name string, v any, resourceType string) *ClaimError {
	switch v.(type) {
	case notSent:
		return badRequest(name, "the %s claim is missing: it must hold a FHIR STU3 %s resource", name, resourceType)
	case nil:
		return badRequest(name, "the %s claim is null: it must hold a FHIR STU3 %s resource", name, resourceType)
	case map[string]any:
		return nil
	}
	return badRequest(name, "the %s claim must be a JSON object (a FHIR STU3 %s resource), got %s", name, resourceType, kindOf(v))
}

// kindName names the JSON type of a value from its first byte, for
// messages.
func kindName(first byte) string {
	switch first {
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

// jsonText renders a decoded JSON value back as JSON, for messages.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
