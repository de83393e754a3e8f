package gpconnect

import (
	"encoding/json"
	"fmt"
	"strings"

	"sspemu/fhir"
)

// The resource claims are FHIR STU3 JSON, whose rules encoding/json's
// struct decoding does not apply: member names are exact (encoding/json
// matches them regardless of case), an element STU3 does not define is an
// error (encoding/json skips it) and null is never a value (encoding/json
// takes it for the zero value). So each resource claim arrives here as the
// members encoding/json decodes into any, names exactly as sent, and the
// typed resource is built from them, naming the first defect. Where several
// members are wrong, the alphabetically first is named, so a token always
// gets the same reason. One defect goes unseen: a member sent twice, inside
// a resource claim or as the resource claim itself; encoding/json keeps the
// last, as RFC 7519 §4 allows.
//
// A defect returns the resource with what was decoded before it, so an
// audit in log-only mode still sees it.

func decodeDevice(obj map[string]any) (Device, *ClaimError) {
	const n = ClaimRequestingDevice
	var d Device
	var cerr *ClaimError
	if d.ResourceType, d.ID, d.Identifiers, cerr = head(n, obj, "Device", deviceElement); cerr != nil {
		return d, cerr
	}
	if d.Model, cerr = stringElement(n, at(n), obj, "model"); cerr != nil {
		return d, cerr
	}
	d.Version, cerr = stringElement(n, at(n), obj, "version")
	return d, cerr
}

func decodeOrganization(obj map[string]any) (Organization, *ClaimError) {
	const n = ClaimRequestingOrganization
	var o Organization
	var cerr *ClaimError
	if o.ResourceType, o.ID, o.Identifiers, cerr = head(n, obj, "Organization", stu3("Organization")); cerr != nil {
		return o, cerr
	}
	o.Name, cerr = stringElement(n, at(n), obj, "name")
	return o, cerr
}

func decodePractitioner(obj map[string]any) (Practitioner, *ClaimError) {
	const n = ClaimRequestingPractitioner
	var p Practitioner
	var cerr *ClaimError
	if p.ResourceType, p.ID, p.Identifiers, cerr = head(n, obj, "Practitioner", stu3("Practitioner")); cerr != nil {
		return p, cerr
	}
	p.Names, cerr = humanNames(n, obj)
	return p, cerr
}

// head decodes what the three resource claims share: the resource check
// (resource), then id and identifier. What it decoded before a defect is
// returned with it.
func head(claim string, obj map[string]any, want string, element func(string) bool) (rt, id string, ids []fhir.Identifier, cerr *ClaimError) {
	if rt, cerr = resource(claim, obj, want, element); cerr != nil {
		return rt, "", nil, cerr
	}
	if id, cerr = stringElement(claim, at(claim), obj, "id"); cerr != nil {
		return rt, id, nil, cerr
	}
	ids, cerr = identifiers(claim, obj)
	return rt, id, ids, cerr
}

// decodeRequestedRecord keeps what an audit can show of a requested_record
// claim; the claim is refused whatever it holds, so its defects are not
// looked for.
func decodeRequestedRecord(obj map[string]any) *RequestedRecord {
	r := &RequestedRecord{}
	r.ResourceType, _ = obj["resourceType"].(string)
	r.Identifiers, _ = identifiers(ClaimRequestedRecord, obj)
	return r
}

// resource checks that obj is a FHIR STU3 resource of type want defining
// only elements for which element holds (those of DomainResource too), none
// null, and returns its resourceType when that is a string. A nil obj is a claim that was not an object: ParseAuthorization
// has refused it already (400). Everything else is 422.
func resource(claim string, obj map[string]any, want string, element func(string) bool) (string, *ClaimError) {
	if obj == nil {
		return "", badRequest(claim, "the %s claim is missing: it must hold a FHIR STU3 %s resource", claim, want)
	}
	got, ok := obj["resourceType"].(string)
	if !ok {
		return "", invalidResource(claim, "%s has no resourceType: it must be a FHIR STU3 %s with \"resourceType\": %q", claim, want, want)
	}
	if got != want {
		return got, invalidResource(claim, "%s must be a FHIR %s resource, got resourceType %q", claim, want, truncate(got, 40))
	}
	// One walk over the members finds both kinds of defect.
	var unknown, null string
	var anyUnknown, anyNull bool
	for name, v := range obj {
		base := strings.TrimPrefix(name, "_")
		if (base != "resourceType" && !element(base)) || name == "_resourceType" {
			if !anyUnknown || name < unknown {
				unknown, anyUnknown = name, true
			}
		} else if v == nil && (!anyNull || name < null) {
			null, anyNull = name, true
		}
	}
	if anyUnknown {
		return got, invalidResource(claim, "%s has %q, which FHIR STU3 %s does not define; remove it", claim, truncate(unknown, 40), want)
	}
	if anyNull {
		return got, invalidResource(claim, "%s.%s is null; FHIR JSON leaves absent elements out instead", claim, truncate(null, 40))
	}
	return got, nil
}

// firstMember returns the alphabetically first name of obj for which bad
// holds.
func firstMember(obj map[string]any, bad func(string) bool) (string, bool) {
	first, found := "", false
	for name := range obj {
		if bad(name) && (!found || name < first) {
			first, found = name, true
		}
	}
	return first, found
}

// stringElement returns the string element name of obj, "" when it is
// absent or null; any other JSON type is 422. where names obj in messages.
func stringElement(claim string, where place, obj map[string]any, name string) (string, *ClaimError) {
	switch v := obj[name].(type) {
	case string:
		return v, nil
	case nil:
		return "", nil
	default:
		return "", invalidResource(claim, "%s.%s must be a JSON string, got %s", where, name, kindOf(v))
	}
}

