package faults

import (
	"strings"
	"testing"

	"sspemu/gpconnect"
)

func ptr[T any](v T) *T { return &v }

// ok is a valid rule the cases below change one thing of.
func ok() Rule {
	return Rule{Name: "r", At: AtSSP, Status: 502}
}

func TestRuleValid(t *testing.T) {
	cases := []struct {
		name     string
		rule     Rule
		wantCode string
	}{
		{"502 at the SSP gets its only token", Rule{Name: "a", At: AtSSP, Status: 502}, SSPCommunication},
		{"504 at the SSP", Rule{Name: "a", At: AtSSP, Status: 504}, SSPCommunication},
		{"400 at the SSP", Rule{Name: "a", At: AtSSP, Status: 400}, SSPEndpoint},
		{"405 at the SSP", Rule{Name: "a", At: AtSSP, Status: 405}, SSPMethod},
		{"415 at the SSP defaults to the table's token", Rule{Name: "a", At: AtSSP, Status: 415}, SSPMediaType},
		{"415 at the SSP as the live SSP answers", Rule{Name: "a", At: AtSSP, Status: 415, Code: SSPSender}, SSPSender},
		{"403 at the SSP with a chosen token", Rule{Name: "a", At: AtSSP, Status: 403, Code: SSPAgreement}, SSPAgreement},
		{"a token written as ssp-behaviour.md writes it", Rule{Name: "a", At: AtSSP, Status: 403, Code: "FOT_CHECK_FAILED_MESSAGESENDER_<from>_MESSAGERECEIVER_<to>"}, SSPAgreement},
		{"endpoint token with placeholders", Rule{Name: "a", At: AtSSP, Status: 400, Code: "ENDPOINT_<registered>_CPAID_<cpaid>_VARIES_FROM_TARGETURL_<target>"}, SSPEndpoint},
		{"a token in lower case", Rule{Name: "a", At: AtSSP, Status: 403, Code: "asid_check_failed_messagesender"}, SSPSender},
		{"500 at a provider", Rule{Name: "a", At: AtProvider, Status: 500}, gpconnect.CodeInternalServerError},
		{"409 at a provider", Rule{Name: "a", At: AtProvider, Status: 409}, gpconnect.CodeDuplicateRejected},
		{"404 at a provider", Rule{Name: "a", At: AtProvider, Status: 404, Code: "patient_not_found"}, gpconnect.CodePatientNotFound},
		{"403 at a provider", Rule{Name: "a", At: AtProvider, Status: 403, Code: gpconnect.CodeNoPatientConsent}, gpconnect.CodeNoPatientConsent},
		{"reset", Rule{Name: "a", At: AtProvider, Reset: true}, ""},
		{"fixed delay", Rule{Name: "a", At: AtProvider, Delay: &Delay{Fixed: "2s"}}, ""},
		{"zero delay", Rule{Name: "a", At: AtProvider, Delay: &Delay{Fixed: "0s"}}, ""},
		{"uniform delay", Rule{Name: "a", At: AtProvider, Delay: &Delay{Uniform: &Uniform{Min: "100ms", Max: "100ms"}}}, ""},
		{"lognormal delay", Rule{Name: "a", At: AtSSP, Delay: &Delay{Lognormal: &Lognormal{Median: "300ms", Sigma: 0.5}}}, ""},
		{"every match field", Rule{Name: "a.b_c-9", At: AtSSP, Status: 502, Match: Match{
			Interaction: "appointments", From: "200000000359", To: "918999198993", Method: "post",
			Path: `^/Appointment$`, NHSNumber: "9690937286"}, Probability: ptr(0.25), Times: ptr(2)}, SSPCommunication},
		{"a full URN", Rule{Name: "a", At: AtSSP, Status: 502, Match: Match{Interaction: gpconnect.SearchSlot}}, SSPCommunication},
		{"probability 0 and 1", Rule{Name: "a", At: AtSSP, Status: 502, Probability: ptr(0.0)}, SSPCommunication},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			comp, err := c.rule.compile()
			if err != nil {
				t.Fatalf("valid rule refused: %v", err)
			}
			if comp.code != c.wantCode || comp.rule.Code != c.wantCode {
				t.Errorf("code = %q (listed %q), want %q", comp.code, comp.rule.Code, c.wantCode)
			}
		})
	}
}

