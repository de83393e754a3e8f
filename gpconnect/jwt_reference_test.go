package gpconnect

// This file keeps the JWT decoder as it was before the single-pass
// scanner replaced it (commit 9cb31fd), renamed with a ref prefix, as the
// oracle of the differential fuzz targets in jwt_reference_fuzz_test.go:
// the new decoder must give the same token, the same claims and the same
// error, byte for byte, for every input. It built a map per JSON object and
// ran json.Valid before each split; do not tune it.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// refParseAuthorization decodes an Authorization header value strictly as
// GP Connect 1.2.x requires: "Bearer " and an unsigned JWT whose header is
// exactly {"alg":"none","typ":"JWT"}, base64url without padding, an empty
// signature, and a payload holding every mandatory claim with the right JSON
// type. It does not judge claim values: that is Check. When the payload
// decodes as a JSON object the token is returned even with an error, holding
// what could be read, so a caller in log-only mode can still audit it.
func refParseAuthorization(header string) (*Token, *ClaimError) {
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
	headerJSON, cerr := refDecodePart("header", parts[0])
	if cerr != nil {
		return nil, cerr
	}
	if cerr := refCheckJOSEHeader(headerJSON); cerr != nil {
		return nil, cerr
	}
	if parts[2] != "" {
		return nil, badRequest("signature", "GP Connect tokens are unsigned: the token must end with \".\" and carry no signature, got %d signature characters", len(parts[2]))
	}
	payload, cerr := refDecodePart("payload", parts[1])
	if cerr != nil {
		return nil, cerr
	}
	refMembers, _, err := refObjectMembers(payload)
	if err != nil {
		return nil, badRequest("payload", "the JWT payload must be one JSON object: %v", err)
	}
	t := &Token{Raw: raw, decoded: &decodedResources{}}
	return t, refDecodeClaims(refMembers, &t.Claims, t.decoded)
}

