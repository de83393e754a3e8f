package demonstrator

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"sspemu/gpconnect"
)

// TestRefusals walks every provider-side refusal: each error code the
// demonstrator emits appears at least once.
func TestRefusals(t *testing.T) {
	d := newTestDemonstrator(t)
	h := d.Handler()
	slot, loc := freeSlot(t, h, 0)
	good := bookingBody(slot, "Patient/1", loc)
	bookingWith := func(f func(m map[string]any)) string { return edit(t, []byte(good), f) }
	seedAppt := func(id string) string {
		w := do(t, h, call{method: "GET", path: testRoot + "/Appointment/" + id, interaction: gpconnect.ReadAppointment})
		if w.Code != 200 {
			t.Fatalf("read seed appointment %s: %d", id, w.Code)
		}
		return w.Body.String()
	}
	// Past appointments cannot be read through GP Connect: their bodies
	// come from the store, as the practice would answer them.
	stored := func(id string) string {
		return string(mustJSON(d.practices[0].appointment(state(t, d, "").appts[id])))
	}
	future := seedAppt("2")  // patient 1, booked, future
	past := stored("1")      // patient 1, booked, past
	cancelled := stored("5") // patient 3, cancelled, past
	editBody := func(body string, f func(m map[string]any)) string { return edit(t, []byte(body), f) }
	cancelOf := func(body string) string {
		return editBody(body, func(m map[string]any) {
			m["status"] = "cancelled"
			m["extension"] = append(m["extension"].([]any), map[string]any{"url": extCancellationReason, "valueString": "no longer needed"})
		})
	}
	st := state(t, d, "")
	busy := st.appts["2"].SlotIDs[0]
	bookBusy := bookingWith(func(m map[string]any) {
		sl := st.slot(busy)
		loc := d.practices[0].loc
		m["slot"] = []any{map[string]any{"reference": "Slot/" + busy}}
		m["start"], m["end"] = formatTime(sl.Start, loc), formatTime(sl.End, loc)
		m["participant"].([]any)[1] = map[string]any{"actor": map[string]any{"reference": "Location/" + st.schedule(sl.ScheduleID).LocationID}, "status": "accepted"}
	})
	register := func(nhs, extra string) string {
		return `{"resourceType":"Parameters","parameter":[{"name":"registerPatient","resource":{"resourceType":"Patient",` +
			`"identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"` + nhs + `"}],` +
			`"name":[{"use":"official","family":"NEW","given":["A"]}],"gender":"male","birthDate":"1980-01-01"` + extra + `}}]}`
	}
	const (
		get  = "GET"
		post = "POST"
		put  = "PUT"
	)
	pat := testRoot + "/Patient"
	appt := testRoot + "/Appointment"
	slotQ := testRoot + "/Slot?status=free&_include=Slot:schedule&"
	for _, tc := range []struct {
		name   string
		c      call
		status int
		code   string
	}{
		// Transport and routing.
		{"OPTIONS", call{method: "OPTIONS", path: testRoot + "/metadata", interaction: gpconnect.ReadMetadata}, 405, gpconnect.CodeBadRequest},
		{"DELETE", call{method: "DELETE", path: appt + "/2", interaction: gpconnect.ReadAppointment}, 405, gpconnect.CodeBadRequest},
		{"wrong case /Metadata", call{method: get, path: testRoot + "/Metadata", interaction: gpconnect.ReadMetadata}, 404, gpconnect.CodeNoRecordFound},
		{"outside the service root", call{method: get, path: "/B99999/STU3/1/gpconnect/metadata", interaction: gpconnect.ReadMetadata}, 404, gpconnect.CodeNoRecordFound},
		{"root itself", call{method: get, path: "/", interaction: gpconnect.ReadMetadata}, 404, gpconnect.CodeNoRecordFound},
		{"_format text/html", call{method: get, path: testRoot + "/metadata?_format=text/html", interaction: gpconnect.ReadMetadata}, 415, gpconnect.CodeBadRequest},
		{"Accept application/xml", call{method: get, path: testRoot + "/metadata", interaction: gpconnect.ReadMetadata, header: map[string]string{"Accept": "application/xml"}}, 415, gpconnect.CodeBadRequest},
		{"body Content-Type application/xml", call{method: post, path: appt, interaction: gpconnect.CreateAppointment, body: good, header: map[string]string{"Content-Type": "application/xml", "Accept": "application/fhir+json"}}, 415, gpconnect.CodeBadRequest},
		{"Accept text/html", call{method: get, path: testRoot + "/metadata", interaction: gpconnect.ReadMetadata, header: map[string]string{"Accept": "text/html"}}, 415, gpconnect.CodeBadRequest},
		{"body Content-Type text/plain", call{method: post, path: appt, interaction: gpconnect.CreateAppointment, body: good, header: map[string]string{"Content-Type": "text/plain", "Accept": "application/fhir+json"}}, 415, gpconnect.CodeBadRequest},
		{"structured record", call{method: post, path: pat + "/$gpc.getstructuredrecord", interaction: gpconnect.GetStructuredRecord, body: `{}`}, 501, gpconnect.CodeNotImplemented},

		// Ssp headers and interaction.
		{"Ssp-TraceID missing", call{method: get, path: testRoot + "/metadata", interaction: gpconnect.ReadMetadata, header: map[string]string{"Ssp-TraceID": ""}}, 400, gpconnect.CodeBadRequest},
		{"Ssp-From missing", call{method: get, path: testRoot + "/metadata", interaction: gpconnect.ReadMetadata, header: map[string]string{"Ssp-From": ""}}, 400, gpconnect.CodeBadRequest},
		{"Ssp-To missing", call{method: get, path: testRoot + "/metadata", interaction: gpconnect.ReadMetadata, header: map[string]string{"Ssp-To": ""}}, 400, gpconnect.CodeBadRequest},
		{"Ssp-InteractionID missing", call{method: get, path: testRoot + "/metadata", interaction: gpconnect.ReadMetadata, header: map[string]string{"Ssp-InteractionID": ""}}, 400, gpconnect.CodeBadRequest},
		{"Ssp-To another ASID", call{method: get, path: testRoot + "/metadata", interaction: gpconnect.ReadMetadata, header: map[string]string{"Ssp-To": "918999198994"}}, 400, gpconnect.CodeBadRequest},
		{"unknown interaction", call{method: get, path: testRoot + "/metadata", interaction: gpconnect.ReadMetadata, header: map[string]string{"Ssp-InteractionID": gpconnect.URNPrefix + "fhir:rest:read:metadata-9"}}, 400, gpconnect.CodeBadRequest},
		{"interaction for another path", call{method: get, path: testRoot + "/metadata", interaction: gpconnect.ReadPatient}, 400, gpconnect.CodeBadRequest},
		{"interaction for another verb", call{method: put, path: appt + "/2", interaction: gpconnect.ReadAppointment, body: future}, 400, gpconnect.CodeBadRequest},

		// JWT.
		{"no Authorization", call{method: get, path: testRoot + "/metadata", interaction: gpconnect.ReadMetadata, header: map[string]string{"Authorization": ""}}, 400, gpconnect.CodeBadRequest},
		{"JWT aud of another provider", call{method: get, path: testRoot + "/metadata", interaction: gpconnect.ReadMetadata, header: map[string]string{"Authorization": "Bearer " + gpconnect.DefaultTokenSpec(mustInteraction(gpconnect.ReadMetadata), "https://other.example/B1/STU3/1/gpconnect", testNow).Encode()}}, 400, gpconnect.CodeBadRequest},
		{"JWT not a token", call{method: get, path: testRoot + "/metadata", interaction: gpconnect.ReadMetadata, header: map[string]string{"Authorization": "Bearer x.y."}}, 400, gpconnect.CodeBadRequest},
		{"JWT scope for another interaction", call{method: get, path: testRoot + "/metadata", interaction: gpconnect.ReadMetadata, header: map[string]string{"Authorization": "Bearer " + tokenFor(gpconnect.ReadPatient)}}, 400, gpconnect.CodeBadRequest},

		{"JWT device not a Device", call{method: get, path: testRoot + "/metadata", interaction: gpconnect.ReadMetadata, header: map[string]string{"Authorization": "Bearer " + deviceAsPatient(t)}}, 422, gpconnect.CodeInvalidResource},

		// Parameters.
		{"find patient without identifier", call{method: get, path: pat, interaction: gpconnect.SearchPatient}, 400, gpconnect.CodeBadRequest},
		{"find patient identifier repeated", call{method: get, path: pat + "?identifier=https://fhir.nhs.uk/Id/nhs-number|9690937286&identifier=https://fhir.nhs.uk/Id/nhs-number|9690937286", interaction: gpconnect.SearchPatient}, 400, gpconnect.CodeBadRequest},
		{"find patient identifier without system", call{method: get, path: pat + "?identifier=9690937286", interaction: gpconnect.SearchPatient}, 422, gpconnect.CodeInvalidParameter},
		{"find patient wrong system", call{method: get, path: pat + "?identifier=http://fhir.nhs.net/Id/nhs-number|9690937286", interaction: gpconnect.SearchPatient}, 400, gpconnect.CodeInvalidIdentifierSystem},
		{"find patient bad NHS number", call{method: get, path: pat + "?identifier=https://fhir.nhs.uk/Id/nhs-number|9690937287", interaction: gpconnect.SearchPatient}, 400, gpconnect.CodeInvalidNHSNumber},
		{"find practitioner empty value", call{method: get, path: testRoot + "/Practitioner?identifier=https://fhir.nhs.uk/Id/sds-user-id|", interaction: gpconnect.SearchPractitioner}, 422, gpconnect.CodeInvalidParameter},
		{"find organisation wrong system", call{method: get, path: testRoot + "/Organization?identifier=https://fhir.nhs.uk/Id/sds-user-id|A20047", interaction: gpconnect.SearchOrganization}, 400, gpconnect.CodeInvalidIdentifierSystem},
		{"bad percent-encoding", call{method: get, path: pat + "?identifier=%zz", interaction: gpconnect.SearchPatient}, 400, gpconnect.CodeBadRequest},
		{"slots without start", call{method: get, path: slotQ + "end=le2025-03-12", interaction: gpconnect.SearchSlot}, 400, gpconnect.CodeBadRequest},
		{"slots without end", call{method: get, path: slotQ + "start=ge2025-03-12", interaction: gpconnect.SearchSlot}, 400, gpconnect.CodeBadRequest},
		{"slots start repeated", call{method: get, path: slotQ + "start=ge2025-03-12&start=ge2025-03-12&end=le2025-03-13", interaction: gpconnect.SearchSlot}, 400, gpconnect.CodeBadRequest},
		{"slots without status", call{method: get, path: testRoot + "/Slot?_include=Slot:schedule&start=ge2025-03-12&end=le2025-03-13", interaction: gpconnect.SearchSlot}, 400, gpconnect.CodeBadRequest},
		{"slots without _include", call{method: get, path: testRoot + "/Slot?status=free&start=ge2025-03-12&end=le2025-03-13", interaction: gpconnect.SearchSlot}, 400, gpconnect.CodeBadRequest},
		{"slots status busy", call{method: get, path: testRoot + "/Slot?status=busy&_include=Slot:schedule&start=ge2025-03-12&end=le2025-03-13", interaction: gpconnect.SearchSlot}, 422, gpconnect.CodeInvalidParameter},
		{"slots prefix gt", call{method: get, path: slotQ + "start=gt2025-03-12&end=le2025-03-13", interaction: gpconnect.SearchSlot}, 422, gpconnect.CodeInvalidParameter},
		{"slots start with le", call{method: get, path: slotQ + "start=le2025-03-12&end=le2025-03-13", interaction: gpconnect.SearchSlot}, 422, gpconnect.CodeInvalidParameter},
		{"slots bad date", call{method: get, path: slotQ + "start=ge2025-13-12&end=le2025-03-13", interaction: gpconnect.SearchSlot}, 422, gpconnect.CodeInvalidParameter},
		{"slots range over 14 days", call{method: get, path: slotQ + "start=ge2025-03-10&end=le2025-03-25", interaction: gpconnect.SearchSlot}, 422, gpconnect.CodeInvalidParameter},
		{"slots end before start", call{method: get, path: slotQ + "start=ge2025-03-12&end=le2025-03-11", interaction: gpconnect.SearchSlot}, 422, gpconnect.CodeInvalidParameter},
		{"slots unknown _include", call{method: get, path: slotQ + "start=ge2025-03-12&end=le2025-03-13&_include=Slot:foo", interaction: gpconnect.SearchSlot}, 422, gpconnect.CodeInvalidParameter},
		{"slots unknown recurse", call{method: get, path: slotQ + "start=ge2025-03-12&end=le2025-03-13&_include:recurse=Schedule:actor:Device", interaction: gpconnect.SearchSlot}, 422, gpconnect.CodeInvalidParameter},
		{"slots bad searchFilter", call{method: get, path: slotQ + "start=ge2025-03-12&end=le2025-03-13&searchFilter=A20047", interaction: gpconnect.SearchSlot}, 422, gpconnect.CodeInvalidParameter},
		{"appointments without start", call{method: get, path: pat + "/1/Appointment", interaction: gpconnect.SearchPatientAppts}, 422, gpconnect.CodeInvalidParameter},
		{"appointments only ge", call{method: get, path: pat + "/1/Appointment?start=ge2025-04-01", interaction: gpconnect.SearchPatientAppts}, 422, gpconnect.CodeInvalidParameter},
		{"appointments ge twice", call{method: get, path: pat + "/1/Appointment?start=ge2025-04-01&start=ge2025-05-01", interaction: gpconnect.SearchPatientAppts}, 422, gpconnect.CodeInvalidParameter},
		{"appointments prefix eq", call{method: get, path: pat + "/1/Appointment?start=eq2025-01-01&start=le2025-02-01", interaction: gpconnect.SearchPatientAppts}, 422, gpconnect.CodeInvalidParameter},

		// Not found.
		{"read unknown patient", call{method: get, path: pat + "/999", interaction: gpconnect.ReadPatient}, 404, gpconnect.CodePatientNotFound},
		{"appointments of unknown patient", call{method: get, path: pat + "/999/Appointment?start=ge2025-04-01&start=le2025-05-01", interaction: gpconnect.SearchPatientAppts}, 404, gpconnect.CodePatientNotFound},
		{"read unknown practitioner", call{method: get, path: testRoot + "/Practitioner/999", interaction: gpconnect.ReadPractitioner}, 404, gpconnect.CodePractitionerNotFound},
		{"read unknown organisation", call{method: get, path: testRoot + "/Organization/999", interaction: gpconnect.ReadOrganization}, 404, gpconnect.CodeOrganisationNotFound},
		{"read unknown location", call{method: get, path: testRoot + "/Location/999", interaction: gpconnect.ReadLocation}, 404, gpconnect.CodeNoRecordFound},
		{"read unknown appointment", call{method: get, path: appt + "/999", interaction: gpconnect.ReadAppointment}, 404, gpconnect.CodeNoRecordFound},

		// Register patient.
		{"register bad JSON", call{method: post, path: pat + "/$gpc.registerpatient", interaction: gpconnect.RegisterPatient, body: `{"resourceType":`}, 400, gpconnect.CodeBadRequest},
		{"register bad NHS number", call{method: post, path: pat + "/$gpc.registerpatient", interaction: gpconnect.RegisterPatient, body: register("9690937406", "")}, 400, gpconnect.CodeInvalidNHSNumber},
		{"register unknown member", call{method: post, path: pat + "/$gpc.registerpatient", interaction: gpconnect.RegisterPatient, body: register("9690937405", `,"favouriteColour":"blue"`)}, 422, gpconnect.CodeInvalidResource},
		{"register without birth date", call{method: post, path: pat + "/$gpc.registerpatient", interaction: gpconnect.RegisterPatient, body: strings.Replace(register("9690937405", ""), `,"birthDate":"1980-01-01"`, "", 1)}, 422, gpconnect.CodeInvalidResource},
		{"register wrong parameter", call{method: post, path: pat + "/$gpc.registerpatient", interaction: gpconnect.RegisterPatient, body: strings.Replace(register("9690937405", ""), "registerPatient", "patient", 1)}, 422, gpconnect.CodeInvalidParameter},
		{"register existing patient", call{method: post, path: pat + "/$gpc.registerpatient", interaction: gpconnect.RegisterPatient, body: register("9690937286", "")}, 409, gpconnect.CodeDuplicateRejected},

		// Book.
		{"book bad JSON", call{method: post, path: appt, interaction: gpconnect.CreateAppointment, body: `{"resourceType":"Appointment",}`}, 400, gpconnect.CodeBadRequest},
		{"book trailing data", call{method: post, path: appt, interaction: gpconnect.CreateAppointment, body: good + `{}`}, 400, gpconnect.CodeBadRequest},
		{"book unknown member", call{method: post, path: appt, interaction: gpconnect.CreateAppointment, body: bookingWith(func(m map[string]any) { m["colour"] = "red" })}, 422, gpconnect.CodeInvalidResource},
		{"book wrong resourceType", call{method: post, path: appt, interaction: gpconnect.CreateAppointment, body: bookingWith(func(m map[string]any) { m["resourceType"] = "Patient" })}, 422, gpconnect.CodeInvalidResource},
		{"book with reason", call{method: post, path: appt, interaction: gpconnect.CreateAppointment, body: bookingWith(func(m map[string]any) { m["reason"] = []any{map[string]any{"text": "cough"}} })}, 422, gpconnect.CodeInvalidResource},
		{"book without booking organisation", call{method: post, path: appt, interaction: gpconnect.CreateAppointment, body: bookingWith(func(m map[string]any) { delete(m, "extension") })}, 422, gpconnect.CodeInvalidResource},
		{"book without location", call{method: post, path: appt, interaction: gpconnect.CreateAppointment, body: bookingWith(func(m map[string]any) { m["participant"] = m["participant"].([]any)[:1] })}, 422, gpconnect.CodeInvalidResource},
		{"book in the past", call{method: post, path: appt, interaction: gpconnect.CreateAppointment, body: bookingWith(func(m map[string]any) {
			m["start"], m["end"] = "2025-03-03T09:00:00+00:00", "2025-03-03T09:15:00+00:00"
		})}, 422, gpconnect.CodeInvalidResource},
		{"book times not the slot's", call{method: post, path: appt, interaction: gpconnect.CreateAppointment, body: bookingWith(func(m map[string]any) { m["end"] = "2099-01-01T00:00:00+00:00" })}, 422, gpconnect.CodeInvalidResource},
		{"book unknown patient", call{method: post, path: appt, interaction: gpconnect.CreateAppointment, body: bookingWith(func(m map[string]any) {
			m["participant"].([]any)[0] = map[string]any{"actor": map[string]any{"reference": "Patient/999"}, "status": "accepted"}
		})}, 422, gpconnect.CodeReferenceNotFound},
		{"book unknown slot", call{method: post, path: appt, interaction: gpconnect.CreateAppointment, body: bookingWith(func(m map[string]any) { m["slot"] = []any{map[string]any{"reference": "Slot/999999"}} })}, 422, gpconnect.CodeReferenceNotFound},
		{"book busy slot", call{method: post, path: appt, interaction: gpconnect.CreateAppointment, body: bookBusy}, 409, gpconnect.CodeDuplicateRejected},

		// Amend and cancel.
		{"amend id not the URL's", call{method: put, path: appt + "/3", interaction: gpconnect.UpdateAppointment, body: future}, 400, gpconnect.CodeBadRequest},
		{"amend stale If-Match", call{method: put, path: appt + "/2", interaction: gpconnect.UpdateAppointment, body: future, header: map[string]string{"If-Match": `W/"7"`}}, 409, gpconnect.CodeFHIRConstraintViolation},
		{"amend start", call{method: put, path: appt + "/2", interaction: gpconnect.UpdateAppointment, body: editBody(future, func(m map[string]any) { m["start"] = "2025-04-01T09:00:00+01:00" })}, 422, gpconnect.CodeInvalidResource},
		{"amend status", call{method: put, path: appt + "/2", interaction: gpconnect.UpdateAppointment, body: editBody(future, func(m map[string]any) { m["status"] = "arrived" })}, 422, gpconnect.CodeInvalidResource},
		{"amend unknown member", call{method: put, path: appt + "/2", interaction: gpconnect.UpdateAppointment, body: editBody(future, func(m map[string]any) { m["colour"] = "red" })}, 422, gpconnect.CodeInvalidResource},
		{"amend past appointment", call{method: put, path: appt + "/1", interaction: gpconnect.UpdateAppointment, body: past}, 422, gpconnect.CodeInvalidResource},
		{"amend unknown appointment", call{method: put, path: appt + "/999", interaction: gpconnect.UpdateAppointment, body: editBody(future, func(m map[string]any) { m["id"] = "999" })}, 404, gpconnect.CodeNoRecordFound},
		{"cancel without reason", call{method: put, path: appt + "/2", interaction: gpconnect.CancelAppointment, body: editBody(future, func(m map[string]any) { m["status"] = "cancelled" })}, 422, gpconnect.CodeInvalidResource},
		{"cancel with status booked", call{method: put, path: appt + "/2", interaction: gpconnect.CancelAppointment, body: future}, 422, gpconnect.CodeInvalidResource},
		{"cancel changing comment", call{method: put, path: appt + "/2", interaction: gpconnect.CancelAppointment, body: editBody(cancelOf(future), func(m map[string]any) { m["comment"] = "changed" })}, 422, gpconnect.CodeInvalidResource},
		{"cancel past appointment", call{method: put, path: appt + "/1", interaction: gpconnect.CancelAppointment, body: cancelOf(past)}, 422, gpconnect.CodeInvalidResource},
		{"cancel cancelled appointment", call{method: put, path: appt + "/5", interaction: gpconnect.CancelAppointment, body: cancelled}, 422, gpconnect.CodeInvalidResource},
		{"cancel stale If-Match", call{method: put, path: appt + "/2", interaction: gpconnect.CancelAppointment, body: cancelOf(future), header: map[string]string{"If-Match": `W/"2"`}}, 409, gpconnect.CodeFHIRConstraintViolation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, h, tc.c)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if got := outcomeCode(t, w.Body.Bytes()); got != tc.code {
				t.Errorf("code %s, want %s: %s", got, tc.code, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/fhir+json;charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	// None of the refused writes changed anything.
	st = state(t, d, "")
	if a := st.appts["2"]; a.Version != 1 || a.Body.Status != "booked" {
		t.Errorf("appointment 2 is now version %d, status %s", a.Version, a.Body.Status)
	}
	if !st.slot(slot["id"].(string)).Free {
		t.Error("the good slot was booked by a refused request")
	}
}

func tokenFor(interaction string) string {
	in, _ := gpconnect.Lookup(interaction)
	return gpconnect.DefaultTokenSpec(in, testBase, testNow).Encode()
}

// deviceAsPatient returns a valid metadata token whose requesting_device
// claims to be a Patient.
func deviceAsPatient(t *testing.T) string {
	t.Helper()
	parts := strings.Split(tokenFor(gpconnect.ReadMetadata), ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	m["requesting_device"].(map[string]any)["resourceType"] = "Patient"
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func mustInteraction(id string) gpconnect.Interaction {
	in, _ := gpconnect.Lookup(id)
	return in
}
