package demonstrator

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"sspemu/gpconnect"
)

func TestNewRejectsBadIdentities(t *testing.T) {
	for _, opt := range []Options{
		{ASID: "12345", ODS: testODS},
		{ASID: testASID, ODS: "a2 0047"},
	} {
		if _, err := New(opt); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", opt)
		}
	}
}

func TestSeed(t *testing.T) {
	d := newTestDemonstrator(t)
	st := state(t, d, "")
	if len(st.patients) != 18 {
		t.Errorf("%d patients, want 18", len(st.patients))
	}
	if _, ok := st.patientByNHS("9690937286"); !ok {
		t.Error("patient 9690937286 is missing")
	}
	for _, p := range st.patients {
		if !gpconnect.ValidNHSNumber(p.NHSNumber) {
			t.Errorf("seed NHS number %s fails the modulus-11 check", p.NHSNumber)
		}
	}
	if len(st.practitioners) != 5 || len(st.locations) != 3 {
		t.Errorf("%d practitioners and %d locations, want 5 and 3", len(st.practitioners), len(st.locations))
	}
	loc := d.practices[0].loc
	free := 0
	for _, sl := range st.slots {
		if !sl.Free {
			continue
		}
		free++
		local := sl.Start.In(loc)
		if wd := local.Weekday(); (wd == time.Saturday || wd == time.Sunday) && local.Hour() >= 12 {
			t.Errorf("free slot %s at %s is outside the weekend surgery", sl.ID, local)
		}
		if h := local.Hour(); h < 9 || h >= 17 || (h >= 12 && h < 14) {
			t.Errorf("free slot %s at %s is outside surgery hours", sl.ID, local)
		}
		if m := sl.End.Sub(sl.Start); m != 10*time.Minute && m != 15*time.Minute {
			t.Errorf("slot %s lasts %s", sl.ID, m)
		}
		if !sl.Start.After(testNow) || sl.Start.After(testNow.AddDate(0, 0, 28)) {
			t.Errorf("free slot %s at %s is not in the next four weeks", sl.ID, sl.Start)
		}
	}
	if free < 1000 {
		t.Errorf("only %d free slots", free)
	}
	var past, future int
	for _, a := range st.appts {
		if a.Start.Before(testNow) {
			past++
		} else {
			future++
		}
	}
	if past == 0 || future == 0 {
		t.Errorf("seed appointments: %d past, %d future; want some of each", past, future)
	}
}

func TestHappyPaths(t *testing.T) {
	d := newTestDemonstrator(t)
	h := d.Handler()
	for _, tc := range []struct {
		name, path, interaction string
		kind, profile           string // of the resource, or of the bundle's entries
		bundle                  int    // entries wanted; -1 for a single resource
	}{
		{"capability statement", "/metadata", gpconnect.ReadMetadata, "CapabilityStatement", "", -1},
		{"read patient", "/Patient/1", gpconnect.ReadPatient, "Patient", profilePatient, -1},
		{"find patient", "/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9690937286", gpconnect.SearchPatient, "Patient", profilePatient, 1},
		{"find patient encoded", "/Patient?identifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9690937294", gpconnect.SearchPatient, "Patient", profilePatient, 1},
		{"find patient no match", "/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9690937405", gpconnect.SearchPatient, "Patient", profilePatient, 0},
		{"read practitioner", "/Practitioner/2", gpconnect.ReadPractitioner, "Practitioner", profilePractitioner, -1},
		{"find practitioner", "/Practitioner?identifier=https://fhir.nhs.uk/Id/sds-user-id|G13579135", gpconnect.SearchPractitioner, "Practitioner", profilePractitioner, 1},
		{"read organisation", "/Organization/1", gpconnect.ReadOrganization, "Organization", profileOrganization, -1},
		{"find organisation", "/Organization?identifier=https://fhir.nhs.uk/Id/ods-organization-code|A20047", gpconnect.SearchOrganization, "Organization", profileOrganization, 1},
		{"find organisation no match", "/Organization?identifier=https://fhir.nhs.uk/Id/ods-organization-code|B99999", gpconnect.SearchOrganization, "Organization", profileOrganization, 0},
		{"read location", "/Location/2", gpconnect.ReadLocation, "Location", profileLocation, -1},
		{"read appointment", "/Appointment/2", gpconnect.ReadAppointment, "Appointment", profileAppointment, -1},
		{"patient appointments", "/Patient/1/Appointment?start=ge2025-03-10&start=le2025-12-31", gpconnect.SearchPatientAppts, "Appointment", profileAppointment, 1},
		{"patient appointments none", "/Patient/5/Appointment?start=ge2025-03-10&start=le2025-12-31", gpconnect.SearchPatientAppts, "Appointment", profileAppointment, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, h, call{method: "GET", path: testRoot + tc.path, interaction: tc.interaction})
			if w.Code != 200 {
				t.Fatalf("status %d, want 200: %s", w.Code, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/fhir+json;charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if tc.bundle < 0 {
				m := decode(t, w.Body.Bytes())
				if m["resourceType"] != tc.kind {
					t.Errorf("resourceType %v, want %s", m["resourceType"], tc.kind)
				}
				if p := profileOf(m); p != tc.profile {
					t.Errorf("profile %q, want %q", p, tc.profile)
				}
				if tc.profile != "" {
					meta := m["meta"].(map[string]any)
					if etag := w.Header().Get("ETag"); etag != `W/"`+meta["versionId"].(string)+`"` {
						t.Errorf("ETag %q, versionId %v", etag, meta["versionId"])
					}
				}
				return
			}
			res := entries(t, w.Body.Bytes())
			if len(res) != tc.bundle {
				t.Fatalf("%d entries, want %d:\n%s", len(res), tc.bundle, w.Body)
			}
			for _, r := range res {
				if r["resourceType"] != tc.kind || profileOf(r) != tc.profile {
					t.Errorf("entry %v with profile %q, want %s %s", r["resourceType"], profileOf(r), tc.kind, tc.profile)
				}
			}
		})
	}
}

