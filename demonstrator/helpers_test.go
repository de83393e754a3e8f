package demonstrator

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"sspemu/demonstrator/demotest"
	"sspemu/gpconnect"
)

const (
	testASID     = "918999198993"
	testConsumer = "200000000359"
	testODS      = "A20047"
	testBase     = "https://localhost:9443/A20047/STU3/1/gpconnect"
	testRoot     = "/A20047/STU3/1/gpconnect"
)

// testNow is a Monday morning before surgery opens, in winter (UK time =
// UTC), so that the whole day's slots are in the future.
var testNow = time.Date(2025, time.March, 10, 8, 0, 0, 0, time.UTC)

func newTestDemonstrator(t testing.TB) *Demonstrator {
	t.Helper()
	d, err := New(Options{ASID: testASID, ODS: testODS, BaseURL: testBase, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return d
}

// call describes one request to the demonstrator.
type call struct {
	method, path, interaction, body string
	header                          map[string]string // "" value deletes the header
	// asid and base are the practice's ASID (Ssp-To) and service root (the
	// JWT's aud); empty: A20047's.
	asid, base string
}

func (c call) request(t testing.TB) *http.Request {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	r := httptest.NewRequest(c.method, c.path, body)
	setHeaders(t, r, c)
	return r
}

func setHeaders(t testing.TB, r *http.Request, c call) {
	t.Helper()
	r.Header.Set("Ssp-TraceID", uuid.NewString())
	r.Header.Set("Ssp-From", testConsumer)
	asid, base := testASID, testBase
	if c.asid != "" {
		asid, base = c.asid, c.base
	}
	r.Header.Set("Ssp-To", asid)
	r.Header.Set("Ssp-InteractionID", c.interaction)
	r.Header.Set("Accept", "application/fhir+json")
	if c.body != "" {
		r.Header.Set("Content-Type", "application/fhir+json;charset=utf-8")
	}
	if in, ok := gpconnect.Lookup(c.interaction); ok {
		r.Header.Set("Authorization", "Bearer "+gpconnect.DefaultTokenSpec(in, base, testNow).Encode())
	}
	for k, v := range c.header {
		r.Header.Del(k)
		for _, line := range strings.Split(v, "\n") { // one header line each
			if line != "" {
				r.Header.Add(k, line)
			}
		}
	}
}

func do(t testing.TB, h http.Handler, c call) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, c.request(t))
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("%s %s: Cache-Control %q, want no-store", c.method, c.path, got)
	}
	return w
}

// decode parses a JSON body into a generic map.
func decode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, b)
	}
	return m
}

