package profile

import (
	"fmt"
	"strings"
	"testing"
)

// These tests read the published GP Connect 1.2.7 profiles (ForTest: the
// folder of $GPCONNECT_FHIR_DIR or ../shared/gpconnect-fhir): they show
// the checker finds, with the real profiles, the defects the demonstrator
// was known to have, and finds nothing once they are corrected.

const (
	nhsExtOK    = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-NHSNumberVerificationStatus-1"
	nhsExtWrong = "https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-NHSNumberVerificationStatus-1"
	nhsCSOK     = "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-NHSNumberVerificationStatus-1"
	nhsCSWrong  = "https://fhir.hl7.org.uk/STU3/CodeSystem/CareConnect-NHSNumberVerificationStatus-1"
)

// publishedPatient is a patient as the demonstrator answers it, with the
// NHS-number verification extension's URL and CodeSystem given.
func publishedPatient(ext, cs string) string {
	return `{"resourceType":"Patient","id":"1","meta":{"versionId":"1","lastUpdated":"2025-03-10T08:00:00+00:00","profile":["https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Patient-1"]},
	"extension":[{"url":"https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-RegistrationDetails-1","extension":[
		{"url":"registrationPeriod","valuePeriod":{"start":"2025-03-10"}},
		{"url":"registrationType","valueCodeableConcept":{"coding":[{"system":"https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-RegistrationType-1","code":"R","display":"Regular"}]}}]}],
	"identifier":[{"extension":[{"url":"` + ext + `","valueCodeableConcept":{"coding":[{"system":"` + cs + `","code":"01","display":"Number present and verified"}]}}],
		"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9690937286"}],
	"active":true,"name":[{"use":"official","family":"SKELLY","given":["Horace"],"prefix":["Mr"]}],"gender":"male","birthDate":"1952-03-14",
	"address":[{"use":"home","type":"physical","line":["Horace Street"],"city":"Leeds","postalCode":"LS1 1AA"}],
	"generalPractitioner":[{"reference":"Practitioner/2"}],"managingOrganization":{"reference":"Organization/1"}}`
}

const publishedOrganization = `{"resourceType":"Organization","id":"1","meta":{"versionId":"1","profile":["https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Organization-1"]},
	"identifier":[{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"A20047"}],"name":"GP Connect Demonstrator Surgery",
	"telecom":[{"system":"phone","value":"0113 496 0000","use":"work"}],"address":[{"use":"work","type":"physical","line":["12 Leeds Road"],"city":"Leeds","postalCode":"LS1 4AP"}]}`

func publishedSchedule(serviceType bool) string {
	st := ""
	if serviceType {
		st = `"serviceType":[{"text":"General GP Appointment"}],`
	}
	return `{"resourceType":"Schedule","id":"1","meta":{"versionId":"1","profile":["https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Schedule-1"]},
	"serviceCategory":{"text":"GP Surgery"},` + st + `"actor":[{"reference":"Location/1"},{"reference":"Practitioner/1"}],
	"planningHorizon":{"start":"2025-03-10T00:00:00+00:00","end":"2025-04-07T00:00:00+01:00"}}`
}

func publishedBundle(total bool, resources ...string) string {
	b := `{"resourceType":"Bundle","id":"b","meta":{"profile":["` + SearchsetBundle + `"]},"type":"searchset"`
	if total {
		b += fmt.Sprintf(`,"total":%d`, len(resources))
	}
	if len(resources) == 0 {
		return b + "}"
	}
	var es []string
	for i, r := range resources {
		es = append(es, fmt.Sprintf(`{"fullUrl":"https://localhost:9443/A20047/STU3/1/gpconnect/X/%d","resource":%s}`, i, r))
	}
	return b + `,"entry":[` + strings.Join(es, ",") + "]}"
}

func publishedOutcome(code, display string) string {
	return `{"resourceType":"OperationOutcome","id":"o","meta":{"profile":["` + OperationOutcome + `"]},"issue":[{"severity":"error","code":"invalid",
	"details":{"coding":[{"system":"https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1","code":"` + code + `","display":"` + display + `"}]},
	"diagnostics":"why"}]}`
}

