package gpconnect

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The differential fuzz targets of the JWT decoder: each feeds the same
// input to the decoder and to its predecessor, kept in
// jwt_reference_test.go, and requires the same outcome to the byte, error
// reasons included, since those reach consumers and the golden files.

// payloadOf returns the decoded payload of a bearer header built by the
// tests' helpers.
func payloadOf(t testing.TB, header string) []byte {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(header, "Bearer "), ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// seedPayloads are payloads near the valid token: the valid variants and
// the defects of jwt_test.go, and spellings a consumer's encoder may use.
func seedPayloads(t testing.TB) [][]byte {
	valid := payloadOf(t, "Bearer "+validSpec(t).Encode())
	out := [][]byte{valid}
	for _, edit := range []func(m map[string]any){
		func(m map[string]any) { delete(m, "aud") },
		func(m map[string]any) { m["sub"] = nil },
		func(m map[string]any) { m["aud"] = []any{testAud} },
		func(m map[string]any) { m["iat"] = "1700000000" },
		func(m map[string]any) { m["exp"] = json.Number("1700000300.5") },
		func(m map[string]any) { m["exp"] = json.Number("99999999999999999999") },
		func(m map[string]any) { m["requesting_organization"] = "Y12345" },
		func(m map[string]any) { m["requesting_practitioner"] = nil },
		func(m map[string]any) { m["requested_record"] = map[string]any{"resourceType": "Patient"} },
		func(m map[string]any) { m["requested_record"] = nil },
		func(m map[string]any) { obj(m, "requesting_device")["resourceType"] = nil },
		func(m map[string]any) { obj(m, "requesting_device")["resourceType"] = 5 },
		func(m map[string]any) { delete(obj(m, "requesting_device"), "resourceType") },
		func(m map[string]any) { obj(m, "requesting_device")["_model"] = map[string]any{} },
		func(m map[string]any) { obj(m, "requesting_device")["_resourceType"] = "x" },
		func(m map[string]any) { obj(m, "requesting_device")["identifier"] = []any{} },
		func(m map[string]any) { obj(m, "requesting_device")["identifier"] = []any{7, "x"} },
		func(m map[string]any) { obj(m, "requesting_organization")["name"] = nil },
		func(m map[string]any) { obj(m, "requesting_organization")["id"] = "a b" },
		func(m map[string]any) { obj(m, "requesting_organization")["id"] = 12 },
		func(m map[string]any) { obj(m, "requesting_practitioner")["practitionerRole"] = []any{} },
		func(m map[string]any) { obj(m, "requesting_practitioner")["name"] = map[string]any{"family": "x"} },
		func(m map[string]any) {
			arr(obj(m, "requesting_practitioner"), "name")[0].(map[string]any)["family"] = []any{"Example"}
		},
		func(m map[string]any) {
			arr(obj(m, "requesting_practitioner"), "name")[0].(map[string]any)["given"] = []any{"A", nil}
		},
		func(m map[string]any) {
			arr(obj(m, "requesting_practitioner"), "name")[0].(map[string]any)["given"] = []any{}
		},
		func(m map[string]any) {
			arr(obj(m, "requesting_practitioner"), "name")[0].(map[string]any)["prefix"] = []any{"Dr", 1}
		},
		func(m map[string]any) {
			arr(obj(m, "requesting_practitioner"), "identifier")[0].(map[string]any)["label"] = "x"
		},
		func(m map[string]any) {
			arr(obj(m, "requesting_practitioner"), "identifier")[1].(map[string]any)["value"] = nil
		},
	} {
		out = append(out, payloadOf(t, withClaims(t, edit)))
	}
	for _, s := range []string{
		// PHP's json_encode escapes every slash; others escape non-ASCII.
		strings.ReplaceAll(string(valid), "/", `\/`),
		strings.Replace(string(valid), `"iss"`, `"\u0069ss"`, 1),
		strings.Replace(string(valid), `"Example"`, `"Ex\u00e4mple \ud83d\ude00 \ud800 \"q\""`, 1),
		strings.Replace(string(valid), `"Alex"`, `"Alex","Sam"`, 1),
		strings.Replace(string(valid), `"model"`, `"model":"a","model"`, 1),
		strings.Replace(string(valid), `{"system"`, `{"system":"a","system"`, 1),
		strings.Replace(string(valid), `"iss"`, `"x":1,"x":2,"iss"`, 1),
		strings.Replace(string(valid), `"iss"`, `"iss":"a","iss"`, 1),
		" \n" + string(valid) + "\t ",
		string(valid) + "x",
		string(valid[:len(valid)-1]),
		`{}`, `[]`, `null`, `{"iss":"\u00"}`, "{\"iss\":\"\xff\"}", `{"requesting_device":{}}`,
		`{"requesting_device":{"resourceType":"Device","identifier":[{"system":null}]}}`,
		`{"requesting_organization":{"resourceType":"Organization","meta":[[[[[]]]]],"text":{"a":{"b":[1e5,-0.5,true,false,null]}}}}`,
	} {
		out = append(out, []byte(s))
	}
	return out
}

// sameOutcome fails unless the decoder and its predecessor agree on
// header: the token, its cached decoding and the error of
// ParseAuthorization, and what Check then says of the token.
func sameOutcome(t *testing.T, header string) {
	tok, err := ParseAuthorization(header)
	rtok, rerr := refParseAuthorization(header)
	if !reflect.DeepEqual(err, rerr) {
		t.Fatalf("%q:\nerror     %v\nreference %v", header, err, rerr)
	}
	if !reflect.DeepEqual(tok, rtok) {
		t.Fatalf("%q:\ntoken     %+v\nreference %+v", header, tok, rtok)
	}
	if tok == nil {
		return
	}
	for _, id := range []string{ReadPatient, ReadMetadata} {
		in := mustLookup(t, id)
		if c, rc := (JWTPolicy{}).Check(tok, in, testNow), (JWTPolicy{}).Check(rtok, in, testNow); !reflect.DeepEqual(c, rc) {
			t.Fatalf("%q: Check says %v, of the reference's token %v", header, c, rc)
		}
	}
}

// FuzzClaimsReference varies the JSON of the header and the payload.
func FuzzClaimsReference(f *testing.F) {
	jose := []byte(`{"alg":"none","typ":"JWT"}`)
	for _, p := range seedPayloads(f) {
		f.Add(jose, p)
	}
	for _, h := range []string{`{"typ":"JWT","alg":"none"}`, `{"alg":"n\u006fne","typ":"JWT"}`, `{"alg":null,"typ":"JWT"}`,
		`{"alg":"none","typ":"JWT","alg":"none"}`, `{"alg":"none"}`, `{"alg":"none","typ":"JWT","kid":"1"}`, `[]`, ``, "{\"alg\":\"\xff\"}"} {
		f.Add([]byte(h), seedPayloads(f)[0])
	}
	f.Fuzz(func(t *testing.T, header, payload []byte) {
		enc := base64.RawURLEncoding.EncodeToString
		sameOutcome(t, "Bearer "+enc(header)+"."+enc(payload)+".")
	})
}

// FuzzAuthorizationReference varies the header as sent: the scheme, the
// parts and their base64.
func FuzzAuthorizationReference(f *testing.F) {
	valid := validSpec(f).Encode()
	for _, s := range []string{"Bearer " + valid, "", "Bearer a.b.c", "bearer " + valid, "Bearer  " + valid, "Bearer " + valid + ".",
		"Bearer " + strings.TrimSuffix(valid, "."), "Bearer " + strings.Replace(valid, "e", "+", 1), "Bearer " + valid + "c2ln",
		"Bearer " + joseHeader + "=." + strings.Split(valid, ".")[1] + ".", "Bearer " + joseHeader + ".e30.", "Bearer .."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) { sameOutcome(t, header) })
}