// outcomeCode returns the Spine error code of an OperationOutcome body.
func outcomeCode(t testing.TB, b []byte) string {
	t.Helper()
	var o struct {
		ResourceType string `json:"resourceType"`
		Meta         struct {
			Profile []string `json:"profile"`
		} `json:"meta"`
		Issue []struct {
			Details struct {
				Coding []struct{ Code string } `json:"coding"`
			} `json:"details"`
		} `json:"issue"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatalf("outcome is not JSON: %v\n%s", err, b)
	}
	if o.ResourceType != "OperationOutcome" || len(o.Issue) == 0 || len(o.Issue[0].Details.Coding) == 0 {
		t.Fatalf("not an OperationOutcome with a coded issue:\n%s", b)
	}
	if len(o.Meta.Profile) != 1 || o.Meta.Profile[0] != gpconnect.OutcomeProfile {
		t.Errorf("outcome profile %q, want %s", o.Meta.Profile, gpconnect.OutcomeProfile)
	}
	return o.Issue[0].Details.Coding[0].Code
}

// entries returns the resources of a searchset Bundle of A20047.
func entries(t testing.TB, b []byte) []map[string]any {
	t.Helper()
	return entriesAt(t, testBase, b)
}

// entriesAt returns the resources of a searchset Bundle whose fullUrls
// start with the service root base.
func entriesAt(t testing.TB, base string, b []byte) []map[string]any {
	t.Helper()
	m := decode(t, b)
	if m["resourceType"] != "Bundle" || m["type"] != "searchset" {
		t.Fatalf("not a searchset Bundle:\n%s", b)
	}
	if p := profileOf(m); p != profileBundle {
		t.Errorf("bundle profile %q, want %s", p, profileBundle)
	}
	var out []map[string]any
	es, _ := m["entry"].([]any)
	for _, e := range es {
		em := e.(map[string]any)
		if fu, _ := em["fullUrl"].(string); !strings.HasPrefix(fu, base+"/") {
			t.Errorf("fullUrl %q does not start with the service root", fu)
		}
		out = append(out, em["resource"].(map[string]any))
	}
	return out
}

func profileOf(m map[string]any) string {
	meta, _ := m["meta"].(map[string]any)
	ps, _ := meta["profile"].([]any)
	if len(ps) == 0 {
		return ""
	}
	s, _ := ps[0].(string)
	return s
}

func ofType(res []map[string]any, kind string) []map[string]any {
	var out []map[string]any
	for _, r := range res {
		if r["resourceType"] == kind {
			out = append(out, r)
		}
	}
	return out
}

// slotSearch is the query of a valid free-slot search over the test's first
// week.
const slotSearch = testRoot + "/Slot?start=ge2025-03-10&end=le2025-03-16&status=free&_include=Slot:schedule" +
	"&_include:recurse=Schedule:actor:Practitioner&_include:recurse=Schedule:actor:Location" +
	"&searchFilter=https://fhir.nhs.uk/Id/ods-organization-code|Y12345"

// freeSlot finds a free slot of A20047 over HTTP and returns it with the
// location of its schedule.
func freeSlot(t testing.TB, h http.Handler, skip int) (slot map[string]any, locationRef string) {
	t.Helper()
	return freeSlotAt(t, h, practiceA, skip)
}

// freeSlotAt is freeSlot at practice p.
func freeSlotAt(t testing.TB, h http.Handler, p testPractice, skip int) (slot map[string]any, locationRef string) {
	t.Helper()
	w := do(t, h, p.call("GET", strings.TrimPrefix(slotSearch, testRoot), gpconnect.SearchSlot, ""))
	if w.Code != 200 {
		t.Fatalf("slot search at %s: %d %s", p.ods, w.Code, w.Body)
	}
	res := entriesAt(t, p.base, w.Body.Bytes())
	slots := ofType(res, "Slot")
	if len(slots) <= skip {
		t.Fatalf("only %d free slots", len(slots))
	}
	slot = slots[skip]
	schedRef := slot["schedule"].(map[string]any)["reference"].(string)
	for _, sc := range ofType(res, "Schedule") {
		if "Schedule/"+sc["id"].(string) != schedRef {
			continue
		}
		for _, a := range sc["actor"].([]any) {
			ref := a.(map[string]any)["reference"].(string)
			if strings.HasPrefix(ref, "Location/") {
				return slot, ref
			}
		}
	}
	t.Fatalf("no schedule with a location for %s", schedRef)
	return nil, ""
}

// testPractice names one practice of a test demonstrator.
type testPractice struct{ ods, asid, base, root string }

var (
	practiceA = testPractice{testODS, testASID, testBase, testRoot}
	practiceB = testPractice{"B82617", "918999199177", "https://localhost:9443/B82617/STU3/1/gpconnect", "/B82617/STU3/1/gpconnect"}
)

// call is a request to p: its root, its Ssp-To and its aud.
func (p testPractice) call(method, rel, interaction, body string) call {
	return call{method: method, path: p.root + rel, interaction: interaction, body: body, asid: p.asid, base: p.base}
}

// testSeedB is a second practice's seed: its own staff, one site, evening
// surgeries, patients with NHS numbers A20047 does not have.
func testSeedB() *Seed {
	return &Seed{
		Phone:   "0113 496 1000",
		Address: SeedAddress{Line: "2 Harrogate Road", City: "Leeds", PostalCode: "LS7 4LZ"},
		Practitioners: []SeedPractitioner{
			{SDSUserID: "G44444446", SDSRoleProfileID: "444444444444", Family: "OKONJO", Given: "Ada", Prefix: "Dr", Gender: "female"},
			{SDSUserID: "G55555556", Family: "BRENNAN", Given: "Liam", Prefix: "Dr", Gender: "male"},
		},
		Locations: []SeedLocation{{Name: "Chapel Allerton Medical Centre", Phone: "0113 496 1001",
			Address: SeedAddress{Line: "2 Harrogate Road", City: "Leeds", PostalCode: "LS7 4LZ"}}},
		Schedules: []SeedSchedule{
			{Practitioner: 1, Location: 1, Minutes: 15, ServiceType: "General GP Appointment"},
			{Practitioner: 2, Location: 1, Minutes: 20, ServiceType: "Extended Hours Appointment"},
		},
		Sessions: []string{"08:00-11:00", "15:00-19:00"},
		Days:     21,
		Patients: []SeedPatient{
			{NHSNumber: "9690937413", Family: "ASHWORTH", Given: "Ruth", Gender: "female", BirthDate: "1958-06-21", GP: 1},
			{NHSNumber: "9690937421", Family: "KOWALSKI", Given: "Marek", Gender: "male", BirthDate: "1976-02-03", GP: 2,
				Address: &SeedAddress{Line: "5 Potternewton Lane", City: "Leeds", PostalCode: "LS7 3LW"}},
		},
		Appointments: []SeedAppointment{
			{Patient: 1, Schedule: 1, DaysAgo: 5, Description: "Diabetes review"},
			{Patient: 1, Schedule: 1, FreeSlot: 0, Description: "HbA1c results"},
			{Patient: 2, Schedule: 2, DaysAgo: 12, Description: "Ear infection", CancellationReason: "Patient felt better"},
		},
	}
}

// newTwoPractices is a test demonstrator serving A20047 (the built-in seed)
// and B82617 (testSeedB), with opt's other settings.
func newTwoPractices(t testing.TB, opt Options) *Demonstrator {
	t.Helper()
	opt.Practices = []Practice{
		{ODS: practiceA.ods, ASID: practiceA.asid, Name: DefaultName},
		{ODS: practiceB.ods, ASID: practiceB.asid, Name: "Chapel Allerton Medical Centre", Seed: testSeedB()},
	}
	opt.BaseURLs = map[string]string{practiceA.ods: practiceA.base, practiceB.ods: practiceB.base}
	if opt.Now == nil {
		opt.Now = func() time.Time { return testNow }
	}
	d, err := New(opt)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return d
}

// bookingBody is a valid book appointment request for the slot, made at
// the tests' fixed time.
func bookingBody(slot map[string]any, patientRef, locationRef string) string {
	return demotest.JSON(demotest.Booking(slot, patientRef, locationRef, testNow))
}

// edit decodes a JSON resource, applies f and encodes it again.
func edit(t testing.TB, body []byte, f func(m map[string]any)) string {
	t.Helper()
	m := decode(t, body)
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// state returns a copy of a practice's in-memory state (testODS when ods is
// empty), taken under the store's read lock, for assertions on what the
// store holds.
func state(t testing.TB, d *Demonstrator, ods string) *memData {
	t.Helper()
	if ods == "" {
		ods = testODS
	}
	p, ok := d.byODS[ods]
	if !ok {
		t.Fatalf("no practice %s", ods)
	}
	ms, ok := p.store.(*MemoryStore)
	if !ok {
		t.Fatalf("practice %s does not keep its state in a MemoryStore", ods)
	}
	ms.mu.RLock()
	defer ms.mu.RUnlock()
	c := *ms.d
	c.practitioners = slices.Clone(c.practitioners)
	c.locations = slices.Clone(c.locations)
	c.schedules = slices.Clone(c.schedules)
	c.slots = slices.Clone(c.slots)
	c.slotAt = maps.Clone(c.slotAt)
	c.patients = maps.Clone(c.patients)
	c.byNHS = maps.Clone(c.byNHS)
	c.appts = maps.Clone(c.appts)
	c.apptOrder = slices.Clone(c.apptOrder)
	return &c
}

func (m *memData) slot(id string) Slot { return m.slots[m.slotAt[id]] }

func (m *memData) schedule(id string) Schedule {
	for _, s := range m.schedules {
		if s.ID == id {
			return s
		}
	}
	return Schedule{}
}

func (m *memData) patientByNHS(nhs string) (Patient, bool) {
	p, ok := m.patients[m.byNHS[nhs]]
	return p, ok
}