func TestPublishedProfiles(t *testing.T) {
	s := ForTest(t)
	tests := []struct {
		name, resource string
		want           []want
	}{
		{"Bundle.total is 0..0 in GPConnect-Searchset-Bundle-1", publishedBundle(true, publishedOrganization),
			[]want{{RuleCardinality, "Bundle.total"}}},
		{"a searchset Bundle without total", publishedBundle(false, publishedOrganization), nil},
		// The profile says entry 1..*, the specification "zero or more".
		{"an empty searchset Bundle", publishedBundle(false), []want{{RuleCardinality, "Bundle.entry"}}},

		{"Schedule.serviceType is 0..0 in GPConnect-Schedule-1", publishedBundle(false, publishedSchedule(true)),
			[]want{{RuleCardinality, "Bundle.entry[0].resource.ofType(Schedule).serviceType"}}},
		{"a Schedule without serviceType", publishedSchedule(false), nil},

		{"the NHS-number verification extension on fhir.hl7.org.uk", publishedPatient(nhsExtWrong, nhsCSWrong),
			[]want{{RuleExtension, "Patient.identifier[0].extension[0]"}, {RuleCardinality, "Patient.identifier[0].extension"}}},
		{"its CodeSystem on fhir.hl7.org.uk", publishedPatient(nhsExtOK, nhsCSWrong),
			[]want{{RuleBinding, "Patient.identifier[0].extension[0].valueCodeableConcept.coding"}}},
		{"both on fhir.nhs.uk", publishedPatient(nhsExtOK, nhsCSOK), nil},
		{"a verification status that is not a code", strings.Replace(publishedPatient(nhsExtOK, nhsCSOK), `"code":"01"`, `"code":"99"`, 1),
			[]want{{RuleBinding, "Patient.identifier[0].extension[0].valueCodeableConcept.coding"}}},

		{"UNSUPPORTED_MEDIA_TYPE is not in Spine-ErrorOrWarningCode-1", publishedOutcome("UNSUPPORTED_MEDIA_TYPE", "Unsupported media type"),
			[]want{{RuleBinding, "OperationOutcome.issue[0].details.coding"}}},
		{"INVALID_RESOURCE is", publishedOutcome("INVALID_RESOURCE", "Invalid validation of resource"), nil},
		{"an outcome without display", strings.Replace(publishedOutcome("INVALID_RESOURCE", ""), `,"display":""`, "", 1),
			[]want{{RuleCardinality, "OperationOutcome.issue[0].details.coding[0].display"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, s.Check([]byte(tc.resource)), tc.want)
		})
	}
}

// BenchmarkCheckSlotSearch checks a slot search's answer as the
// demonstrator gives it: 300 slots, their schedule and its actors.
func BenchmarkCheckSlotSearch(b *testing.B) {
	s := ForTest(b)
	var res []string
	for i := 0; i < 300; i++ {
		res = append(res, fmt.Sprintf(`{"resourceType":"Slot","id":"%d","meta":{"versionId":"1","profile":["https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Slot-1"]},
			"serviceType":[{"text":"General GP Appointment"}],"schedule":{"reference":"Schedule/1"},"status":"free",
			"start":"2025-03-10T09:00:00+00:00","end":"2025-03-10T09:15:00+00:00"}`, i+1))
	}
	res = append(res, publishedSchedule(false), publishedOrganization)
	doc := []byte(publishedBundle(false, res...))
	if ps := s.Check(doc); len(ps) != 0 {
		b.Fatalf("the slot search has problems:\n%s", problemList(ps))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Check(doc)
	}
}

// TestPublishedWithCore checks required bindings to core ValueSets with the
// STU3 core terminology.
func TestPublishedWithCore(t *testing.T) {
	s := ForTestWithCore(t)
	slot := func(status string) string {
		return `{"resourceType":"Slot","id":"1","meta":{"profile":["https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Slot-1"]},
		"schedule":{"reference":"Schedule/1"},"status":"` + status + `","start":"2025-03-10T09:00:00+00:00","end":"2025-03-10T09:15:00+00:00"}`
	}
	expect(t, s.Check([]byte(slot("free"))), nil)
	expect(t, s.Check([]byte(slot("available"))), []want{{RuleBinding, "Slot.status"}})
	outcome := strings.Replace(publishedOutcome("INVALID_RESOURCE", "Invalid validation of resource"), `"code":"invalid"`, `"code":"wrong"`, 1)
	expect(t, s.Check([]byte(outcome)), []want{{RuleBinding, "OperationOutcome.issue[0].code"}})
	for _, u := range s.Unchecked(OperationOutcome, "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Slot-1") {
		if u.Rule == RuleBinding {
			t.Errorf("unchecked with the core terminology: %s", u)
		}
	}
}
