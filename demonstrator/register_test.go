package demonstrator

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"sspemu/fhir"
	"sspemu/gpconnect"
)

// registrationOf is a $gpc.registerpatient body of one Patient, given as
// JSON members after resourceType.
func registrationOf(members string) []byte {
	return []byte(`{"resourceType":"Parameters","parameter":[{"name":"registerPatient","resource":{"resourceType":"Patient",` + members + `}}]}`)
}

const (
	regNHS  = `"identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9690937405"}]`
	regName = `"name":[{"use":"official","family":"NEWMAN","given":["Nia"]}]`
	regBase = regNHS + `,` + regName + `,"birthDate":"1999-04-01"`
)

// TestDecodeRegistrationRules walks the rules of Register a patient: what
// a registration must carry, may carry and must not carry.
func TestDecodeRegistrationRules(t *testing.T) {
	for _, tc := range []struct {
		name    string
		members string
		status  int
		code    string
		diag    string // part of the diagnostics
	}{
		{"minimum details", regBase, 0, "", ""},
		{"no NHS number", regName + `,"birthDate":"1999-04-01"`, 422, gpconnect.CodeInvalidResource, "minimum details"},
		{"NHS number fails modulus 11", strings.Replace(regBase, "9690937405", "9690937406", 1), 400, gpconnect.CodeInvalidNHSNumber, "9690937406"},
		{"two NHS numbers", `"identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9690937405"},{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9690937286"}],` + regName + `,"birthDate":"1999-04-01"`,
			422, gpconnect.CodeInvalidResource, "more than one NHS number"},
		{"identifier without system", strings.Replace(regBase, `}]`, `},{"value":"x"}]`, 1), 422, gpconnect.CodeInvalidResource, "identifier 2"},
		{"another identifier with a system", strings.Replace(regBase, `}]`, `},{"system":"https://example.org","value":"x"}]`, 1), 0, "", ""},
		{"no official name", regNHS + `,"name":[{"use":"usual","family":"NEWMAN","given":["Nia"]}],"birthDate":"1999-04-01"`, 422, gpconnect.CodeInvalidResource, "use official"},
		{"two official names", regNHS + `,"name":[{"use":"official","family":"A","given":["B"]},{"use":"official","family":"C","given":["D"]}],"birthDate":"1999-04-01"`,
			422, gpconnect.CodeInvalidResource, "more than one name"},
		{"a name without use", regBase + `,"name":[{"use":"official","family":"A","given":["B"]},{"family":"C"}]`, 422, gpconnect.CodeInvalidResource, "no use"},
		{"official name without given", regNHS + `,"name":[{"use":"official","family":"NEWMAN"}],"birthDate":"1999-04-01"`, 422, gpconnect.CodeInvalidResource, "given"},
		{"no birth date", regNHS + `,` + regName, 422, gpconnect.CodeInvalidResource, "birthDate"},
		{"birth date in the future", regNHS + `,` + regName + `,"birthDate":"2999-01-01"`, 422, gpconnect.CodeInvalidResource, "future"},
		{"bad gender", regBase + `,"gender":"f"`, 422, gpconnect.CodeInvalidResource, "gender"},
		{"no gender", regBase, 0, "", ""},
		{"active", regBase + `,"active":true`, 422, gpconnect.CodeInvalidResource, "active"},
		{"deceased and marital status, both named", regBase + `,"deceasedBoolean":false,"maritalStatus":{"text":"M"}`, 422, gpconnect.CodeInvalidResource, "deceasedBoolean, maritalStatus"},
		{"home and temp addresses", regBase + `,"address":[{"use":"home","city":"Leeds"},{"use":"temp","city":"York"}]`, 0, "", ""},
		{"two temp addresses", regBase + `,"address":[{"use":"temp"},{"use":"temp"}]`, 422, gpconnect.CodeInvalidResource, "more than one address"},
		{"work address", regBase + `,"address":[{"use":"work"}]`, 422, gpconnect.CodeInvalidResource, `"work"`},
		{"address without use", regBase + `,"address":[{"city":"Leeds"}]`, 422, gpconnect.CodeInvalidResource, `""`},
		{"phone uses and an email", regBase + `,"telecom":[{"system":"phone","value":"1","use":"home"},{"system":"phone","value":"2","use":"temp"},{"system":"email","value":"a@b","use":"temp"}]`, 0, "", ""},
		{"two home phones", regBase + `,"telecom":[{"system":"phone","value":"1","use":"home"},{"system":"phone","value":"2","use":"home"}]`, 422, gpconnect.CodeInvalidResource, "more than one phone"},
		{"two emails", regBase + `,"telecom":[{"system":"email","value":"a@b"},{"system":"email","value":"c@d"}]`, 422, gpconnect.CodeInvalidResource, "more than one email"},
		{"phone without use", regBase + `,"telecom":[{"system":"phone","value":"1"}]`, 422, gpconnect.CodeInvalidResource, "use home"},
		{"fax", regBase + `,"telecom":[{"system":"fax","value":"1","use":"work"}]`, 422, gpconnect.CodeInvalidResource, "fax"},
		{"NHSCommunication", regBase + `,"extension":[{"url":"` + extNHSCommunication + `","extension":[{"url":"language","valueCodeableConcept":{"coding":[{"system":"` + codeHumanLanguage + `","code":"de","display":"German"}]}},{"url":"interpreterRequired","valueBoolean":true}]}]`, 0, "", ""},
		{"two NHSCommunication", regBase + `,"extension":[{"url":"` + extNHSCommunication + `","extension":[{"url":"language","valueCodeableConcept":{"coding":[{"system":"` + codeHumanLanguage + `","code":"de"}]}}]},{"url":"` + extNHSCommunication + `","extension":[{"url":"language","valueCodeableConcept":{"coding":[{"system":"` + codeHumanLanguage + `","code":"fr"}]}}]}]`,
			422, gpconnect.CodeInvalidResource, "more than one NHSCommunication"},
		{"NHSCommunication without language", regBase + `,"extension":[{"url":"` + extNHSCommunication + `","extension":[{"url":"interpreterRequired","valueBoolean":true}]}]`, 422, gpconnect.CodeInvalidResource, "language"},
		{"another extension", regBase + `,"extension":[{"url":"https://example.org/x","valueString":"y"}]`, 422, gpconnect.CodeInvalidResource, "https://example.org/x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := registrationOf(tc.members)
			if !json.Valid(body) {
				t.Fatalf("the test's body is not JSON: %s", body)
			}
			_, o := decodeRegistration(body, testNow)
			switch {
			case tc.status == 0 && o != nil:
				t.Fatalf("refused: %v", o)
			case tc.status == 0:
			case o == nil:
				t.Fatalf("accepted, want %d %s", tc.status, tc.code)
			case o.Status != tc.status || o.Code != tc.code || !strings.Contains(o.Reason, tc.diag):
				t.Fatalf("%v, want %d %s mentioning %q", o, tc.status, tc.code, tc.diag)
			}
		})
	}
}