func TestCapabilityStatementFacts(t *testing.T) {
	h := newTestDemonstrator(t).Handler()
	w := do(t, h, call{method: "GET", path: testRoot + "/metadata?_format=application/fhir%2Bjson", interaction: gpconnect.ReadMetadata})
	m := decode(t, w.Body.Bytes())
	if m["version"] != "1.2.7" || m["fhirVersion"] != "3.0.1" {
		t.Errorf("version %v fhirVersion %v, want 1.2.7 and 3.0.1", m["version"], m["fhirVersion"])
	}
}

func TestSlotSearch(t *testing.T) {
	h := newTestDemonstrator(t).Handler()
	w := do(t, h, call{method: "GET", path: slotSearch, interaction: gpconnect.SearchSlot})
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	res := entries(t, w.Body.Bytes())
	slots, schedules := ofType(res, "Slot"), ofType(res, "Schedule")
	if len(slots) == 0 || len(schedules) != 3 || len(ofType(res, "Practitioner")) != 3 || len(ofType(res, "Location")) != 2 {
		t.Fatalf("got %d slots, %d schedules, %d practitioners, %d locations",
			len(slots), len(schedules), len(ofType(res, "Practitioner")), len(ofType(res, "Location")))
	}
	from := time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC)
	to := time.Date(2025, 3, 17, 0, 0, 0, 0, time.UTC)
	for _, s := range slots {
		start, _ := time.Parse(time.RFC3339, s["start"].(string))
		if s["status"] != "free" || start.Before(from) || !start.Before(to) || profileOf(s) != profileSlot {
			t.Errorf("slot %v: status %v start %v profile %q", s["id"], s["status"], s["start"], profileOf(s))
		}
	}
	if profileOf(schedules[0]) != profileSchedule {
		t.Errorf("schedule profile %q", profileOf(schedules[0]))
	}

	// Without the recursive includes only slots and schedules come back.
	w = do(t, h, call{method: "GET", path: testRoot + "/Slot?status=free&_include=Slot:schedule&start=ge2025-03-11T09:00:00%2B00:00&end=le2025-03-11T10:00:00%2B00:00", interaction: gpconnect.SearchSlot})
	res = entries(t, w.Body.Bytes())
	if n := len(ofType(res, "Slot")); n != 4+6+4 {
		t.Errorf("%d slots between 09:00 and 10:00, want 14", n)
	}
	if len(ofType(res, "Practitioner"))+len(ofType(res, "Location")) != 0 {
		t.Error("practitioners or locations included without _include:recurse")
	}
}

