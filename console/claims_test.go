package console

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"sspemu/gpconnect"
	"sspemu/proxy"
)

// bearer encodes an unsigned JWT with the given payload.
func bearer(payload string) string {
	return "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + "."
}

func TestJudgeToken(t *testing.T) {
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	read, _ := gpconnect.Lookup(gpconnect.ReadPatient)
	spec := func(edit func(s *gpconnect.TokenSpec)) string {
		s := gpconnect.DefaultTokenSpec(read, root, now)
		if edit != nil {
			edit(&s)
		}
		return "Bearer " + s.Encode()
	}
	tests := []struct {
		name     string
		authz    string
		failed   []string // the claims that must fail, every other one passes
		envelope string   // the part named when the token cannot be read
	}{
		{"valid", spec(nil), nil, ""},
		{"expired", spec(func(s *gpconnect.TokenSpec) { s.IssuedAt = now.Add(-time.Hour) }), []string{"exp"}, ""},
		{"several faults at once", spec(func(s *gpconnect.TokenSpec) {
			s.ReasonForRequest = "secondaryuses"
			s.Scope = gpconnect.ScopeOrgRead
			s.DeviceModel = ""
			s.Audience = "https://elsewhere.example/fhir"
		}), []string{"aud", "reason_for_request", "requested_scope", "requesting_device"}, ""},
		{"sub is not the practitioner", spec(func(s *gpconnect.TokenSpec) { s.Subject = "99" }), []string{"sub"}, ""},
		{"practitioner without a family name", spec(func(s *gpconnect.TokenSpec) { s.Family = "" }), []string{"requesting_practitioner"}, ""},
		{"practitioner broken and sub different", spec(func(s *gpconnect.TokenSpec) { s.Family, s.Subject = "", "99" }),
			[]string{"sub", "requesting_practitioner"}, ""},
		{"no organisation ODS code", spec(func(s *gpconnect.TokenSpec) { s.ODSCode = "" }), []string{"requesting_organization"}, ""},
		{"lifetime not 300 s", spec(func(s *gpconnect.TokenSpec) { s.Lifetime = time.Hour }), []string{"exp"}, ""},
		{"DSTU2 requested_record", bearer(`{"iss":"https://c.example/","sub":"1","aud":"` + root + `","exp":1795510800,"iat":1795510500,` +
			`"reason_for_request":"directcare","requested_scope":"patient/*.read","requested_record":{"resourceType":"Patient"},` +
			`"requesting_device":{"resourceType":"Device","identifier":[{"system":"s","value":"v"}],"model":"m","version":"1"},` +
			`"requesting_organization":{"resourceType":"Organization","name":"O","identifier":[{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"Y1"}]},` +
			`"requesting_practitioner":{"resourceType":"Practitioner","id":"1","name":[{"family":"F","given":["G"]}],"identifier":[{"system":"https://fhir.nhs.uk/Id/sds-user-id","value":"U"},{"system":"https://c.example/id","value":"1"}]}}`),
			[]string{"requested_record"}, ""},
		{"unknown member in the device, and a wrong reason", bearer(`{"iss":"https://c.example/","sub":"1","aud":"` + root + `","exp":1795510800,"iat":1795510500,` +
			`"reason_for_request":"secondaryuses","requested_scope":"patient/*.read",` +
			`"requesting_device":{"resourceType":"Device","identifier":[{"system":"s","value":"v"}],"model":"m","version":"1","colour":"red"},` +
			`"requesting_organization":{"resourceType":"Organization","name":"O","identifier":[{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"Y1"}]},` +
			`"requesting_practitioner":{"resourceType":"Practitioner","id":"1","name":[{"family":"F","given":["G"]}],"identifier":[{"system":"https://fhir.nhs.uk/Id/sds-user-id","value":"U"},{"system":"https://c.example/id","value":"1"}]}}`),
			[]string{"reason_for_request", "requesting_device"}, ""},
		{"missing claims", bearer(`{"iss":"https://c.example/"}`), []string{"sub", "aud", "exp", "iat", "reason_for_request", "requested_scope",
			"requesting_device", "requesting_organization", "requesting_practitioner"}, ""},
		{"no header", "", nil, "Authorization"},
		{"not bearer", "Basic dXNlcjpwYXNz", nil, "Authorization"},
		{"signed", strings.TrimSuffix(spec(nil), ".") + ".c2ln", nil, "signature"},
		{"payload not JSON", "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.bm90IGpzb24.", nil, "payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := judgeToken(tt.authz, read, root, 300*time.Second, now)
			if tt.envelope != "" {
				if v.Envelope == nil || v.Envelope.Name != tt.envelope || v.Envelope.Reason == "" || len(v.Claims) != 0 {
					t.Fatalf("envelope %+v, claims %v; want the envelope part %s named", v.Envelope, v.Claims, tt.envelope)
				}
				return
			}
			if v.Envelope != nil || !v.Complete {
				t.Fatalf("envelope %+v, complete %v", v.Envelope, v.Complete)
			}
			var failed []string
			for _, c := range v.Claims {
				switch c.Verdict {
				case proxy.VerdictFailed:
					failed = append(failed, c.Name)
					if c.Reason == "" {
						t.Errorf("claim %s failed without a reason", c.Name)
					}
				case proxy.VerdictPassed:
				default:
					t.Errorf("claim %s: verdict %q", c.Name, c.Verdict)
				}
			}
			slices.Sort(failed)
			want := slices.Clone(tt.failed)
			slices.Sort(want)
			if !slices.Equal(failed, want) {
				t.Errorf("failed claims %v, want %v", failed, want)
			}
			// The first failure is the one the jwt rule itself names.
			policyErr := gpconnect.JWTPolicy{Skew: 300 * time.Second}.Check(mustParse(t, tt.authz), read, now)
			if policyErr == nil {
				policyErr = gpconnect.CheckAudience(mustParse(t, tt.authz), root)
			}
			if (policyErr == nil) != (len(tt.failed) == 0) || (policyErr != nil && !slices.Contains(failed, policyErr.Claim)) {
				t.Errorf("the rule says %v, the verdicts %v", policyErr, failed)
			}
		})
	}
}

