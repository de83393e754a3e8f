package main

// The Appointment Management part of the NHS provider conformance suite
// (nhsconnect/gpconnect-provider-testing, release/1.2.7: the features
// SearchForFreeSlots, AppointmentBook, AppointmentAmend, AppointmentCancel,
// AppointmentRead and AppointmentRetrieve), written again in Go from what
// each scenario sends and checks. One table per feature; each row is named
// after its scenario, and after its example where the scenario is an
// outline. Every table runs at every practice of the embedded
// configuration, once with JSON and once with XML as the consumer's format
// (request bodies and Accept), as the default consumer through the real
// SSP over mutual TLS. Rows whose scenario sets the formats itself (Accept,
// _format, Content-Type) run in the JSON pass only.
//
// Where the suite's check is vacuous (the DeliveryChannel and
// PractitionerRole "must be valid", the booking organisation extension,
// the CapabilityStatement interactions) the row checks the rule the
// specification states instead. Where the suite and the 1.2.7
// specification disagree, the row follows the specification, and says so
// (the README's Conformance section lists them).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"sspemu/demonstrator"
	"sspemu/fhir"
	"sspemu/fhir/fhirtest"
	"sspemu/fhir/fhirtest/profile"
	"sspemu/gpconnect"
)

// The URLs and systems the rows check against, as the profiles name them.
const (
	amProfileAppointment  = "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Appointment-1"
	amProfileSlot         = "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Slot-1"
	amProfileSchedule     = "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Schedule-1"
	amProfileOrganization = "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Organization-1"
	amProfileLocation     = "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Location-1"
	amProfilePractitioner = "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Practitioner-1"
	amExtDeliveryChannel  = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-DeliveryChannel-2"
	amExtDeliveryChannel1 = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-DeliveryChannel-1"
	amExtPractitionerRole = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-PractitionerRole-1"
	amExtBookingOrg       = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-BookingOrganisation-1"
	amExtCancelReason     = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-AppointmentCancellationReason-1"
	amSystemJobRole       = "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-SDSJobRoleName-1"
	amSystemODS           = "https://fhir.nhs.uk/Id/ods-organization-code"
	amSystemOrgType       = "https://fhir.nhs.uk/STU3/CodeSystem/GPConnect-OrganisationType-1"
	amFHIRDateTime        = "2006-01-02T15:04:05-07:00"
)

// amDeliveryChannels and amPractitionerRoles are ValueSets
// GPConnect-DeliveryChannel-1 and GPConnect-PractitionerRole-1 (the codes).
var (
	amDeliveryChannels  = []string{"In-person", "Telephone", "Video"}
	amPractitionerRoles = []string{"R0260", "R0270", "R0410", "R0600", "R0610", "R0620", "R0680", "R0690", "R0700", "R0790",
		"R1290", "R1300", "R1310", "R1330", "R1450", "R1480", "R1550", "R1590", "R6200", "R6300"}
)

// amPatients maps the suite's patient names (NHSNoMap.csv) to each
// practice's seed: the same states (a normal registered patient; one with
// no appointments that no row books for), not the same numbers. B82617 has
// six patients, so its patient6 is its patient3.
var amPatients = map[string]map[string]string{
	"A20047": {"patient1": "9690937286", "patient2": "9690937294", "patient3": "9690937308", "patient4": "9690937316",
		"patient5": "9690937324", "patient6": "9690937332", "patientNoAppointments": "9690937375"},
	"B82617": {"patient1": "9690937413", "patient2": "9690937421", "patient3": "9690937448", "patient4": "9690937456",
		"patient5": "9690937464", "patient6": "9690937448", "patientNoAppointments": "9690937472"},
}

// TestConformanceAppointments runs the six Appointment Management tables
// at every practice, in JSON and in XML, and then checks every XML answer
// against the STU3 schema.
func TestConformanceAppointments(t *testing.T) {
	st := startAMStack(t)
	t.Run("practices", func(t *testing.T) {
		for _, p := range st.practices {
			for _, format := range []string{"json", "xml"} {
				t.Run(p.ods+"/"+format, func(t *testing.T) {
					t.Parallel()
					c := &amClient{st: st, p: p, format: format}
					t.Run("SearchForFreeSlots", func(t *testing.T) { runAMRows(t, c, searchForFreeSlotsRows) })
					t.Run("AppointmentBook", func(t *testing.T) { runAMRows(t, c, appointmentBookRows) })
					t.Run("AppointmentAmend", func(t *testing.T) { runAMRows(t, c, appointmentAmendRows) })
					t.Run("AppointmentCancel", func(t *testing.T) { runAMRows(t, c, appointmentCancelRows) })
					t.Run("AppointmentRead", func(t *testing.T) { runAMRows(t, c, appointmentReadRows) })
					t.Run("AppointmentRetrieve", func(t *testing.T) { runAMRows(t, c, appointmentRetrieveRows) })
				})
			}
		}
	})
	st.validateXML(t)
	keys := slices.Sorted(maps.Keys(st.others))
	for _, k := range keys {
		t.Logf("outside Appointment Management, not failing these rows: %s", st.others[k])
	}
}

// amRow is one row of a feature table: run makes its requests and checks
// its answers. explicitFormat rows set the formats themselves and run in
// the JSON pass only.
type amRow struct {
	name           string
	explicitFormat bool
	run            func(t *testing.T, c *amClient)
}

func runAMRows(t *testing.T, c *amClient, rows []amRow) {
	for _, r := range rows {
		if r.explicitFormat && c.format != "json" {
			continue
		}
		t.Run(r.name, func(t *testing.T) { r.run(t, c) })
	}
}

// amStack is the running stack and what the rows share about each
// practice.
type amStack struct {
	http      *http.Client
	ssp       string
	practices []*amPractice

	mu     sync.Mutex
	xml    [][]byte          // XML answers, for the schema
	others map[string]string // profile problems outside Appointment Management, once each
}

type amPractice struct {
	ods, asid, root string
	patientIDs      map[string]string // suite name → logical ID
	pool            *amSlotPool
}

func startAMStack(t *testing.T) *amStack {
	t.Helper()
	demoPort := freeLoopbackPort(t)
	st0, cfg := startTestStack(t, writeCrashConfig(t, t.TempDir(), demoPort, "none"))
	st := &amStack{http: consumerClient(t, cfg.PKIDir()), ssp: st0.addrs["ssp"]}
	// As the suite's client: no Accept-Encoding: gzip behind the rows'
	// back (Go's transport would add it and hide Content-Length).
	st.http.Transport.(*http.Transport).DisableCompression = true
	t.Cleanup(st.http.CloseIdleConnections)
	for _, p := range cfg.Demonstrator.PracticeList() {
		ap := &amPractice{ods: p.ODS, asid: p.ASID, root: "https://localhost:" + strconv.Itoa(demoPort) + demonstrator.ServiceRootPath(p.ODS),
			patientIDs: map[string]string{}}
		names, ok := amPatients[p.ODS]
		if !ok {
			t.Fatalf("practice %s has no patient names in amPatients", p.ODS)
		}
		c := &amClient{st: st, p: ap, format: "json"}
		for name, nhs := range names {
			r := c.do(t, amReq{method: "GET", path: "/Patient?identifier=" + url.QueryEscape("https://fhir.nhs.uk/Id/nhs-number|"+nhs), interaction: gpconnect.SearchPatient})
			pats := r.resources("Patient")
			if r.status != 200 || len(pats) != 1 {
				t.Fatalf("%s: find %s (%s): %d %s", p.ODS, name, nhs, r.status, r.raw)
			}
			ap.patientIDs[name] = amStr(pats[0], "id")
		}
		ap.pool = newAMSlotPool(t, c)
		st.practices = append(st.practices, ap)
	}
	return st
}

// validateXML checks every XML answer against the STU3 schema with one
// xmllint run.
func (st *amStack) validateXML(t *testing.T) {
	t.Helper()
	st.mu.Lock()
	docs := st.xml
	st.mu.Unlock()
	if len(docs) < 100 {
		t.Fatalf("only %d XML answers to check against the schema", len(docs))
	}
	xsd := fhirtest.SchemaPath(t)
	dir := t.TempDir()
	args := []string{"--noout", "--nonet", "--schema", xsd}
	for i, d := range docs {
		f := filepath.Join(dir, strconv.Itoa(i)+".xml")
		if err := os.WriteFile(f, d, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, f)
	}
	out, err := exec.Command("xmllint", args...).CombinedOutput()
	t.Logf("%d XML answers checked against the STU3 schema", len(docs))
	if err != nil {
		var bad []string
		for _, line := range strings.Split(string(out), "\n") {
			if !strings.HasSuffix(line, " validates") && line != "" {
				bad = append(bad, line)
			}
		}
		t.Errorf("XML answers that are not STU3 (%v):\n%s", err, strings.Join(bad[:min(len(bad), 40)], "\n"))
	}
}

// amSlotPool hands out free slots for bookings: one search of the next 13
// days from tomorrow, so that concurrent rows never book the same slot.
type amSlotPool struct {
	mu    sync.Mutex
	slots []amSlot
}

// amSlot is a free slot with what a booking copies from its schedule.
type amSlot struct {
	slot, schedule  map[string]any
	location        string // Location/<id>
	serviceType     string // the slot's
	serviceCategory string // the schedule's
}

func newAMSlotPool(t *testing.T, c *amClient) *amSlotPool {
	t.Helper()
	q := amSlotQuery(amFromTomorrow(13)).add("_include:recurse", "Schedule:actor:Location")
	r := c.do(t, amReq{method: "GET", path: "/Slot?" + q.String(), interaction: gpconnect.SearchSlot})
	if r.status != 200 {
		t.Fatalf("%s: slot search for the pool: %d %s", c.p.ods, r.status, r.raw)
	}
	schedules := map[string]map[string]any{}
	for _, s := range r.resources("Schedule") {
		schedules["Schedule/"+amStr(s, "id")] = s
	}
	pool := &amSlotPool{}
	for _, s := range r.resources("Slot") {
		sc := schedules[amStr(s, "schedule", "reference")]
		loc := ""
		for _, a := range amList(sc, "actor") {
			if ref := amStr(a, "reference"); strings.HasPrefix(ref, "Location/") {
				loc = ref
			}
		}
		st := ""
		if types := amList(s, "serviceType"); len(types) > 0 {
			st = amStr(types[0], "text")
		}
		pool.slots = append(pool.slots, amSlot{slot: s, schedule: sc, location: loc, serviceType: st, serviceCategory: amStr(sc, "serviceCategory", "text")})
	}
	if len(pool.slots) < 400 {
		t.Fatalf("%s: only %d free slots in the next 13 days", c.p.ods, len(pool.slots))
	}
	// Surgeries every day, weekends included: each of the days has free
	// slots, and the day after tomorrow enough for the "in 2 days time"
	// rows of both passes (14 each).
	perDay := map[string]int{}
	for _, s := range pool.slots {
		start, _ := time.Parse(time.RFC3339, amStr(s.slot, "start"))
		perDay[start.In(amLondon).Format(time.DateOnly)]++
	}
	for n := 2; n <= 12; n++ {
		day := amLondonToday().AddDate(0, 0, n).Format(time.DateOnly)
		if perDay[day] == 0 || n == 2 && perDay[day] < 28 {
			t.Fatalf("%s: %d free slots on %s (%s)", c.p.ods, perDay[day], day, amLondonToday().AddDate(0, 0, n).Weekday())
		}
	}
	return pool
}

// take hands out the first slot that ok accepts, or, with ok nil, the
// last one, so that the early days stay for the rows that need them.
func (p *amSlotPool) take(t *testing.T, ok func(amSlot) bool) amSlot {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if ok == nil && len(p.slots) > 0 {
		s := p.slots[len(p.slots)-1]
		p.slots = p.slots[:len(p.slots)-1]
		return s
	}
	for i, s := range p.slots {
		if ok(s) {
			p.slots = slices.Delete(p.slots, i, i+1)
			return s
		}
	}
	t.Fatal("the slot pool has no free slot left that fits")
	return amSlot{}
}

// amInDays accepts the slots that start on the day n days after today (UK
// calendar): the suite's "in 2 days time" searches, which fall on a
// weekend when run on a Thursday or a Friday.
func amInDays(n int) func(amSlot) bool {
	day := amLondonToday().AddDate(0, 0, n).Format(time.DateOnly)
	return func(s amSlot) bool {
		start, _ := time.Parse(time.RFC3339, amStr(s.slot, "start"))
		return start.In(amLondon).Format(time.DateOnly) == day
	}
}

// amClient sends requests to one practice through the SSP in one format.
type amClient struct {
	st     *amStack
	p      *amPractice
	format string // "json" or "xml": the consumer's Accept and body format
}

// amReq is one request. Accept, Format (_format) and ContentType are MIME
// types; empty means the client's format (no _format), "-" none at all.
type amReq struct {
	method, path, interaction string
	body                      any    // JSON-able; sent in the body's format
	raw                       []byte // or a body sent as it is
	accept, format, ctype     string
	header                    map[string]string
	jwt                       func(*gpconnect.TokenSpec)
}

// amResp is an answer, its body read as JSON whatever the wire format.
type amResp struct {
	status int
	header http.Header
	raw    []byte
	res    map[string]any
	format string // "json" or "xml" by Content-Type; "" without a body
}

func (c *amClient) mime() string {
	if c.format == "xml" {
		return gpconnect.MIMEXML
	}
	return gpconnect.MIMEJSON
}

