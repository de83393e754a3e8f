package fhir

import (
	"fmt"
	"strings"
	"testing"
)

// slotSearchBundle writes the JSON answer to a GP Connect slot search with
// the four _include parameters, n free slots over two schedules and two
// locations, as a practice writes it: the shape the codec converts most.
func slotSearchBundle(tb testing.TB, n int) []byte {
	tb.Helper()
	const base = "https://localhost:9443/A20047/STU3/1/gpconnect"
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w(`{"resourceType":"Bundle","id":"5b2a7c1e-0f3d-4c8a-9e21-7d6b5a4c3b2a","meta":{"lastUpdated":"2024-03-05T10:20:00+00:00","profile":["https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Searchset-Bundle-1"]},"type":"searchset",`)
	w(`"link":[{"relation":"self","url":"%s/Slot?start=ge2024-03-06&end=le2024-03-19&status=free&_include=Slot:schedule&_include:recurse=Schedule:actor:Practitioner&_include:recurse=Schedule:actor:Location&_include:recurse=Location:managingOrganization&searchFilter=https://fhir.nhs.uk/Id/ods-organization-code|B82617"}],"entry":[`, base)
	for i := 0; i < n; i++ {
		day, minute := 6+i/48, (i%48)*10
		start := fmt.Sprintf("2024-03-%02dT%02d:%02d:00+00:00", day, 8+minute/60, minute%60)
		end := fmt.Sprintf("2024-03-%02dT%02d:%02d:00+00:00", day, 8+(minute+10)/60, (minute+10)%60)
		w(`{"fullUrl":"%s/Slot/%d","resource":{"resourceType":"Slot","id":"%d","meta":{"versionId":"1469444400000","profile":["https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Slot-1"]},`, base, 1000+i, 1000+i)
		w(`"extension":[{"url":"https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-DeliveryChannel-2","valueCode":"In-person"}],`)
		w(`"serviceType":[{"text":"Routine appointment"}],"schedule":{"reference":"Schedule/%d"},"status":"free","start":"%s","end":"%s"},"search":{"mode":"match"}},`, 1+i%2, start, end)
	}
	for s := 1; s <= 2; s++ {
		w(`{"fullUrl":"%s/Schedule/%d","resource":{"resourceType":"Schedule","id":"%d","meta":{"versionId":"1469444400000","profile":["https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Schedule-1"]},`, base, s, s)
		w(`"extension":[{"url":"https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-PractitionerRole-1","valueCodeableConcept":{"coding":[{"system":"https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-SDSJobRoleName-1","code":"R0260","display":"General Medical Practitioner"}]}}],`)
		w(`"serviceCategory":{"text":"GP consultation"},"serviceType":[{"text":"Routine appointment"}],"actor":[{"reference":"Practitioner/%d"},{"reference":"Location/%d"}],"planningHorizon":{"start":"2024-03-04T08:00:00+00:00","end":"2024-03-18T18:00:00+00:00"},"comment":"Surgery %d"},"search":{"mode":"include"}},`, s, s, s)
		w(`{"fullUrl":"%s/Practitioner/%d","resource":{"resourceType":"Practitioner","id":"%d","meta":{"versionId":"1469444400000","profile":["https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Practitioner-1"]},`, base, s, s)
		w(`"identifier":[{"system":"https://fhir.nhs.uk/Id/sds-user-id","value":"G1357913%d"},{"system":"https://fhir.nhs.uk/Id/sds-role-profile-id","value":"PT112%d"}],"name":[{"use":"usual","family":"Sandhu","given":["Amrit"],"prefix":["Dr"]}],"gender":"female"},"search":{"mode":"include"}},`, s, s)
		w(`{"fullUrl":"%s/Location/%d","resource":{"resourceType":"Location","id":"%d","meta":{"versionId":"1469444400000","profile":["https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Location-1"]},`, base, s, s)
		w(`"identifier":[{"system":"https://fhir.nhs.uk/Id/ods-site-code","value":"A20047-%d"}],"status":"active","name":"Mill Lane surgery %d","telecom":[{"system":"phone","value":"0113 496 000%d","use":"work"}],"address":{"line":["12 Mill Lane","Headingley"],"city":"Leeds","postalCode":"LS6 1AB","country":"GBR"},"position":{"longitude":-1.5795,"latitude":53.8230},"managingOrganization":{"reference":"Organization/1"}},"search":{"mode":"include"}},`, s, s, s)
	}
	w(`{"fullUrl":"%s/Organization/1","resource":{"resourceType":"Organization","id":"1","meta":{"versionId":"1469444400000","profile":["https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Organization-1"]},`, base)
	w(`"identifier":[{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"A20047"}],"name":"Calder Valley Medical Practice","telecom":[{"system":"phone","value":"0113 496 0000","use":"work"}],"address":[{"use":"work","line":["12 Mill Lane"],"city":"Leeds","postalCode":"LS6 1AB"}]},"search":{"mode":"include"}}]}`)
	return []byte(b.String())
}

// benchSlots makes the benchmark Bundle about 200 KB of JSON, the top of
// what a practice answers.
const benchSlots = 300

func BenchmarkJSONToXML(b *testing.B) {
	in := slotSearchBundle(b, benchSlots)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := JSONToXML(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkXMLToJSON(b *testing.B) {
	in, err := JSONToXML(slotSearchBundle(b, benchSlots))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := XMLToJSON(in); err != nil {
			b.Fatal(err)
		}
	}
}
