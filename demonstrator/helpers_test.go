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
	r.Header.Set("Ssp-To", testASID)
	r.Header.Set("Ssp-InteractionID", c.interaction)
	r.Header.Set("Accept", "application/fhir+json")
	if c.body != "" {
		r.Header.Set("Content-Type", "application/fhir+json;charset=utf-8")
	}
	if in, ok := gpconnect.Lookup(c.interaction); ok {
		r.Header.Set("Authorization", "Bearer "+gpconnect.DefaultTokenSpec(in, testBase, testNow).Encode())
	}
	for k, v := range c.header {
		if v == "" {
			r.Header.Del(k)
			continue
		}
		r.Header.Set(k, v)
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

// entries returns the resources of a searchset Bundle.
func entries(t testing.TB, b []byte) []map[string]any {
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
		if fu, _ := em["fullUrl"].(string); !strings.HasPrefix(fu, testBase+"/") {
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

// freeSlot finds a free slot over HTTP and returns it with the location of
// its schedule.
func freeSlot(t testing.TB, h http.Handler, skip int) (slot map[string]any, locationRef string) {
	t.Helper()
	w := do(t, h, call{method: "GET", path: slotSearch, interaction: gpconnect.SearchSlot})
	if w.Code != 200 {
		t.Fatalf("slot search: %d %s", w.Code, w.Body)
	}
	res := entries(t, w.Body.Bytes())
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

// bookingBody is a valid book appointment request for the slot.
func bookingBody(slot map[string]any, patientRef, locationRef string) string {
	b, _ := json.Marshal(map[string]any{
		"resourceType": "Appointment",
		"meta":         map[string]any{"profile": []string{profileAppointment}},
		"contained": []any{map[string]any{
			"resourceType": "Organization", "id": "1",
			"meta":    map[string]any{"profile": []string{profileOrganization}},
			"name":    "Test Organization Name",
			"telecom": []any{map[string]any{"system": "phone", "value": "0300 303 5678"}},
		}},
		"extension":   []any{map[string]any{"url": extBookingOrganisation, "valueReference": map[string]any{"reference": "#1"}}},
		"status":      "booked",
		"description": "Free text description.",
		"start":       slot["start"],
		"end":         slot["end"],
		"slot":        []any{map[string]any{"reference": "Slot/" + slot["id"].(string)}},
		"created":     testNow.Format(time.RFC3339),
		"comment":     "Free text comment.",
		"participant": []any{
			map[string]any{"actor": map[string]any{"reference": patientRef}, "status": "accepted"},
			map[string]any{"actor": map[string]any{"reference": locationRef}, "status": "accepted"},
		},
	})
	return string(b)
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