// refDecodePart base64url-decodes one JWT part, naming the defect precisely.
func refDecodePart(name, part string) ([]byte, *ClaimError) {
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

// refCheckJOSEHeader requires exactly the members alg=none and typ=JWT.
func refCheckJOSEHeader(b []byte) *ClaimError {
	refMembers, names, err := refObjectMembers(b)
	if err != nil {
		return badRequest("header", "the JWT header must be the JSON object {\"alg\":\"none\",\"typ\":\"JWT\"}: %v", err)
	}
	for _, n := range names {
		if n != "alg" && n != "typ" {
			return badRequest("header", "the JWT header must hold only alg and typ ({\"alg\":\"none\",\"typ\":\"JWT\"}); remove %q", n)
		}
	}
	for _, want := range [][2]string{{"alg", "none"}, {"typ", "JWT"}} {
		rawv, ok := refMembers[want[0]]
		if !ok {
			return badRequest("header", "the JWT header lacks %q: it must be {\"alg\":\"none\",\"typ\":\"JWT\"}", want[0])
		}
		var v string
		if refUnmarshalString(rawv, &v) != nil || v != want[1] {
			return badRequest("header", "the JWT header %s must be %q, got %s", want[0], want[1], truncate(string(rawv), 40))
		}
	}
	return nil
}

// refDecodeClaims fills c from the payload members and returns the first
// problem, in claim order. It carries on past problems so c holds all that
// could be read.
func refDecodeClaims(m map[string]json.RawMessage, c *Claims, d *decodedResources) *ClaimError {
	var first *ClaimError
	keep := func(e *ClaimError) {
		if first == nil && e != nil {
			first = e
		}
	}
	keep(refStringClaim(m, ClaimIssuer, &c.Issuer, "the consumer system's URL"))
	keep(refStringClaim(m, ClaimSubject, &c.Subject, "the user's ID, equal to requesting_practitioner.id"))
	keep(refStringClaim(m, ClaimAudience, &c.Audience, "the provider's service root URL"))
	keep(refIntClaim(m, ClaimIssuedAt, &c.IssuedAt))
	keep(refIntClaim(m, ClaimExpiresAt, &c.ExpiresAt))
	keep(refStringClaim(m, ClaimReasonForRequest, &c.ReasonForRequest, `"directcare"`))
	keep(refStringClaim(m, ClaimRequestedScope, &c.RequestedScope, "the interaction's scope, e.g. "+ScopePatientRead))
	keep(refObjectClaim(m, ClaimRequestingDevice, &c.RequestingDeviceJSON, "Device"))
	keep(refObjectClaim(m, ClaimRequestingOrganization, &c.RequestingOrganizationJSON, "Organization"))
	keep(refObjectClaim(m, ClaimRequestingPractitioner, &c.RequestingPractitionerJSON, "Practitioner"))
	if rr, ok := m[ClaimRequestedRecord]; ok {
		c.RequestedRecordJSON = rr
	}
	d.dev, d.devErr = refDecodeDevice(c.RequestingDeviceJSON)
	d.org, d.orgErr = refDecodeOrganization(c.RequestingOrganizationJSON)
	d.pr, d.prErr = refDecodePractitioner(c.RequestingPractitionerJSON)
	d.devRaw, d.orgRaw, d.prRaw = c.RequestingDeviceJSON, c.RequestingOrganizationJSON, c.RequestingPractitionerJSON
	c.RequestingDevice, c.RequestingOrganization, c.RequestingPractitioner = d.dev, d.org, d.pr
	return first
}

func refStringClaim(m map[string]json.RawMessage, name string, dst *string, want string) *ClaimError {
	raw, ok := m[name]
	if !ok {
		return badRequest(name, "the %s claim is missing: it must hold %s", name, want)
	}
	if refIsNull(raw) {
		return badRequest(name, "the %s claim is null: it must hold %s", name, want)
	}
	if raw[0] != '"' {
		return badRequest(name, "the %s claim must be a JSON string (%s), got %s", name, want, jsonKind(raw))
	}
	if err := refUnmarshalString(raw, dst); err != nil {
		return badRequest(name, "the %s claim is not a valid JSON string: %v", name, err)
	}
	if *dst == "" {
		return badRequest(name, "the %s claim is empty: it must hold %s", name, want)
	}
	return nil
}

func refIntClaim(m map[string]json.RawMessage, name string, dst *int64) *ClaimError {
	raw, ok := m[name]
	if !ok {
		return badRequest(name, "the %s claim is missing: it must hold integer seconds since 1970 (exp = iat + 300)", name)
	}
	if refIsNull(raw) {
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

func refObjectClaim(m map[string]json.RawMessage, name string, dst *json.RawMessage, resourceType string) *ClaimError {
	raw, ok := m[name]
	if !ok {
		return badRequest(name, "the %s claim is missing: it must hold a FHIR STU3 %s resource", name, resourceType)
	}
	if refIsNull(raw) {
		return badRequest(name, "the %s claim is null: it must hold a FHIR STU3 %s resource", name, resourceType)
	}
	if raw[0] != '{' {
		return badRequest(name, "the %s claim must be a JSON object (a FHIR STU3 %s resource), got %s", name, resourceType, jsonKind(raw))
	}
	*dst = raw
	return nil
}

// The elements FHIR STU3 defines on every DomainResource and on the three
// resource types a token carries.
var (
	refDomainResourceElements = []string{"resourceType", "id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension"}
	refDeviceElements         = []string{"identifier", "udi", "status", "type", "lotNumber", "manufacturer", "manufactureDate", "expirationDate", "model", "version", "patient", "owner", "contact", "location", "url", "note", "safety"}
	refOrganizationElements   = []string{"identifier", "active", "type", "name", "alias", "telecom", "address", "partOf", "contact", "endpoint"}
	refPractitionerElements   = []string{"identifier", "active", "name", "telecom", "address", "gender", "birthDate", "photo", "qualification", "communication"}
	refIdentifierElements     = []string{"id", "extension", "use", "type", "system", "value", "period", "assigner"}
	refHumanNameElements      = []string{"id", "extension", "use", "text", "family", "given", "prefix", "suffix", "period"}
)

// refResource checks that raw is a FHIR STU3 resource of type want defining only
// known elements, none null, and returns its members. Failures are 422.
func refResource(claim string, raw json.RawMessage, want string, elements []string) (map[string]json.RawMessage, *ClaimError) {
	if len(raw) == 0 {
		return nil, badRequest(claim, "the %s claim is missing: it must hold a FHIR STU3 %s resource", claim, want)
	}
	m, names, err := refObjectMembers(raw)
	if err != nil {
		return nil, invalidResource(claim, "%s is not a valid JSON object: %v", claim, err)
	}
	rt, ok := m["resourceType"]
	var got string
	if !ok || refUnmarshalString(rt, &got) != nil {
		return m, invalidResource(claim, "%s has no resourceType: it must be a FHIR STU3 %s with \"resourceType\": %q", claim, want, want)
	}
	if got != want {
		return m, invalidResource(claim, "%s must be a FHIR %s resource, got resourceType %q", claim, want, truncate(got, 40))
	}
	for _, n := range names {
		base := strings.TrimPrefix(n, "_")
		if (!slices.Contains(refDomainResourceElements, base) && !slices.Contains(elements, base)) || n == "_resourceType" {
			return m, invalidResource(claim, "%s has %q, which FHIR STU3 %s does not define; remove it", claim, truncate(n, 40), want)
		}
		if refIsNull(m[n]) {
			return m, invalidResource(claim, "%s.%s is null; FHIR JSON leaves absent elements out instead", claim, n)
		}
	}
	if id, ok := m["id"]; ok {
		var s string
		if refUnmarshalString(id, &s) != nil || !IsLogicalID(s) {
			return m, invalidResource(claim, "%s.id must be a FHIR id (1-64 of A-Z a-z 0-9 - .), got %s", claim, truncate(string(id), 40))
		}
	}
	return m, nil
}

// refElementString decodes a string element; a non-string is 422.
func refElementString(claim string, m map[string]json.RawMessage, name string, dst *string) *ClaimError {
	raw, ok := m[name]
	if !ok {
		return nil
	}
	if len(raw) == 0 || raw[0] != '"' || refUnmarshalString(raw, dst) != nil {
		return invalidResource(claim, "%s.%s must be a JSON string, got %s", claim, name, jsonKind(raw))
	}
	return nil
}

// refElementStringAt is elementString for an element inside an array item;
// where names the item and is called only to word an error, so a valid
// token formats no paths.
func refElementStringAt(claim string, where func() string, m map[string]json.RawMessage, name string, dst *string) *ClaimError {
	raw, ok := m[name]
	if !ok {
		return nil
	}
	if len(raw) == 0 || raw[0] != '"' || refUnmarshalString(raw, dst) != nil {
		return invalidResource(claim, "%s.%s must be a JSON string, got %s", where(), name, jsonKind(raw))
	}
	return nil
}

func refIdentifiers(claim string, m map[string]json.RawMessage) ([]Identifier, *ClaimError) {
	raw, ok := m["identifier"]
	if !ok {
		return nil, nil
	}
	var items []json.RawMessage
	if len(raw) == 0 || raw[0] != '[' || refSplitArray(raw, &items) != nil {
		return nil, invalidResource(claim, "%s.identifier must be a JSON array of Identifier objects, got %s", claim, jsonKind(raw))
	}
	var out []Identifier
	for i, it := range items {
		path := func() string { return fmt.Sprintf("%s.identifier[%d]", claim, i) }
		im, names, err := refMembers(it) // json.Unmarshal validated the items
		if err != nil {
			return out, invalidResource(claim, "%s must be an Identifier object: %v", path(), err)
		}
		if n, bad := refUnknownMember(names, refIdentifierElements); bad {
			return out, invalidResource(claim, "%s has %q, which a FHIR Identifier does not define; remove it", path(), truncate(n, 40))
		}
		var id Identifier
		if cerr := refElementStringAt(claim, path, im, "system", &id.System); cerr != nil {
			return out, cerr
		}
		if cerr := refElementStringAt(claim, path, im, "value", &id.Value); cerr != nil {
			return out, cerr
		}
		out = append(out, id)
	}
	return out, nil
}

func refHumanNames(claim string, m map[string]json.RawMessage) ([]HumanName, *ClaimError) {
	raw, ok := m["name"]
	if !ok {
		return nil, nil
	}
	var items []json.RawMessage
	if len(raw) == 0 || raw[0] != '[' || refSplitArray(raw, &items) != nil {
		return nil, invalidResource(claim, "%s.name must be a JSON array of HumanName objects, got %s", claim, jsonKind(raw))
	}
	var out []HumanName
	for i, it := range items {
		path := func() string { return fmt.Sprintf("%s.name[%d]", claim, i) }
		nm, names, err := refMembers(it) // json.Unmarshal validated the items
		if err != nil {
			return out, invalidResource(claim, "%s must be a HumanName object: %v", path(), err)
		}
		if n, bad := refUnknownMember(names, refHumanNameElements); bad {
			return out, invalidResource(claim, "%s has %q, which a FHIR HumanName does not define; remove it", path(), truncate(n, 40))
		}
		var hn HumanName
		if cerr := refElementStringAt(claim, path, nm, "family", &hn.Family); cerr != nil {
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

func refUnknownMember(names, known []string) (string, bool) {
	for _, n := range names {
		if !slices.Contains(known, strings.TrimPrefix(n, "_")) {
			return n, true
		}
	}
	return "", false
}

func refDecodeDevice(raw json.RawMessage) (Device, *ClaimError) {
	const n = ClaimRequestingDevice
	var d Device
	m, cerr := refResource(n, raw, "Device", refDeviceElements)
	if m != nil {
		_ = refUnmarshalString(m["resourceType"], &d.ResourceType)
	}
	if cerr != nil {
		return d, cerr
	}
	var err *ClaimError
	if d.Identifiers, err = refIdentifiers(n, m); err != nil {
		return d, err
	}
	if err := refElementString(n, m, "model", &d.Model); err != nil {
		return d, err
	}
	if err := refElementString(n, m, "version", &d.Version); err != nil {
		return d, err
	}
	return d, nil
}

func refDecodeOrganization(raw json.RawMessage) (Organization, *ClaimError) {
	const n = ClaimRequestingOrganization
	var o Organization
	m, cerr := refResource(n, raw, "Organization", refOrganizationElements)
	if m != nil {
		_ = refUnmarshalString(m["resourceType"], &o.ResourceType)
	}
	if cerr != nil {
		return o, cerr
	}
	var err *ClaimError
	if o.Identifiers, err = refIdentifiers(n, m); err != nil {
		return o, err
	}
	if err := refElementString(n, m, "id", &o.ID); err != nil {
		return o, err
	}
	if err := refElementString(n, m, "name", &o.Name); err != nil {
		return o, err
	}
	return o, nil
}

func refDecodePractitioner(raw json.RawMessage) (Practitioner, *ClaimError) {
	const n = ClaimRequestingPractitioner
	var p Practitioner
	m, cerr := refResource(n, raw, "Practitioner", refPractitionerElements)
	if m != nil {
		_ = refUnmarshalString(m["resourceType"], &p.ResourceType)
	}
	if cerr != nil {
		return p, cerr
	}
	if err := refElementString(n, m, "id", &p.ID); err != nil {
		return p, err
	}
	var err *ClaimError
	if p.Identifiers, err = refIdentifiers(n, m); err != nil {
		return p, err
	}
	if p.Names, err = refHumanNames(n, m); err != nil {
		return p, err
	}
	return p, nil
}

// refObjectMembers decodes data as exactly one JSON object, refusing invalid
// UTF-8, duplicate member names and anything after the object. It returns
// the members and their names in document order. The values are slices of
// data. Once json.Valid has accepted data, a plain scan finds the member
// boundaries: this runs several times per request, and a json.Decoder
// cost most of the JWT check.
func refObjectMembers(data []byte) (map[string]json.RawMessage, []string, error) {
	if !utf8.Valid(data) {
		return nil, nil, fmt.Errorf("not valid UTF-8")
	}
	if !json.Valid(data) {
		return nil, nil, fmt.Errorf("not valid JSON")
	}
	return refMembers(data)
}

// refMembers splits a JSON object that is already known to be valid (a value
// sliced from a validated document, or an item json.Unmarshal accepted)
// into its members. It never indexes past data, so even invalid input
// gives an error, not a panic.
func refMembers(data []byte) (map[string]json.RawMessage, []string, error) {
	at := func(i int) byte {
		if i < len(data) {
			return data[i]
		}
		return 0
	}
	i := refSkipSpace(data, 0)
	if at(i) != '{' {
		return nil, nil, fmt.Errorf("a JSON %s, not an object", jsonKind(bytes.TrimSpace(data)))
	}
	m := make(map[string]json.RawMessage, 8)
	names := make([]string, 0, 8)
	if i = refSkipSpace(data, i+1); at(i) == '}' {
		return m, names, nil
	}
	for {
		if at(i) != '"' {
			return nil, nil, fmt.Errorf("not valid JSON")
		}
		end := refStringEnd(data, i)
		name, err := refUnquoteName(data[i:end])
		if err != nil {
			return nil, nil, fmt.Errorf("reading member name: %w", err)
		}
		if i = refSkipSpace(data, end); at(i) != ':' {
			return nil, nil, fmt.Errorf("not valid JSON")
		}
		i = refSkipSpace(data, i+1)
		if i >= len(data) {
			return nil, nil, fmt.Errorf("not valid JSON")
		}
		vend := refValueEnd(data, i)
		if _, dup := m[name]; dup {
			return nil, nil, fmt.Errorf("member %q appears twice", truncate(name, 40))
		}
		m[name] = json.RawMessage(data[i:vend])
		names = append(names, name)
		switch i = refSkipSpace(data, vend); at(i) {
		case '}':
			return m, names, nil
		case ',':
			i = refSkipSpace(data, i+1)
		default:
			return nil, nil, fmt.Errorf("not valid JSON")
		}
	}
}

func refSkipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// refStringEnd returns the index just past the string that opens at data[i].
func refStringEnd(data []byte, i int) int {
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

// refValueEnd returns the index just past the valid JSON value at data[i].
func refValueEnd(data []byte, i int) int {
	switch data[i] {
	case '"':
		return refStringEnd(data, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				j = refStringEnd(data, j) - 1
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

// refUnquoteName turns a quoted member name into its text; most names have no
// escapes and need no decoding.
func refUnquoteName(quoted []byte) (string, error) {
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

func refIsNull(raw json.RawMessage) bool { return string(raw) == "null" }

// refUnmarshalString decodes a JSON string value. Most claim strings have no
// escapes and are taken as they stand; anything else goes to encoding/json,
// which also gives the error for a value that is not a string.
func refUnmarshalString(raw []byte, dst *string) error {
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

// refSplitArray splits a JSON array that is part of an already validated
// document into its items, as json.Unmarshal into []json.RawMessage would;
// anything it does not expect goes to encoding/json, which judges it.
func refSplitArray(raw []byte, dst *[]json.RawMessage) error {
	at := func(i int) byte {
		if i < len(raw) {
			return raw[i]
		}
		return 0
	}
	i := refSkipSpace(raw, 0)
	if at(i) != '[' {
		return json.Unmarshal(raw, dst)
	}
	items := make([]json.RawMessage, 0, 4)
	if i = refSkipSpace(raw, i+1); at(i) == ']' {
		if refSkipSpace(raw, i+1) != len(raw) {
			return json.Unmarshal(raw, dst)
		}
		*dst = items
		return nil
	}
	for i < len(raw) {
		end := refValueEnd(raw, i)
		items = append(items, json.RawMessage(raw[i:end]))
		switch i = refSkipSpace(raw, end); at(i) {
		case ']':
			if refSkipSpace(raw, i+1) != len(raw) {
				return json.Unmarshal(raw, dst)
			}
			*dst = items
			return nil
		case ',':
			i = refSkipSpace(raw, i+1)
		default:
			return json.Unmarshal(raw, dst)
		}
	}
	return json.Unmarshal(raw, dst)
}