func (c *amClient) do(t *testing.T, q amReq) *amResp {
	t.Helper()
	in, ok := gpconnect.Lookup(q.interaction)
	if !ok {
		in, _ = gpconnect.Lookup(gpconnect.ReadMetadata) // a deliberately wrong interaction keeps a valid token
	}
	accept := amOr(q.accept, c.mime())
	ctype := amOr(q.ctype, c.mime())
	path := q.path
	if q.format != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "_format=" + url.QueryEscape(q.format)
	}
	var body io.Reader
	if q.raw != nil {
		body, q.body = bytes.NewReader(q.raw), q.raw
	} else if q.body != nil {
		b, ok := q.body.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(q.body); err != nil {
				t.Fatal(err)
			}
		}
		if ctype == gpconnect.MIMEXML {
			x, err := fhir.JSONToXML(b)
			if err != nil {
				t.Fatalf("request body to XML: %v\n%s", err, b)
			}
			b = x
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(q.method, "https://"+c.st.ssp+"/"+c.p.root+path, body)
	if err != nil {
		t.Fatal(err)
	}
	spec := gpconnect.DefaultTokenSpec(in, c.p.root, time.Now())
	if q.jwt != nil {
		q.jwt(&spec)
	}
	req.Header.Set("Ssp-TraceID", uuid.NewString())
	req.Header.Set("Ssp-From", "200000000359")
	req.Header.Set("Ssp-To", c.p.asid)
	req.Header.Set("Ssp-InteractionID", q.interaction)
	req.Header.Set("Authorization", "Bearer "+spec.Encode())
	if accept != "-" {
		req.Header.Set("Accept", accept)
	}
	if q.body != nil && ctype != "-" {
		req.Header.Set("Content-Type", ctype+";charset=utf-8")
	}
	for k, v := range q.header {
		req.Header.Set(k, v)
	}
	resp, err := c.st.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", q.method, q.path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := &amResp{status: resp.StatusCode, header: resp.Header, raw: raw}
	// CACHE: every answer, refusals included.
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("%s %s: Cache-Control %q lacks no-store", q.method, q.path, cc)
	}
	if len(raw) == 0 {
		return r
	}
	// J / Xm: the answer's format is _format's, else Accept's, else the
	// body's, else JSON.
	want := gpconnect.MIMEJSON
	switch {
	case q.format != "":
		want = q.format
	case accept != "-":
		want = accept
	case q.body != nil && ctype != "-":
		want = ctype
	}
	ct := resp.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, want) {
		t.Errorf("%s %s: Content-Type %q, want %s", q.method, q.path, ct, want)
	}
	b := raw
	if strings.HasPrefix(ct, gpconnect.MIMEXML) {
		r.format = "xml"
		c.st.mu.Lock()
		c.st.xml = append(c.st.xml, raw)
		c.st.mu.Unlock()
		if b, err = fhir.XMLToJSON(raw); err != nil {
			t.Fatalf("%s %s: the XML answer does not read: %v\n%s", q.method, q.path, err, raw)
		}
	} else {
		r.format = "json"
	}
	if err := json.Unmarshal(b, &r.res); err != nil {
		t.Fatalf("%s %s: %d, not a FHIR resource: %v\n%s", q.method, q.path, resp.StatusCode, err, raw)
	}
	c.st.checkProfiles(t, q.method+" "+q.path, b)
	return r
}

// amOwnProfiles are the profiles of what Appointment Management answers:
// a problem with one of them fails the row. Problems with the others
// (Foundations' resources and the searchset Bundle) are listed at the end.
var amOwnProfiles = []string{amProfileSlot, amProfileSchedule, amProfileAppointment, gpconnect.OutcomeProfile,
	amExtDeliveryChannel, amExtPractitionerRole, amExtBookingOrg, amExtCancelReason}

// checkProfiles checks an answer (JSON) against the GP Connect 1.2.7
// profiles (fhir/fhirtest/profile).
func (st *amStack) checkProfiles(t *testing.T, where string, doc []byte) {
	t.Helper()
	for _, pr := range profile.ForTestWithCore(t).Check(doc) {
		if slices.Contains(amOwnProfiles, pr.Profile) {
			t.Errorf("%s: %s", where, pr)
			continue
		}
		st.mu.Lock()
		key := pr.Profile + " " + pr.Element + " " + string(pr.Rule)
		if st.others == nil {
			st.others = map[string]string{}
		}
		if _, seen := st.others[key]; !seen {
			st.others[key] = pr.String() + " (first in " + where + ")"
		}
		st.mu.Unlock()
	}
}

func amOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// resources lists the Bundle's entries of kind.
func (r *amResp) resources(kind string) []map[string]any {
	var out []map[string]any
	for _, e := range amList(r.res, "entry") {
		if res, ok := e["resource"].(map[string]any); ok && res["resourceType"] == kind {
			out = append(out, res)
		}
	}
	return out
}

// want checks the status and, for a refusal, the OperationOutcome (OO):
// GPConnect-OperationOutcome-1, severity error, one Spine code.
func (r *amResp) want(t *testing.T, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	if code == "" {
		return
	}
	if r.res["resourceType"] != "OperationOutcome" {
		t.Fatalf("a %v, want an OperationOutcome: %s", r.res["resourceType"], r.raw)
	}
	if p := amStrs(r.res, "meta", "profile"); len(p) != 1 || p[0] != gpconnect.OutcomeProfile {
		t.Errorf("OperationOutcome meta.profile %v", p)
	}
	issues := amList(r.res, "issue")
	if len(issues) == 0 {
		t.Fatalf("OperationOutcome without issues: %s", r.raw)
	}
	for _, is := range issues {
		coding := amList(is["details"].(map[string]any), "coding")
		if amStr(is, "severity") != "error" || amStr(is, "code") == "" || len(coding) != 1 || amStr(coding[0], "display") == "" {
			t.Errorf("issue %v", is)
		}
		if got := amStr(coding[0], "code"); got != code {
			t.Errorf("error code %s, want %s: %s", got, code, amStr(is, "diagnostics"))
		}
	}
}

// bundle checks the answer is a searchset Bundle.
func (r *amResp) bundle(t *testing.T) {
	t.Helper()
	if r.status != 200 || r.res["resourceType"] != "Bundle" || r.res["type"] != "searchset" {
		t.Fatalf("want a searchset Bundle: %d %s", r.status, r.raw)
	}
}

// Accessors over decoded JSON.

func amStr(m map[string]any, path ...string) string {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = mm[p]
	}
	s, _ := v.(string)
	return s
}

func amList(m map[string]any, key string) []map[string]any {
	var out []map[string]any
	if m == nil {
		return nil
	}
	items, _ := m[key].([]any)
	for _, it := range items {
		if mm, ok := it.(map[string]any); ok {
			out = append(out, mm)
		}
	}
	return out
}

