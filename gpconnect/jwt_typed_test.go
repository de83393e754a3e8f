package gpconnect

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestTypedMatchesGeneric holds the typed way of reading a payload to the
// generic one: for tokens near the valid one, each with one change the
// typed way may meet (values the rules refuse, claims missing, wrong JSON
// types, other spellings), both give the same token and the same error,
// and Check judges both alike. FuzzParseAuthorization and FuzzParsePayload
// check the same on every input (checkParse).
func TestTypedMatchesGeneric(t *testing.T) {
	in := mustLookup(t, ReadPatient)
	valid := string(payloadOf(t, "Bearer "+validSpec(t).Encode()))
	edits := map[string]func(m map[string]any){
		"valid":             func(map[string]any) {},
		"iss empty":         func(m map[string]any) { m["iss"] = "" },
		"iss a number":      func(m map[string]any) { m["iss"] = 7 },
		"iat missing":       func(m map[string]any) { delete(m, "iat") },
		"exp a string":      func(m map[string]any) { m["exp"] = "1700000300" },
		"exp fraction":      func(m map[string]any) { m["exp"] = json.Number("1700000300.5") },
		"exp negative zero": func(m map[string]any) { m["exp"] = json.Number("-0") },
		"scope wrong":       func(m map[string]any) { m["requested_scope"] = "patient/*.write" },
		"device missing":    func(m map[string]any) { delete(m, "requesting_device") },
		"all resources missing": func(m map[string]any) {
			delete(m, "requesting_device")
			delete(m, "requesting_organization")
			delete(m, "requesting_practitioner")
		},
		"device a string":          func(m map[string]any) { m["requesting_device"] = "Device" },
		"device of another type":   func(m map[string]any) { obj(m, "requesting_device")["resourceType"] = "Patient" },
		"device without type":      func(m map[string]any) { delete(obj(m, "requesting_device"), "resourceType") },
		"organization no ODS code": func(m map[string]any) { obj(m, "requesting_organization")["identifier"] = []any{} },
		"identifier not objects":   func(m map[string]any) { obj(m, "requesting_organization")["identifier"] = []any{"x"} },
		"identifier value number": func(m map[string]any) {
			arr(obj(m, "requesting_organization"), "identifier")[0].(map[string]any)["value"] = 1
		},
		"practitioner no names":    func(m map[string]any) { obj(m, "requesting_practitioner")["name"] = []any{} },
		"practitioner sub differs": func(m map[string]any) { obj(m, "requesting_practitioner")["id"] = "2" },
		"family an array": func(m map[string]any) {
			arr(obj(m, "requesting_practitioner"), "name")[0].(map[string]any)["family"] = []any{"A"}
		},
		"given empty": func(m map[string]any) {
			arr(obj(m, "requesting_practitioner"), "name")[0].(map[string]any)["given"] = []any{}
		},
		"identifier use": func(m map[string]any) {
			arr(obj(m, "requesting_organization"), "identifier")[0].(map[string]any)["use"] = "official"
		},
		"unknown element":  func(m map[string]any) { obj(m, "requesting_device")["colour"] = "red" },
		"requested_record": func(m map[string]any) { m["requested_record"] = map[string]any{"resourceType": "Patient"} },
		"unknown claim":    func(m map[string]any) { m["jti"] = "x" },
	}
	headers := map[string]string{}
	for name, edit := range edits {
		headers[name] = withClaims(t, edit)
	}
	for name, p := range map[string]string{
		"model sent twice":         strings.Replace(valid, `"model"`, `"model":"a","model"`, 1),
		"iss in another case":      strings.Replace(valid, `"iss"`, `"ISS"`, 1),
		"escaped slashes":          strings.ReplaceAll(valid, "/", `\/`),
		"white space":              strings.ReplaceAll(valid, ",", ", "),
		"not UTF-8":                strings.Replace(valid, "Example", "Ex\xffample", 1),
		"a null given":             strings.Replace(valid, `"Alex"`, `"Alex",null`, 1),
		"a string holding null":    strings.Replace(valid, `"Alex"`, `"null"`, 1),
		"big number in a resource": strings.Replace(valid, `"model"`, `"udi":1e999,"model"`, 1),
	} {
		headers[name] = bearer([]byte(p))
	}
	for name, header := range headers {
		t.Run(name, func(t *testing.T) {
			tok, err := ParseAuthorization(header)
			gtok, gerr := parseAuthorization(header, true)
			if !reflect.DeepEqual(tok, gtok) || !reflect.DeepEqual(err, gerr) {
				t.Fatalf("typed: %+v %v\ngeneric: %+v %v", tok, err, gtok, gerr)
			}
			if tok != nil {
				if e1, e2 := (JWTPolicy{}).Check(tok, in, testNow), (JWTPolicy{}).Check(gtok, in, testNow); !reflect.DeepEqual(e1, e2) {
					t.Fatalf("Check: typed %v, generic %v", e1, e2)
				}
			}
		})
	}
}

// TestMintedTokenReadTyped makes sure the token `sspemu token` mints, and
// so the bench's, takes the typed way.
func TestMintedTokenReadTyped(t *testing.T) {
	p := newPayload()
	if err := p.UnmarshalJSON(payloadOf(t, "Bearer "+validSpec(t).Encode())); err != nil {
		t.Fatal(err)
	}
	if p.typed == nil {
		t.Fatal("the minted token was read the generic way")
	}
}
