package demonstrator

import (
	"encoding/json"
	"testing"
	"time"

	"sspemu/fhir"
	"sspemu/gpconnect"
)

// FuzzDecodeAppointment feeds arbitrary bodies to the appointment decoder
// and the booking rules: they must refuse or accept, never panic, and a
// refusal is always a 400 or a 422.
func FuzzDecodeAppointment(f *testing.F) {
	slot := map[string]any{"id": "12", "start": "2025-03-11T09:00:00+00:00", "end": "2025-03-11T09:15:00+00:00"}
	f.Add(bookingBody(slot, "Patient/1", "Location/1"))
	f.Add(`{"resourceType":"Appointment","participant":[{}]}`)
	f.Add(`{"resourceType":"Appointment","extension":[1],"contained":[[]]}`)
	f.Add(`{"resourceType":"Appointment","status":"booked","slot":[{"reference":"Slot/"}]}`)
	f.Add(`[]`)
	f.Add(`{"resourceType":"Appointment"} {}`)
	f.Fuzz(func(t *testing.T, body string) {
		a, o := decodeAppointment([]byte(body))
		if o != nil {
			if o.Status != 400 && o.Status != 422 {
				t.Fatalf("decode refused with %d", o.Status)
			}
			return
		}
		if _, o := validateBooking(a, testNow); o != nil && o.Status != 422 {
			t.Fatalf("validateBooking refused with %d", o.Status)
		}
		if ch := changedMembers(a, a); len(ch) != 0 {
			t.Fatalf("a body differs from itself in %v", ch)
		}
	})
}

// FuzzDecodeRegistration feeds arbitrary $gpc.registerpatient bodies to the
// decoder.
func FuzzDecodeRegistration(f *testing.F) {
	f.Add(`{"resourceType":"Parameters","parameter":[{"name":"registerPatient","resource":{"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9690937405"}],"name":[{"family":"A"}],"gender":"male","birthDate":"1980-01-01"}}]}`)
	f.Add(`{"resourceType":"Parameters","parameter":[{"name":"registerPatient","resource":{"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9690937405"}],"name":[{"use":"official","family":"A","given":["B","C"]},{"use":"nickname"}],"birthDate":"1980-01-01",` +
		`"address":[{"use":"temp","line":["1"]}],"telecom":[{"system":"phone","value":"1","use":"temp"},{"system":"email","value":"a@b"}],` +
		`"extension":[{"url":"https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-NHSCommunication-1","extension":[{"url":"language","valueCodeableConcept":{"coding":[{"system":"https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-HumanLanguage-1","code":"de"}]}},{"url":"preferred","valueBoolean":false}]}]}}]}`)
	f.Add(`{"resourceType":"Parameters","parameter":[{"name":"registerPatient"}]}`)
	f.Add(`{"resourceType":"Parameters","parameter":[{"name":"registerPatient","resource":[]}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		p, o := decodeRegistration([]byte(body), testNow)
		if o != nil {
			if o.Status != 400 && o.Status != 422 {
				t.Fatalf("refused with %d", o.Status)
			}
			return
		}
		if !gpconnect.ValidNHSNumber(p.NHSNumber) || p.Family == "" || p.Given == "" || p.BirthDate == "" || (p.Gender != "" && !genders[p.Gender]) {
			t.Fatalf("accepted %+v", p)
		}
	})
}

// FuzzSearchParameters feeds arbitrary query strings to the query splitter
// and both date-range parsers.
func FuzzSearchParameters(f *testing.F) {
	f.Add("start=ge2025-03-10&end=le2025-03-16&status=free&_include=Slot:schedule&_include:recurse=Schedule:actor:Practitioner")
	f.Add("start=ge2025-03-10T09:00:00+00:00&start=le2025-03-10T10:00:00%2B00:00")
	f.Add("identifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9690937286")
	f.Add("start=%zz&&=&end")
	f.Add("searchFilter=a|b&start=ge0000-01-01&end=le9999-12-31&status=free&_include=Slot:schedule")
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		params, err := parseQuery(raw)
		if err != nil {
			return
		}
		if q, o := parseSlotQuery(params, loc); o == nil {
			if q.before.Before(q.from) || q.before.After(q.from.AddDate(0, 0, maxSlotRange+1)) {
				t.Fatalf("slot range %s to %s accepted", q.from, q.before)
			}
		} else if o.Status != 400 && o.Status != 422 {
			t.Fatalf("slot query refused with %d", o.Status)
		}
		if from, before, o := parseAppointmentsQuery(params, loc, testNow); o == nil && before.Before(from) {
			t.Fatalf("appointment range %s to %s accepted", from, before)
		}
		_, _ = identifierParam(params, systemNHSNumber)
	})
}

// FuzzXMLBody feeds arbitrary bodies through the edge's XML reading and
// then the decoders an XML booking or registration goes through: a
// refusal is a 400 or a 422, never a panic, and what is accepted is JSON
// that the same rules as a JSON body then judge.
func FuzzXMLBody(f *testing.F) {
	slot := map[string]any{"id": "12", "start": "2025-03-11T09:00:00+00:00", "end": "2025-03-11T09:15:00+00:00"}
	for _, j := range []string{
		bookingBody(slot, "Patient/1", "Location/1"),
		registration,
		`{"resourceType":"Appointment","participant":[{"status":"accepted"}]}`,
	} {
		x, err := fhir.JSONToXML([]byte(j))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(x)
	}
	f.Add([]byte(`<Appointment xmlns="http://hl7.org/fhir"><colour value="red"/></Appointment>`))
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "x">]><Appointment xmlns="http://hl7.org/fhir"/>`))
	f.Add([]byte(`<Appointment xmlns="http://hl7.org/fhir"><status value="booked"/>`))
	f.Add([]byte(`{"resourceType":"Appointment"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		j, o := xmlToJSON(body)
		if o != nil {
			if o.Status != 400 && o.Status != 422 {
				t.Fatalf("XML refused with %d: %s", o.Status, o.Reason)
			}
			return
		}
		if !json.Valid(j) {
			t.Fatalf("XML accepted as invalid JSON: %s", j)
		}
		if a, o := decodeAppointment(j); o == nil {
			if _, o := validateBooking(a, testNow); o != nil && o.Status != 422 {
				t.Fatalf("validateBooking refused with %d", o.Status)
			}
		} else if o.Status != 400 && o.Status != 422 {
			t.Fatalf("decodeAppointment refused with %d", o.Status)
		}
		if _, o := decodeRegistration(j, testNow); o != nil && o.Status != 400 && o.Status != 422 {
			t.Fatalf("decodeRegistration refused with %d", o.Status)
		}
	})
}