func amStrs(m map[string]any, path ...string) []string {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	var out []string
	items, _ := v.([]any)
	for _, it := range items {
		if s, ok := it.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func amExtensions(m map[string]any, url string) []map[string]any {
	var out []map[string]any
	for _, e := range amList(m, "extension") {
		if amStr(e, "url") == url {
			out = append(out, e)
		}
	}
	return out
}

// amClone deep-copies decoded JSON, so a row can edit a body freely.
func amClone(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

// Dates as the suite writes them: .NET FhirDateTime of a local time, in the
// UK's offset.

var amLondon = func() *time.Location {
	l, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	return l
}()

// amLondonToday is the start of today in the UK.
func amLondonToday() time.Time {
	y, m, d := time.Now().In(amLondon).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, amLondon)
}

// amUTCMidnight is today's UTC midnight as a UK local time: what
// DateTime.UtcNow.Date.ToLocalTime() gives the suite (01:00 in summer).
func amUTCMidnight() time.Time {
	y, m, d := time.Now().UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).In(amLondon)
}

// amPeriod is a search period's two ends, already formatted.
type amPeriod struct{ start, end string }

// amFromTomorrow is "a time period of n days" from tomorrow
// (TimePeriodHelper.GetTimePeriodStartDateTomorrowEndDateDays).
func amFromTomorrow(n int) amPeriod {
	s := amUTCMidnight().AddDate(0, 0, 1)
	return amPeriod{s.Format(amFHIRDateTime), s.AddDate(0, 0, n).Format(amFHIRDateTime)}
}

// amFromToday is "n days starting today" (GetTimePeriodStartDateTodayEndDateDays).
func amFromToday(n int) amPeriod {
	s := amUTCMidnight()
	return amPeriod{s.Format(amFHIRDateTime), s.AddDate(0, 0, n).Format(amFHIRDateTime)}
}

// amFormatted is now and now+n days in two .NET date formats
// (GetTimePeriodStartDateFormatEndDateFormat).
func amFormatted(startFormat, endFormat string, n int) amPeriod {
	now := time.Now().In(amLondon)
	return amPeriod{amDotNetFormat(now, startFormat), amDotNetFormat(now.AddDate(0, 0, n), endFormat)}
}

// amDotNetFormat renders the .NET custom date formats the suite uses; a
// "Z" stays a literal Z, as in .NET.
func amDotNetFormat(t time.Time, f string) string {
	r := strings.NewReplacer("yyyy", "2006", "MM", "01", "dd", "02", "HH", "15", "mm", "04", "ss", "05", "zzz", "-07:00")
	return t.Format(r.Replace(f))
}

// amQuery is a query string in order, with repeats, encoded as .NET's
// WebUtility.UrlEncode does (+ as %2B, | as %7C).
type amQuery [][2]string

func (q amQuery) add(k, v string) amQuery { return append(slices.Clone(q), [2]string{k, v}) }

func (q amQuery) without(keys ...string) amQuery {
	var out amQuery
	for _, kv := range q {
		if !slices.Contains(keys, kv[0]) {
			out = append(out, kv)
		}
	}
	return out
}

// set replaces the value of the first k.
func (q amQuery) set(k, v string) amQuery {
	out := slices.Clone(q)
	for i := range out {
		if out[i][0] == k {
			out[i][1] = v
			return out
		}
	}
	return append(out, [2]string{k, v})
}

func (q amQuery) String() string {
	parts := make([]string, len(q))
	for i, kv := range q {
		parts[i] = url.QueryEscape(kv[0]) + "=" + url.QueryEscape(kv[1])
	}
	return strings.Join(parts, "&")
}

// amSlotQuery is "the required parameters" of a free slots search
// (SetRequiredParametersWithTimePeriod): the period, status=free, the
// practice's ODS code and urgent-care as searchFilters, and
// _include=Slot:schedule.
func amSlotQuery(p amPeriod) amQuery {
	return amQuery{{"start", "ge" + p.start}, {"end", "le" + p.end}, {"status", "free"},
		{"searchFilter", amSystemODS + "|" + "{ORG1}"}, {"searchFilter", amSystemOrgType + "|urgent-care"}, {"_include", "Slot:schedule"}}
}

// slots searches free slots with q, {ORG1} standing for the practice's
// ODS code.
func (c *amClient) slots(t *testing.T, q amQuery, edit ...func(*amReq)) *amResp {
	t.Helper()
	s := strings.ReplaceAll(q.String(), url.QueryEscape("{ORG1}"), c.p.ods)
	r := amReq{method: "GET", path: "/Slot?" + s, interaction: gpconnect.SearchSlot}
	for _, e := range edit {
		e(&r)
	}
	return c.do(t, r)
}

// metadata reads the CapabilityStatement.
func (c *amClient) metadata(t *testing.T) map[string]any {
	t.Helper()
	r := c.do(t, amReq{method: "GET", path: "/metadata", interaction: gpconnect.ReadMetadata})
	r.want(t, 200, "")
	return r.res
}

// amCSResource returns the CapabilityStatement's entry for kind.
func amCSResource(t *testing.T, cs map[string]any, kind string) map[string]any {
	t.Helper()
	for _, rest := range amList(cs, "rest") {
		for _, res := range amList(rest, "resource") {
			if amStr(res, "type") == kind {
				return res
			}
		}
	}
	t.Fatalf("the CapabilityStatement has no %s resource", kind)
	return nil
}

// amCSInteraction checks the CapabilityStatement offers interaction on kind
// (the suite only checks that the resource is listed).
func amCSInteraction(t *testing.T, c *amClient, kind, interaction string) {
	t.Helper()
	res := amCSResource(t, c.metadata(t), kind)
	for _, in := range amList(res, "interaction") {
		if amStr(in, "code") == interaction {
			return
		}
	}
	t.Errorf("the CapabilityStatement's %s lacks the %s interaction: %v", kind, interaction, res)
}

// Bookings.

// amBooking is how the suite's DefaultAppointmentBuilder fills a booking.
type amBooking struct {
	orgType, channel, pracRole bool
	// serviceCategory and serviceType replace what the builder copies
	// from the schedule and slot; "-" leaves them out.
	serviceCategory, serviceType string
}

var amDefaultBooking = amBooking{orgType: true}

// bookingBody builds the suite's default Appointment for slot and patient.
func (c *amClient) bookingBody(t *testing.T, s amSlot, patientID string, b amBooking) map[string]any {
	t.Helper()
	org := map[string]any{
		"resourceType": "Organization", "id": "1",
		"meta":       map[string]any{"profile": []any{amProfileOrganization}},
		"identifier": []any{map[string]any{"system": amSystemODS, "value": c.p.ods}},
		"name":       "Test Suite Validator",
		"telecom":    []any{map[string]any{"system": "phone", "value": "01823938938", "use": "temp"}},
	}
	if b.orgType {
		org["type"] = []any{map[string]any{"coding": []any{map[string]any{"system": amSystemOrgType, "code": "urgent-care", "display": "Urgent Care"}}}}
	}
	part := func(ref string) map[string]any {
		return map[string]any{
			"type":   []any{map[string]any{"coding": []any{map[string]any{"system": "http://hl7.org/fhir/v3/ParticipationType", "code": "PART", "display": "Participation"}}, "text": "Participation"}},
			"actor":  map[string]any{"reference": ref},
			"status": "accepted",
		}
	}
	exts := []any{map[string]any{"url": amExtBookingOrg, "valueReference": map[string]any{"reference": "#1"}}}
	if b.pracRole {
		exts = append(exts, map[string]any{"url": amExtPractitionerRole, "valueCodeableConcept": map[string]any{
			"coding": []any{map[string]any{"system": amSystemJobRole, "code": "R0260", "display": "General Medical Practitioner"}}}})
	}
	if b.channel {
		ch := amExtensions(s.slot, amExtDeliveryChannel)
		if len(ch) == 0 {
			t.Fatalf("Slot/%s has no DeliveryChannel-2 extension to copy into the booking", amStr(s.slot, "id"))
		}
		exts = append(exts, map[string]any{"url": amExtDeliveryChannel, "valueCode": amStr(ch[0], "valueCode")})
	}
	m := map[string]any{
		"resourceType": "Appointment",
		"meta":         map[string]any{"profile": []any{amProfileAppointment}},
		"contained":    []any{org},
		"extension":    exts,
		"status":       "booked",
		"description":  "Default Description",
		"start":        s.slot["start"],
		"end":          s.slot["end"],
		"slot":         []any{map[string]any{"reference": "Slot/" + amStr(s.slot, "id")}},
		"created":      time.Now().UTC().Format("2006-01-02T15:04:05+00:00"),
		"participant":  []any{part("Patient/" + c.p.patientIDs["patient1"]), part(s.location)},
	}
	if sc := amOr(b.serviceCategory, s.serviceCategory); sc != "-" && sc != "" {
		m["serviceCategory"] = map[string]any{"text": sc}
	}
	if st := amOr(b.serviceType, s.serviceType); st != "-" && st != "" {
		m["serviceType"] = []any{map[string]any{"text": st}}
	}
	m["participant"].([]any)[0].(map[string]any)["actor"] = map[string]any{"reference": "Patient/" + patientID}
	return m
}

// amBooked is a booking made for a row, and what the practice answered.
type amBooked struct {
	slot amSlot
	resp *amResp
	appt map[string]any // the Appointment as answered
}

// malformed is a booking body that no FHIR codec would write: in JSON m
// with jsonEdit applied, in XML the valid m as XML with xmlEdit applied, so
// that the XML pass sends the same defect.
func (c *amClient) malformed(t *testing.T, m map[string]any, jsonEdit func(map[string]any), xmlEdit func(string) string) []byte {
	t.Helper()
	if c.format == "xml" {
		x, err := fhir.JSONToXML(amJSONBytes(t, m))
		if err != nil {
			t.Fatal(err)
		}
		return []byte(xmlEdit(string(x)))
	}
	m = amClone(m)
	jsonEdit(m)
	return amJSONBytes(t, m)
}

func amJSONBytes(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// amRenameRoot makes an XML Appointment an InvalidResourceType.
func amRenameRoot(x string) string {
	return strings.Replace(strings.Replace(x, "<Appointment ", "<InvalidResourceType ", 1), "</Appointment>", "</InvalidResourceType>", 1)
}

// book books a slot from the pool (accepted by when, nil: any) for the
// named patient, edit changing the body first, and returns the answer
// whatever it is.
func (c *amClient) bookWith(t *testing.T, patient string, b amBooking, when func(amSlot) bool, edit func(m map[string]any), extra ...func(*amReq)) *amBooked {
	t.Helper()
	s := c.p.pool.take(t, when)
	body := c.bookingBody(t, s, c.patient(t, patient), b)
	if edit != nil {
		edit(body)
	}
	q := amReq{method: "POST", path: "/Appointment", interaction: gpconnect.CreateAppointment, body: body}
	for _, e := range extra {
		e(&q)
	}
	r := c.do(t, q)
	return &amBooked{slot: s, resp: r, appt: r.res}
}

// mustBook books with the default body and fails the row unless the
// practice answers 201 with an Appointment.
func (c *amClient) mustBook(t *testing.T, patient string, b amBooking, when func(amSlot) bool, edit func(m map[string]any), extra ...func(*amReq)) *amBooked {
	t.Helper()
	bk := c.bookWith(t, patient, b, when, edit, extra...)
	bk.resp.want(t, 201, "")
	if bk.appt["resourceType"] != "Appointment" {
		t.Fatalf("booking answered %s", bk.resp.raw)
	}
	return bk
}

func (c *amClient) patient(t *testing.T, name string) string {
	t.Helper()
	id, ok := c.p.patientIDs[name]
	if !ok {
		t.Fatalf("no %s at %s", name, c.p.ods)
	}
	return id
}

// read reads an appointment.
func (c *amClient) read(t *testing.T, id string, edit ...func(*amReq)) *amResp {
	t.Helper()
	q := amReq{method: "GET", path: "/Appointment/" + id, interaction: gpconnect.ReadAppointment}
	for _, e := range edit {
		e(&q)
	}
	return c.do(t, q)
}

// put amends (interaction update) or cancels (cancel) with body.
func (c *amClient) put(t *testing.T, interaction, id string, body map[string]any, edit ...func(*amReq)) *amResp {
	t.Helper()
	q := amReq{method: "PUT", path: "/Appointment/" + id, interaction: interaction, body: body}
	for _, e := range edit {
		e(&q)
	}
	return c.do(t, q)
}

// amCancelled is the suite's cancel body: the appointment as answered, with
// status cancelled and the cancellation reason extension.
func amCancelled(appt map[string]any, reason string) map[string]any {
	m := amClone(appt)
	m["status"] = "cancelled"
	m["extension"] = append(m["extension"].([]any), map[string]any{"url": amExtCancelReason, "valueString": reason})
	return m
}

// appointments searches a patient's appointments with a raw query.
func (c *amClient) appointments(t *testing.T, patientID, query string, edit ...func(*amReq)) *amResp {
	t.Helper()
	q := amReq{method: "GET", path: "/Patient/" + patientID + "/Appointment?" + query, interaction: gpconnect.SearchPatientAppts}
	for _, e := range edit {
		e(&q)
	}
	return c.do(t, q)
}

// amStartQuery is "a period starting today for n days" of a patient's
// appointments (dates only). The suite takes today in UTC; this takes the
// UK's, the practice's calendar, so that the rows do not fail between
// midnight and 01:00 in summer, when the UTC date is still yesterday.
func amStartQuery(n int) string {
	d := time.Now().In(amLondon)
	return "start=ge" + d.Format(time.DateOnly) + "&start=le" + d.AddDate(0, 0, n).Format(time.DateOnly)
}

// Request editors.

func amAccept(mime string) func(*amReq) { return func(q *amReq) { q.accept = mime } }
func amFormat(mime string) func(*amReq) { return func(q *amReq) { q.format = mime } }
func amCType(mime string) func(*amReq)  { return func(q *amReq) { q.ctype = mime } }
func amHeader(k, v string) func(*amReq) { return func(q *amReq) { q.header = map[string]string{k: v} } }
func amScope(s string) func(*amReq) {
	return func(q *amReq) { q.jwt = func(sp *gpconnect.TokenSpec) { sp.Scope = s } }
}
func amJWTODS(ods string) func(*amReq) {
	return func(q *amReq) { q.jwt = func(sp *gpconnect.TokenSpec) { sp.ODSCode = ods } }
}
func amInteraction(i string) func(*amReq) { return func(q *amReq) { q.interaction = i } }

const (
	amJSON = gpconnect.MIMEJSON
	amXML  = gpconnect.MIMEXML
)

// Resource checks: the suite's assertions, with the real rule where the
// suite's is vacuous.

func amMeta(t *testing.T, r map[string]any, profile string, version bool) {
	t.Helper()
	if p := amStrs(r, "meta", "profile"); len(p) != 1 || p[0] != profile {
		t.Errorf("%s/%s meta.profile %v, want [%s]", amStr(r, "resourceType"), amStr(r, "id"), p, profile)
	}
	if version && amStr(r, "meta", "versionId") == "" {
		t.Errorf("%s/%s has no meta.versionId", amStr(r, "resourceType"), amStr(r, "id"))
	}
}

// amCheckSlots is SLOT-CONF and SLOT-SCHED: every Slot free, with id,
// profile and version, at most one identifier, no specialty, exactly one
// DeliveryChannel-2 coded from its ValueSet, a serviceType text, and a
// schedule in the Bundle.
func amCheckSlots(t *testing.T, r *amResp) {
	t.Helper()
	schedules := map[string]bool{}
	for _, s := range r.resources("Schedule") {
		schedules["Schedule/"+amStr(s, "id")] = true
	}
	for _, s := range r.resources("Slot") {
		id := amStr(s, "id")
		amMeta(t, s, amProfileSlot, true)
		if id == "" || amStr(s, "status") != "free" || len(amList(s, "identifier")) > 1 || s["specialty"] != nil {
			t.Errorf("Slot %s: id, status %q, %d identifiers, specialty %v", id, amStr(s, "status"), len(amList(s, "identifier")), s["specialty"])
		}
		if ch := amExtensions(s, amExtDeliveryChannel); len(ch) != 1 || !slices.Contains(amDeliveryChannels, amStr(ch[0], "valueCode")) {
			t.Errorf("Slot %s: DeliveryChannel-2 extensions %v, want one of %v", id, ch, amDeliveryChannels)
		}
		if types := amList(s, "serviceType"); len(types) == 0 || amStr(types[0], "text") == "" {
			t.Errorf("Slot %s: no serviceType text", id)
		}
		if ref := amStr(s, "schedule", "reference"); !schedules[ref] {
			t.Errorf("Slot %s: schedule %q is not in the Bundle", id, ref)
		}
		if s["comment"] != nil {
			t.Errorf("Slot %s has a comment", id)
		}
	}
}

// amCheckSchedules is SCHED-CONF: profile, id, exactly one PractitionerRole
// coded from its ValueSet, no DeliveryChannel (it is the slots'), no
// serviceType (0..0) or specialty, a serviceCategory text, a planning
// horizon with a start, and a Location actor.
func amCheckSchedules(t *testing.T, r *amResp) {
	t.Helper()
	scs := r.resources("Schedule")
	if len(scs) == 0 {
		t.Fatal("no Schedule in the Bundle")
	}
	for _, s := range scs {
		id := amStr(s, "id")
		amMeta(t, s, amProfileSchedule, true)
		roles := amExtensions(s, amExtPractitionerRole)
		if len(roles) != 1 {
			t.Errorf("Schedule %s: %d PractitionerRole extensions, want 1", id, len(roles))
		} else if c := amList(roles[0]["valueCodeableConcept"].(map[string]any), "coding"); len(c) != 1 || amStr(c[0], "system") != amSystemJobRole ||
			!slices.Contains(amPractitionerRoles, amStr(c[0], "code")) || amStr(c[0], "display") == "" {
			t.Errorf("Schedule %s: PractitionerRole %v not from GPConnect-PractitionerRole-1", id, c)
		}
		if len(amExtensions(s, amExtDeliveryChannel1))+len(amExtensions(s, amExtDeliveryChannel)) != 0 {
			t.Errorf("Schedule %s carries a DeliveryChannel extension", id)
		}
		if s["serviceType"] != nil || s["specialty"] != nil || s["comment"] != nil {
			t.Errorf("Schedule %s: serviceType %v, specialty %v, comment %v: none allowed", id, s["serviceType"], s["specialty"], s["comment"])
		}
		if amStr(s, "serviceCategory", "text") == "" || amStr(s, "planningHorizon", "start") == "" || len(amList(s, "identifier")) > 1 {
			t.Errorf("Schedule %s: serviceCategory %v, planningHorizon %v", id, s["serviceCategory"], s["planningHorizon"])
		}
		hasLoc := false
		for _, a := range amList(s, "actor") {
			hasLoc = hasLoc || strings.HasPrefix(amStr(a, "reference"), "Location/")
		}
		if !hasLoc {
			t.Errorf("Schedule %s has no Location actor", id)
		}
	}
}

// amCheckLocations is LOC-CONF for each included Location, its
// managingOrganization read back.
func amCheckLocations(t *testing.T, c *amClient, r *amResp) {
	t.Helper()
	locs := r.resources("Location")
	if len(locs) == 0 {
		t.Fatal("no Location in the Bundle")
	}
	for _, l := range locs {
		amMeta(t, l, amProfileLocation, true)
		mo := amStr(l, "managingOrganization", "reference")
		if amStr(l, "name") == "" || l["address"] == nil || !strings.HasPrefix(mo, "Organization/") || l["endpoint"] != nil {
			t.Errorf("Location %s: name %q, address %v, managingOrganization %q", amStr(l, "id"), amStr(l, "name"), l["address"], mo)
			continue
		}
		c.resolve(t, mo)
	}
}

// amCheckPractitioners is PRAC-CONF for each included Practitioner.
func amCheckPractitioners(t *testing.T, r *amResp) {
	t.Helper()
	prs := r.resources("Practitioner")
	if len(prs) == 0 {
		t.Fatal("no Practitioner in the Bundle")
	}
	allowed := []string{"https://fhir.nhs.uk/Id/sds-user-id", "https://fhir.nhs.uk/Id/sds-role-profile-id", "https://fhir.hl7.org.uk/Id/gmp-number"}
	for _, p := range prs {
		amMeta(t, p, amProfilePractitioner, true)
		names := amList(p, "name")
		sds := 0
		for _, id := range amList(p, "identifier") {
			if !slices.Contains(allowed, amStr(id, "system")) {
				t.Errorf("Practitioner %s: identifier system %q", amStr(p, "id"), amStr(id, "system"))
			}
			if amStr(id, "system") == allowed[0] {
				sds++
			}
		}
		if len(names) != 1 || amStr(names[0], "family") == "" || sds != 1 || p["photo"] != nil || p["qualification"] != nil || p["birthDate"] != nil {
			t.Errorf("Practitioner %s: %d names, %d SDS user IDs, photo/qualification/birthDate %v %v %v",
				amStr(p, "id"), len(names), sds, p["photo"], p["qualification"], p["birthDate"])
		}
	}
}

// amCheckOrganization is the Organization a slot search always includes:
// the practice's, with profile and id.
func amCheckOrganization(t *testing.T, c *amClient, r *amResp) {
	t.Helper()
	orgs := r.resources("Organization")
	if len(orgs) != 1 {
		t.Fatalf("%d Organizations in the Bundle, want the practice's", len(orgs))
	}
	amMeta(t, orgs[0], amProfileOrganization, true)
	ids := amList(orgs[0], "identifier")
	if amStr(orgs[0], "id") == "" || len(ids) == 0 || amStr(ids[0], "value") != c.p.ods || orgs[0]["contact"] != nil || orgs[0]["endpoint"] != nil {
		t.Errorf("Organization %v", orgs[0])
	}
}

// resolve reads a reference (Patient/, Practitioner/, Location/,
// Organization/) at the practice.
func (c *amClient) resolve(t *testing.T, ref string) {
	t.Helper()
	kind, _, _ := strings.Cut(ref, "/")
	in := map[string]string{"Patient": gpconnect.ReadPatient, "Practitioner": gpconnect.ReadPractitioner,
		"Location": gpconnect.ReadLocation, "Organization": gpconnect.ReadOrganization}[kind]
	if in == "" {
		t.Errorf("reference %q is not Patient, Practitioner, Location or Organization", ref)
		return
	}
	r := c.do(t, amReq{method: "GET", path: "/" + ref, interaction: in})
	if r.status != 200 || amStr(r.res, "resourceType") != kind {
		t.Errorf("GET %s: %d %s", ref, r.status, r.raw)
	}
}

// amCheckAppointment is APPT-CONF: profile and version, id, status, start
// and end, slots, description, created, a Patient and a Location
// participant (each with an actor, type of at most one coding), no reason
// or specialty, priority 0-9, identifiers with values, in the future.
// With resolve, every participant is read back.
func amCheckAppointment(t *testing.T, c *amClient, a map[string]any, resolve bool) {
	t.Helper()
	id := amStr(a, "id")
	amMeta(t, a, amProfileAppointment, true)
	if id == "" || amStr(a, "status") == "" || amStr(a, "description") == "" || amStr(a, "created") == "" {
		t.Errorf("Appointment %s: id, status %q, description %q, created %q", id, amStr(a, "status"), amStr(a, "description"), amStr(a, "created"))
	}
	start, err1 := time.Parse(time.RFC3339, amStr(a, "start"))
	_, err2 := time.Parse(time.RFC3339, amStr(a, "end"))
	if err1 != nil || err2 != nil {
		t.Errorf("Appointment %s: start %q end %q", id, amStr(a, "start"), amStr(a, "end"))
	} else if start.Before(amLondonToday()) {
		t.Errorf("Appointment %s starts in the past: %s", id, start)
	}
	slots := amList(a, "slot")
	if len(slots) == 0 {
		t.Errorf("Appointment %s has no slot", id)
	}
	for _, s := range slots {
		if !strings.HasPrefix(amStr(s, "reference"), "Slot/") {
			t.Errorf("Appointment %s: slot %v", id, s)
		}
	}
	kinds := map[string]int{}
	for _, p := range amList(a, "participant") {
		ref := amStr(p, "actor", "reference")
		kind, _, _ := strings.Cut(ref, "/")
		kinds[kind]++
		if kind != "Patient" && kind != "Location" && kind != "Practitioner" {
			t.Errorf("Appointment %s: participant %q", id, ref)
		}
		for _, ty := range amList(p, "type") {
			if len(amList(ty, "coding")) > 1 {
				t.Errorf("Appointment %s: participant type with %d codings", id, len(amList(ty, "coding")))
			}
		}
		if resolve {
			c.resolve(t, ref)
		}
	}
	if kinds["Patient"] < 1 || kinds["Location"] < 1 {
		t.Errorf("Appointment %s: participants %v, want a Patient and a Location", id, kinds)
	}
	if a["reason"] != nil || a["specialty"] != nil {
		t.Errorf("Appointment %s: reason %v, specialty %v", id, a["reason"], a["specialty"])
	}
	if p, ok := a["priority"].(float64); ok && (p < 0 || p > 9) {
		t.Errorf("Appointment %s: priority %v", id, p)
	}
	for _, ident := range amList(a, "identifier") {
		if amStr(ident, "value") == "" {
			t.Errorf("Appointment %s: identifier without value", id)
		}
	}
	amCheckApptExtensions(t, a, false)
}

// amCheckApptExtensions is the DeliveryChannel and PractitionerRole rule:
// at most one each, coded from their ValueSets; with present, exactly
// one each (APPT-EXT+).
func amCheckApptExtensions(t *testing.T, a map[string]any, present bool) {
	t.Helper()
	ch, roles := amExtensions(a, amExtDeliveryChannel), amExtensions(a, amExtPractitionerRole)
	if len(ch) > 1 || len(roles) > 1 || present && (len(ch) != 1 || len(roles) != 1) {
		t.Fatalf("Appointment %s: %d DeliveryChannel-2 and %d PractitionerRole-1 extensions", amStr(a, "id"), len(ch), len(roles))
	}
	for _, e := range ch {
		if !slices.Contains(amDeliveryChannels, amStr(e, "valueCode")) {
			t.Errorf("DeliveryChannel %v", e)
		}
	}
	for _, e := range roles {
		cc, _ := e["valueCodeableConcept"].(map[string]any)
		if c := amList(cc, "coding"); len(c) != 1 || amStr(c[0], "system") != amSystemJobRole || !slices.Contains(amPractitionerRoles, amStr(c[0], "code")) {
			t.Errorf("PractitionerRole %v", e)
		}
	}
}

// amCheckPracticeOwned checks the appointment shows the practice's own
// serviceCategory and serviceType (those of the booked slot's schedule and
// slot), and its DeliveryChannel and PractitionerRole: APPT-SC, APPT-ST
// and APPT-EXT+, with the values the specification asks for.
func amCheckPracticeOwned(t *testing.T, a map[string]any, s amSlot) {
	t.Helper()
	amCheckApptExtensions(t, a, true)
	if got := amStr(a, "serviceCategory", "text"); got == "" || got != s.serviceCategory {
		t.Errorf("serviceCategory.text %q, want the schedule's %q", got, s.serviceCategory)
	}
	types := amList(a, "serviceType")
	if len(types) != 1 || amStr(types[0], "text") == "" || amStr(types[0], "text") != s.serviceType {
		t.Errorf("serviceType %v, want the slot's %q", types, s.serviceType)
	}
	if ch := amExtensions(s.slot, amExtDeliveryChannel); len(ch) == 1 && amStr(amExtensions(a, amExtDeliveryChannel)[0], "valueCode") != amStr(ch[0], "valueCode") {
		t.Errorf("DeliveryChannel %v, want the slot's %v", amExtensions(a, amExtDeliveryChannel), ch)
	}
	want := amExtensions(s.schedule, amExtPractitionerRole)
	if got := amExtensions(a, amExtPractitionerRole); len(want) != 1 || fmt.Sprint(got[0]) != fmt.Sprint(want[0]) {
		t.Errorf("PractitionerRole %v, want the schedule's %v", got, want)
	}
}

// amCheckBookingOrg is APPT-ORG, with the real rule for the extension: the
// bookingOrganisation extension references a contained Organization, and
// every contained resource is an Organization with id and name.
func amCheckBookingOrg(t *testing.T, a map[string]any) {
	t.Helper()
	exts := amExtensions(a, amExtBookingOrg)
	if len(exts) != 1 {
		t.Fatalf("Appointment %s: %d bookingOrganisation extensions", amStr(a, "id"), len(exts))
	}
	ref := amStr(exts[0], "valueReference", "reference")
	found := false
	for _, c := range amList(a, "contained") {
		if amStr(c, "resourceType") != "Organization" || amStr(c, "id") == "" || amStr(c, "name") == "" {
			t.Errorf("contained %v", c)
		}
		found = found || "#"+amStr(c, "id") == ref
	}
	if !found {
		t.Errorf("bookingOrganisation %q names no contained Organization", ref)
	}
}

// amCheckETag is ETAG: W/"<meta.versionId>".
func amCheckETag(t *testing.T, r *amResp) {
	t.Helper()
	if got, want := r.header.Get("ETag"), `W/"`+amStr(r.res, "meta", "versionId")+`"`; got != want {
		t.Errorf("ETag %q, want %q", got, want)
	}
}

// amCheckRepresentation is the Prefer: return=representation rows: a
// Content-Type and a Content-Length that is not zero.
func amCheckRepresentation(t *testing.T, r *amResp) {
	t.Helper()
	if r.header.Get("Content-Type") == "" || r.header.Get("Content-Length") == "" || r.header.Get("Content-Length") == "0" || len(r.raw) == 0 {
		t.Errorf("Content-Type %q, Content-Length %q, %d bytes", r.header.Get("Content-Type"), r.header.Get("Content-Length"), len(r.raw))
	}
}

func amCheckEmpty(t *testing.T, r *amResp) {
	t.Helper()
	if len(r.raw) != 0 {
		t.Errorf("body not empty with Prefer: return=minimal: %s", r.raw)
	}
}

// amAppointments lists the Appointments of a Bundle.
func amAppointments(t *testing.T, r *amResp) []map[string]any {
	t.Helper()
	r.bundle(t)
	return r.resources("Appointment")
}

// ---------------------------------------------------------------------
// SearchForFreeSlots.feature: GET /Slot.

var searchForFreeSlotsRows = func() []amRow {
	var rows []amRow
	ok := func(name string, q func() amQuery, checks ...func(*testing.T, *amClient, *amResp)) amRow {
		return amRow{name: name, run: func(t *testing.T, c *amClient) {
			r := c.slots(t, q())
			r.bundle(t)
			for _, ch := range checks {
				ch(t, c, r)
			}
		}}
	}
	refused := func(name string, status int, code string, q func() amQuery) amRow {
		return amRow{name: name, run: func(t *testing.T, c *amClient) { c.slots(t, q()).want(t, status, code) }}
	}
	for _, n := range []int{8, 0, 14} {
		rows = append(rows, ok(fmt.Sprintf("valid parameters/%d days", n), func() amQuery { return amSlotQuery(amFromTomorrow(n)) }))
	}
	for _, n := range []int{15, 31, -1} {
		rows = append(rows, refused(fmt.Sprintf("invalid date range/%d days", n), 422, gpconnect.CodeInvalidParameter, func() amQuery { return amSlotQuery(amFromTomorrow(n)) }))
	}
	for _, keys := range [][]string{{"start", "end"}, {"start"}, {"status"}} {
		rows = append(rows, refused("missing parameters/"+strings.Join(keys, ","), 400, gpconnect.CodeBadRequest, func() amQuery { return amSlotQuery(amFromTomorrow(3)).without(keys...) }))
	}
	prefixed := func(sp, ep string, filters ...[2]string) func() amQuery {
		return func() amQuery {
			p := amFromToday(3)
			q := amQuery{{"start", sp + p.start}, {"end", ep + p.end}, {"status", "free"}, {"_include", "Slot:schedule"}}
			for _, f := range filters {
				q = q.add(f[0], f[1])
			}
			return q
		}
	}
	valid := [][2]string{{"searchFilter", amSystemODS + "|{ORG1}"}, {"searchFilter", amSystemOrgType + "|urgent-care"}}
	foreign := [][2]string{{"searchFilter", "FilterCategory-7|OtherConsumerCategory"}, {"searchFilter", "https://fhir.nhs.uk/Id/otherIdentifier|otherID"}}
	other := [2]string{"searchFilter", "TypeCategory|OtherTypeCategory"}
	rows = append(rows, ok("valid prefixes", prefixed("ge", "le", append(append(slices.Clone(foreign), valid...), other)...)))
	for _, p := range [][2]string{{"lt", "gt"}, {"gt", "gt"}, {"lt", "lt"}, {"le", "ge"}, {"eq", "eq"}, {"gt", "lt"}} {
		rows = append(rows, refused("invalid prefixes/"+p[0]+","+p[1], 422, gpconnect.CodeInvalidParameter, prefixed(p[0], p[1], valid...)))
	}
	for _, p := range [][2]string{{"ne", "ne"}, {"gt", "ne"}, {"ne", "lt"}, {"ge", "ne"}, {"ne", "le"}} {
		rows = append(rows, refused("unknown prefixes/"+p[0]+","+p[1], 422, gpconnect.CodeInvalidParameter, prefixed(p[0], p[1], valid...)))
	}
	for _, kv := range [][2]string{{"start", "invalidStartDate"}, {"start", ""}, {"end", "invalidEnddate"}, {"end", ""}, {"status", "busy"}} {
		rows = append(rows, refused(fmt.Sprintf("invalid parameter values/%s=%q", kv[0], kv[1]), 422, gpconnect.CodeInvalidParameter,
			func() amQuery { return amSlotQuery(amFromTomorrow(3)).set(kv[0], kv[1]) }))
	}
	rows = append(rows, ok("other searchFilter system", func() amQuery { return amSlotQuery(amFromTomorrow(3)).add(other[0], other[1]) }))
	formatted := func(sf, ef string) func() amQuery {
		return func() amQuery {
			p := amFormatted(sf, ef, 3)
			q := amQuery{{"start", "ge" + p.start}, {"end", "le" + p.end}, {"status", "free"}, {"_include", "Slot:schedule"}}
			for _, f := range valid {
				q = q.add(f[0], f[1])
			}
			return q.add(other[0], other[1])
		}
	}
	for _, f := range [][2]string{{"yyyy-MM-dd", "yyyy-MM-dd"}, {"yyyy-MM-ddTHH:mm:sszzz", "yyyy-MM-ddTHH:mm:sszzz"},
		{"yyyy-MM-ddTHH:mm:sszzz", "yyyy-MM-dd"}, {"yyyy-MM-dd", "yyyy-MM-ddTHH:mm:sszzz"}} {
		rows = append(rows, ok("valid partial dateTime strings/"+f[0]+","+f[1], formatted(f[0], f[1])))
	}
	for _, f := range [][2]string{{"yyyy-MM-ddTHH:mm:ss", "yyyy-MM-ddTHH:mm:ss"}, {"yyyy-MM-ddTHH:mm:ssZ", "yyyy-MM-ddTHH:mm:ss"},
		{"yyyy-MM-ddTHH:mm:ss", "yyyy-MM-ddTHH:mm:ssZ"}, {"yyyy", "yyyy-MM"}, {"yyyy-MM", "yyyy"}} {
		rows = append(rows, refused("invalid partial dateTime strings/"+f[0]+","+f[1], 422, gpconnect.CodeInvalidParameter, formatted(f[0], f[1])))
	}
	rows = append(rows, ok("slot resources returned are valid", func() amQuery {
		q := amSlotQuery(amFromTomorrow(3))
		for _, f := range foreign {
			q = q.add(f[0], f[1])
		}
		return q
	}, func(t *testing.T, c *amClient, r *amResp) {
		if len(r.resources("Slot")) == 0 {
			t.Fatal("no slots in the next 3 days")
		}
		amCheckSlots(t, r)
	}))
	formats := func(name string, combos [][]string, edit func(combo []string) []func(*amReq)) {
		for _, combo := range combos {
			rows = append(rows, amRow{name: name + "/" + strings.Join(combo, ","), explicitFormat: true, run: func(t *testing.T, c *amClient) {
				r := c.slots(t, amSlotQuery(amFromTomorrow(3)), edit(combo)...)
				r.bundle(t)
				if want := map[string]string{amJSON: "json", amXML: "xml"}[combo[len(combo)-1]]; r.format != want {
					t.Errorf("answer in %s, want %s", r.format, want)
				}
				amCheckSlots(t, r)
			}})
		}
	}
	// On a GET the suite sends no Content-Type, whatever the row sets.
	formats("content types in Accept header", [][]string{{amXML, amXML}, {amJSON, amJSON}, {amXML, amJSON}, {amJSON, amXML}},
		func(c []string) []func(*amReq) { return []func(*amReq){amAccept(c[1])} })
	formats("content types in format parameter", [][]string{{amXML, amXML}, {amJSON, amJSON}, {amXML, amJSON}, {amJSON, amXML}},
		func(c []string) []func(*amReq) { return []func(*amReq){amAccept("-"), amFormat(c[1])} })
	formats("content types in Accept header and format parameter", [][]string{
		{amXML, amXML, amXML}, {amJSON, amJSON, amJSON}, {amXML, amJSON, amJSON}, {amJSON, amXML, amXML},
		{amXML, amJSON, amXML}, {amJSON, amXML, amJSON}, {amXML, amXML, amJSON}, {amJSON, amJSON, amXML}},
		func(c []string) []func(*amReq) { return []func(*amReq){amAccept(c[1]), amFormat(c[2])} })
	rows = append(rows, ok("included schedule resources returned are valid", func() amQuery {
		return amSlotQuery(amFromTomorrow(3)).add("_include:recurse", "Schedule:actor:Practitioner").
			add("_include:recurse", "Schedule:actor:Location").add("_include:recurse", "Location:managingOrganization")
	}, func(t *testing.T, c *amClient, r *amResp) {
		amCheckSlots(t, r)
		amCheckSchedules(t, r)
		amCheckLocations(t, c, r)
		amCheckPractitioners(t, r)
		amCheckOrganization(t, c, r)
		locs := map[string]bool{}
		for _, l := range r.resources("Location") {
			locs["Location/"+amStr(l, "id")] = true
		}
		for _, s := range r.resources("Schedule") {
			for _, a := range amList(s, "actor") {
				if ref := amStr(a, "reference"); strings.HasPrefix(ref, "Location/") && !locs[ref] {
					t.Errorf("Schedule %s: %s is not in the Bundle", amStr(s, "id"), ref)
				}
			}
		}
	}))
	for _, ex := range [][2]string{{"Location", "Schedule:actor:Practitioner"}, {"Practitioner", "Schedule:actor:Location"}} {
		rows = append(rows, ok("without actor parameter/"+ex[0]+" excluded", func() amQuery {
			return amSlotQuery(amFromTomorrow(3)).add("_include:recurse", ex[1])
		}, func(t *testing.T, c *amClient, r *amResp) {
			if len(r.resources("Slot")) == 0 || len(r.resources(ex[0])) != 0 {
				t.Errorf("%d slots and %d %s resources", len(r.resources("Slot")), len(r.resources(ex[0])), ex[0])
			}
			amCheckSlots(t, r)
			// The Organization is there regardless (specification).
			amCheckOrganization(t, c, r)
		}))
	}
	rows = append(rows,
		ok("included practitioner resources returned are valid", func() amQuery {
			return amSlotQuery(amFromTomorrow(3)).add("_include:recurse", "Schedule:actor:Practitioner")
		}, func(t *testing.T, c *amClient, r *amResp) { amCheckPractitioners(t, r) }),
		ok("included location resources returned are valid", func() amQuery {
			return amSlotQuery(amFromTomorrow(3)).add("_include:recurse", "Schedule:actor:Location")
		}, func(t *testing.T, c *amClient, r *amResp) { amCheckLocations(t, c, r) }),
		amRow{name: "CapabilityStatement profile supports the Slot Search Resource", run: func(t *testing.T, c *amClient) {
			amCSInteraction(t, c, "Slot", "search-type")
		}},
		ok("valid response check caching headers exist", func() amQuery { return amSlotQuery(amFromTomorrow(3)) }),
		refused("invalid response check caching headers exist", 422, gpconnect.CodeInvalidParameter, func() amQuery { return amSlotQuery(amFromTomorrow(30)) }),
	)
	orgTypes := []string{"urgent-care", "gp-practice", "oncology"}
	orgCodes := []string{"{ORG1}", "B81016", "M85015", "RNR01"}
	filtered := func(filters ...string) func() amQuery {
		return func() amQuery {
			q := prefixed("ge", "le")()
			p := amFromToday(14)
			q = q.set("start", "ge"+p.start).set("end", "le"+p.end)
			for _, f := range filters {
				q = q.add("searchFilter", f)
			}
			return q
		}
	}
	filterChecks := func(t *testing.T, c *amClient, r *amResp) {
		if len(r.resources("Slot")) == 0 {
			t.Fatal("no slots in the next 14 days")
		}
		amCheckSlots(t, r)
		amCheckOrganization(t, c, r)
	}
	for _, ty := range orgTypes {
		rows = append(rows, ok("org type searchFilter system/"+ty, filtered(amSystemOrgType+"|"+ty), filterChecks))
	}
	for _, code := range orgCodes {
		rows = append(rows, ok("org code searchFilter system/"+strings.Trim(code, "{}"), filtered(amSystemODS+"|"+code), filterChecks))
	}
	rows = append(rows, ok("NO org code and NO org type searchFilter system", filtered(), filterChecks))
	for _, ty := range orgTypes {
		for _, code := range orgCodes {
			rows = append(rows, ok("org type and code searchFilter system/"+ty+","+strings.Trim(code, "{}"),
				filtered(amSystemOrgType+"|"+ty, amSystemODS+"|"+code), filterChecks))
		}
	}
	twoDays := func() amQuery {
		return amSlotQuery(amFromTomorrow(2)).add("_include:recurse", "Schedule:actor:Location")
	}
	rows = append(rows,
		amRow{name: "CapabilityStatement includes specific searchInclude", run: func(t *testing.T, c *amClient) {
			slot := amCSResource(t, c.metadata(t), "Slot")
			if !slices.Contains(amStrs(slot, "searchInclude"), "Location:managingOrganization") {
				t.Errorf("Slot searchInclude %v lacks Location:managingOrganization", slot["searchInclude"])
			}
		}},
		ok("Schedule with serviceCategory populated", twoDays, func(t *testing.T, c *amClient, r *amResp) {
			amCheckLocations(t, c, r)
			n := 0
			for _, s := range r.resources("Schedule") {
				if amStr(s, "serviceCategory", "text") != "" {
					n++
				}
			}
			if n == 0 {
				t.Error("no Schedule with serviceCategory.text in the next two days")
			}
		}),
		ok("slot with serviceType populated", twoDays, func(t *testing.T, c *amClient, r *amResp) {
			amCheckLocations(t, c, r)
			if len(r.resources("Slot")) == 0 {
				t.Fatal("no slots in the next two days")
			}
			amCheckSlots(t, r)
		}),
		ok("No Comment elements for the Schedules and Slots", twoDays, func(t *testing.T, c *amClient, r *amResp) {
			amCheckLocations(t, c, r)
			for _, kind := range []string{"Schedule", "Slot"} {
				for _, s := range r.resources(kind) {
					if s["comment"] != nil {
						t.Errorf("%s %s has a comment", kind, amStr(s, "id"))
					}
				}
			}
		}),
	)
	return rows
}()

// ---------------------------------------------------------------------
// AppointmentBook.feature: POST /Appointment.

var appointmentBookRows = func() []amRow {
	var rows []amRow
	// created rows book with the default body changed by edit and check
	// the 201 answer.
	created := func(name string, b amBooking, edit func(m map[string]any), checks ...func(*testing.T, *amClient, *amBooked)) amRow {
		return amRow{name: name, run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, "patient1", b, nil, edit)
			for _, ch := range checks {
				ch(t, c, bk)
			}
		}}
	}
	// refused rows book with a changed body and check the refusal.
	refused := func(name string, status int, code string, edit func(m map[string]any)) amRow {
		return amRow{name: name, run: func(t *testing.T, c *amClient) {
			c.bookWith(t, "patient1", amDefaultBooking, nil, edit).resp.want(t, status, code)
		}}
	}
	// malformedBooking rows send a booking body with a defect no codec
	// writes, in the pass's format.
	malformedBooking := func(name string, jsonEdit func(map[string]any), xmlEdit func(string) string) amRow {
		return amRow{name: name, run: func(t *testing.T, c *amClient) {
			body := c.bookingBody(t, c.p.pool.take(t, nil), c.patient(t, "patient1"), amDefaultBooking)
			c.do(t, amReq{method: "POST", path: "/Appointment", interaction: gpconnect.CreateAppointment, raw: c.malformed(t, body, jsonEdit, xmlEdit)}).
				want(t, 422, gpconnect.CodeInvalidResource)
		}}
	}
	full := func(t *testing.T, c *amClient, bk *amBooked) {
		amCheckAppointment(t, c, bk.appt, true)
		amCheckBookingOrg(t, bk.appt)
	}
	removeParticipants := func(kinds ...string) func(m map[string]any) {
		return func(m map[string]any) {
			var keep []any
			for _, p := range m["participant"].([]any) {
				kind, _, _ := strings.Cut(amStr(p.(map[string]any), "actor", "reference"), "/")
				if !slices.Contains(kinds, kind) {
					keep = append(keep, p)
				}
			}
			m["participant"] = keep
			if keep == nil {
				delete(m, "participant")
			}
		}
	}
	rows = append(rows, created("Book single appointment for patient", amDefaultBooking, nil))
	for _, b := range []bool{false, true} {
		for _, ch := range []bool{false, true} {
			for _, pr := range []bool{false, true} {
				rows = append(rows, created(fmt.Sprintf("optional elements/orgType %v channel %v pracRole %v", b, ch, pr),
					amBooking{orgType: b, channel: ch, pracRole: pr}, nil, func(t *testing.T, c *amClient, bk *amBooked) {
						// The practice adds its own DeliveryChannel and
						// PractitionerRole whatever the consumer sent.
						amCheckPracticeOwned(t, bk.appt, bk.slot)
						if bk.appt["reason"] != nil || bk.appt["specialty"] != nil {
							t.Error("reason or specialty in the answer")
						}
					}))
			}
		}
	}
	rows = append(rows,
		created("with Extensions", amBooking{orgType: true, channel: true, pracRole: true}, nil, func(t *testing.T, c *amClient, bk *amBooked) {
			amCheckPracticeOwned(t, bk.appt, bk.slot)
		}),
		created("without organisation type", amBooking{}, nil),
		amRow{name: "invalid url for booking appointment/appointmentqq/!", run: func(t *testing.T, c *amClient) {
			s := c.p.pool.take(t, nil)
			r := c.do(t, amReq{method: "POST", path: "/appointmentqq/!", interaction: gpconnect.CreateAppointment, body: c.bookingBody(t, s, c.patient(t, "patient1"), amDefaultBooking)})
			if r.status < 400 || r.res["resourceType"] != "OperationOutcome" {
				t.Errorf("%d %s, want a failure with an OperationOutcome", r.status, r.raw)
			}
		}},
	)
	for _, combo := range [][2]string{{amJSON, amJSON}, {amJSON, amXML}, {amXML, amJSON}, {amXML, amXML}} {
		rows = append(rows, amRow{name: "accept header and _format parameter/" + combo[0] + "," + combo[1], explicitFormat: true, run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, "patient1", amDefaultBooking, nil, nil, amAccept(combo[0]), amFormat(combo[1]))
			full(t, c, bk)
		}})
	}
	for _, combo := range [][2]string{{amJSON, amJSON}, {amJSON, amXML}, {amXML, amJSON}, {amXML, amXML}} {
		rows = append(rows, amRow{name: "_format parameter only but varying request content types/" + combo[0] + "," + combo[1], explicitFormat: true, run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, "patient1", amDefaultBooking, nil, nil, amCType(combo[0]), amFormat(combo[1]), amAccept("-"))
			amCheckAppointment(t, c, bk.appt, false)
		}})
	}
	for _, a := range []string{amJSON, amXML} {
		rows = append(rows, amRow{name: "accept header to request response format/" + a, explicitFormat: true, run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, "patient1", amDefaultBooking, nil, nil, amAccept(a))
			amCheckAppointment(t, c, bk.appt, false)
		}})
	}
	rows = append(rows,
		amRow{name: "prefer header set to representation", run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, "patient1", amDefaultBooking, nil, nil, amHeader("Prefer", "return=representation"))
			amCheckRepresentation(t, bk.resp)
		}},
		amRow{name: "prefer header set to minimal", run: func(t *testing.T, c *amClient) {
			r := c.bookWith(t, "patient1", amDefaultBooking, nil, nil, amHeader("Prefer", "return=minimal")).resp
			r.want(t, 201, "")
			amCheckEmpty(t, r)
		}},
		created("appointment participant is valid", amDefaultBooking, nil, func(t *testing.T, c *amClient, bk *amBooked) {
			amCheckAppointment(t, c, bk.appt, true)
		}),
		created("without practitioner participant", amDefaultBooking, removeParticipants("Practitioner")),
		refused("remove manadatory resources/Patient", 422, gpconnect.CodeInvalidResource, removeParticipants("Patient")),
		refused("remove manadatory resources/Location", 422, gpconnect.CodeInvalidResource, removeParticipants("Location")),
		refused("remove all participants", 422, gpconnect.CodeInvalidResource, removeParticipants("Location", "Patient", "Practitioner")),
		malformedBooking("send extra fields in the resource", func(m map[string]any) { m["invalidField"] = "Assurance" },
			func(x string) string {
				return strings.Replace(x, `<Appointment xmlns="http://hl7.org/fhir">`, `<Appointment xmlns="http://hl7.org/fhir"><invalidField value="Assurance"/>`, 1)
			}),
	)
	// Slot/45555g55555 and Slot/hello are well-formed references to slots
	// that do not exist: 422 REFERENCE_NOT_FOUND, as the specification's
	// own example has it ("Reference to Slot/6 - no such slot exists");
	// the suite wants INVALID_RESOURCE.
	for _, ref := range [][2]string{{"Slot/45555g55555", gpconnect.CodeReferenceNotFound}, {"Slot/45555555##", gpconnect.CodeInvalidResource},
		{"Slot/hello", gpconnect.CodeReferenceNotFound}, {"https://test1.supplier.thirdparty.nhs.uk/A11111/STU3/1/GPConnect/Slot/#12345", gpconnect.CodeInvalidResource}} {
		rows = append(rows, refused("invalid slot reference/"+ref[0], 422, ref[1], func(m map[string]any) { m["slot"] = []any{map[string]any{"reference": ref[0]}} }))
	}
	rows = append(rows,
		created("location reference is valid", amDefaultBooking, nil, func(t *testing.T, c *amClient, bk *amBooked) {
			for _, p := range amList(bk.appt, "participant") {
				if ref := amStr(p, "actor", "reference"); strings.HasPrefix(ref, "Location/") {
					c.resolve(t, ref)
				}
			}
		}),
		refused("missing start element", 422, gpconnect.CodeInvalidResource, func(m map[string]any) { delete(m, "start") }),
		refused("missing end element", 422, gpconnect.CodeInvalidResource, func(m map[string]any) { delete(m, "end") }),
		refused("missing status element", 422, gpconnect.CodeInvalidResource, func(m map[string]any) { delete(m, "status") }),
		refused("missing slot element", 422, gpconnect.CodeInvalidResource, func(m map[string]any) { delete(m, "slot") }),
		refused("remove identifier value", 422, gpconnect.CodeInvalidResource, func(m map[string]any) {
			m["identifier"] = []any{map[string]any{"system": "https://fhir.nhs.uk/Id/gpconnect-appointment-identifier"}}
		}),
		refused("remove participant status", 422, gpconnect.CodeInvalidResource, func(m map[string]any) {
			for _, p := range m["participant"].([]any) {
				delete(p.(map[string]any), "status")
			}
		}),
		malformedBooking("send an invalid bundle resource", func(m map[string]any) { m["resourceType"] = "InvalidResourceType" }, amRenameRoot),
		amRow{name: "send an invalid appointment resource", run: func(t *testing.T, c *amClient) {
			c.do(t, amReq{method: "POST", path: "/Appointment", interaction: gpconnect.CreateAppointment, body: map[string]any{"resourceType": "Appointment"}}).
				want(t, 422, gpconnect.CodeInvalidResource)
		}},
		amRow{name: "CapabilityStatement profile supports the book appointment operation", run: func(t *testing.T, c *amClient) {
			amCSInteraction(t, c, "Appointment", "create")
			amCSInteraction(t, c, "Appointment", "update")
		}},
		created("valid response check caching headers exist", amDefaultBooking, nil),
		refused("invalid response check caching headers exist", 422, gpconnect.CodeInvalidResource, func(m map[string]any) { delete(m, "slot") }),
		refused("name removed from booking organization", 422, gpconnect.CodeInvalidResource, func(m map[string]any) {
			delete(m["contained"].([]any)[0].(map[string]any), "name")
		}),
		refused("telecom removed from booking organization", 422, gpconnect.CodeInvalidResource, func(m map[string]any) {
			delete(m["contained"].([]any)[0].(map[string]any), "telecom")
		}),
		created("with a description", amDefaultBooking, func(m map[string]any) { m["description"] = "customDescription" },
			func(t *testing.T, c *amClient, bk *amBooked) {
				if amStr(bk.appt, "description") != "customDescription" || bk.appt["comment"] != nil {
					t.Errorf("description %q comment %v", amStr(bk.appt, "description"), bk.appt["comment"])
				}
			}),
		amRow{name: "re-using an already booked slot", run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, "patient1", amDefaultBooking, nil, nil)
			again := c.bookingBody(t, bk.slot, c.patient(t, "patient2"), amDefaultBooking)
			c.do(t, amReq{method: "POST", path: "/Appointment", interaction: gpconnect.CreateAppointment, body: again}).want(t, 409, gpconnect.CodeDuplicateRejected)
		}},
		refused("send a reason in the appointment", 422, gpconnect.CodeInvalidResource, func(m map[string]any) {
			m["reason"] = []any{map[string]any{"coding": []any{map[string]any{"system": "http://snomed.info/sct", "code": "17436001", "display": "Medical consultation on hospital admission"}}}}
		}),
		refused("typeCode (specialty) in appointment resource", 422, gpconnect.CodeInvalidResource, func(m map[string]any) {
			m["specialty"] = []any{map[string]any{"coding": []any{map[string]any{"system": "http://hl7.org/fhir/ValueSet/c80-practice-codes", "code": "394802001", "display": "General medicine"}}}}
		}),
		created("with a description and comment", amDefaultBooking, func(m map[string]any) { m["description"], m["comment"] = "customDescription", "CustomComment" },
			func(t *testing.T, c *amClient, bk *amBooked) {
				if amStr(bk.appt, "description") != "customDescription" || amStr(bk.appt, "comment") != "CustomComment" {
					t.Errorf("description %q comment %q", amStr(bk.appt, "description"), amStr(bk.appt, "comment"))
				}
			}),
		created("with a comment", amDefaultBooking, func(m map[string]any) { m["comment"] = "CustomComment" },
			func(t *testing.T, c *amClient, bk *amBooked) {
				if amStr(bk.appt, "comment") != "CustomComment" {
					t.Errorf("comment %q", amStr(bk.appt, "comment"))
				}
			}),
		created("without a comment", amDefaultBooking, nil, func(t *testing.T, c *amClient, bk *amBooked) {
			if bk.appt["comment"] != nil {
				t.Errorf("comment %v", bk.appt["comment"])
			}
		}),
		refused("invalid reference (absolute booking organization)", 422, gpconnect.CodeInvalidResource, func(m map[string]any) {
			m["extension"].([]any)[0].(map[string]any)["valueReference"] = map[string]any{"reference": "https://test1.supplier.thirdparty.nhs.uk/A11111/STU3/1/GPConnect/#1"}
		}),
	)
	inTwoDays := func(name string, b amBooking) amRow {
		return amRow{name: name, run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, "patient1", b, amInDays(2), nil)
			full(t, c, bk)
			amCheckPracticeOwned(t, bk.appt, bk.slot)
		}}
	}
	rows = append(rows,
		inTwoDays("expecting servicecategory is populated", amDefaultBooking),
		inTwoDays("expecting serviceType is populated", amDefaultBooking),
		inTwoDays("servicecategory in response when ServiceCategory and serviceType are in request but ignored",
			amBooking{orgType: true, serviceCategory: "Test-ServiceCategory", serviceType: "Test-ServiceType"}),
		inTwoDays("serviceType in response when ServiceCategory and serviceType are in request but ignored",
			amBooking{orgType: true, serviceCategory: "Test-ServiceCategory", serviceType: "Test-ServiceType"}),
		inTwoDays("backwards compatibility: serviceCategory and serviceType removed from request",
			amBooking{orgType: true, serviceCategory: "-", serviceType: "-"}),
	)
	return rows
}()

