package demonstrator

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"sspemu/gpconnect"
)

// TestPracticesServedUnderTheirRoots checks each practice answers under its
// own service root, with its own identity and data, and refuses requests
// meant for the other.
func TestPracticesServedUnderTheirRoots(t *testing.T) {
	d := newTwoPractices(t, Options{})
	h := d.Handler()
	for _, tc := range []struct {
		p         testPractice
		nhs, name string
		slots     int // free slots on the test's first day
	}{
		// 09:00-12:00 and 14:00-17:00 in 15, 10 and 15 minutes.
		{practiceA, "9690937286", DefaultName, 2*12 + 2*18 + 2*12},
		// 08:00-11:00 and 15:00-19:00 in 15 and 20 minutes, without those at
		// 08:00, the test's now.
		{practiceB, "9690937413", "Chapel Allerton Medical Centre", (11 + 16) + (8 + 12)},
	} {
		t.Run(tc.p.ods, func(t *testing.T) {
			w := do(t, h, tc.p.call("GET", "/metadata", gpconnect.ReadMetadata, ""))
			cs := decode(t, w.Body.Bytes())
			impl, _ := cs["implementation"].(map[string]any)
			if w.Code != 200 || impl["url"] != tc.p.base || !strings.Contains(impl["description"].(string), tc.name) {
				t.Errorf("metadata: %d implementation %v", w.Code, impl)
			}
			w = do(t, h, tc.p.call("GET", "/Organization/1", gpconnect.ReadOrganization, ""))
			org := decode(t, w.Body.Bytes())
			ids := org["identifier"].([]any)
			if org["name"] != tc.name || ids[0].(map[string]any)["value"] != tc.p.ods {
				t.Errorf("organisation %s", w.Body)
			}
			w = do(t, h, tc.p.call("GET", "/Patient/1", gpconnect.ReadPatient, ""))
			if !strings.Contains(w.Body.String(), `"value":"`+tc.nhs+`"`) {
				t.Errorf("Patient/1 is not %s: %s", tc.nhs, w.Body)
			}
			w = do(t, h, tc.p.call("GET", "/Slot?start=ge2025-03-10&end=le2025-03-10&status=free&_include=Slot:schedule", gpconnect.SearchSlot, ""))
			if n := len(ofType(entriesAt(t, tc.p.base, w.Body.Bytes()), "Slot")); n != tc.slots {
				t.Errorf("%d free slots on the first day, want %d", n, tc.slots)
			}
		})
	}

	// Each practice knows only its own patients.
	w := do(t, h, practiceB.call("GET", "/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9690937286", gpconnect.SearchPatient, ""))
	if n := len(entriesAt(t, practiceB.base, w.Body.Bytes())); w.Code != 200 || n != 0 {
		t.Errorf("A20047's patient found at B82617: %d, %d entries", w.Code, n)
	}
	for _, tc := range []struct {
		name   string
		c      call
		status int
		reason string
	}{
		{"Ssp-To of the other practice", call{method: "GET", path: practiceB.root + "/metadata", interaction: gpconnect.ReadMetadata, asid: practiceA.asid, base: practiceB.base}, 400, "Ssp-To"},
		{"aud of the other practice", call{method: "GET", path: practiceB.root + "/metadata", interaction: gpconnect.ReadMetadata, asid: practiceB.asid, base: practiceA.base}, 400, "aud"},
		{"a root no practice has", call{method: "GET", path: "/C12345/STU3/1/gpconnect/metadata", interaction: gpconnect.ReadMetadata}, 404, practiceB.root},
		{"a root's prefix", call{method: "GET", path: "/B82617/STU3/1/gpconnectX/metadata", interaction: gpconnect.ReadMetadata, asid: practiceB.asid, base: practiceB.base}, 404, "service roots"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, h, tc.c)
			if w.Code != tc.status || !strings.Contains(diagnostics(t, w.Body.Bytes()), tc.reason) {
				t.Errorf("%d %s, want %d naming %q", w.Code, w.Body, tc.status, tc.reason)
			}
		})
	}
}

