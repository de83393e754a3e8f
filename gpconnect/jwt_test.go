package gpconnect

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testNow = time.Unix(1_700_000_000, 0)

const testAud = "https://localhost:9443/A20047/STU3/1/gpconnect"

// joseHeader is {"alg":"none","typ":"JWT"} in base64url, the only header
// GP Connect allows.
const joseHeader = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"

func mustLookup(t testing.TB, id string) Interaction {
	t.Helper()
	in, ok := Lookup(id)
	if !ok {
		t.Fatalf("no interaction %s", id)
	}
	return in
}

func validSpec(t testing.TB) TokenSpec {
	return DefaultTokenSpec(mustLookup(t, ReadPatient), testAud, testNow)
}

// claimMap decodes the payload of a spec's token for mutation; numbers stay
// json.Number so integers survive.
func claimMap(t testing.TB, s TokenSpec) map[string]any {
	t.Helper()
	parts := strings.Split(s.Encode(), ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// payloadOf returns the decoded payload of a bearer header.
func payloadOf(t testing.TB, header string) []byte {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(header, "Bearer "), ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func bearer(payload []byte) string {
	return "Bearer " + joseHeader + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
}

func bearerMap(t testing.TB, m map[string]any) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return bearer(b)
}

func obj(m map[string]any, k string) map[string]any { return m[k].(map[string]any) }

func arr(m map[string]any, k string) []any { return m[k].([]any) }

func withClaims(t testing.TB, edit func(m map[string]any)) string {
	m := claimMap(t, validSpec(t))
	edit(m)
	return bearerMap(t, m)
}

func withSpec(t testing.TB, edit func(s *TokenSpec)) string {
	s := validSpec(t)
	edit(&s)
	return "Bearer " + s.Encode()
}

func TestValidTokenRoundTrips(t *testing.T) {
	for _, in := range Interactions() {
		s := DefaultTokenSpec(in, testAud, testNow)
		raw := s.Encode()
		if !strings.HasSuffix(raw, ".") || strings.ContainsAny(raw, "=+/") {
			t.Fatalf("%s: token %q is not unpadded base64url ending in '.'", in.ID, raw)
		}
		if h, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0]); string(h) != `{"alg":"none","typ":"JWT"}` {
			t.Fatalf("header %s", h)
		}
		tok, err := JWTPolicy{}.CheckAuthorization("Bearer "+raw, in, testNow)
		if err != nil {
			t.Fatalf("%s: valid token refused: %v", in.ID, err)
		}
		c := tok.Claims
		if tok.Raw != raw || c.Issuer != s.Issuer || c.Subject != s.Subject || c.Audience != testAud ||
			c.IssuedAt != testNow.Unix() || c.ExpiresAt != testNow.Unix()+300 ||
			c.ReasonForRequest != "directcare" || c.RequestedScope != in.Scope {
			t.Fatalf("%s: claims %+v", in.ID, c)
		}
		want := ClaimSummary{
			Issuer: s.Issuer, Subject: s.Subject, SDSUserID: s.SDSUserID, RoleProfileID: s.RoleProfileID,
			ODSCode: s.ODSCode, Device: s.DeviceModel + " " + s.DeviceVersion,
		}
		if got := c.Summary(); got != want {
			t.Fatalf("summary %+v, want %+v", got, want)
		}
		if c.RequestingPractitioner.Names[0].Family != s.Family || c.RequestingOrganization.Name != s.OrgName {
			t.Fatalf("resources not decoded: %+v", c)
		}
	}
}