// ---------------------------------------------------------------------
// AppointmentAmend.feature: PUT /Appointment/{id}, update.

var appointmentAmendRows = func() []amRow {
	var rows []amRow
	// amend books for patient, then sends the answered appointment changed
	// by edit.
	amend := func(name, patient string, edit func(m map[string]any), extra []func(*amReq), check func(*testing.T, *amClient, *amBooked, *amResp)) amRow {
		return amRow{name: name, run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, patient, amDefaultBooking, nil, nil)
			body := amClone(bk.appt)
			if edit != nil {
				edit(body)
			}
			check(t, c, bk, c.put(t, gpconnect.UpdateAppointment, amStr(bk.appt, "id"), body, extra...))
		}}
	}
	describe := func(m map[string]any) { m["description"] = "customDescription" }
	amended := func(t *testing.T, c *amClient, bk *amBooked, r *amResp) {
		r.want(t, 200, "")
		amCheckAppointment(t, c, r.res, false)
		if !strings.Contains(amStr(r.res, "description"), "customDescription") {
			t.Errorf("description %q", amStr(r.res, "description"))
		}
	}
	refusedWith := func(status int, code string) func(*testing.T, *amClient, *amBooked, *amResp) {
		return func(t *testing.T, _ *amClient, _ *amBooked, r *amResp) { r.want(t, status, code) }
	}
	for _, p := range []string{"patient1", "patient2", "patient3"} {
		rows = append(rows, amend("amend appointment and update element/"+p, p, describe, nil, amended))
	}
	rows = append(rows,
		amRow{name: "with Extensions", run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, "patient1", amBooking{orgType: true, channel: true, pracRole: true}, nil, nil)
			r := c.read(t, amStr(bk.appt, "id"))
			r.want(t, 200, "")
			amCheckPracticeOwned(t, r.res, bk.slot)
		}},
		amend("set priority", "patient1", func(m map[string]any) { m["priority"] = 1 }, nil, refusedWith(422, gpconnect.CodeInvalidResource)),
	)
	for _, f := range []string{amJSON, amXML} {
		rows = append(rows, amRow{name: "_format parameter/" + f, explicitFormat: true,
			run: amend("", "patient1", describe, []func(*amReq){amFormat(f)}, amended).run})
	}
	for _, a := range []string{amJSON, amXML} {
		rows = append(rows, amRow{name: "accept header/" + a, explicitFormat: true,
			run: amend("", "patient1", describe, []func(*amReq){amAccept(a)}, amended).run})
	}
	for _, combo := range [][2]string{{amJSON, amJSON}, {amJSON, amXML}, {amXML, amJSON}, {amXML, amXML}} {
		rows = append(rows, amRow{name: "accept header and _format parameter/" + combo[0] + "," + combo[1], explicitFormat: true,
			run: amend("", "patient1", describe, []func(*amReq){amAccept(combo[0]), amFormat(combo[1])}, amended).run})
	}
	comment := func(m map[string]any) { m["comment"] = "customComment" }
	rows = append(rows,
		amend("prefer header set to representation", "patient1", comment, []func(*amReq){amHeader("Prefer", "return=representation")},
			func(t *testing.T, c *amClient, bk *amBooked, r *amResp) {
				r.want(t, 200, "")
				amCheckRepresentation(t, r)
			}),
		amend("prefer header set to minimal", "patient1", comment, []func(*amReq){amHeader("Prefer", "return=minimal")},
			func(t *testing.T, c *amClient, bk *amBooked, r *amResp) {
				r.want(t, 200, "")
				amCheckEmpty(t, r)
			}),
		amend("invalid If-Match header", "patient1", describe, []func(*amReq){amHeader("If-Match", `W/"invalidEtag"`)},
			refusedWith(409, gpconnect.CodeFHIRConstraintViolation)),
		amRow{name: "valid If-Match header", run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, "patient1", amDefaultBooking, nil, nil)
			body := amClone(bk.appt)
			describe(body)
			r := c.put(t, gpconnect.UpdateAppointment, amStr(bk.appt, "id"), body, amHeader("If-Match", bk.resp.header.Get("ETag")))
			amended(t, c, bk, r)
			amCheckETag(t, r)
		}},
		amRow{name: "invalid resource type", run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, "patient1", amDefaultBooking, nil, nil)
			raw := c.malformed(t, bk.appt, func(m map[string]any) { m["resourceType"] = "InvalidResourceType" }, amRenameRoot)
			c.do(t, amReq{method: "PUT", path: "/Appointment/" + amStr(bk.appt, "id"), interaction: gpconnect.UpdateAppointment, raw: raw}).
				want(t, 422, gpconnect.CodeInvalidResource)
		}},
		amend("invalid field (status noshow)", "patient1", func(m map[string]any) { m["status"] = "noshow" }, nil, refusedWith(422, gpconnect.CodeInvalidResource)),
		amRow{name: "CapabilityStatement profile supports the amend appointment operation", run: func(t *testing.T, c *amClient) {
			amCSInteraction(t, c, "Appointment", "update")
		}},
		amend("valid response check caching headers exist", "patient1", describe, nil, amended),
		amend("invalid response check caching headers exist", "patient1", func(m map[string]any) { m["status"] = "noshow" }, nil, refusedWith(422, gpconnect.CodeInvalidResource)),
		amend("add cancellation reason", "patient1", func(m map[string]any) {
			m["extension"] = append(m["extension"].([]any), map[string]any{"url": amExtCancelReason, "valueString": "double booked"})
		}, nil, refusedWith(422, gpconnect.CodeInvalidResource)),
		amend("comment and description", "patient1", func(m map[string]any) { describe(m); comment(m) }, nil,
			func(t *testing.T, c *amClient, bk *amBooked, r *amResp) {
				amended(t, c, bk, r)
				if amStr(r.res, "comment") != "customComment" {
					t.Errorf("comment %q", amStr(r.res, "comment"))
				}
			}),
		amend("invalid reference (absolute booking organization)", "patient1", func(m map[string]any) {
			for _, e := range m["extension"].([]any) {
				if e := e.(map[string]any); e["url"] == amExtBookingOrg {
					e["valueReference"] = map[string]any{"reference": "https://test1.supplier.thirdparty.nhs.uk/A11111/STU3/1/GPConnect/#1"}
				}
			}
		}, nil, refusedWith(422, gpconnect.CodeInvalidResource)),
		amRow{name: "absolute participant references (cancel)", run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, "patient1", amDefaultBooking, nil, nil)
			body := amCancelled(bk.appt, "double booked")
			for _, ref := range []string{"Location/2", "Practitioner/2", "Patient/2"} {
				body["participant"] = append(body["participant"].([]any), map[string]any{
					"actor": map[string]any{"reference": "https://test1.supplier.thirdparty.nhs.uk/A11111/STU3/1/GPConnect/" + ref}, "status": "declined"})
			}
			c.put(t, gpconnect.CancelAppointment, amStr(bk.appt, "id"), body).want(t, 422, gpconnect.CodeInvalidResource)
		}},
	)
	scst := func(name string, edit func(m map[string]any)) amRow {
		return amRow{name: name, run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, "patient1", amBooking{orgType: true, serviceCategory: "Test-ServiceCategory", serviceType: "Test-ServiceType"}, amInDays(2), nil)
			body := amClone(bk.appt)
			body["description"], body["comment"] = "customDescription", "customComment"
			if edit != nil {
				edit(body)
			}
			r := c.put(t, gpconnect.UpdateAppointment, amStr(bk.appt, "id"), body)
			amended(t, c, bk, r)
			if amStr(r.res, "comment") != "customComment" {
				t.Errorf("comment %q", amStr(r.res, "comment"))
			}
			amCheckPracticeOwned(t, r.res, bk.slot)
		}}
	}
	rows = append(rows,
		scst("serviceCategory and serviceType sent then amend", nil),
		scst("backwards compatibility: serviceCategory and serviceType removed", func(m map[string]any) {
			delete(m, "serviceCategory")
			delete(m, "serviceType")
		}),
	)
	return rows
}()