// TestPracticesBookApart books the same slot number at both practices: a
// booking at one leaves the other's book alone, and a reset of one leaves
// the other's booking.
func TestPracticesBookApart(t *testing.T) {
	d := newTwoPractices(t, Options{})
	h := d.Handler()
	booked := map[string]string{}
	for _, p := range []testPractice{practiceA, practiceB} {
		slot, loc := freeSlotAt(t, h, p, 0)
		w := do(t, h, p.call("POST", "/Appointment", gpconnect.CreateAppointment, bookingBody(slot, "Patient/2", loc)))
		if w.Code != 201 || !strings.HasPrefix(w.Header().Get("Location"), p.base+"/Appointment/") {
			t.Fatalf("book at %s: %d Location %q %s", p.ods, w.Code, w.Header().Get("Location"), w.Body)
		}
		booked[p.ods] = decode(t, w.Body.Bytes())["id"].(string)
	}
	if booked["A20047"] != "7" || booked["B82617"] != "4" {
		t.Errorf("new appointment IDs %v, want 7 at A20047 (6 seeded) and 4 at B82617 (3 seeded)", booked)
	}
	// A patient of B82617 cannot be booked at A20047 (A20047 has no Patient/99).
	slot, loc := freeSlotAt(t, h, practiceA, 0)
	if w := do(t, h, practiceA.call("POST", "/Appointment", gpconnect.CreateAppointment, bookingBody(slot, "Patient/99", loc))); w.Code != 422 {
		t.Errorf("booking an unknown patient: %d", w.Code)
	}

	if err := d.ResetPractice(practiceB.ods); err != nil {
		t.Fatal(err)
	}
	if w := do(t, h, practiceB.call("GET", "/Appointment/4", gpconnect.ReadAppointment, "")); w.Code != 404 {
		t.Errorf("B82617's booking survived its reset: %d", w.Code)
	}
	if w := do(t, h, practiceA.call("GET", "/Appointment/7", gpconnect.ReadAppointment, "")); w.Code != 200 {
		t.Errorf("A20047's booking did not survive B82617's reset: %d", w.Code)
	}
	if err := d.ResetPractice("Z99999"); err == nil || !strings.Contains(err.Error(), `"Z99999"`) || !strings.Contains(err.Error(), "A20047, B82617") {
		t.Errorf("reset of an unknown practice: %v", err)
	}
	if err := d.Reset(); err != nil {
		t.Fatal(err)
	}
	if w := do(t, h, practiceA.call("GET", "/Appointment/7", gpconnect.ReadAppointment, "")); w.Code != 404 {
		t.Errorf("A20047's booking survived Reset: %d", w.Code)
	}
}