func TestValidVariants(t *testing.T) {
	in := mustLookup(t, ReadPatient)
	for name, header := range map[string]string{
		"iat 200 s in the future (NHS suite)": withSpec(t, func(s *TokenSpec) { s.IssuedAt = testNow.Add(200 * time.Second) }),
		"expired within skew":                 withSpec(t, func(s *TokenSpec) { s.IssuedAt = testNow.Add(-500 * time.Second) }),
		"legacy ODS system": withClaims(t, func(m map[string]any) {
			arr(obj(m, "requesting_organization"), "identifier")[0].(map[string]any)["system"] = SystemODSCodeLegacy
		}),
		"role profile absent": withSpec(t, func(s *TokenSpec) { s.RoleProfileID = "" }),
		// "the latter two elements (SDS role profile ID, and local user
		// identifier) are not always present" (the NHS suite's JWT row 16).
		"role profile and local user ID absent": withClaims(t, func(m map[string]any) {
			p := obj(m, "requesting_practitioner")
			p["identifier"] = arr(p, "identifier")[:1]
		}),
		"SDS user and role UNK": withSpec(t, func(s *TokenSpec) { s.SDSUserID, s.RoleProfileID = "UNK", "UNK" }),
		"header members reordered": "Bearer " + base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT","alg":"none"}`)) +
			"." + strings.Split(validSpec(t).Encode(), ".")[1] + ".",
		"extra STU3 elements": withClaims(t, func(m map[string]any) {
			obj(m, "requesting_practitioner")["gender"] = "female"
			obj(m, "requesting_organization")["telecom"] = []any{map[string]any{"system": "phone", "value": "1"}}
			obj(m, "requesting_device")["meta"] = map[string]any{"versionId": "1"}
		}),
		"practitioner prefix": withClaims(t, func(m map[string]any) {
			arr(obj(m, "requesting_practitioner"), "name")[0].(map[string]any)["prefix"] = []any{"Dr"}
		}),
		"header with spaces": "Bearer " + base64.RawURLEncoding.EncodeToString([]byte(`{ "alg" : "none" , "typ" : "JWT" }`)) +
			"." + strings.Split(validSpec(t).Encode(), ".")[1] + ".",
		"escaped slashes and names": bearer([]byte(strings.Replace(strings.ReplaceAll(string(payloadOf(t, withSpec(t, func(*TokenSpec) {}))), "/", `\/`),
			`"iss"`, `"\u0069ss"`, 1))),
		"primitive extension": withClaims(t, func(m map[string]any) {
			obj(m, "requesting_device")["_model"] = map[string]any{"extension": []any{}}
		}),
		"unknown claim": withClaims(t, func(m map[string]any) { m["jti"] = "x" }),
		"null identifier system beside the ODS code": withClaims(t, func(m map[string]any) {
			o := obj(m, "requesting_organization")
			o["identifier"] = append(arr(o, "identifier"), map[string]any{"system": nil, "value": "x"})
		}),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := (JWTPolicy{}).CheckAuthorization(header, in, testNow); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}

func TestJWTDefects(t *testing.T) {
	readPatient := mustLookup(t, ReadPatient)
	book := mustLookup(t, CreateAppointment)
	metadata := mustLookup(t, ReadMetadata)
	validPayload := strings.Split(validSpec(t).Encode(), ".")[1]
	enc := base64.RawURLEncoding.EncodeToString

	type defect struct {
		name   string
		header string
		in     Interaction
		status int
		claim  string
	}
	deviceIs := func(edit func(d map[string]any)) string {
		return withClaims(t, func(m map[string]any) { edit(obj(m, "requesting_device")) })
	}
	orgIs := func(edit func(o map[string]any)) string {
		return withClaims(t, func(m map[string]any) { edit(obj(m, "requesting_organization")) })
	}
	practIs := func(edit func(p map[string]any)) string {
		return withClaims(t, func(m map[string]any) { edit(obj(m, "requesting_practitioner")) })
	}
	defects := []defect{
		// The envelope.
		{"no Authorization", "", readPatient, 400, "Authorization"},
		{"Basic scheme", "Basic dXNlcjpwYXNz", readPatient, 400, "Authorization"},
		{"lower-case bearer", "bearer " + validSpec(t).Encode(), readPatient, 400, "Authorization"},
		{"two spaces after Bearer", "Bearer  " + validSpec(t).Encode(), readPatient, 400, "Authorization"},
		{"two parts", "Bearer " + joseHeader + "." + validPayload, readPatient, 400, "Authorization"},
		{"four parts", "Bearer " + joseHeader + "." + validPayload + "..", readPatient, 400, "Authorization"},
		{"padded header", "Bearer " + base64.URLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + validPayload + ".", readPatient, 400, "header"},
		{"standard base64 payload", "Bearer " + joseHeader + "." + strings.Replace(validPayload, validPayload[:1], "+", 1) + ".", readPatient, 400, "payload"},
		{"slash in payload", "Bearer " + joseHeader + ".a/" + validPayload[2:] + ".", readPatient, 400, "payload"},
		{"payload not base64", "Bearer " + joseHeader + ".!!!!.", readPatient, 400, "payload"},
		{"payload not JSON", "Bearer " + joseHeader + "." + enc([]byte("iss=x")) + ".", readPatient, 400, "payload"},
		{"payload a JSON array", "Bearer " + joseHeader + "." + enc([]byte(`[1,2]`)) + ".", readPatient, 400, "payload"},
		{"payload invalid UTF-8", "Bearer " + joseHeader + "." + enc([]byte("{\"iss\":\"\xff\"}")) + ".", readPatient, 400, "payload"},
		{"duplicate claim", "Bearer " + joseHeader + "." + enc([]byte(`{"iss":"a","iss":"b"}`)) + ".", readPatient, 400, "payload"},
		{"header not JSON", "Bearer " + enc([]byte("alg=none")) + "." + validPayload + ".", readPatient, 400, "header"},
		{"alg HS256", "Bearer " + enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + validPayload + ".", readPatient, 400, "header"},
		{"alg None", "Bearer " + enc([]byte(`{"alg":"None","typ":"JWT"}`)) + "." + validPayload + ".", readPatient, 400, "header"},
		{"header extra kid", "Bearer " + enc([]byte(`{"alg":"none","typ":"JWT","kid":"1"}`)) + "." + validPayload + ".", readPatient, 400, "header"},
		{"header without typ", "Bearer " + enc([]byte(`{"alg":"none"}`)) + "." + validPayload + ".", readPatient, 400, "header"},
		{"signature present", "Bearer " + joseHeader + "." + validPayload + ".c2ln", readPatient, 400, "signature"},
		// Presence and JSON types.
		{"iss missing", withClaims(t, func(m map[string]any) { delete(m, "iss") }), readPatient, 400, "iss"},
		{"sub null", withClaims(t, func(m map[string]any) { m["sub"] = nil }), readPatient, 400, "sub"},
		{"aud a number", withClaims(t, func(m map[string]any) { m["aud"] = 7 }), readPatient, 400, "aud"},
		{"aud an array", withClaims(t, func(m map[string]any) { m["aud"] = []any{testAud} }), readPatient, 400, "aud"},
		{"aud empty", withClaims(t, func(m map[string]any) { m["aud"] = "" }), readPatient, 400, "aud"},
		{"iat missing", withClaims(t, func(m map[string]any) { delete(m, "iat") }), readPatient, 400, "iat"},
		{"iat a string", withClaims(t, func(m map[string]any) { m["iat"] = "1700000000" }), readPatient, 400, "iat"},
		{"exp with a fraction", withClaims(t, func(m map[string]any) { m["exp"] = json.Number("1700000300.5") }), readPatient, 400, "exp"},
		{"exp with an exponent", withClaims(t, func(m map[string]any) { m["exp"] = json.Number("17000003e2") }), readPatient, 400, "exp"},
		{"reason_for_request missing", withClaims(t, func(m map[string]any) { delete(m, "reason_for_request") }), readPatient, 400, "reason_for_request"},
		{"requested_scope missing", withClaims(t, func(m map[string]any) { delete(m, "requested_scope") }), readPatient, 400, "requested_scope"},
		{"requesting_device missing", withClaims(t, func(m map[string]any) { delete(m, "requesting_device") }), readPatient, 400, "requesting_device"},
		{"requesting_organization a string", withClaims(t, func(m map[string]any) { m["requesting_organization"] = "Y12345" }), readPatient, 400, "requesting_organization"},
		{"requesting_practitioner null", withClaims(t, func(m map[string]any) { m["requesting_practitioner"] = nil }), readPatient, 400, "requesting_practitioner"},
		// Values.
		{"lifetime 301", withSpec(t, func(s *TokenSpec) { s.Lifetime = 301 * time.Second }), readPatient, 400, "exp"},
		{"lifetime 299", withSpec(t, func(s *TokenSpec) { s.Lifetime = 299 * time.Second }), readPatient, 400, "exp"},
		{"exp before iat", withSpec(t, func(s *TokenSpec) { s.Lifetime = -time.Second }), readPatient, 400, "exp"},
		{"expired", withSpec(t, func(s *TokenSpec) { s.IssuedAt = testNow.Add(-time.Hour) }), readPatient, 400, "exp"},
		{"iat beyond skew", withSpec(t, func(s *TokenSpec) { s.IssuedAt = testNow.Add(301 * time.Second) }), readPatient, 400, "iat"},
		{"reason notdirectcare", withSpec(t, func(s *TokenSpec) { s.ReasonForRequest = "notdirectcare" }), readPatient, 400, "reason_for_request"},
		{"scope unknown", withSpec(t, func(s *TokenSpec) { s.Scope = "patient/*.*" }), readPatient, 400, "requested_scope"},
		{"write scope for a read", withSpec(t, func(s *TokenSpec) { s.Scope = ScopePatientWrite }), readPatient, 400, "requested_scope"},
		{"read scope for a booking", withSpec(t, func(s *TokenSpec) { s.Scope = ScopePatientRead }), book, 400, "requested_scope"},
		{"patient scope for metadata", withSpec(t, func(s *TokenSpec) { s.Scope = ScopePatientRead }), metadata, 400, "requested_scope"},
		{"requested_record present", withClaims(t, func(m map[string]any) {
			m["requested_record"] = map[string]any{"resourceType": "Patient"}
		}), readPatient, 400, "requested_record"},
		// requesting_device.
		{"device resourceType Patient", deviceIs(func(d map[string]any) { d["resourceType"] = "Patient" }), readPatient, 422, "requesting_device"},
		{"device without resourceType", deviceIs(func(d map[string]any) { delete(d, "resourceType") }), readPatient, 422, "requesting_device"},
		{"device unknown element", deviceIs(func(d map[string]any) { d["invalidFhirResourceField"] = "x" }), readPatient, 422, "requesting_device"},
		{"device model a number", deviceIs(func(d map[string]any) { d["model"] = 5 }), readPatient, 422, "requesting_device"},
		{"device identifier an object", deviceIs(func(d map[string]any) { d["identifier"] = map[string]any{"system": "a", "value": "b"} }), readPatient, 422, "requesting_device"},
		{"device no identifier", withSpec(t, func(s *TokenSpec) { s.DeviceSystem, s.DeviceValue = "", "" }), readPatient, 400, "requesting_device"},
		{"device identifier without value", withSpec(t, func(s *TokenSpec) { s.DeviceValue = "" }), readPatient, 400, "requesting_device"},
		{"device no model", withSpec(t, func(s *TokenSpec) { s.DeviceModel = "" }), readPatient, 400, "requesting_device"},
		{"device no version", withSpec(t, func(s *TokenSpec) { s.DeviceVersion = "" }), readPatient, 400, "requesting_device"},
		// requesting_organization.
		{"organization resourceType Device", orgIs(func(o map[string]any) { o["resourceType"] = "Device" }), readPatient, 422, "requesting_organization"},
		{"organization unknown element", orgIs(func(o map[string]any) { o["invalidFhirResourceField"] = "x" }), readPatient, 422, "requesting_organization"},
		{"organization name null", orgIs(func(o map[string]any) { o["name"] = nil }), readPatient, 422, "requesting_organization"},
		{"organization no name", withSpec(t, func(s *TokenSpec) { s.OrgName = "" }), readPatient, 400, "requesting_organization"},
		{"organization no identifier", orgIs(func(o map[string]any) { delete(o, "identifier") }), readPatient, 400, "requesting_organization"},
		{"organization identifier other system", orgIs(func(o map[string]any) {
			arr(o, "identifier")[0].(map[string]any)["system"] = "https://example.org/ods"
		}), readPatient, 400, "requesting_organization"},
		{"organization ODS value empty", withSpec(t, func(s *TokenSpec) { s.ODSCode = "" }), readPatient, 400, "requesting_organization"},
		// requesting_practitioner.
		{"practitioner resourceType Organization", practIs(func(p map[string]any) { p["resourceType"] = "Organization" }), readPatient, 422, "requesting_practitioner"},
		{"practitioner DSTU2 practitionerRole", practIs(func(p map[string]any) { p["practitionerRole"] = []any{} }), readPatient, 422, "requesting_practitioner"},
		{"practitioner DSTU2 family array", practIs(func(p map[string]any) {
			arr(p, "name")[0].(map[string]any)["family"] = []any{"Example"}
		}), readPatient, 422, "requesting_practitioner"},
		{"practitioner name an object", practIs(func(p map[string]any) { p["name"] = map[string]any{"family": "x"} }), readPatient, 422, "requesting_practitioner"},
		{"practitioner identifier unknown member", practIs(func(p map[string]any) {
			arr(p, "identifier")[0].(map[string]any)["label"] = "x"
		}), readPatient, 422, "requesting_practitioner"},
		{"practitioner id not a FHIR id", practIs(func(p map[string]any) { p["id"] = "a b" }), readPatient, 422, "requesting_practitioner"},
		{"practitioner no id", withSpec(t, func(s *TokenSpec) { s.PractitionerID, s.LocalUserID = "", "u1" }), readPatient, 400, "requesting_practitioner"},
		{"practitioner no name", withSpec(t, func(s *TokenSpec) { s.Family, s.Given = "", "" }), readPatient, 400, "requesting_practitioner"},
		{"practitioner no family", withSpec(t, func(s *TokenSpec) { s.Family = "" }), readPatient, 400, "requesting_practitioner"},
		{"practitioner no given", withSpec(t, func(s *TokenSpec) { s.Given = "" }), readPatient, 400, "requesting_practitioner"},
		{"practitioner no SDS user ID", withSpec(t, func(s *TokenSpec) { s.SDSUserID = "" }), readPatient, 400, "requesting_practitioner"},
		{"practitioner empty SDS user ID", practIs(func(p map[string]any) {
			arr(p, "identifier")[0].(map[string]any)["value"] = ""
		}), readPatient, 400, "requesting_practitioner"},
		{"practitioner empty role profile", practIs(func(p map[string]any) {
			arr(p, "identifier")[1].(map[string]any)["value"] = ""
		}), readPatient, 400, "requesting_practitioner"},
		{"sub not the practitioner id", withSpec(t, func(s *TokenSpec) { s.Subject = "2" }), readPatient, 400, "sub"},
	}
	seen := map[string]bool{}
	for _, d := range defects {
		t.Run(d.name, func(t *testing.T) {
			key := d.header + " for " + d.in.ID
			if seen[key] {
				t.Fatalf("defect %q is not distinct from an earlier one", d.name)
			}
			seen[key] = true
			_, err := JWTPolicy{}.CheckAuthorization(d.header, d.in, testNow)
			if err == nil {
				t.Fatalf("accepted")
			}
			if err.Status != d.status || err.Claim != d.claim {
				t.Fatalf("got %d %s (%s); want %d %s", err.Status, err.Claim, err.Reason, d.status, d.claim)
			}
			if err.Reason == "" || !strings.Contains(err.Error(), d.claim) {
				t.Fatalf("unhelpful error %q", err.Error())
			}
			if wantCode := map[int]string{400: CodeBadRequest, 422: CodeInvalidResource}[d.status]; err.Code() != wantCode {
				t.Fatalf("code %s, want %s", err.Code(), wantCode)
			}
		})
	}
	if len(defects) < 30 {
		t.Fatalf("only %d defects", len(defects))
	}
}

// TestJSONDefects covers what encoding/json would let through if it read the
// token alone (ParseAuthorization refuses it) and the rules of FHIR JSON
// inside the resource claims.
func TestJSONDefects(t *testing.T) {
	in := mustLookup(t, ReadPatient)
	valid := string(payloadOf(t, "Bearer "+validSpec(t).Encode()))
	enc := base64.RawURLEncoding.EncodeToString
	for _, d := range []struct {
		name, header string
		status       int
		claim, says  string
	}{
		{"claim name in another case beside it", bearer([]byte(strings.Replace(valid, `"iss"`, `"ISS":"x","iss"`, 1))), 400, "payload", "iss claim 2 times"},
		{"payload null", "Bearer " + joseHeader + "." + enc([]byte(`null`)) + ".", 400, "payload", "got null"},
		{"payload a string", "Bearer " + joseHeader + "." + enc([]byte(`"x"`)) + ".", 400, "payload", "got a JSON string"},
		{"payload with trailing text", bearer([]byte(valid + "x")), 400, "payload", "invalid character"},
		{"resource with invalid UTF-8", bearer([]byte(strings.Replace(valid, `"sspemu"`, "\"\xffx\"", 1))), 400, "payload", "not UTF-8"},
		{"unknown claim with invalid UTF-8", bearer([]byte(strings.Replace(valid, `"iss"`, "\"x\":\"\xff\",\"iss\"", 1))), 400, "payload", "not UTF-8"},
		{"element in another case", withClaims(t, func(m map[string]any) {
			d := obj(m, "requesting_device")
			d["Model"] = d["model"]
			delete(d, "model")
		}), 422, "requesting_device", `has "Model"`},
		{"identifier member in another case", withClaims(t, func(m map[string]any) {
			arr(obj(m, "requesting_organization"), "identifier")[0].(map[string]any)["System"] = SystemODSCode
		}), 422, "requesting_organization", `identifier[0] has "System"`},
		{"name member unknown", withClaims(t, func(m map[string]any) {
			arr(obj(m, "requesting_practitioner"), "name")[0].(map[string]any)["nickname"] = "Al"
		}), 422, "requesting_practitioner", `name[0] has "nickname"`},
		{"first unknown element named", withClaims(t, func(m map[string]any) {
			d := obj(m, "requesting_device")
			d["zz"], d["aa"], d["mm"] = 1, 2, 3
		}), 422, "requesting_device", `has "aa"`},
		{"_resourceType", withClaims(t, func(m map[string]any) { obj(m, "requesting_device")["_resourceType"] = map[string]any{} }), 422, "requesting_device", `"_resourceType"`},
		{"resourceType a number", withClaims(t, func(m map[string]any) { obj(m, "requesting_device")["resourceType"] = 5 }), 422, "requesting_device", "no resourceType"},
		{"number too large", withClaims(t, func(m map[string]any) {
			obj(m, "requesting_device")["safety"] = json.Number("1e999")
		}), 400, "payload", "too large for a 64-bit float: 1e999"},
		{"identifier item a number", withClaims(t, func(m map[string]any) { obj(m, "requesting_device")["identifier"] = []any{7} }), 422, "requesting_device", "identifier[0] must be an Identifier object, got a number"},
		{"identifier value a boolean", withClaims(t, func(m map[string]any) {
			arr(obj(m, "requesting_device"), "identifier")[0].(map[string]any)["value"] = true
		}), 422, "requesting_device", "identifier[0].value must be a JSON string, got a boolean"},
		{"given with a number", withClaims(t, func(m map[string]any) {
			arr(obj(m, "requesting_practitioner"), "name")[0].(map[string]any)["given"] = []any{"A", 1}
		}), 422, "requesting_practitioner", "name[0].given[1] must be a JSON string"},
		{"organization id not a string", withClaims(t, func(m map[string]any) { obj(m, "requesting_organization")["id"] = 12 }), 422, "requesting_organization", "id must be a JSON string"},
		{"device id not a FHIR id", withClaims(t, func(m map[string]any) { obj(m, "requesting_device")["id"] = "a/b" }), 422, "requesting_device", "must be a FHIR id"},
		{"exp beyond int64", withClaims(t, func(m map[string]any) { m["exp"] = json.Number("99999999999999999999") }), 400, "exp", "not a usable integer"},
		{"header typ jwt", "Bearer " + enc([]byte(`{"alg":"none","typ":"jwt"}`)) + "." + enc([]byte(valid)) + ".", 400, "header", `typ must be "JWT"`},
		{"header alg missing", "Bearer " + enc([]byte(`{"typ":"JWT"}`)) + "." + enc([]byte(valid)) + ".", 400, "header", `lacks "alg"`},
		{"header an array", "Bearer " + enc([]byte(`["none"]`)) + "." + enc([]byte(valid)) + ".", 400, "header", "must be the JSON object"},
		{"empty header", "Bearer ." + enc([]byte(valid)) + ".", 400, "header", "must be the JSON object"},
		{"header with stray trailing bits", "Bearer " + joseHeader[:len(joseHeader)-1] + "1." + enc([]byte(valid)) + ".", 400, "header", "not base64url"},
		{"signature not base64", "Bearer " + joseHeader + "." + enc([]byte(valid)) + ".!!", 400, "signature", "unsigned"},
	} {
		t.Run(d.name, func(t *testing.T) {
			_, err := JWTPolicy{}.CheckAuthorization(d.header, in, testNow)
			if err == nil {
				t.Fatal("accepted")
			}
			if err.Status != d.status || err.Claim != d.claim || !strings.Contains(err.Reason, d.says) {
				t.Fatalf("got %d %s (%s); want %d %s saying %q", err.Status, err.Claim, err.Reason, d.status, d.claim, d.says)
			}
		})
	}
}

// TestResourceClaimTwice: a resource claim sent twice is taken as its
// last, as RFC 7519 §4 allows (ParseAuthorization does not decode each
// resource claim twice to tell); a plain claim sent twice is refused.
func TestResourceClaimTwice(t *testing.T) {
	valid := string(payloadOf(t, "Bearer "+validSpec(t).Encode()))
	h := bearer([]byte(strings.Replace(valid, `"requesting_device"`, `"requesting_device":{"resourceType":"Patient"},"requesting_device"`, 1)))
	tok, cerr := (JWTPolicy{}).CheckAuthorization(h, mustLookup(t, ReadPatient), testNow)
	if cerr != nil || tok.Claims.RequestingDevice.Model != "sspemu" {
		t.Fatalf("the last requesting_device was not taken: %v", cerr)
	}
	h = bearer([]byte(strings.Replace(valid, `"iss"`, `"iss":"a","iss"`, 1)))
	if _, cerr := ParseAuthorization(h); cerr == nil || cerr.Claim != "payload" || !strings.Contains(cerr.Reason, "iss claim 2 times") {
		t.Fatalf("iss twice: %v", cerr)
	}
}

// TestMintedHeader: golang-jwt mints the one header GP Connect allows,
// and a payload whose members come in the specification's order.
func TestMintedHeader(t *testing.T) {
	parts := strings.Split(validSpec(t).Encode(), ".")
	if len(parts) != 3 || parts[0] != joseHeader || parts[2] != "" {
		t.Fatalf("minted %q", parts)
	}
	p := string(payloadOf(t, "Bearer "+strings.Join(parts, ".")))
	last := -1
	for _, name := range []string{"iss", "sub", "aud", "exp", "iat", "reason_for_request", "requested_scope",
		"requesting_device", "requesting_organization", "requesting_practitioner"} {
		i := strings.Index(p, `"`+name+`"`)
		if i < last {
			t.Fatalf("%s out of order in %s", name, p)
		}
		last = i
	}
}

// TestCheckJudgesTypedClaims: Check judges the claims as they stand, so a
// token built or edited by hand is judged as a parsed one.
func TestCheckJudgesTypedClaims(t *testing.T) {
	in := mustLookup(t, ReadPatient)
	tok, cerr := ParseAuthorization("Bearer " + validSpec(t).Encode())
	if cerr != nil {
		t.Fatal(cerr)
	}
	if cerr := (JWTPolicy{}).Check(tok, in, testNow); cerr != nil {
		t.Fatalf("valid token refused: %v", cerr)
	}
	for name, tc := range map[string]struct {
		edit   func(c *Claims)
		status int
		claim  string
	}{
		"practitioner of another type": {func(c *Claims) { c.RequestingPractitioner.ResourceType = "Device" }, 422, ClaimRequestingPractitioner},
		"no device":                    {func(c *Claims) { c.RequestingDevice = Device{} }, 400, ClaimRequestingDevice},
		"organization without ODS":     {func(c *Claims) { c.RequestingOrganization.Identifiers = nil }, 400, ClaimRequestingOrganization},
		"practitioner id not FHIR":     {func(c *Claims) { c.RequestingPractitioner.ID, c.Subject = "a b", "a b" }, 422, ClaimRequestingPractitioner},
		"requested_record":             {func(c *Claims) { c.RequestedRecord = &RequestedRecord{ResourceType: "Patient"} }, 400, ClaimRequestedRecord},
	} {
		t.Run(name, func(t *testing.T) {
			edited := &Token{Raw: tok.Raw, Claims: tok.Claims}
			tc.edit(&edited.Claims)
			cerr := (JWTPolicy{}).Check(edited, in, testNow)
			if cerr == nil || cerr.Status != tc.status || cerr.Claim != tc.claim {
				t.Fatalf("got %v; want %d %s", cerr, tc.status, tc.claim)
			}
		})
	}
	// A defect found in the claim as sent stays with the token, and each
	// Check hands out its own copy.
	bad, cerr := ParseAuthorization(withClaims(t, func(m map[string]any) { obj(m, "requesting_device")["x"] = 1 }))
	if cerr != nil {
		t.Fatal(cerr)
	}
	e1 := (JWTPolicy{}).Check(bad, in, testNow)
	if e1 == nil || e1.Status != 422 {
		t.Fatalf("unknown element passed: %v", e1)
	}
	e1.Reason = "changed"
	if e2 := (JWTPolicy{}).Check(bad, in, testNow); e2.Reason == "changed" {
		t.Fatal("Check handed out the token's own error")
	}
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

func TestClaimErrorReasonsNameTheFix(t *testing.T) {
	_, err := JWTPolicy{}.CheckAuthorization(withClaims(t, func(m map[string]any) {
		delete(obj(m, "requesting_organization"), "identifier")
	}), mustLookup(t, ReadPatient), testNow)
	if err == nil || !strings.Contains(err.Reason, "requesting_organization has no identifier with system https://fhir.nhs.uk/Id/ods-organization-code") {
		t.Fatalf("reason %v", err)
	}
}

func TestParseKeepsPartialClaims(t *testing.T) {
	tok, err := ParseAuthorization(withClaims(t, func(m map[string]any) { delete(m, "aud") }))
	if err == nil || err.Claim != "aud" {
		t.Fatalf("err %v", err)
	}
	if tok == nil || tok.Claims.Summary().ODSCode != "Y12345" || tok.Claims.Issuer == "" {
		t.Fatalf("partial token %+v", tok)
	}
}

func TestSkewPolicy(t *testing.T) {
	in := mustLookup(t, ReadPatient)
	h := withSpec(t, func(s *TokenSpec) { s.IssuedAt = testNow.Add(200 * time.Second) })
	if _, err := (JWTPolicy{Skew: 100 * time.Second}).CheckAuthorization(h, in, testNow); err == nil || err.Claim != "iat" {
		t.Fatalf("skew 100 s accepted iat +200 s: %v", err)
	}
	if _, err := (JWTPolicy{}).CheckAuthorization(h, in, testNow); err != nil {
		t.Fatalf("default skew refused iat +200 s: %v", err)
	}
}

func TestCheckNilToken(t *testing.T) {
	if err := (JWTPolicy{}).Check(nil, Interaction{}, testNow); err == nil || err.Status != 400 {
		t.Fatalf("nil token: %v", err)
	}
}

// FuzzParseAuthorization fuzzes the whole header.
func FuzzParseAuthorization(f *testing.F) {
	f.Add("Bearer " + validSpec(f).Encode())
	f.Add("")
	f.Add("Bearer a.b.c")
	f.Add("Bearer " + joseHeader + "." + validSpec(f).Encode()[len(joseHeader)+1:] + "c2ln")
	f.Add("Bearer " + base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT","alg":"HS256"}`)) + ".e30.")
	for _, p := range seedPayloads(f) {
		f.Add(bearer(p))
	}
	in := mustLookup(f, ReadPatient)
	f.Fuzz(func(t *testing.T, header string) { checkParse(t, header, in) })
}

// FuzzParsePayload fuzzes the claims set alone, under the one valid
// header, so that mutations reach the JSON and FHIR rules instead of
// breaking the base64.
func FuzzParsePayload(f *testing.F) {
	for _, p := range seedPayloads(f) {
		f.Add(p)
	}
	in := mustLookup(f, ReadPatient)
	f.Fuzz(func(t *testing.T, payload []byte) { checkParse(t, bearer(payload), in) })
}

// seedPayloads are payloads near the valid token, and spellings a
// consumer's JSON encoder may use.
func seedPayloads(t testing.TB) [][]byte {
	valid := string(payloadOf(t, "Bearer "+validSpec(t).Encode()))
	out := []string{valid,
		string(payloadOf(t, withClaims(t, func(m map[string]any) { obj(m, "requesting_practitioner")["name"] = []any{7} }))),
		string(payloadOf(t, withClaims(t, func(m map[string]any) {
			m["requested_record"] = map[string]any{"resourceType": "Patient", "identifier": []any{map[string]any{"value": "9000000009"}}}
		}))),
		// PHP's json_encode escapes every slash; others escape non-ASCII.
		strings.ReplaceAll(valid, "/", `\/`),
		strings.Replace(valid, `"Example"`, `"Ex\u00e4mple \ud83d\ude00 \ud800 \"q\""`, 1),
		strings.Replace(valid, `"model"`, `"model":"a","model"`, 1),
		strings.Replace(valid, `"iss"`, `"x":1,"x":2,"iss"`, 1),
		strings.Replace(valid, `"iss"`, `"Iss":"a","iss"`, 1),
		strings.Replace(valid, `"identifier"`, `"Identifier"`, 1),
		strings.Replace(valid, `"Alex"`, `"Alex",null`, 1),
		" \n" + valid + "\t ",
		valid[:len(valid)-1],
		`{}`, `[]`, `null`, `{"iss":"\u00"}`, "{\"iss\":\"\xff\"}", `{"requesting_device":{}}`,
		`{"iss":1,"requesting_device":{"resourceType":"Device","identifier":[{"system":null}]}}`,
		`{"requesting_organization":{"resourceType":"Organization","meta":[[[[[]]]]],"text":{"a":{"b":[1e5,-0.5,1e999,true,false,null]}}}}`,
	}
	b := make([][]byte, len(out))
	for i, p := range out {
		b[i] = []byte(p)
	}
	return b
}

// checkParse holds ParseAuthorization and Check to what any input must
// give: a well-formed error or a token that parses again to itself and
// that Check judges the same way each time; and a token Check accepts
// mints again, from its typed claims, into one Check accepts.
func checkParse(t *testing.T, header string, in Interaction) {
	tok, err := ParseAuthorization(header)
	if gtok, gerr := parseAuthorization(header, true); !reflect.DeepEqual(gtok, tok) || !reflect.DeepEqual(gerr, err) {
		t.Fatalf("the typed and the generic way differ:\n%+v %v\n%+v %v", tok, err, gtok, gerr)
	}
	if err != nil {
		if err.Claim == "" || err.Reason == "" || (err.Status != 400 && err.Status != 422) {
			t.Fatalf("malformed error %+v", err)
		}
	} else {
		if tok == nil || "Bearer "+tok.Raw != header || !strings.HasSuffix(tok.Raw, ".") {
			t.Fatalf("token %+v from %q", tok, header)
		}
		again, err2 := ParseAuthorization("Bearer " + tok.Raw)
		if err2 != nil || !reflect.DeepEqual(again, tok) {
			t.Fatalf("re-parse differs: %v", err2)
		}
		e1 := JWTPolicy{}.Check(tok, in, testNow)
		e2 := JWTPolicy{}.Check(again, in, testNow)
		if !reflect.DeepEqual(e1, e2) {
			t.Fatalf("Check inconsistent: %v vs %v", e1, e2)
		}
		if e1 != nil && (e1.Claim == "" || (e1.Status != 400 && e1.Status != 422)) {
			t.Fatalf("malformed check error %+v", e1)
		}
		if e1 == nil {
			minted, merr := jwt.NewWithClaims(jwt.SigningMethodNone, tok.Claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
			if merr != nil {
				t.Fatal(merr)
			}
			if _, cerr := (JWTPolicy{}).CheckAuthorization("Bearer "+minted, in, testNow); cerr != nil {
				t.Fatalf("accepted claims minted again are refused: %v\n%s", cerr, payloadOf(t, "Bearer "+minted))
			}
		}
		_ = tok.Claims.Summary()
	}
	tok3, err3 := JWTPolicy{}.CheckAuthorization(header, in, testNow)
	if err != nil && !reflect.DeepEqual(err3, err) {
		t.Fatalf("CheckAuthorization error %v, ParseAuthorization error %v", err3, err)
	}
	if err == nil && !reflect.DeepEqual(tok3, tok) {
		t.Fatalf("CheckAuthorization token differs")
	}
}