func mustParse(t *testing.T, authz string) *gpconnect.Token {
	t.Helper()
	tok, _ := gpconnect.ParseAuthorization(authz)
	if tok == nil {
		t.Fatalf("token not readable: %q", authz)
	}
	return tok
}

// FuzzJudgeToken gives judgeToken any Authorization header: it returns, with
// a known verdict for every claim, and never names a claim both passed and
// failed.
func FuzzJudgeToken(f *testing.F) {
	read, _ := gpconnect.Lookup(gpconnect.ReadPatient)
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	f.Add("Bearer " + gpconnect.DefaultTokenSpec(read, root, now).Encode())
	f.Add(bearer(`{"iss":"x","sub":"1","requesting_practitioner":{"resourceType":"Practitioner","id":"2"}}`))
	f.Add(bearer(`{}`))
	f.Add("Bearer a.b.")
	f.Add("")
	f.Fuzz(func(t *testing.T, authz string) {
		v := judgeToken(authz, read, root, 300*time.Second, now)
		seen := map[string]bool{}
		for _, c := range v.Claims {
			if seen[c.Name] {
				t.Fatalf("claim %s judged twice", c.Name)
			}
			seen[c.Name] = true
			switch c.Verdict {
			case proxy.VerdictPassed, proxy.VerdictFailed, verdictNotJudged:
			default:
				t.Fatalf("claim %s: verdict %q", c.Name, c.Verdict)
			}
		}
		if v.Envelope == nil && len(v.Claims) < len(claimOrder) {
			t.Fatalf("a readable token with %d claims judged", len(v.Claims))
		}
	})
}