func TestValidatePractices(t *testing.T) {
	a := Practice{ODS: "A20047", ASID: "918999198993", Name: "A"}
	b := Practice{ODS: "B82617", ASID: "918999199177", Name: "B", Seed: testSeedB()}
	badSeed := testSeedB()
	badSeed.Patients[1].NHSNumber = "9690937287"
	badSeed.Schedules[0].Practitioner = 9
	badSeed.Sessions = []string{"9-12"}
	badSeed.Appointments[0].Patient = 0
	shared := testSeedB()
	shared.Patients[0].NHSNumber = "9690937286" // A20047's first patient
	for _, tc := range []struct {
		name string
		list []Practice
		want []string // each in the error
	}{
		{"two good practices", []Practice{a, b}, nil},
		{"ASID of 2 digits", []Practice{{ODS: "A20047", ASID: "12", Name: "A"}}, []string{`demonstrator practice 1 (A20047): asid "12" must be exactly 12 digits`}},
		{"lower-case ODS", []Practice{{ODS: "a20047", ASID: "918999198993", Name: "A"}}, []string{`ods "a20047"`}},
		{"no name", []Practice{{ODS: "A20047", ASID: "918999198993"}}, []string{"name must not be empty"}},
		{"ODS twice", []Practice{a, {ODS: "A20047", ASID: "918999199177", Name: "B", Seed: testSeedB()}}, []string{"practice 2 (A20047): ods A20047 is already the ODS code of demonstrator practice 1"}},
		{"ASID twice", []Practice{a, {ODS: "B82617", ASID: "918999198993", Name: "B", Seed: testSeedB()}}, []string{"practice 2 (B82617): asid 918999198993 is already"}},
		{"NHS number at two practices", []Practice{a, {ODS: "B82617", ASID: "918999199177", Name: "B", Seed: shared}}, []string{"practice 2 (B82617): seed: patient 1: NHS number 9690937286 is already registered at demonstrator practice 1"}},
		{"bad seed", []Practice{{ODS: "B82617", ASID: "918999199177", Name: "B", Seed: badSeed}}, []string{
			`patient 2: NHS number "9690937287"`, "schedule 1: practitioner 9", `session "9-12"`, "appointment 1: patient 0",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validatePractices(tc.list)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
	if _, err := New(Options{Practices: []Practice{a, a}}); err == nil {
		t.Error("New accepted two practices with one ODS code")
	}
	if _, err := New(Options{Practices: nil}); err == nil {
		t.Error("New accepted no practice at all")
	}
}

// TestOnePracticeForm checks demonstrator.asid + demonstrator.ods still
// mean one practice with the built-in seed.
func TestOnePracticeForm(t *testing.T) {
	two := []Practice{{ODS: "A20047", ASID: "918999198993", Name: "A"}, {ODS: "B82617", ASID: "918999199177", Name: "B"}}
	for _, tc := range []struct {
		c    Config
		want []Practice
	}{
		{Config{Practices: two}, two},
		{Config{ASID: "918999198999", Practices: two}, []Practice{{ODS: DefaultODS, ASID: "918999198999", Name: DefaultName}}},
		{Config{ODS: "X12345", Practices: two}, []Practice{{ODS: "X12345", ASID: DefaultASID, Name: DefaultName}}},
		{Config{ASID: "12", ODS: "A20047"}, []Practice{{ODS: "A20047", ASID: "12", Name: DefaultName}}},
	} {
		if got := tc.c.PracticeList(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%+v: practices %+v, want %+v", tc.c, got, tc.want)
		}
	}
	if err := (Config{ASID: "12", ODS: "A20047"}).Validate(); err == nil || !strings.Contains(err.Error(), `asid "12"`) {
		t.Errorf("asid 12 in the one-practice form: %v", err)
	}
	if err := (Config{}).Validate(); err == nil {
		t.Error("no practices accepted")
	}
}

// TestSeedIsReproducible builds each seed twice from one instant: the data
// are identical, IDs included, so a reset gives back the same book.
func TestSeedIsReproducible(t *testing.T) {
	d := newTwoPractices(t, Options{})
	for _, s := range []*Seed{DefaultSeed(), testSeedB()} {
		one, two := s.build(testNow, d.practices[0].loc), s.build(testNow, d.practices[0].loc)
		if !reflect.DeepEqual(one, two) {
			t.Error("two builds of one seed at one instant differ")
		}
		for i := 1; i < len(one.Slots); i++ {
			if one.Slots[i].Start.Before(one.Slots[i-1].Start) {
				t.Fatalf("slot %s before slot %s", one.Slots[i].ID, one.Slots[i-1].ID)
			}
		}
	}
	// The appointments of testSeedB land where it says.
	b := testSeedB().build(testNow, d.practices[0].loc)
	if len(b.Appointments) != 3 || !b.Appointments[0].Start.Before(testNow) || !b.Appointments[1].Start.After(testNow.Add(48*time.Hour)) ||
		b.Appointments[2].Body.Status != "cancelled" {
		t.Errorf("appointments %+v", b.Appointments)
	}
}

// TestClockIsTheBusinessTime moves the business clock a week on: the seed,
// the slot search and the past-appointment rule follow it, while the JWT
// is still checked against the real clock.
func TestClockIsTheBusinessTime(t *testing.T) {
	later := testNow.AddDate(0, 0, 7)
	d := newTwoPractices(t, Options{Clock: func() time.Time { return later }})
	h := d.Handler()
	w := do(t, h, practiceA.call("GET", strings.TrimPrefix(slotSearch, testRoot), gpconnect.SearchSlot, ""))
	if w.Code != 200 {
		t.Fatalf("slot search: %d %s", w.Code, w.Body)
	}
	for _, s := range ofType(entries(t, w.Body.Bytes()), "Slot") {
		if start, _ := time.Parse(time.RFC3339, s["start"].(string)); !start.After(later) {
			t.Fatalf("slot %v at %s offered, before the business now %s", s["id"], start, later)
		}
	}
	if n := len(ofType(entries(t, w.Body.Bytes()), "Slot")); n != 0 {
		t.Errorf("%d slots offered in a week that is over on the business clock", n)
	}
	// Appointment 2 (patient 1, more than two days after the seed) is in
	// the future of the business clock; amending it works.
	w = do(t, h, practiceA.call("GET", "/Appointment/2", gpconnect.ReadAppointment, ""))
	amended := edit(t, w.Body.Bytes(), func(m map[string]any) { m["comment"] = "Moved clock." })
	if w := do(t, h, practiceA.call("PUT", "/Appointment/2", gpconnect.UpdateAppointment, amended)); w.Code != 200 {
		t.Errorf("amend: %d %s", w.Code, w.Body)
	}
	if m := decode(t, do(t, h, practiceA.call("GET", "/Appointment/2", gpconnect.ReadAppointment, "")).Body.Bytes()); !strings.HasPrefix(m["meta"].(map[string]any)["lastUpdated"].(string), "2025-03-17") {
		t.Errorf("lastUpdated %v, want the business date 2025-03-17", m["meta"])
	}
}

// TestHookAnswersInstead checks a Hook's refusal is answered and audited
// like any other, with the handler not run.
func TestHookAnswersInstead(t *testing.T) {
	var seen []Inbound
	d := newTwoPractices(t, Options{Hook: func(_ context.Context, in Inbound) *gpconnect.Refusal {
		seen = append(seen, in)
		if in.ODS == practiceB.ods && in.Method == "POST" {
			return &gpconnect.Refusal{Status: 503, Code: gpconnect.CodeInternalServerError, Reason: "fault: B82617 is down"}
		}
		return nil
	}})
	h := d.Handler()
	slot, loc := freeSlotAt(t, h, practiceB, 0)
	w := do(t, h, practiceB.call("POST", "/Appointment", gpconnect.CreateAppointment, bookingBody(slot, "Patient/1", loc)))
	if w.Code != 503 || diagnostics(t, w.Body.Bytes()) != "fault: B82617 is down" {
		t.Errorf("hooked booking: %d %s", w.Code, w.Body)
	}
	if w := do(t, h, practiceA.call("GET", "/metadata", gpconnect.ReadMetadata, "")); w.Code != 200 {
		t.Errorf("unhooked practice: %d", w.Code)
	}
	type ident struct{ ODS, ASID, From, To, Interaction, Method, Path string }
	last := func() ident {
		in := seen[len(seen)-1]
		return ident{in.ODS, in.ASID, in.From, in.To, in.Interaction, in.Method, in.Path}
	}
	if len(seen) == 0 || last() != (ident{ODS: "A20047", ASID: "918999198993",
		From: testConsumer, To: "918999198993", Interaction: gpconnect.ReadMetadata, Method: "GET", Path: "/metadata"}) {
		t.Errorf("hook saw %+v", seen)
	}
}

// TestPatientsOfEveryPractice checks the list PDS reads: each practice's
// patients with its ODS code, a registration at once.
func TestPatientsOfEveryPractice(t *testing.T) {
	d := newTwoPractices(t, Options{})
	if w := do(t, d.Handler(), practiceB.call("POST", "/Patient/$gpc.registerpatient", gpconnect.RegisterPatient, registration)); w.Code != 200 {
		t.Fatalf("register: %d %s", w.Code, w.Body)
	}
	ps, err := d.Patients()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.PracticeODS+"/"+p.ID+"/"+p.NHSNumber)
	}
	want := []string{
		"A20047/1/9690937286", "A20047/2/9690937294", "A20047/3/9690937308", "A20047/4/9690937316", "A20047/5/9690937324",
		"A20047/6/9690937332", "A20047/7/9690937340", "A20047/8/9690937359", "A20047/9/9690937367", "A20047/10/9690937375",
		"A20047/11/9690937383", "A20047/12/9690937391", "A20047/13/9690937480", "A20047/14/9690937499", "A20047/15/9690937502",
		"A20047/16/9690937561", "A20047/17/9690937588", "A20047/18/9690937596",
		"B82617/1/9690937413", "B82617/2/9690937421", "B82617/3/9690937405",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("patients %v, want %v", got, want)
	}
}