// FuzzResourceReference varies a resource claim set by hand on a Token,
// which Check decodes afresh, judging its JSON itself.
func FuzzResourceReference(f *testing.F) {
	for _, p := range seedPayloads(f)[:12] {
		var m map[string]json.RawMessage
		if json.Unmarshal(p, &m) != nil {
			continue
		}
		for i, k := range []string{ClaimRequestingDevice, ClaimRequestingOrganization, ClaimRequestingPractitioner} {
			f.Add(uint8(i), []byte(m[k]))
		}
	}
	for _, s := range []string{``, ` `, `null`, `[1]`, ` {"resourceType":"Device"} `, `{"resourceType":"Device"}x`, "{\"resourceType\":\"\xff\"}",
		`{"resourceType":"Device","resourceType":"Device"}`, `{"resourceType":"Device",}`} {
		f.Add(uint8(0), []byte(s))
	}
	f.Fuzz(func(t *testing.T, which uint8, raw []byte) {
		var got, want any
		var err, rerr *ClaimError
		switch which % 3 {
		case 0:
			got, err = decodeDevice(raw)
			want, rerr = refDecodeDevice(raw)
		case 1:
			got, err = decodeOrganization(raw)
			want, rerr = refDecodeOrganization(raw)
		default:
			got, err = decodePractitioner(raw)
			want, rerr = refDecodePractitioner(raw)
		}
		if !reflect.DeepEqual(err, rerr) || !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n%+v %v\nreference %+v %v", raw, got, err, want, rerr)
		}
	})
}