// TestDecodeRegistrationKeeps checks what a registration keeps: every given
// name, other names, addresses, telecoms and the language, as sent.
func TestDecodeRegistrationKeeps(t *testing.T) {
	yes := true
	p, o := decodeRegistration(registrationOf(regNHS+`,"name":[{"use":"official","family":"NEWMAN","given":["Nia","Rose","May"],"prefix":["Ms"]},{"use":"nickname","given":["Ni"]}],`+
		`"gender":"female","birthDate":"1999-04-01","address":[{"use":"temp","line":["1 Trevelyan Square","Boar Lane"],"city":"Leeds","postalCode":"LS1 6AE"}],`+
		`"telecom":[{"system":"phone","value":"01234567891","use":"mobile"},{"system":"email","value":"nia@example.com","use":"temp"}],`+
		`"extension":[{"url":"`+extNHSCommunication+`","extension":[{"url":"language","valueCodeableConcept":{"coding":[{"system":"`+codeHumanLanguage+`","code":"de","display":"German"}]}},{"url":"interpreterRequired","valueBoolean":true}]}]`), testNow)
	if o != nil {
		t.Fatal(o)
	}
	want := Patient{
		NHSNumber: "9690937405", Family: "NEWMAN", Given: "Nia", MoreGiven: []string{"Rose", "May"}, Prefix: "Ms",
		OtherNames: []fhir.HumanName{{Use: "nickname", Given: []string{"Ni"}}}, Gender: "female", BirthDate: "1999-04-01",
		Address:       []fhir.Address{{Use: "temp", Line: []string{"1 Trevelyan Square", "Boar Lane"}, City: "Leeds", PostalCode: "LS1 6AE"}},
		Telecom:       []fhir.ContactPoint{{System: "phone", Value: "01234567891", Use: "mobile"}, {System: "email", Value: "nia@example.com", Use: "temp"}},
		Communication: &Communication{Language: fhir.Coding{System: codeHumanLanguage, Code: "de", Display: "German"}, InterpreterRequired: &yes},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", p, want)
	}
}