func TestRegisterPatient(t *testing.T) {
	h := newTestDemonstrator(t).Handler()
	body := `{"resourceType":"Parameters","parameter":[{"name":"registerPatient","resource":{
		"resourceType":"Patient",
		"meta":{"profile":["https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Patient-1"]},
		"identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9690937405"}],
		"name":[{"use":"official","family":"NEWMAN","given":["Nia"]}],
		"gender":"female","birthDate":"1999-04-01"}}]}`
	c := call{method: "POST", path: testRoot + "/Patient/$gpc.registerpatient", interaction: gpconnect.RegisterPatient, body: body}
	w := do(t, h, c)
	if w.Code != 200 {
		t.Fatalf("register: %d %s", w.Code, w.Body)
	}
	res := entries(t, w.Body.Bytes())
	if len(res) != 1 || res[0]["resourceType"] != "Patient" || profileOf(res[0]) != profilePatient {
		t.Fatalf("register answered %s", w.Body)
	}
	w = do(t, h, call{method: "GET", path: testRoot + "/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9690937405", interaction: gpconnect.SearchPatient})
	if n := len(entries(t, w.Body.Bytes())); n != 1 {
		t.Errorf("find after register: %d entries, want 1", n)
	}
	w = do(t, h, c)
	if w.Code != 409 || outcomeCode(t, w.Body.Bytes()) != gpconnect.CodeDuplicateRejected {
		t.Errorf("second register: %d %s, want 409 DUPLICATE_REJECTED", w.Code, w.Body)
	}
}

// TestJourney follows a consumer through search, book, read, amend and
// cancel, and checks the slot is free again at the end.
func TestJourney(t *testing.T) {
	h := newTestDemonstrator(t).Handler()
	slot, loc := freeSlot(t, h, 0)
	slotID := slot["id"].(string)

	w := do(t, h, call{method: "POST", path: testRoot + "/Appointment", interaction: gpconnect.CreateAppointment,
		body: bookingBody(slot, "Patient/3", loc)})
	if w.Code != 201 {
		t.Fatalf("book: %d %s", w.Code, w.Body)
	}
	appt := decode(t, w.Body.Bytes())
	id := appt["id"].(string)
	if got, want := w.Header().Get("Location"), testBase+"/Appointment/"+id+"/_history/1"; got != want {
		t.Errorf("Location %q, want %q", got, want)
	}
	if w.Header().Get("ETag") != `W/"1"` || profileOf(appt) != profileAppointment {
		t.Errorf("ETag %q profile %q", w.Header().Get("ETag"), profileOf(appt))
	}

	// The booked slot is no longer offered.
	for _, s := range ofType(entries(t, do(t, h, call{method: "GET", path: slotSearch, interaction: gpconnect.SearchSlot}).Body.Bytes()), "Slot") {
		if s["id"] == slotID {
			t.Fatalf("booked slot %s still offered as free", slotID)
		}
	}

	w = do(t, h, call{method: "GET", path: testRoot + "/Appointment/" + id, interaction: gpconnect.ReadAppointment})
	if w.Code != 200 || w.Header().Get("ETag") != `W/"1"` {
		t.Fatalf("read: %d ETag %q %s", w.Code, w.Header().Get("ETag"), w.Body)
	}
	amended := edit(t, w.Body.Bytes(), func(m map[string]any) {
		m["comment"] = "Amended comment."
		m["description"] = "Amended description."
	})
	w = do(t, h, call{method: "PUT", path: testRoot + "/Appointment/" + id, interaction: gpconnect.UpdateAppointment,
		body: amended, header: map[string]string{"If-Match": `W/"1"`}})
	if w.Code != 200 || w.Header().Get("ETag") != `W/"2"` {
		t.Fatalf("amend: %d ETag %q %s", w.Code, w.Header().Get("ETag"), w.Body)
	}
	if m := decode(t, w.Body.Bytes()); m["comment"] != "Amended comment." || m["description"] != "Amended description." {
		t.Errorf("amend answered %s", w.Body)
	}

	cancelled := edit(t, w.Body.Bytes(), func(m map[string]any) {
		m["status"] = "cancelled"
		m["extension"] = append(m["extension"].([]any), map[string]any{"url": extCancellationReason, "valueString": "Patient recovered"})
	})
	w = do(t, h, call{method: "PUT", path: testRoot + "/Appointment/" + id, interaction: gpconnect.CancelAppointment,
		body: cancelled, header: map[string]string{"If-Match": `W/"2"`}})
	if w.Code != 200 || w.Header().Get("ETag") != `W/"3"` {
		t.Fatalf("cancel: %d ETag %q %s", w.Code, w.Header().Get("ETag"), w.Body)
	}
	if m := decode(t, w.Body.Bytes()); m["status"] != "cancelled" || !strings.Contains(w.Body.String(), "Patient recovered") {
		t.Errorf("cancel answered %s", w.Body)
	}

	found := false
	for _, s := range ofType(entries(t, do(t, h, call{method: "GET", path: slotSearch, interaction: gpconnect.SearchSlot}).Body.Bytes()), "Slot") {
		found = found || s["id"] == slotID
	}
	if !found {
		t.Errorf("slot %s not free again after the cancellation", slotID)
	}
	w = do(t, h, call{method: "GET", path: testRoot + "/Patient/3/Appointment?start=ge2025-03-10&start=le2025-04-30", interaction: gpconnect.SearchPatientAppts})
	if !strings.Contains(w.Body.String(), `"id":"`+id+`"`) {
		t.Errorf("patient 3's appointments lack %s: %s", id, w.Body)
	}
}