// place is where in a claim an object lies, for messages: the claim
// itself, or an item of one of its arrays. It is formatted only to word an
// error, so a valid token formats no paths.
type place struct {
	claim, array string
	item         int
}

func at(claim string) place { return place{claim: claim} }

func (p place) String() string {
	if p.array == "" {
		return p.claim
	}
	return fmt.Sprintf("%s.%s[%d]", p.claim, p.array, p.item)
}

// identifiers decodes the identifier element of a resource, with string
// system and value.
func identifiers(claim string, obj map[string]any) ([]fhir.Identifier, *ClaimError) {
	return objects(claim, obj, "identifier", "Identifier", func(path place, m map[string]any) (fhir.Identifier, *ClaimError) {
		var id fhir.Identifier
		var cerr *ClaimError
		if id.System, cerr = stringElement(claim, path, m, "system"); cerr != nil {
			return id, cerr
		}
		id.Value, cerr = stringElement(claim, path, m, "value")
		return id, cerr
	})
}

// humanNames decodes a practitioner's name element: family must be one
// string (STU3, not DSTU2's array), given and prefix arrays of strings.
func humanNames(claim string, obj map[string]any) ([]fhir.HumanName, *ClaimError) {
	return objects(claim, obj, "name", "HumanName", func(path place, m map[string]any) (fhir.HumanName, *ClaimError) {
		var hn fhir.HumanName
		switch family := m["family"].(type) {
		case string:
			hn.Family = family
		case nil:
		default:
			return hn, invalidResource(claim, "%s.family must be one JSON string in STU3 (DSTU2 used an array), got %s", path, kindOf(family))
		}
		var cerr *ClaimError
		if hn.Given, cerr = stringList(claim, path, m, "given"); cerr != nil {
			return hn, cerr
		}
		hn.Prefix, cerr = stringList(claim, path, m, "prefix")
		return hn, cerr
	})
}

// objects decodes the element name of obj, an array of objects of the FHIR
// datatype typ: each item must be an object defining only typ's elements
// (the fhir package's STU3 table says which), and is then built by item.
// The items before a defect are returned with it.
func objects[T any](claim string, obj map[string]any, name, typ string, item func(place, map[string]any) (T, *ClaimError)) ([]T, *ClaimError) {
	v, ok := obj[name]
	if !ok {
		return nil, nil
	}
	items, ok := v.([]any)
	if !ok {
		return nil, invalidResource(claim, "%s.%s must be a JSON array of %s objects, got %s", claim, name, typ, kindOf(v))
	}
	defines := stu3(typ)
	out := make([]T, 0, len(items))
	for i, it := range items {
		path := place{claim, name, i}
		m, ok := it.(map[string]any)
		if !ok {
			return out, invalidResource(claim, "%s must be %s object, got %s", path, withArticle(typ), kindOf(it))
		}
		if member, bad := firstMember(m, unknownTo(defines)); bad {
			return out, invalidResource(claim, "%s has %q, which a FHIR %s does not define; remove it", path, truncate(member, 40), typ)
		}
		t, cerr := item(path, m)
		if cerr != nil {
			return out, cerr
		}
		out = append(out, t)
	}
	return out, nil
}

// withArticle puts "a" or "an" before a type name, for messages.
func withArticle(typ string) string {
	if typ != "" && strings.ContainsRune("AEIOU", rune(typ[0])) {
		return "an " + typ
	}
	return "a " + typ
}

// stringList decodes the element name of obj as an array of strings, a
// null item standing for "".
func stringList(claim string, where place, obj map[string]any, name string) ([]string, *ClaimError) {
	v, ok := obj[name]
	if !ok {
		return nil, nil
	}
	items, ok := v.([]any)
	if !ok {
		return nil, invalidResource(claim, "%s.%s must be a JSON array of strings, got %s", where, name, kindOf(v))
	}
	out := make([]string, len(items))
	for i, item := range items {
		switch s := item.(type) {
		case string:
			out[i] = s
		case nil:
		default:
			return nil, invalidResource(claim, "%s.%s[%d] must be a JSON string, got %s", where, name, i, kindOf(item))
		}
	}
	return out, nil
}

// unknownTo turns a set of element names into a test for names outside
// it, "_" (FHIR's primitive extensions) set aside.
func unknownTo(known func(string) bool) func(string) bool {
	return func(name string) bool { return !known(strings.TrimPrefix(name, "_")) }
}

// kindOf names the JSON type of a value decoded into any, for messages.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	}
	return "an object"
}

// stu3 is the test of element names of the STU3 resource or datatype typ,
// from the fhir package's table of the STU3 definitions, which the codec
// checks every resource against. (A type missing from the table would
// define nothing, refusing every token: every valid-token test would fail.)
func stu3(typ string) func(string) bool {
	t, _ := fhir.TypeOf(typ)
	return t.Defines
}

// deviceElement is the test of a Device's element names (DomainResource's
// and Device's own). Device is not in the fhir package's table, which holds
// what the codec converts (the practices never send or receive a Device),
// so its elements are listed here. It is a switch, not a list, because every
// member of the claim is looked up in it.
func deviceElement(n string) bool {
	switch n {
	case "id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension", // DomainResource
		"identifier", "udi", "status", "type", "lotNumber", "manufacturer", "manufactureDate", "expirationDate", "model",
		"version", "patient", "owner", "contact", "location", "url", "note", "safety":
		return true
	}
	return false
}
