package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"sspemu/gpconnect"
	"sspemu/pds"
	"sspemu/report"
)

// seqAnswer is what the practice answered one call of the session.
type seqAnswer struct {
	status int
	header http.Header
	res    map[string]any
	trace  string
}

// seqCall sends one call through the SSP as the default consumer, with a
// JSON body when body is not nil, and waits for its transaction record.
func (f *faultStack) seqCall(method, rel, interaction string, body any, hdr map[string]string) seqAnswer {
	f.t.Helper()
	in, _ := gpconnect.Lookup(interaction)
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "https://"+f.c.ssp+"/"+f.root+rel, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	trace := uuid.NewString()
	req.Header.Set("Ssp-TraceID", trace)
	req.Header.Set("Ssp-From", "200000000359")
	req.Header.Set("Ssp-To", f.asid)
	req.Header.Set("Ssp-InteractionID", interaction)
	req.Header.Set("Authorization", "Bearer "+gpconnect.DefaultTokenSpec(in, f.root, time.Now()).Encode())
	req.Header.Set("Accept", gpconnect.MIMEJSON)
	if body != nil {
		req.Header.Set("Content-Type", gpconnect.MIMEJSON+";charset=utf-8")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := f.c.http.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, rel, err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		f.t.Fatal(err)
	}
	a := seqAnswer{status: resp.StatusCode, header: resp.Header, trace: trace}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &a.res); err != nil {
			f.t.Fatalf("%s %s: %d, not JSON: %v\n%s", method, rel, resp.StatusCode, err, raw)
		}
	}
	f.transaction(trace) // the transaction record is queued after the answer
	return a
}

// must fails the test unless the call was answered want.
func (a seqAnswer) must(t *testing.T, what string, want int) seqAnswer {
	t.Helper()
	if a.status != want {
		b, _ := json.Marshal(a.res)
		t.Fatalf("%s: status %d, want %d: %s", what, a.status, want, b)
	}
	return a
}

// entries are a searchset's resources of one type.
func (a seqAnswer) entries(kind string) []map[string]any {
	var out []map[string]any
	for _, e := range amList(a.res, "entry") {
		if r, _ := e["resource"].(map[string]any); r != nil && r["resourceType"] == kind {
			out = append(out, r)
		}
	}
	return out
}