// ---------------------------------------------------------------------
// AppointmentCancel.feature: PUT /Appointment/{id}, cancel.

var appointmentCancelRows = func() []amRow {
	var rows []amRow
	// cancel books for patient, then sends the suite's cancel body (reason
	// "double booked") changed by edit.
	cancel := func(name, patient string, edit func(m map[string]any), extra []func(*amReq), check func(*testing.T, *amClient, *amBooked, map[string]any, *amResp)) amRow {
		return amRow{name: name, run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, patient, amDefaultBooking, nil, nil)
			body := amCancelled(bk.appt, "double booked")
			if edit != nil {
				edit(body)
			}
			check(t, c, bk, body, c.put(t, gpconnect.CancelAppointment, amStr(bk.appt, "id"), body, extra...))
		}}
	}
	// cancelEq is CANCEL-EQ: status cancelled, the reason sent, the same
	// id, extensions, description, start, end, slots, participants and
	// created as sent.
	cancelEq := func(t *testing.T, c *amClient, bk *amBooked, sent map[string]any, r *amResp) {
		t.Helper()
		r.want(t, 200, "")
		a := r.res
		amMeta(t, a, amProfileAppointment, true)
		reason := amExtensions(sent, amExtCancelReason)
		if got := amExtensions(a, amExtCancelReason); amStr(a, "status") != "cancelled" || len(got) != 1 || amStr(got[0], "valueString") != amStr(reason[0], "valueString") {
			t.Errorf("status %q, reason %v, want cancelled with %v", amStr(a, "status"), got, reason)
		}
		if len(amList(a, "extension")) != len(amList(sent, "extension")) {
			t.Errorf("%d extensions, sent %d", len(amList(a, "extension")), len(amList(sent, "extension")))
		}
		for _, k := range []string{"id", "description", "start", "end", "created"} {
			if amStr(a, k) != amStr(sent, k) {
				t.Errorf("%s %q, sent %q", k, amStr(a, k), amStr(sent, k))
			}
		}
		for _, k := range []string{"slot", "participant"} {
			if fmt.Sprint(a[k]) != fmt.Sprint(sent[k]) {
				t.Errorf("%s %v, sent %v", k, a[k], sent[k])
			}
		}
		start, _ := time.Parse(time.RFC3339, amStr(a, "start"))
		if start.Before(time.Now()) || a["reason"] != nil {
			t.Errorf("start %v in the past, or reason %v", start, a["reason"])
		}
	}
	refusedWith := func(status int, code string) func(*testing.T, *amClient, *amBooked, map[string]any, *amResp) {
		return func(t *testing.T, _ *amClient, _ *amBooked, _ map[string]any, r *amResp) { r.want(t, status, code) }
	}
	for _, p := range []string{"patient1", "patient2", "patient3"} {
		rows = append(rows, cancel("cancel appointment/"+p, p, nil, nil, cancelEq))
	}
	rows = append(rows,
		amRow{name: "with Extensions", run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, "patient1", amBooking{orgType: true, channel: true, pracRole: true}, nil, nil)
			r := c.read(t, amStr(bk.appt, "id"))
			r.want(t, 200, "")
			amCheckPracticeOwned(t, r.res, bk.slot)
		}},
		cancel("with comment", "patient1", func(m map[string]any) { m["comment"] = "RANDOM COMMENT" }, nil, refusedWith(422, gpconnect.CodeInvalidResource)),
		cancel("with description", "patient1", func(m map[string]any) { m["description"] = "RANDOM DESCRIPTION" }, nil, refusedWith(422, gpconnect.CodeInvalidResource)),
		cancel("with participants", "patient1", func(m map[string]any) {
			for _, ref := range []string{"location/2", "Patient/2", "Practitioner/2"} {
				m["participant"] = append(m["participant"].([]any), map[string]any{"actor": map[string]any{"reference": ref}, "status": "accepted"})
			}
		}, nil, refusedWith(422, gpconnect.CodeInvalidResource)),
		cancel("with appointmentType text", "patient1", func(m map[string]any) { m["appointmentType"] = map[string]any{"text": "Assurance appointment type"} },
			nil, refusedWith(422, gpconnect.CodeInvalidResource)),
	)
	for _, f := range []string{amJSON, amXML} {
		rows = append(rows, amRow{name: "_format parameter/" + f, explicitFormat: true, run: cancel("", "patient1", nil, []func(*amReq){amFormat(f)}, cancelEq).run})
	}
	for _, a := range []string{amJSON, amXML} {
		rows = append(rows, amRow{name: "accept header/" + a, explicitFormat: true, run: cancel("", "patient1", nil, []func(*amReq){amAccept(a)}, cancelEq).run})
	}
	for _, combo := range [][2]string{{amJSON, amJSON}, {amJSON, amXML}, {amXML, amJSON}, {amXML, amXML}} {
		rows = append(rows, amRow{name: "accept header and _format parameter/" + combo[0] + "," + combo[1], explicitFormat: true,
			run: cancel("", "patient1", nil, []func(*amReq){amAccept(combo[0]), amFormat(combo[1])}, cancelEq).run})
	}
	for _, combo := range [][3]string{{amXML, amXML, amXML}, {amJSON, amJSON, amJSON}, {amXML, amXML, amJSON}, {amJSON, amJSON, amXML},
		{amXML, amJSON, amJSON}, {amJSON, amXML, amXML}, {amXML, amJSON, amXML}, {amJSON, amXML, amJSON}} {
		rows = append(rows, amRow{name: "content type, accept header and _format parameter/" + strings.Join(combo[:], ","), explicitFormat: true,
			run: cancel("", "patient1", nil, []func(*amReq){amCType(combo[0]), amAccept(combo[1]), amFormat(combo[2])}, cancelEq).run})
	}
	for _, reason := range []string{"Test cancellation reason 1", "test reason for cancel 2"} {
		rows = append(rows, amRow{name: "cancellation reason/" + reason, run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, "patient1", amDefaultBooking, nil, nil)
			body := amCancelled(bk.appt, reason)
			cancelEq(t, c, bk, body, c.put(t, gpconnect.CancelAppointment, amStr(bk.appt, "id"), body))
		}})
	}
	badURL := func(u string) func(m map[string]any) {
		return func(m map[string]any) {
			exts := m["extension"].([]any)
			exts[len(exts)-1] = map[string]any{"url": u, "valueString": "Too busy"}
		}
	}
	rows = append(rows,
		cancel("invalid extension url/empty", "patient1", badURL(""), nil, refusedWith(422, gpconnect.CodeInvalidResource)),
		cancel("invalid extension url/misspelt", "patient1", badURL("http://fhir.nhs.uk/StructuraeDefinition/extension-gpconnect-appointment-cancellation-reason-1-010"), nil,
			refusedWith(422, gpconnect.CodeInvalidResource)),
		cancel("missing cancellation extension reason", "patient1", func(m map[string]any) {
			exts := m["extension"].([]any)
			exts[len(exts)-1].(map[string]any)["valueString"] = ""
		}, nil, refusedWith(422, gpconnect.CodeInvalidParameter)),
		amRow{name: "valid If-Match header", run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, "patient1", amDefaultBooking, nil, nil)
			body := amCancelled(bk.appt, "double booked")
			cancelEq(t, c, bk, body, c.put(t, gpconnect.CancelAppointment, amStr(bk.appt, "id"), body, amHeader("If-Match", bk.resp.header.Get("ETag"))))
		}},
		cancel("invalid If-Match header", "patient1", nil, []func(*amReq){amHeader("If-Match", `W/"invalidEtag"`)}, refusedWith(409, gpconnect.CodeFHIRConstraintViolation)),
		cancel("prefer header set to representation", "patient1", nil, []func(*amReq){amHeader("Prefer", "return=representation")},
			func(t *testing.T, c *amClient, bk *amBooked, sent map[string]any, r *amResp) {
				cancelEq(t, c, bk, sent, r)
				amCheckRepresentation(t, r)
				amCheckAppointment(t, c, r.res, false)
			}),
		cancel("prefer header set to minimal", "patient1", nil, []func(*amReq){amHeader("Prefer", "return=minimal")},
			func(t *testing.T, c *amClient, bk *amBooked, sent map[string]any, r *amResp) {
				r.want(t, 200, "")
				amCheckEmpty(t, r)
			}),
	)
	for _, p := range []string{"patient1", "patient2"} {
		rows = append(rows, cancel("versionId is different to created appointment/"+p, p, nil, nil,
			func(t *testing.T, c *amClient, bk *amBooked, sent map[string]any, r *amResp) {
				cancelEq(t, c, bk, sent, r)
				if v := amStr(r.res, "meta", "versionId"); v == "" || v == amStr(bk.appt, "meta", "versionId") {
					t.Errorf("versionId %q after the cancel, %q before", v, amStr(bk.appt, "meta", "versionId"))
				}
				amCheckETag(t, r)
			}))
	}
	rows = append(rows,
		amRow{name: "CapabilityStatement profile supports the cancel appointment operation", run: func(t *testing.T, c *amClient) {
			amCSInteraction(t, c, "Appointment", "update")
		}},
		cancel("valid response check caching headers exist", "patient1", nil, nil, cancelEq),
		cancel("invalid response check caching headers exist", "patient1", func(m map[string]any) {
			exts := m["extension"].([]any)
			exts[len(exts)-1].(map[string]any)["valueString"] = ""
		}, nil, refusedWith(422, gpconnect.CodeInvalidParameter)),
		cancel("amend a cancelled appointment", "patient1", nil, nil, func(t *testing.T, c *amClient, bk *amBooked, sent map[string]any, r *amResp) {
			r.want(t, 200, "")
			body := amClone(r.res)
			body["description"] = "amended after the cancel"
			c.put(t, gpconnect.UpdateAppointment, amStr(bk.appt, "id"), body).want(t, 422, gpconnect.CodeInvalidResource)
		}),
		cancel("invalid reference (absolute booking organization)", "patient1", func(m map[string]any) {
			for _, e := range m["extension"].([]any) {
				if e := e.(map[string]any); e["url"] == amExtBookingOrg {
					e["valueReference"] = map[string]any{"reference": "https://test1.supplier.thirdparty.nhs.uk/A11111/STU3/1/GPConnect/#1"}
				}
			}
		}, nil, refusedWith(422, gpconnect.CodeInvalidResource)),
		cancel("absolute participant references", "patient1", func(m map[string]any) {
			for _, ref := range []string{"Location/2", "Practitioner/2", "Patient/2"} {
				m["participant"] = append(m["participant"].([]any), map[string]any{
					"actor": map[string]any{"reference": "https://test1.supplier.thirdparty.nhs.uk/A11111/STU3/1/GPConnect/" + ref}, "status": "declined"})
			}
		}, nil, refusedWith(422, gpconnect.CodeInvalidResource)),
	)
	scst := func(name string, edit func(m map[string]any)) amRow {
		return amRow{name: name, run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, "patient1", amDefaultBooking, amInDays(2), nil)
			body := amCancelled(bk.appt, "Test-Cancel-Reason")
			if edit != nil {
				edit(body)
			}
			r := c.put(t, gpconnect.CancelAppointment, amStr(bk.appt, "id"), body)
			cancelEq(t, c, bk, body, r)
			amCheckPracticeOwned(t, r.res, bk.slot)
		}}
	}
	rows = append(rows,
		scst("expecting servicecategory is populated", nil),
		scst("expecting serviceType is populated", nil),
		scst("backwards compatibility: serviceCategory and serviceType removed", func(m map[string]any) {
			delete(m, "serviceCategory")
			delete(m, "serviceType")
		}),
	)
	return rows
}()