// TestCheckPDS walks Register a patient's PDS requirements, the
// verification rule included.
func TestCheckPDS(t *testing.T) {
	sent := Patient{NHSNumber: "9690937405", Family: "NEWMAN", Given: "Nia", BirthDate: "1999-04-01"}
	rec := PDSRecord{NHSNumber: "9690937405", Family: "Newman", Given: []string{"Nia"}, BirthDate: "1999-04-01", Gender: "female"}
	for _, tc := range []struct {
		name  string
		edit  func(r *PDSRecord, s *Patient)
		found bool
		code  string
	}{
		{"verified by birth date", nil, true, ""},
		{"verified by birth date alone, names differ", func(r *PDSRecord, _ *Patient) { r.Family, r.Given = "OTHER", []string{"Zed"} }, true, ""},
		{"two birth date parts, family prefix and initial", func(r *PDSRecord, s *Patient) { r.BirthDate, s.Family, s.Given = "1999-04-02", "NEWBERY", "Nina" }, true, ""},
		{"two birth date parts, another family", func(r *PDSRecord, _ *Patient) { r.BirthDate, r.Family = "1999-04-02", "NASH" }, true, gpconnect.CodeInvalidPatientDemographics},
		{"two birth date parts, another initial", func(r *PDSRecord, _ *Patient) { r.BirthDate, r.Given = "1999-04-02", []string{"Ann"} }, true, gpconnect.CodeInvalidPatientDemographics},
		{"one birth date part", func(r *PDSRecord, _ *Patient) { r.BirthDate = "1998-05-01" }, true, gpconnect.CodeInvalidPatientDemographics},
		{"not on PDS", nil, false, gpconnect.CodeInvalidPatientDemographics},
		{"superseded", func(r *PDSRecord, _ *Patient) { r.NHSNumber = "9690937286" }, true, gpconnect.CodeInvalidNHSNumber},
		{"deceased", func(r *PDSRecord, _ *Patient) { r.Deceased = true }, true, gpconnect.CodeInvalidPatientDemographics},
		{"sensitive", func(r *PDSRecord, _ *Patient) { r.Sensitive = true }, true, gpconnect.CodeInvalidPatientDemographics},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, s := rec, sent
			if tc.edit != nil {
				tc.edit(&r, &s)
			}
			o := checkPDS(r, tc.found, s)
			switch {
			case tc.code == "" && o != nil:
				t.Fatalf("refused: %v", o)
			case tc.code != "" && (o == nil || o.Code != tc.code || o.Status != http.StatusBadRequest):
				t.Fatalf("%v, want 400 %s", o, tc.code)
			}
		})
	}
}

// TestRegisterWithDemographics registers through the edge with a PDS:
// the PDS record fills what the consumer left out, an unknown number is
// refused before the practice's own records are looked at, and the
// practice's inactive patient is re-activated under its own logical ID.
func TestRegisterWithDemographics(t *testing.T) {
	held := map[string]PDSRecord{
		"9690937405": {NHSNumber: "9690937405", Family: "NEWMAN", Given: []string{"Nia"}, BirthDate: "1999-04-01", Gender: "female",
			Address: &fhir.Address{Use: "home", Line: []string{"3 Park Row"}, PostalCode: "LS1 5HD"},
			Telecom: []fhir.ContactPoint{{System: "phone", Value: "01134960999", Use: "home"}}},
		"9690937480": {NHSNumber: "9690937480", Family: "DOYLE", Given: []string{"Patrick"}, BirthDate: "1969-06-15", Gender: "male"},
	}
	d, err := New(Options{ASID: testASID, ODS: testODS, BaseURL: testBase, Now: func() time.Time { return testNow },
		Demographics: func(nhs string) (PDSRecord, bool) { r, ok := held[nhs]; return r, ok }})
	if err != nil {
		t.Fatal(err)
	}
	h := d.Handler()
	register := func(members string) *httptest.ResponseRecorder {
		return do(t, h, call{method: "POST", path: testRoot + "/Patient/$gpc.registerpatient", interaction: gpconnect.RegisterPatient, body: string(registrationOf(members))})
	}
	w := register(regBase)
	if w.Code != 200 {
		t.Fatalf("register: %d %s", w.Code, w.Body)
	}
	pt := entries(t, w.Body.Bytes())[0]
	if pt["gender"] != "female" || !strings.Contains(string(mustJSON(pt["address"])), "3 Park Row") || !strings.Contains(string(mustJSON(pt["telecom"])), "01134960999") {
		t.Errorf("not supplemented from PDS: %v", pt)
	}
	if w := register(strings.Replace(regBase, "9690937405", "9690937286", 1)); w.Code != 400 || outcomeCode(t, w.Body.Bytes()) != gpconnect.CodeInvalidPatientDemographics {
		t.Errorf("a seed patient PDS does not hold: %d %s, want 400 INVALID_PATIENT_DEMOGRAPHICS before DUPLICATE_REJECTED", w.Code, w.Body)
	}
	w = register(`"identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9690937480"}],"name":[{"use":"official","family":"DOYLE","given":["Patrick"]}],"birthDate":"1969-06-15"`)
	if w.Code != 200 {
		t.Fatalf("re-activate: %d %s", w.Code, w.Body)
	}
	pt = entries(t, w.Body.Bytes())[0]
	if pt["id"] != "13" || pt["meta"].(map[string]any)["versionId"] != "2" || pt["active"] != true {
		t.Errorf("re-activated as %v version %v active %v, want Patient/13 version 2, active", pt["id"], pt["meta"], pt["active"])
	}
}