func TestRuleMethodCanonical(t *testing.T) {
	c, err := Rule{Name: "a", At: AtSSP, Reset: true, Match: Match{Method: "put"}}.compile()
	if err != nil {
		t.Fatal(err)
	}
	if c.rule.Match.Method != "PUT" {
		t.Errorf("method listed as %q, want PUT", c.rule.Match.Method)
	}
}

func TestRuleInvalid(t *testing.T) {
	cases := []struct {
		name string
		rule Rule
		want []string // each a whole problem line
	}{
		{"no name", Rule{At: AtSSP, Status: 502}, []string{"name: missing: every rule needs a name (letters, digits, '.', '_', '-'), used by the admin API, the Sspemu-Fault header, the audit and metrics"}},
		{"name with a slash", Rule{Name: "a/b", At: AtSSP, Status: 502}, []string{`name: "a/b" must be 1 to 64 of letters, digits, '.', '_' and '-', starting with a letter or digit`}},
		{"no at", Rule{Name: "a", Reset: true}, []string{"at: missing: ssp (the SSP answers instead of forwarding) or provider (the practice answers)"}},
		{"bad at", Rule{Name: "a", At: "consumer", Reset: true}, []string{`at: "consumer" is not ssp or provider`}},
		{"no action", Rule{Name: "a", At: AtSSP}, []string{"action: missing: give exactly one of delay, status (with code) or reset"}},
		{"two actions", Rule{Name: "a", At: AtSSP, Status: 502, Reset: true}, []string{"action: more than one of delay, status and reset: a rule does one thing; write one rule per action"}},
		{"code without status", Rule{Name: "a", At: AtSSP, Reset: true, Code: "X"}, []string{`code: "X" given without status: set status to the HTTP status it belongs to`}},
		{"provider status at the SSP", Rule{Name: "a", At: AtSSP, Status: 500}, []string{"status: 500 is not a status the SSP answers with itself: one of 400, 403, 405, 415, 502, 504 (a provider's own statuses need at: provider)"}},
		{"403 at the SSP needs a code", Rule{Name: "a", At: AtSSP, Status: 403}, []string{"code: missing: status 403 at the SSP needs one of ASID_CHECK_FAILED_MESSAGESENDER, PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER, FOT_CHECK_FAILED_MESSAGESENDER_MESSAGERECEIVER"}},
		{"token of another status", Rule{Name: "a", At: AtSSP, Status: 502, Code: SSPAgreement}, []string{`code: "FOT_CHECK_FAILED_MESSAGESENDER_MESSAGERECEIVER" is not an SSP token of status 502: one of ERROR_COMMUNICATING_TO_ENDPOINT_URL`}},
		{"SSP status 502 at a provider", Rule{Name: "a", At: AtProvider, Status: 502}, []string{"status: 502 is not a status a GP Connect provider answers with: one of 400, 403, 404, 409, 415, 422, 500, 501"}},
		{"404 at a provider needs a code", Rule{Name: "a", At: AtProvider, Status: 404}, []string{"code: missing: status 404 at a provider needs one of NO_RECORD_FOUND, ORGANISATION_NOT_FOUND, PATIENT_NOT_FOUND, PRACTITIONER_NOT_FOUND"}},
		{"code of another status", Rule{Name: "a", At: AtProvider, Status: 400, Code: "PATIENT_NOT_FOUND"}, []string{`code: "PATIENT_NOT_FOUND" is not a GP Connect error code of status 400: one of BAD_REQUEST, INVALID_IDENTIFIER_SYSTEM, INVALID_IDENTIFIER_VALUE, INVALID_NHS_NUMBER, INVALID_PATIENT_DEMOGRAPHICS`}},
		{"uniform max below min", Rule{Name: "a", At: AtSSP, Delay: &Delay{Uniform: &Uniform{Min: "2s", Max: "1s"}}}, []string{"delay.uniform.max: must be ≥ min (1s < 2s)"}},
		{"uniform bounds not durations", Rule{Name: "a", At: AtSSP, Delay: &Delay{Uniform: &Uniform{Min: "2", Max: ""}}}, []string{
			`delay.uniform.min: "2" is not a Go duration such as 150ms or 2s`,
			"delay.uniform.max: missing: a Go duration such as 150ms or 2s"}},
		{"fixed with a space", Rule{Name: "a", At: AtSSP, Delay: &Delay{Fixed: "2 s"}}, []string{`delay.fixed: "2 s" is not a Go duration such as 150ms or 2s`}},
		{"negative delay", Rule{Name: "a", At: AtSSP, Delay: &Delay{Fixed: "-1s"}}, []string{"delay.fixed: -1s is not between 0 and 10m0s"}},
		{"delay too long", Rule{Name: "a", At: AtSSP, Delay: &Delay{Fixed: "11m"}}, []string{"delay.fixed: 11m is not between 0 and 10m0s"}},
		{"lognormal sigma", Rule{Name: "a", At: AtSSP, Delay: &Delay{Lognormal: &Lognormal{Median: "1s", Sigma: -1}}}, []string{"delay.lognormal.sigma: -1 must be between 0 and 4 (0.5 is a moderate spread)"}},
		{"empty delay", Rule{Name: "a", At: AtSSP, Delay: &Delay{}}, []string{"delay: give one of fixed, uniform (min, max) or lognormal (median, sigma)"}},
		{"two delays", Rule{Name: "a", At: AtSSP, Delay: &Delay{Fixed: "1s", Lognormal: &Lognormal{Median: "1s"}}}, []string{"delay: give only one of fixed, uniform and lognormal"}},
		{"probability above 1", func() Rule { r := ok(); r.Probability = ptr(1.5); return r }(), []string{"probability: 1.5 is not between 0 and 1 (0.25 acts on a quarter of matching requests)"}},
		{"times 0", func() Rule { r := ok(); r.Times = ptr(0); return r }(), []string{"times: 0 must be at least 1 (leave times out to act on every match)"}},
		{"unknown interaction", func() Rule { r := ok(); r.Match.Interaction = "slots"; return r }(), []string{`match.interaction: unknown interaction or group "slots" (groups: foundations, appointments, structured; or a full URN starting urn:nhs:names:services:gpconnect:)`}},
		{"bad ASIDs", func() Rule { r := ok(); r.Match.From, r.Match.To = "2000", "x"; return r }(), []string{
			`match.from: "2000" is not an ASID: 12 digits, as in the Ssp-From and Ssp-To headers`,
			`match.to: "x" is not an ASID: 12 digits, as in the Ssp-From and Ssp-To headers`}},
		{"bad method", func() Rule { r := ok(); r.Match.Method = "DELETE"; return r }(), []string{`match.method: "DELETE" is not GET, POST or PUT, the verbs GP Connect uses`}},
		{"bad path", func() Rule { r := ok(); r.Match.Path = "(/Patient"; return r }(), []string{"match.path: not a Go regular expression: error parsing regexp: missing closing ): `(/Patient`"}},
		{"bad NHS number", func() Rule { r := ok(); r.Match.NHSNumber = "969 093 7286"; return r }(), []string{`match.nhs_number: "969 093 7286" is not an NHS number: 10 digits, no spaces`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.rule.Validate()
			if err == nil {
				t.Fatal("invalid rule accepted")
			}
			var got []string
			for _, e := range flatten(err) {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

// TestConfigValidateNamesRuleAndField checks the message form of design.md
// and that every problem of every rule is reported at once.
func TestConfigValidateNamesRuleAndField(t *testing.T) {
	cfg := Config{Rules: []Rule{
		{Name: "fine", At: AtSSP, Status: 502},
		{Name: "no-action", At: AtSSP},
		{Name: "slow-slots", At: AtProvider, Delay: &Delay{Uniform: &Uniform{Min: "2s", Max: "1s"}}, Probability: ptr(2.0)},
		{Name: "fine", At: AtProvider, Reset: true},
	}}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	want := strings.Join([]string{
		`faults.rules[1] "no-action": action: missing: give exactly one of delay, status (with code) or reset`,
		`faults.rules[2] "slow-slots": delay.uniform.max: must be ≥ min (1s < 2s)`,
		`faults.rules[2] "slow-slots": probability: 2 is not between 0 and 1 (0.25 acts on a quarter of matching requests)`,
		`faults.rules[3] "fine": name: already used by faults.rules[0]; names must be unique`,
	}, "\n")
	if err.Error() != want {
		t.Errorf("got:\n%s\nwant:\n%s", err, want)
	}
	if err := (Config{Rules: []Rule{ok()}}).Validate(); err != nil {
		t.Errorf("valid configuration refused: %v", err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("empty configuration refused: %v", err)
	}
}

func TestNormalToken(t *testing.T) {
	for in, want := range map[string]string{
		"ASID_CHECK_FAILED_MESSAGESENDER_<from>":                             SSPSender,
		"ENDPOINT_<registered>_CPAID_<cpaid>_VARIES_FROM_TARGETURL_<target>": SSPEndpoint,
		"ERROR_COMMUNICATING_TO_ENDPOINT_URL_<target>":                       SSPCommunication,
		"405: Method Not Allowed":                                            SSPMethod,
		"<":                                                                  "<",
		"a<b":                                                                "a<b",
		"__x__":                                                              "x",
	} {
		if got := normalToken(in); got != want {
			t.Errorf("normalToken(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEverySSPToken renders every SSP code and compares it with the tokens
// the registry itself writes (agreements/decide.go, proxy/forward.go).
func TestEverySSPToken(t *testing.T) {
	v := TokenValues{From: "200000000359", To: "918999198993", Target: "https://x/A20047/STU3/1/gpconnect/metadata",
		Endpoint: "https://x/A20047/STU3/1/gpconnect", CPAID: "S20001A000002"}
	want := map[string]string{
		SSPEndpoint:      "ENDPOINT_https://x/A20047/STU3/1/gpconnect_CPAID_S20001A000002_VARIES_FROM_TARGETURL_https://x/A20047/STU3/1/gpconnect/metadata",
		SSPSender:        "ASID_CHECK_FAILED_MESSAGESENDER_200000000359",
		SSPReceiver:      "PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_918999198993",
		SSPAgreement:     "FOT_CHECK_FAILED_MESSAGESENDER_200000000359_MESSAGERECEIVER_918999198993",
		SSPMethod:        "405: Method Not Allowed",
		SSPMediaType:     "Unsupported_Media_Type",
		SSPCommunication: "ERROR_COMMUNICATING_TO_ENDPOINT_URL_https://x/A20047/STU3/1/gpconnect/metadata",
	}
	for _, c := range sspCodes {
		for _, st := range c.statuses {
			s := Status{Rule: "r", At: AtSSP, Status: st, Code: c.code}
			if got := s.Token(v); got != want[c.code] {
				t.Errorf("%d %s: token %q, want %q", st, c.code, got, want[c.code])
			}
			o := s.Refusal(v).Outcome()
			if o.Profile != "" || o.System == gpconnect.ProviderCodingSystem {
				t.Errorf("%d %s: not the SSP's shape: %+v", st, c.code, o)
			}
			if st != 405 && (o.Display != want[c.code] || o.Diagnostics != want[c.code]) {
				t.Errorf("%d %s: display %q diagnostics %q, want the token in both", st, c.code, o.Display, o.Diagnostics)
			}
		}
	}
	if got := (Status{At: AtProvider, Status: 500, Code: gpconnect.CodeInternalServerError}).Token(v); got != "" {
		t.Errorf("provider status has an SSP token %q", got)
	}
}

func TestProviderOutcome(t *testing.T) {
	s := Status{Rule: "fail-twice", At: AtProvider, Status: 500, Code: gpconnect.CodeInternalServerError}
	o := s.Refusal(TokenValues{}).Outcome()
	if o.Profile != gpconnect.OutcomeProfile || o.Code != "INTERNAL_SERVER_ERROR" || o.IssueCode != "exception" {
		t.Errorf("not the provider's shape: %+v", o)
	}
	want := `fault rule "fail-twice" made the practice answer 500 INTERNAL_SERVER_ERROR (sspemu fault injection, not a real failure)`
	if o.Diagnostics != want || s.Reason() != want {
		t.Errorf("diagnostics %q, want %q", o.Diagnostics, want)
	}
}