// FuzzReadObjectReference holds readObject, judging its input, to the
// predecessor's objectMembers: the same members in the same order, and
// the same error, worded the same.
func FuzzReadObjectReference(f *testing.F) {
	for _, s := range []string{`{}`, ` { "a" : 1 , "b":[1,{"c":"}"}] } `, `{"a\u0062":"x\"y","ab":2}`, `{"a":1,"a":2}`,
		`{"a":{}}x`, `[1]`, ` "s" `, `{"a":true,"b":null,"c":-1.5e3}`, `{"\\":"\\"}`, "{\"a\":\"\xff\"}", "\v{}", ``, `{"a":1,"a":[}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := readObject(string(data), true, nil)
		rm, rnames, rerr := refObjectMembers(data)
		if (err == nil) != (rerr == nil) || (err != nil && err.Error() != rerr.Error()) {
			t.Fatalf("%q: error %v, reference %v", data, err, rerr)
		}
		var names []string
		for _, m := range ms {
			names = append(names, m.name)
			if !bytes.Equal(data[m.start:m.end], rm[m.name]) {
				t.Fatalf("%q: member %q = %q, reference %q", data, m.name, data[m.start:m.end], rm[m.name])
			}
		}
		if !slices.Equal(names, rnames) {
			t.Fatalf("%q: names %q, reference %q", data, names, rnames)
		}
	})
}

// FuzzValidJSON holds the one-pass scanner to json.Valid on any bytes:
// whatever json.Valid rejects the decoder must reject, and the reverse.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `""`, `0`, `-0`, `01`, `-`, `1.`, `1.5e`, `1E+2`, `.5`, `1e-0`, `tru`, `true`, `nul`, `null `,
		`falsey`, `[1,]`, `{"a":}`, `{"a" 1}`, `{,}`, `[,1]`, `"\u12"`, `"\u12G4"`, `"\x"`, "\"\t\"", "\"\x7f\"", `"\/\b\f\n\r\t"`,
		" [ { } , [ ] ] ", `{"a":[1,{"b":null}]}`, `[1 2]`, `{"a":1}}`, `]`, "\ufeff{}", "{}\x00", `"\ud800"`, "\"\xff\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := validJSON(string(data)), json.Valid(data); got != want {
			t.Fatalf("%q: validJSON %v, json.Valid %v", data, got, want)
		}
	})
}

// TestValidJSONDepth: json.Valid allows 10000 nested arrays or objects and
// refuses 10001, and so does the scanner, at any level of the payload.
func TestValidJSONDepth(t *testing.T) {
	for _, depth := range []int{maxJSONDepth - 1, maxJSONDepth, maxJSONDepth + 1} {
		for _, open := range []string{"[", `{"a":`} {
			close := map[string]string{"[": "]", `{"a":`: "}"}[open]
			doc := []byte(strings.Repeat(open, depth) + strings.Repeat(close, depth))
			if got, want := validJSON(string(doc)), json.Valid(doc); got != want {
				t.Errorf("%d levels of %s: validJSON %v, json.Valid %v", depth, open, got, want)
			}
			inner := []byte(`{"x":` + strings.Repeat(open, depth-1) + strings.Repeat(close, depth-1) + `}`)
			_, err := readObject(string(inner), true, nil)
			_, _, rerr := refObjectMembers(inner)
			if (err == nil) != (rerr == nil) {
				t.Errorf("%d levels of %s in an object: %v, reference %v", depth, open, err, rerr)
			}
		}
	}
}

// TestSeedsAgree runs the differential checks on the seeds in every test
// run, not only when fuzzing.
func TestSeedsAgree(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	for _, p := range seedPayloads(t) {
		sameOutcome(t, "Bearer "+joseHeader+"."+enc(p)+".")
	}
}

// FuzzIndexBackslash holds the word-at-a-time search to strings.IndexByte.
func FuzzIndexBackslash(f *testing.F) {
	for _, s := range []string{``, `\`, `abcdefgh\`, `abcdefg\h`, `abcdefghijklmnop`, "\x5c\xdc\x5c", "\xff\xff\xff\xff\xff\xff\xff\xff\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := indexBackslash(s), strings.IndexByte(s, '\\'); got != want {
			t.Fatalf("%q: %d, strings.IndexByte %d", s, got, want)
		}
	})
}

// TestElementSwitches: the element switches know exactly the names of the
// predecessor's lists, which the fuzz targets are unlikely to spell out.
func TestElementSwitches(t *testing.T) {
	lists := map[string][]string{"domain": refDomainResourceElements, "device": refDeviceElements,
		"organization": refOrganizationElements, "practitioner": refPractitionerElements,
		"identifier": refIdentifierElements, "humanName": refHumanNameElements}
	switches := map[string]func(string) bool{"domain": domainResourceElement, "device": deviceElement,
		"organization": organizationElement, "practitioner": practitionerElement,
		"identifier": identifierElement, "humanName": humanNameElement}
	var names []string
	for _, l := range lists {
		names = append(names, l...)
	}
	names = append(names, "", "_id", "Id", "ids", "resourcetype", "practitionerRole", "label")
	for kind, known := range switches {
		for _, n := range names {
			if got, want := known(n), slices.Contains(lists[kind], n); got != want {
				t.Errorf("%s element %q: %v, list says %v", kind, n, got, want)
			}
		}
	}
}

// TestPlainJOSEHeader: the header ParseAuthorization takes without
// decoding is one the full check accepts.
func TestPlainJOSEHeader(t *testing.T) {
	b, cerr := decodePart("header", plainJOSEHeader)
	if cerr != nil || string(b) != `{"alg":"none","typ":"JWT"}` {
		t.Fatalf("%q %v", b, cerr)
	}
	if cerr := checkJOSEHeader(string(b)); cerr != nil {
		t.Fatal(cerr)
	}
	if cerr := refCheckJOSEHeader(b); cerr != nil {
		t.Fatal(cerr)
	}
}