// TestReportSequencesFromRealSession: a consumer session through the real
// SSP to a practice over mutual TLS, in the order a booking at a practice
// the patient is not registered with takes (find the patient, not found →
// register (first with the defects of the Register Patient error tests:
// no NHS number, an invalid one, no birth date, the registrationDetails
// extension; then with a temporary address and phone) → search free slots
// → book → read the booking (tied by its Location) → amend it with
// If-Match → cancel it with If-Match → book again → retrieve the patient's
// appointments); then `sspemu report`
// marks the sequence tests met in JSON, HTML and JUnit (the JUnit checked
// by xmllint against the Jenkins schema, as TestReportFromRealSession).
func TestReportSequencesFromRealSession(t *testing.T) {
	f := startFaultStack(t)
	ods := strings.Split(strings.TrimPrefix(f.root, "https://"), "/")[1]
	newcomer := pds.Unregistered()[0]
	ac := &amClient{p: &amPractice{ods: ods, patientIDs: map[string]string{}}}

	// Find: the practice holds no record of the newcomer.
	find := f.seqCall("GET", "/Patient?identifier="+url.QueryEscape("https://fhir.nhs.uk/Id/nhs-number|"+newcomer.NHSNumber), gpconnect.SearchPatient, nil, nil).must(t, "find", 200)
	if n := len(find.entries("Patient")); n != 0 {
		t.Fatalf("find %s: %d patients, want none (a newcomer)", newcomer.NHSNumber, n)
	}
	// Registrations with the defects of the Register Patient error tests,
	// each refused by the practice; the report tells them apart by the
	// body's summary in the audit record (version 4), as they share a
	// code.
	register := func(what string, edit func(pt map[string]any), want int, code string) seqAnswer {
		t.Helper()
		pt := fdnRegistrant(newcomer)
		edit(pt)
		a := f.seqCall("POST", "/Patient/$gpc.registerpatient", gpconnect.RegisterPatient, json.RawMessage(fdnParameters(t, pt)), nil).must(t, what, want)
		if tx := f.transaction(a.trace); tx.ProviderCode != code {
			t.Fatalf("%s: provider code %q, want %q", what, tx.ProviderCode, code)
		}
		return a
	}
	noNHS := register("register without the NHS number", func(pt map[string]any) { delete(pt, "identifier") }, 422, gpconnect.CodeInvalidResource)
	badNHS := register("register an invalid NHS number", func(pt map[string]any) {
		pt["identifier"].([]any)[0].(map[string]any)["value"] = "9999999991"
	}, 400, gpconnect.CodeInvalidNHSNumber)
	noDOB := register("register without the birth date", func(pt map[string]any) { delete(pt, "birthDate") }, 422, gpconnect.CodeInvalidResource)
	regDetails := register("register with registrationDetails", func(pt map[string]any) {
		pt["extension"] = []any{map[string]any{"url": "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-RegistrationDetails-1",
			"extension": []any{map[string]any{"url": "registrationPeriod", "valuePeriod": map[string]any{"start": "2026-01-01"}}}}}
	}, 422, gpconnect.CodeInvalidResource)
	// Register, as the suite does after tracing the patient on PDS, with
	// the optional temporary address and phone number.
	reg := register("register", func(pt map[string]any) {
		pt["telecom"] = []any{map[string]any{"system": "phone", "value": "01632 960000", "use": "temp"}}
		pt["address"] = []any{map[string]any{"use": "temp", "line": []any{"1 Test Street"}, "city": "Leeds", "postalCode": "LS1 1AA"}}
	}, 200, "")
	pats := reg.entries("Patient")
	if len(pats) != 1 {
		t.Fatalf("register: %d patients in the answer", len(pats))
	}
	patientID := amStr(pats[0], "id")
	// Search free slots for the next week, with the Location included.
	q := amSlotQuery(amFromTomorrow(7)).set("searchFilter", amSystemODS+"|"+ods).add("_include:recurse", "Schedule:actor:Location")
	slots := f.seqCall("GET", "/Slot?"+q.String(), gpconnect.SearchSlot, nil, nil).must(t, "search free slots", 200)
	schedules := map[string]map[string]any{}
	for _, s := range slots.entries("Schedule") {
		schedules["Schedule/"+amStr(s, "id")] = s
	}
	var free []amSlot
	for _, s := range slots.entries("Slot") {
		sc := schedules[amStr(s, "schedule", "reference")]
		sl := amSlot{slot: s, schedule: sc, serviceCategory: amStr(sc, "serviceCategory", "text")}
		for _, a := range amList(sc, "actor") {
			if ref := amStr(a, "reference"); strings.HasPrefix(ref, "Location/") {
				sl.location = ref
			}
		}
		if types := amList(s, "serviceType"); len(types) > 0 {
			sl.serviceType = amStr(types[0], "text")
		}
		free = append(free, sl)
	}
	if len(free) < 2 {
		t.Fatalf("only %d free slots in the next week", len(free))
	}
	// Book, read it back, amend and cancel it naming its version.
	booked := f.seqCall("POST", "/Appointment", gpconnect.CreateAppointment, ac.bookingBody(t, free[0], patientID, amDefaultBooking), nil).must(t, "book", 201)
	apptID := amStr(booked.res, "id")
	if tx := f.transaction(booked.trace); !strings.Contains(tx.Location, "/Appointment/"+apptID+"/_history/") || tx.ETag == "" {
		t.Fatalf("book: transaction Location %q, ETag %q, want the new appointment's", tx.Location, tx.ETag)
	}
	read := f.seqCall("GET", "/Appointment/"+apptID, gpconnect.ReadAppointment, nil, nil).must(t, "read the booking", 200)
	amended := amClone(read.res)
	amended["comment"] = "Bring the repeat prescription"
	upd := f.seqCall("PUT", "/Appointment/"+apptID, gpconnect.UpdateAppointment, amended, map[string]string{"If-Match": read.header.Get("ETag")}).must(t, "amend", 200)
	f.seqCall("PUT", "/Appointment/"+apptID, gpconnect.CancelAppointment, amCancelled(upd.res, "Patient rearranged"),
		map[string]string{"If-Match": upd.header.Get("ETag")}).must(t, "cancel", 200)
	// Rearranged: book another slot.
	f.seqCall("POST", "/Appointment", gpconnect.CreateAppointment, ac.bookingBody(t, free[len(free)-1], patientID, amDefaultBooking), nil).must(t, "book again", 201)
	// The patient's appointments over the coming fortnight: the new one.
	mine := f.seqCall("GET", "/Patient/"+patientID+"/Appointment?"+amStartQuery(13), gpconnect.SearchPatientAppts, nil, nil).must(t, "retrieve", 200)
	if n := len(mine.entries("Appointment")); n < 1 {
		t.Fatalf("retrieve: %d appointments, want the new booking", n)
	}
	// Now registered, the patient is found (one Patient), and read; a
	// patient the practice does not hold is not found (404
	// PATIENT_NOT_FOUND); an NHS number failing its check digit is refused
	// by the practice (400 INVALID_NHS_NUMBER). The report decides these
	// from the facts of the real transaction records (version 3).
	found := f.seqCall("GET", "/Patient?identifier="+url.QueryEscape("https://fhir.nhs.uk/Id/nhs-number|"+newcomer.NHSNumber), gpconnect.SearchPatient, nil, nil).must(t, "find again", 200)
	if n := len(found.entries("Patient")); n != 1 {
		t.Fatalf("find %s after registering: %d patients, want one", newcomer.NHSNumber, n)
	}
	readPt := f.seqCall("GET", "/Patient/"+patientID, gpconnect.ReadPatient, nil, nil).must(t, "read the patient", 200)
	unknownPt := f.seqCall("GET", "/Patient/999999", gpconnect.ReadPatient, nil, nil).must(t, "read an unknown patient", 404)
	invalid := f.seqCall("GET", "/Patient?identifier="+url.QueryEscape("https://fhir.nhs.uk/Id/nhs-number|9999999991"), gpconnect.SearchPatient, nil, nil).must(t, "find an invalid NHS number", 400)
	for _, c := range []struct {
		a    seqAnswer
		code string
	}{{unknownPt, gpconnect.CodePatientNotFound}, {invalid, gpconnect.CodeInvalidNHSNumber}} {
		if tx := f.transaction(c.a.trace); tx.ProviderCode != c.code {
			t.Fatalf("transaction %s: provider code %q, want %s", c.a.trace, tx.ProviderCode, c.code)
		}
	}

	files, rep, res := runReport(t, f.st.store.Dir(), "sequences")
	metIDs := []string{"GPC-FOU-REG-01/3", "GPC-FOU-REG-01/4", "GPC-FOU-REG-01/5", "GPC-FOU-REG-01/6", "GPC-FOU-FPA-01/1", "GPC-FOU-FPA-01/3", "GPC-FOU-FPA-01/8", "GPC-FOU-RPA-01/1", "GPC-FOU-RPA-01/2", "GPC-FOU-REG-01/1", "GPC-AMUS-BPA-4", "GPC-AMUS-MPA-3", "GPC-AMUS-MPA-4", "GPC-AMUS-MPA-5", "GPC-AMUS-MPA-1", "GPC-AMUS-BPA-1/1", "GPC-AMUS-BPA-1/6"}
	for _, tc := range []struct {
		id, result string
		traces     []string // the calls that must be among the exemplars
		why        string   // a part of Why; "": not checked
		checked    string   // a part of an exemplar's Checked; "": not checked
	}{
		{"GPC-FOU-FPA-01/1", report.Met, []string{found.trace}, "exactly one Patient entry", "searchset of 1 entries (Patient 1)"},
		{"GPC-FOU-FPA-01/3", report.Met, []string{find.trace}, "no Patient entry", "searchset of 0 entries"},
		{"GPC-FOU-FPA-01/8", report.Met, []string{invalid.trace}, "with code INVALID_NHS_NUMBER", "provider OperationOutcome code INVALID_NHS_NUMBER"},
		{"GPC-FOU-RPA-01/1", report.Met, []string{found.trace, readPt.trace}, "", ""},
		{"GPC-FOU-RPA-01/2", report.Met, []string{unknownPt.trace}, "with code PATIENT_NOT_FOUND", "provider OperationOutcome code PATIENT_NOT_FOUND"},
		// No search answered two patients: the seed has no such NHS number.
		{"GPC-FOU-FPA-01/2", report.NotExercised, nil, "none with two or more Patient entries", ""},
		{"GPC-FOU-REG-01/1", report.Met, []string{find.trace, reg.trace, slots.trace, booked.trace, read.trace}, "", ""},
		{"GPC-AMUS-BPA-4", report.Met, []string{slots.trace, booked.trace, read.trace}, "of the same appointment", "answer Location"},
		{"GPC-AMUS-MPA-5", report.Met, []string{read.trace, upd.trace}, "sent with If-Match", `If-Match "W/`},
		{"GPC-AMUS-MPA-4", report.Met, []string{read.trace}, "a cancellation reason", "cancellation reason present"},
		// The registration defects, each told from the body's summary.
		{"GPC-FOU-REG-01/3", report.Met, []string{regDetails.trace}, "registrationDetails", "registrationDetails present"},
		{"GPC-FOU-REG-01/5", report.Met, []string{noNHS.trace}, "with code INVALID_RESOURCE", "no NHS number identifier"},
		{"GPC-FOU-REG-01/6", report.Met, []string{noDOB.trace}, "had no birth date", "birth date absent"},
		{"GPC-FOU-REG-01/4", report.Met, []string{reg.trace}, "an address and a telecom", "telecoms 1 (phone:temp); addresses 1 (temp)"},
		// An invalid number (its form) is not a number's status: the only
		// well-formed registration was accepted.
		{"GPC-FOU-REG-01/12", report.NotExercised, nil, "not answered 4xx", ""},
		// The only booking had one slot.
		{"GPC-AMUS-BPA-2-1", report.NotExercised, nil, "no calls in the order", ""},
		{"GPC-AMUS-MPA-3", report.Met, nil, "", ""},
		{"GPC-AMUS-MPA-1", report.Met, []string{find.trace, mine.trace}, "", ""},
		{"GPC-AMUS-BPA-1/1", report.Met, []string{slots.trace}, "", ""},
		{"GPC-AMUS-BPA-1/6", report.Met, []string{slots.trace}, "", ""},
		// A registration came between the search and the booking: not the
		// previously-registered case.
		{"GPC-FOU-REG-01/2", report.NotExercised, nil, "", ""},
		{"GPC-FOU-FPA-01/5", report.NotExercised, nil, "", ""},
	} {
		r, ok := res[tc.id]
		if !ok {
			t.Fatalf("%s is not in the report", tc.id)
		}
		if r.Result != tc.result {
			t.Errorf("%s: %s (%s), want %s", tc.id, r.Result, r.Why, tc.result)
			continue
		}
		if !strings.Contains(r.Why, tc.why) {
			t.Errorf("%s: why %q lacks %q", tc.id, r.Why, tc.why)
		}
		var shown, checked []string
		for _, e := range r.Evidence {
			if !e.Counter {
				shown = append(shown, e.TraceID)
				checked = append(checked, e.Checked...)
			}
		}
		if !strings.Contains(strings.Join(checked, "\n"), tc.checked) {
			t.Errorf("%s: no exemplar shows %q: %v", tc.id, tc.checked, checked)
		}
		for _, tr := range tc.traces {
			if !strings.Contains(strings.Join(shown, " "), tr) {
				t.Errorf("%s: call %s not among its evidence %v", tc.id, tr, shown)
			}
		}
	}
	for _, id := range []string{"GPC-FOU-REG-01/12", "GPC-FOU-REG-01/6", "GPC-FOU-REG-01/3"} {
		for _, e := range res[id].Evidence {
			if e.TraceID == badNHS.trace {
				t.Errorf("%s counts the registration with an invalid NHS number", id)
			}
		}
	}
	if n := len(rep.Results); n < 13+41+15 {
		t.Errorf("%d results, want every catalogue row", n)
	}

	h, err := os.ReadFile(files["html"])
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range metIDs {
		if !strings.Contains(string(h), `<tr class="met"><td><b>`+id+`</b>`) {
			t.Errorf("HTML does not show %s met", id)
		}
	}

	j := checkJUnit(t, files["junit"])
	for _, id := range metIDs {
		// A met test case has neither <failure> nor <skipped>.
		i := strings.Index(j, `<testcase name="`+id+`: `)
		if i < 0 {
			t.Errorf("JUnit has no test case %s", id)
			continue
		}
		c := j[i:]
		c = c[:strings.Index(c, "</testcase>")]
		if strings.Contains(c, "<failure") || strings.Contains(c, "<skipped") {
			t.Errorf("JUnit %s is not a pass:\n%s", id, c)
		}
	}
}
