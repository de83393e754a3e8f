package faults

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// Bodies in the shape of the GP Connect 1.2.7 examples.
const (
	registerJSON = `{
  "resourceType": "Parameters",
  "parameter": [{
    "name": "registerPatient",
    "resource": {
      "resourceType": "Patient",
      "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Patient-1"]},
      "identifier": [{
        "extension": [{
          "url": "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-NHSNumberVerificationStatus-1",
          "valueCodeableConcept": {"coding": [{"system": "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-NHSNumberVerificationStatus-1", "code": "01", "display": "Number present and verified"}]}
        }],
        "system": "https://fhir.nhs.uk/Id/nhs-number",
        "value": "9000000009"
      }, {"system": "https://fhir.nhs.uk/Id/local", "value": "12345"}],
      "name": [{"use": "official", "family": "Smith", "given": ["Jane"]}],
      "gender": "female",
      "birthDate": "1980-02-01"
    }
  }]
}`
	registerXML = `<?xml version="1.0" encoding="UTF-8"?>
<Parameters xmlns="http://hl7.org/fhir">
  <parameter>
    <name value="registerPatient"/>
    <resource>
      <Patient>
        <identifier>
          <extension url="https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-NHSNumberVerificationStatus-1">
            <valueCodeableConcept><coding><system value="https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-NHSNumberVerificationStatus-1"/><code value="01"/></coding></valueCodeableConcept>
          </extension>
          <system value="https://fhir.nhs.uk/Id/nhs-number"/>
          <value value="9000000009"/>
        </identifier>
        <identifier><system value="https://fhir.nhs.uk/Id/local"/><value value="12345"/></identifier>
        <gender value="female"/>
      </Patient>
    </resource>
  </parameter>
</Parameters>`
	structuredJSON = `{"resourceType":"Parameters","parameter":[{"name":"patientNHSNumber","valueIdentifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9690937286"}},{"name":"includeAllergies","part":[{"name":"includeResolvedAllergies","valueBoolean":true}]}]}`
	// An Appointment whose patient participant carries its NHS number as a
	// Reference.identifier (STU3), value before system.
	appointmentJSON = `{"resourceType":"Appointment","status":"booked","slot":[{"reference":"Slot/1"}],
  "participant":[{"actor":{"reference":"Patient/2","identifier":{"value":"9476719931","system":"https://fhir.nhs.uk/Id/nhs-number"}},"status":"accepted"},
                 {"actor":{"reference":"Location/1"},"status":"accepted"}]}`
	requestedRecord = `{"resourceType":"Patient","identifier":[{"system":"http://fhir.nhs.net/Id/nhs-number","value":"9476719931"}]}`
)

func TestNHSNumbers(t *testing.T) {
	cases := []struct {
		name string
		view View
		want []string
	}{
		{"find patient, | escaped", View{Query: "identifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9690937286"}, []string{"9690937286"}},
		{"find patient, | raw", View{Query: "identifier=https://fhir.nhs.uk/Id/nhs-number|9690937286&_format=json"}, []string{"9690937286"}},
		{"other identifier systems", View{Query: "identifier=https://fhir.nhs.uk/Id/sds-user-id|G13579135&identifier=https://fhir.nhs.uk/Id/ods-organization-code|A20047"}, nil},
		{"a bad escape keeps the good pairs", View{Query: "x=%zz&identifier=https://fhir.nhs.uk/Id/nhs-number|9690937286"}, []string{"9690937286"}},
		{"register, JSON", View{Body: []byte(registerJSON)}, []string{"9000000009"}},
		{"register, XML", View{Body: []byte(registerXML)}, []string{"9000000009"}},
		{"structured record", View{Body: []byte(structuredJSON)}, []string{"9690937286"}},
		{"appointment participant", View{Body: []byte(appointmentJSON)}, []string{"9476719931"}},
		{"requested_record, legacy system", View{RequestedRecord: []byte(requestedRecord)}, []string{"9476719931"}},
		{"caller's patients first, each once", View{Patients: []string{"9476719931"}, RequestedRecord: []byte(requestedRecord), Query: "identifier=https://fhir.nhs.uk/Id/nhs-number|9690937286"},
			[]string{"9476719931", "9690937286"}},
		{"a number value is not an NHS number", View{Body: []byte(`{"system":"https://fhir.nhs.uk/Id/nhs-number","value":9690937286}`)}, nil},
		{"truncated JSON gives what it read", View{Body: []byte(`[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9690937286"},{"system":"https://fhir.nhs.uk/Id/nhs-number","val`)}, []string{"9690937286"}},
		{"not FHIR", View{Body: []byte("hello")}, nil},
		{"a system in another namespace is not FHIR's", View{Body: []byte(`<a><x:system xmlns:x="urn:x" value="https://fhir.nhs.uk/Id/nhs-number"/><value value="1"/></a>`)}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.view.NHSNumbers(); !slices.Equal(got, c.want) {
				t.Errorf("NHSNumbers() = %q, want %q", got, c.want)
			}
		})
	}
}

func TestNHSNumbersDepthBounded(t *testing.T) {
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	if got := bodyNHSNumbers([]byte(deep)); got != nil {
		t.Errorf("got %q from brackets", got)
	}
	deepXML := strings.Repeat("<a>", 100000) + strings.Repeat("</a>", 100000)
	if got := bodyNHSNumbers([]byte(deepXML)); got != nil {
		t.Errorf("got %q from nesting", got)
	}
}

func TestPeekBody(t *testing.T) {
	body := strings.Repeat("0123456789", 10)
	r := httptest.NewRequest(http.MethodPost, "/Patient/$gpc.registerpatient", strings.NewReader(body))
	head, err := PeekBody(r, 25)
	if err != nil {
		t.Fatal(err)
	}
	if string(head) != body[:25] {
		t.Errorf("peeked %q", head)
	}
	rest, err := io.ReadAll(r.Body)
	if err != nil || string(rest) != body {
		t.Errorf("body after peek = %q, %v; want it whole", rest, err)
	}
	if err := r.Body.Close(); err != nil {
		t.Errorf("close: %v", err)
	}

	r = httptest.NewRequest(http.MethodGet, "/metadata", nil)
	if head, err := PeekBody(r, 25); head != nil || err != nil {
		t.Errorf("no body: %q, %v", head, err)
	}

	broken := errors.New("connection reset")
	r = httptest.NewRequest(http.MethodPost, "/Appointment", io.MultiReader(strings.NewReader("abc"), errReader{broken}))
	head, err = PeekBody(r, 25)
	if string(head) != "abc" || !errors.Is(err, broken) {
		t.Errorf("failed read: %q, %v", head, err)
	}
	rest, err = io.ReadAll(r.Body)
	if string(rest) != "abc" || !errors.Is(err, broken) {
		t.Errorf("replayed %q, %v; want the bytes read, then the error", rest, err)
	}
}
