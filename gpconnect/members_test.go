package gpconnect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"
	"unicode/utf8"
)

// objectMembersReference is the json.Decoder version objectMembers
// replaced, kept to check the fast scan against it. It decodes data as exactly one JSON object, refusing invalid
// UTF-8, duplicate member names and anything after the object. It returns
// the members and their names in document order.
func objectMembersReference(data []byte) (map[string]json.RawMessage, []string, error) {
	if !utf8.Valid(data) {
		return nil, nil, fmt.Errorf("not valid UTF-8")
	}
	if !json.Valid(data) {
		return nil, nil, fmt.Errorf("not valid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, fmt.Errorf("reading JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, fmt.Errorf("a JSON %s, not an object", jsonKind(bytes.TrimSpace(data)))
	}
	m := map[string]json.RawMessage{}
	var names []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("reading member name: %w", err)
		}
		name, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, fmt.Errorf("reading member %q: %w", name, err)
		}
		if _, dup := m[name]; dup {
			return nil, nil, fmt.Errorf("member %q appears twice", truncate(name, 40))
		}
		m[name] = v
		names = append(names, name)
	}
	return m, names, nil
}

// FuzzObjectMembers checks the fast member scan against the json.Decoder
// reference: the same members, names and order, and an error exactly when
// the reference has one.
func FuzzObjectMembers(f *testing.F) {
	for _, s := range []string{`{}`, ` { "a" : 1 , "b":[1,{"c":"}"}] } `, `{"a\u0062":"x\"y","ab":2}`, `{"a":1,"a":2}`,
		`{"a":{}}x`, `[1]`, `{"a":true,"b":null,"c":-1.5e3}`, `{"\\":"\\"}`, "{\"a\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, names, err := objectMembers(data)
		rm, rnames, rerr := objectMembersReference(data)
		if (err == nil) != (rerr == nil) {
			t.Fatalf("%q: error %v, reference %v", data, err, rerr)
		}
		if err != nil {
			return
		}
		if !slices.Equal(names, rnames) || len(m) != len(rm) {
			t.Fatalf("%q: names %q, reference %q", data, names, rnames)
		}
		for k, v := range rm {
			if !bytes.Equal(m[k], v) {
				t.Fatalf("%q: member %q = %q, reference %q", data, k, m[k], v)
			}
		}
	})
}

// FuzzMembers feeds the unvalidated scan arbitrary bytes: whatever it is
// given, it must answer, never panic, and agree with the reference on
// every valid object.
func FuzzMembers(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a"`, `{"a":`, `{"a":1,`, `{"`, `{`, `{"a" 1}`, `{"a":[}`, `{"a":"\"} `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, _, err := members(data)
		if !json.Valid(data) || !utf8.Valid(data) {
			return
		}
		rm, _, rerr := objectMembersReference(data)
		if (err == nil) != (rerr == nil) || len(m) != len(rm) {
			t.Fatalf("%q: %v / reference %v", data, err, rerr)
		}
	})
}

// TestCheckJudgesEditedClaims: Check reuses ParseAuthorization's decoding
// only while the resource claims are unchanged; an edited claim is judged
// afresh.
func TestCheckJudgesEditedClaims(t *testing.T) {
	in, _ := Lookup(ReadPatient)
	now := time.Now()
	tok, cerr := ParseAuthorization("Bearer " + DefaultTokenSpec(in, "https://x/A1/STU3/1/gpconnect", now).Encode())
	if cerr != nil {
		t.Fatal(cerr)
	}
	if cerr := (JWTPolicy{}).Check(tok, in, now); cerr != nil {
		t.Fatalf("valid token refused: %v", cerr)
	}
	tok.Claims.RequestingPractitionerJSON = json.RawMessage(`{"resourceType":"Device"}`)
	if cerr := (JWTPolicy{}).Check(tok, in, now); cerr == nil || cerr.Claim != ClaimRequestingPractitioner {
		t.Fatalf("an edited practitioner claim passed: %v", cerr)
	}
	tok.Claims.RequestingPractitionerJSON = nil
	tok.Claims.RequestingOrganizationJSON = json.RawMessage(`{"resourceType":"Organization","name":"x"}`)
	if cerr := (JWTPolicy{}).Check(tok, in, now); cerr == nil {
		t.Fatal("an edited organisation claim passed")
	}
}

// FuzzSplitArray and FuzzUnmarshalString check the fast paths against
// encoding/json on every valid document.
func FuzzSplitArray(f *testing.F) {
	for _, s := range []string{`[]`, `[1]`, ` [ {"a":[1,"]"]} , "x" , null ] `, `[[],[[]]]`, `["\""]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got, want []json.RawMessage
		err := splitArray(data, &got)
		if !json.Valid(data) {
			return
		}
		werr := json.Unmarshal(data, &want)
		if (err == nil) != (werr == nil) || len(got) != len(want) {
			t.Fatalf("%q: %d items %v, encoding/json %d items %v", data, len(got), err, len(want), werr)
		}
		for i := range want {
			if !bytes.Equal(bytes.TrimSpace(got[i]), bytes.TrimSpace(want[i])) {
				t.Fatalf("%q: item %d %q, encoding/json %q", data, i, got[i], want[i])
			}
		}
	})
}

func FuzzUnmarshalString(f *testing.F) {
	for _, s := range []string{`"a"`, `"a\"b"`, `""`, `1`, `"\u00e9"`, "\"\xff\"", `"é"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got, want string
		err := unmarshalString(data, &got)
		werr := json.Unmarshal(data, &want)
		if (err == nil) != (werr == nil) || got != want {
			t.Fatalf("%q: %q %v, encoding/json %q %v", data, got, err, want, werr)
		}
	})
}

func TestCheckAudience(t *testing.T) {
	root := "https://localhost:9443/A20047/STU3/1/gpconnect"
	for aud, ok := range map[string]bool{root: true, LegacyAudience: true, root + "/": false,
		"https://127.0.0.1:9443/A20047/STU3/1/gpconnect": false, "https://notValid.fhir.nhs.net/tokenEndpoint": false} {
		tok := &Token{Claims: Claims{Audience: aud}}
		cerr := CheckAudience(tok, root)
		if (cerr == nil) != ok || (cerr != nil && (cerr.Claim != ClaimAudience || cerr.Status != 400)) {
			t.Errorf("aud %q: %v, want ok=%v", aud, cerr, ok)
		}
	}
}