// ---------------------------------------------------------------------
// AppointmentRead.feature: GET /Appointment/{id}.

var appointmentReadRows = func() []amRow {
	var rows []amRow
	read := func(name, patient string, extra []func(*amReq), check func(*testing.T, *amClient, *amBooked, *amResp)) amRow {
		return amRow{name: name, run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, patient, amDefaultBooking, nil, nil)
			r := c.read(t, amStr(bk.appt, "id"), extra...)
			r.want(t, 200, "")
			check(t, c, bk, r)
		}}
	}
	valid := func(t *testing.T, c *amClient, bk *amBooked, r *amResp) {
		amCheckAppointment(t, c, r.res, false)
		if amStr(r.res, "id") != amStr(bk.appt, "id") {
			t.Errorf("read %q, booked %q", amStr(r.res, "id"), amStr(bk.appt, "id"))
		}
	}
	for _, p := range []string{"patient1", "patient2", "patient3"} {
		rows = append(rows, read("read appointment valid request/"+p, p, nil, valid))
	}
	rows = append(rows,
		amRow{name: "with Extensions", run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, "patient1", amBooking{orgType: true, channel: true, pracRole: true}, nil, nil)
			r := c.read(t, amStr(bk.appt, "id"))
			r.want(t, 200, "")
			amCheckPracticeOwned(t, r.res, bk.slot)
		}},
		amRow{name: "JWT requesting organisation different to the booking organisation", run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, "patient1", amDefaultBooking, nil, nil, amJWTODS("X12345"))
			r := c.read(t, amStr(bk.appt, "id"))
			r.want(t, 200, "")
			org := amList(r.res, "contained")
			if len(org) != 1 || amStr(amList(org[0], "identifier")[0], "value") != c.p.ods {
				t.Errorf("contained %v, want the booking organisation %s", org, c.p.ods)
			}
		}},
	)
	for _, id := range []string{"Invalid4321", "8888888888"} {
		rows = append(rows, amRow{name: fmt.Sprintf("invalid id/%q", id), run: func(t *testing.T, c *amClient) {
			c.read(t, id).want(t, 404, gpconnect.CodeNoRecordFound)
		}})
	}
	// GET Appointment/ (no id) fits no interaction's path. The practice
	// answers 404 NO_RECORD_FOUND, as the suite wants, but through the SSP
	// its interaction-route rule (ssp.interaction_route: enforce, the
	// default) answers first: 400 BAD_REQUEST.
	rows = append(rows, amRow{name: `invalid id/""`, run: func(t *testing.T, c *amClient) {
		c.read(t, "").want(t, 400, gpconnect.CodeBadRequest)
	}})
	for _, f := range []string{amJSON, amXML} {
		rows = append(rows, amRow{name: "_format parameter/" + f, explicitFormat: true, run: read("", "patient1", []func(*amReq){amFormat(f)}, valid).run})
	}
	for _, combo := range [][2]string{{amJSON, amJSON}, {amJSON, amXML}, {amXML, amJSON}, {amXML, amXML}} {
		rows = append(rows, amRow{name: "accept header and _format parameter/" + combo[0] + "," + combo[1], explicitFormat: true,
			run: read("", "patient1", []func(*amReq){amAccept(combo[0]), amFormat(combo[1])}, valid).run})
	}
	for _, a := range []string{amJSON, amXML} {
		rows = append(rows, amRow{name: "check response contains mandatory elements/" + a, explicitFormat: true,
			run: read("", "patient1", []func(*amReq){amAccept(a)}, func(t *testing.T, c *amClient, bk *amBooked, r *amResp) {
				amCheckAppointment(t, c, r.res, true)
				amCheckETag(t, r)
				amCheckBookingOrg(t, r.res)
			}).run})
	}
	rows = append(rows,
		read("valid response check caching headers exist", "patient1", nil, valid),
		amRow{name: "invalid response check caching headers exist", run: func(t *testing.T, c *amClient) {
			if r := c.read(t, "555555"); r.status != 404 {
				t.Errorf("%d %s", r.status, r.raw)
			}
		}},
		amRow{name: "CapabilityStatement profile supports the read appointment operation", run: func(t *testing.T, c *amClient) {
			amCSInteraction(t, c, "Appointment", "read")
		}},
	)
	for _, el := range []string{"servicecategory", "serviceType"} {
		rows = append(rows, amRow{name: "expecting " + el + " is populated", run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, "patient1", amBooking{orgType: true}, amInDays(2), nil)
			r := c.read(t, amStr(bk.appt, "id"))
			r.want(t, 200, "")
			amCheckAppointment(t, c, r.res, false)
			amCheckPracticeOwned(t, r.res, bk.slot)
		}})
	}
	return rows
}()