func TestBookPreferMinimal(t *testing.T) {
	h := newTestDemonstrator(t).Handler()
	slot, loc := freeSlot(t, h, 0)
	w := do(t, h, call{method: "POST", path: testRoot + "/Appointment", interaction: gpconnect.CreateAppointment,
		body: bookingBody(slot, "Patient/1", loc), header: map[string]string{"Prefer": "return=minimal"}})
	if w.Code != 201 || w.Body.Len() != 0 || w.Header().Get("Location") == "" || w.Header().Get("ETag") != `W/"1"` {
		t.Errorf("book with return=minimal: %d, %d body bytes, Location %q, ETag %q", w.Code, w.Body.Len(), w.Header().Get("Location"), w.Header().Get("ETag"))
	}
}

func TestReset(t *testing.T) {
	d := newTestDemonstrator(t)
	h := d.Handler()
	slot, loc := freeSlot(t, h, 0)
	if w := do(t, h, call{method: "POST", path: testRoot + "/Appointment", interaction: gpconnect.CreateAppointment, body: bookingBody(slot, "Patient/1", loc)}); w.Code != 201 {
		t.Fatalf("book: %d %s", w.Code, w.Body)
	}
	if err := d.Reset(); err != nil {
		t.Fatal(err)
	}
	if again, _ := freeSlot(t, h, 0); again["id"] != slot["id"] {
		t.Errorf("after Reset the first free slot is %v, want %v", again["id"], slot["id"])
	}
	if w := do(t, h, call{method: "GET", path: testRoot + "/Appointment/7", interaction: gpconnect.ReadAppointment}); w.Code != 404 {
		t.Errorf("the booked appointment survived Reset: %d", w.Code)
	}
	if w := do(t, h, call{method: "POST", path: testRoot + "/Appointment", interaction: gpconnect.CreateAppointment, body: bookingBody(slot, "Patient/1", loc)}); w.Code != 201 {
		t.Errorf("booking the slot again after Reset: %d %s", w.Code, w.Body)
	}
}

func TestRecoverOutcome(t *testing.T) {
	h := recoverOutcome(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", testRoot+"/metadata", nil))
	if w.Code != 500 || outcomeCode(t, w.Body.Bytes()) != gpconnect.CodeInternalServerError || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("panic answered %d %s", w.Code, w.Body)
	}
}

// TestFormatTime checks the hand-written formatter against time.Format,
// across UK summer and winter time, other offsets and odd years.
func TestFormatTime(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	for _, loc := range []*time.Location{london, time.UTC, time.FixedZone("", -(3*3600 + 30*60)), time.FixedZone("", 14*3600)} {
		for _, tm := range []time.Time{
			testNow, time.Date(2025, 3, 30, 0, 59, 59, 0, time.UTC), time.Date(2025, 3, 30, 1, 0, 0, 0, time.UTC),
			time.Date(2025, 10, 26, 0, 30, 0, 999, time.UTC), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Date(-1, 6, 1, 12, 0, 0, 0, time.UTC),
		} {
			for step := range 50 {
				x := tm.Add(time.Duration(step) * 97 * time.Minute)
				if got, want := formatTime(x, loc), x.In(loc).Format(fhirTime); got != want {
					t.Errorf("formatTime(%v, %v) = %q, want %q", x, loc, got, want)
				}
			}
		}
	}
}