// ---------------------------------------------------------------------
// AppointmentRetrieve.feature: GET /Patient/{id}/Appointment.

var appointmentRetrieveRows = func() []amRow {
	var rows []amRow
	refused := func(name, patient string, query func() string, status int, code string, extra ...func(*amReq)) amRow {
		return amRow{name: name, run: func(t *testing.T, c *amClient) {
			c.appointments(t, c.patient(t, patient), query(), extra...).want(t, status, code)
		}}
	}
	withOne := func(name string, extra []func(*amReq), check func(*testing.T, *amClient, *amBooked, []map[string]any)) amRow {
		return amRow{name: name, run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, "patient1", amDefaultBooking, nil, nil)
			appts := amAppointments(t, c.appointments(t, c.patient(t, "patient1"), amStartQuery(14), extra...))
			found := false
			for _, a := range appts {
				found = found || amStr(a, "id") == amStr(bk.appt, "id")
			}
			if !found {
				t.Fatalf("the patient's %d appointments lack %s", len(appts), amStr(bk.appt, "id"))
			}
			if check != nil {
				check(t, c, bk, appts)
			}
		}}
	}
	rows = append(rows,
		amRow{name: "valid id where appointment resource returned is not required", run: func(t *testing.T, c *amClient) {
			if appts := amAppointments(t, c.appointments(t, c.patient(t, "patientNoAppointments"), amStartQuery(1))); len(appts) != 0 {
				t.Errorf("%d appointments, want none", len(appts))
			}
		}},
		amRow{name: "with Extensions", run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, "patient1", amBooking{orgType: true, channel: true, pracRole: true}, nil, nil)
			r := c.read(t, amStr(bk.appt, "id"))
			r.want(t, 200, "")
			amCheckPracticeOwned(t, r.res, bk.slot)
		}},
	)
	for _, n := range [][2]any{{"patient4", 1}, {"patient5", 3}, {"patient6", 2}} {
		rows = append(rows, amRow{name: fmt.Sprintf("multiple appointment retrived/%s %d", n[0], n[1]), run: func(t *testing.T, c *amClient) {
			for range n[1].(int) {
				c.mustBook(t, n[0].(string), amDefaultBooking, nil, nil)
			}
			appts := amAppointments(t, c.appointments(t, c.patient(t, n[0].(string)), amStartQuery(14)))
			if len(appts) < n[1].(int) {
				t.Errorf("%d appointments, want at least %d", len(appts), n[1])
			}
			for _, a := range appts {
				amCheckAppointment(t, c, a, false)
			}
		}})
	}
	for _, p := range []string{"null", "dd"} {
		rows = append(rows, amRow{name: "invalid patient id/" + p, run: func(t *testing.T, c *amClient) {
			c.appointments(t, p, "start=ge2030-03-30&start=le2030-04-30").want(t, 404, gpconnect.CodePatientNotFound)
		}})
	}
	for _, combo := range [][2]string{{amJSON, amJSON}, {amJSON, amXML}, {amXML, amJSON}, {amXML, amXML}} {
		rows = append(rows, amRow{name: "accept header and _format parameter/" + combo[0] + "," + combo[1], explicitFormat: true,
			run: withOne("", []func(*amReq){amAccept(combo[0]), amFormat(combo[1])}, nil).run})
	}
	for _, a := range []string{amJSON, amXML} {
		rows = append(rows, amRow{name: "accept header/" + a, explicitFormat: true, run: withOne("", []func(*amReq){amAccept(a)}, nil).run})
	}
	for _, f := range []string{amJSON, amXML} {
		rows = append(rows, amRow{name: "_format parameter/" + f, explicitFormat: true, run: withOne("", []func(*amReq){amFormat(f)}, nil).run})
	}
	formatted := func(sp, ep, sf, ef string) func() string {
		return func() string {
			p := amFormatted(sf, ef, 14)
			return amQuery{{"start", sp + p.start}, {"start", ep + p.end}}.String()
		}
	}
	for _, f := range [][2]string{{"yyyy-MM-dd", "yyyy"}, {"yyyy-MM-dd", "yyyy-MM"}, {"yyyy-MM-dd", "yyyy-MM-ddTHH:mm:ss"}, {"yyyy-MM-dd", "yyyy-MM-ddTHH:mm:ssZ"},
		{"yyyy", "yyyy-MM-dd"}, {"yyyy-MM", "yyyy-MM-dd"}, {"yyyy-MM-ddTHH:mm:ss", "yyyy-MM-dd"}, {"yyyy-MM-ddTHH:mm:ssZ", "yyyy-MM-dd"}} {
		rows = append(rows, refused("invalid date format/"+f[0]+","+f[1], "patient5", formatted("ge", "le", f[0], f[1]), 422, gpconnect.CodeInvalidParameter))
	}
	for _, p := range [][2]string{{"ge", "lt"}, {"ge", "gt"}, {"ge", "eq"}, {"ge", "ge"}, {"lt", "le"}, {"gt", "le"}, {"eqs", "le"}, {"le", "le"}, {"random123", "random123"}} {
		rows = append(rows, refused("invalid date prefix/"+p[0]+","+p[1], "patient5", formatted(p[0], p[1], "yyyy-MM-dd", "yyyy-MM-dd"), 422, gpconnect.CodeInvalidParameter))
	}
	for _, v := range []string{"le2030-03-03", "ge2030-03-03"} {
		rows = append(rows, refused("only one start parameter/"+v, "patient5", func() string { return "start=" + v }, 422, gpconnect.CodeInvalidParameter))
	}
	for _, d := range [][2]string{{"2010-02-03", "2010-03-03"}, {"2010-03-03", "2030-03-30"}} {
		rows = append(rows, refused("date parameters in the past/"+d[0]+","+d[1], "patient3", func() string { return "start=" + d[0] + "&start=" + d[1] }, 422, gpconnect.CodeInvalidParameter))
	}
	rows = append(rows,
		refused("end date before start date", "patient1", func() string { return "start=ge2030-03-03&start=le2030-01-01" }, 422, gpconnect.CodeInvalidParameter),
		withOne("bundle valid resources returned in the response", nil, func(t *testing.T, c *amClient, bk *amBooked, appts []map[string]any) {
			seen := map[string]bool{}
			for _, a := range appts {
				for _, p := range amList(a, "participant") {
					if ref := amStr(p, "actor", "reference"); !seen[ref] {
						seen[ref] = true
						c.resolve(t, ref)
					}
				}
			}
		}),
	)
	for _, s := range []string{"organization/*.write", "patient/*.write"} {
		rows = append(rows, refused("JWT patient type request invalid/"+s, "patient1", func() string { return amStartQuery(14) }, 400, gpconnect.CodeBadRequest, amScope(s)))
	}
	rows = append(rows,
		amRow{name: "sending additional valid parameters in the request", run: func(t *testing.T, c *amClient) {
			c.appointments(t, c.patient(t, "patient5"), "start=ge2030-03-03&start=le2030-03-30&_sort=date").bundle(t)
		}},
		amRow{name: "CapabilityStatement profile supports the search appointment operation", run: func(t *testing.T, c *amClient) {
			amCSInteraction(t, c, "Appointment", "search-type")
		}},
		amRow{name: "valid response check caching headers exist", run: func(t *testing.T, c *amClient) {
			c.appointments(t, c.patient(t, "patient1"), amStartQuery(1)).bundle(t)
		}},
		refused("invalid response check caching headers exist", "patient4", func() string { return amStartQuery(14) }, 400, gpconnect.CodeBadRequest,
			amInteraction("urn:nhs:names:services:gpconnect:fhir:rest:search:organization-1 ")),
		withOne("response should contain valid booking orgainzation", nil, func(t *testing.T, c *amClient, bk *amBooked, appts []map[string]any) {
			for _, a := range appts {
				amCheckBookingOrg(t, a)
			}
		}),
	)
	for _, el := range []string{"servicecategory", "serviceType"} {
		rows = append(rows, amRow{name: "expecting " + el + " is populated", run: func(t *testing.T, c *amClient) {
			bk := c.mustBook(t, "patient1", amBooking{orgType: true}, amInDays(2), nil)
			r := c.read(t, amStr(bk.appt, "id"))
			r.want(t, 200, "")
			amCheckAppointment(t, c, r.res, false)
			amCheckPracticeOwned(t, r.res, bk.slot)
		}})
	}
	// Beyond the suite: the specification's rule on past ranges, with
	// prefixes (the suite's past rows send none, so they fail on the
	// prefix, not on the past).
	rows = append(rows, refused("spec: a range reaching into the past", "patient1", func() string {
		d := time.Now().In(amLondon)
		return "start=ge" + d.AddDate(0, 0, -1).Format(time.DateOnly) + "&start=le" + d.AddDate(0, 0, 7).Format(time.DateOnly)
	}, 422, gpconnect.CodeInvalidParameter))
	return rows
}()
