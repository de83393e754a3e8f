package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"

	"sspemu/audit"
	"sspemu/fhir"
	"sspemu/gpconnect"
)

// registration is a $gpc.registerpatient body as the Register a patient
// page shows it, with a temporary address and phone.
const registration = `{"resourceType":"Parameters","parameter":[{"name":"registerPatient","resource":{
 "resourceType":"Patient",
 "meta":{"profile":["https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Patient-1"]},
 "identifier":[{"extension":[{"url":"https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-NHSNumberVerificationStatus-1",
   "valueCodeableConcept":{"coding":[{"system":"https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-NHSNumberVerificationStatus-1","code":"01"}]}}],
   "system":"https://fhir.nhs.uk/Id/nhs-number","value":"9476719931"}],
 "name":[{"use":"official","family":"Jackson","given":["Jane"]}],
 "gender":"female","birthDate":"1982-02-22",
 "telecom":[{"system":"phone","value":"01234 567890","use":"temp"}],
 "address":[{"use":"temp","line":["1 Road"],"postalCode":"LS1 1AA"}]}}]}`

// booking is an Appointment of Book an appointment with two slots.
const booking = `{"resourceType":"Appointment","status":"booked",
 "extension":[{"url":"https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-BookingOrganisation-1","valueReference":{"reference":"#1"}}],
 "description":"Check-up","start":"2026-03-02T10:00:00+00:00","end":"2026-03-02T10:20:00+00:00",
 "slot":[{"reference":"Slot/1"},{"reference":"Slot/2"}],"created":"2026-03-01T09:00:00+00:00",
 "participant":[{"actor":{"reference":"Patient/2"},"status":"accepted"},{"actor":{"reference":"https://p.example/fhir/Location/1/_history/1"},"status":"accepted"},{"actor":{"reference":"Practitioner/1"},"status":"accepted"}]}`

func TestSummariseBody(t *testing.T) {
	regXML, err := fhir.JSONToXML([]byte(registration))
	if err != nil {
		t.Fatal(err)
	}
	wantReg := &audit.Body{Format: "json", ResourceType: "Parameters", Parameters: []string{"registerPatient"}, Patient: &audit.BodyPatient{
		NHSNumbers: 1, NHSNumber: "9476719931", NHSNumberValid: true, NHSNumberStatus: "01", Names: 1, Official: 1, Family: true, Given: true,
		Gender: "female", BirthDate: true, Telecoms: 1, TelecomUses: []string{"phone:temp"}, Addresses: 1, AddressUses: []string{"temp"}}}
	xmlReg := *wantReg
	xmlReg.Format = "xml"
	cancel := strings.Replace(booking, `"status":"booked",`, `"status":"cancelled","extension":[{"url":"https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-AppointmentCancellationReason-1","valueString":"Patient ill"}],`, 1)
	cancel = strings.Replace(cancel, `"extension":[{"url":"https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-BookingOrganisation-1","valueReference":{"reference":"#1"}}],`, "", 1)
	wantBook := &audit.Body{Format: "json", ResourceType: "Appointment", Appointment: &audit.BodyAppointment{Status: "booked", Slots: 2, Participants: 3,
		ParticipantKinds: []string{"Patient", "Location", "Practitioner"}, Start: true, End: true, Description: true}}
	wantCancel := &audit.Body{Format: "json", ResourceType: "Appointment", Appointment: &audit.BodyAppointment{Status: "cancelled", Slots: 2, Participants: 3,
		ParticipantKinds: []string{"Patient", "Location", "Practitioner"}, Start: true, End: true, Description: true, CancellationReason: true}}
	// The defects of the Register Patient tests, each in the summary.
	noNHS := strings.Replace(registration, `"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9476719931"`, `"system":"https://fhir.nhs.uk/Id/nhs-number","value":""`, 1)
	badNHS := strings.Replace(registration, "9476719931", "9476719932", 1)
	noDOB := strings.Replace(registration, `"birthDate":"1982-02-22",`, "", 1)
	twoPhones := strings.Replace(registration, `"telecom":[`, `"telecom":[{"system":"phone","value":"0","use":"temp"},`, 1)
	dstu2 := strings.Replace(registration, `"family":"Jackson"`, `"family":["Jackson"]`, 1)
	huge := []byte(`{"resourceType":"Appointment","comment":"` + strings.Repeat("x", maxSummarised) + `"}`)
	for _, c := range []struct {
		name, method, ct, ce string
		body                 []byte
		want                 *audit.Body
	}{
		{"registration JSON", "POST", "application/fhir+json", "", []byte(registration), wantReg},
		{"registration XML", "POST", "application/fhir+xml;charset=utf-8", "", regXML, &xmlReg},
		{"registration XML without Content-Type", "POST", "", "", regXML, &xmlReg},
		{"booking", "POST", "application/fhir+json", "", []byte(booking), wantBook},
		{"cancellation", "PUT", "application/fhir+json", "", []byte(cancel), wantCancel},
		{"GET", "GET", "application/fhir+json", "", []byte(booking), nil},
		{"no body", "POST", "application/fhir+json", "", nil, nil},
		{"garbage", "POST", "application/fhir+json", "", []byte("{not json"), &audit.Body{Format: "json", Error: "not FHIR JSON"}},
		{"garbage XML", "POST", "application/fhir+xml", "", []byte("<Patient><nonsense/></Patient>"), &audit.Body{Format: "xml", Error: "not FHIR XML"}},
		{"not FHIR", "POST", "text/plain", "", []byte("hello"), &audit.Body{Error: "neither FHIR JSON nor FHIR XML"}},
		{"gzip", "POST", "application/fhir+json", "gzip", []byte(booking), &audit.Body{Format: "json", Error: "encoded (Content-Encoding): not summarised"}},
		{"huge", "POST", "application/fhir+json", "", huge, &audit.Body{Format: "json", Error: "too large to summarise"}},
		{"other resource", "POST", "application/fhir+json", "", []byte(`{"resourceType":"Bundle","type":"batch"}`), &audit.Body{Format: "json", ResourceType: "Bundle"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := summariseBody(c.method, c.ct, c.ce, c.body)
			if !reflect.DeepEqual(got, c.want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(c.want)
				t.Errorf("got  %s\nwant %s", g, w)
			}
		})
	}
	for _, c := range []struct {
		name string
		body string
		ok   func(*audit.BodyPatient) bool
	}{
		{"blank NHS number", noNHS, func(p *audit.BodyPatient) bool { return p.NHSNumbers == 1 && p.NHSNumber == "" && !p.NHSNumberValid }},
		{"invalid NHS number", badNHS, func(p *audit.BodyPatient) bool { return p.NHSNumber == "9476719932" && !p.NHSNumberValid }},
		{"no birth date", noDOB, func(p *audit.BodyPatient) bool { return !p.BirthDate && p.NHSNumberValid }},
		{"two temp phones", twoPhones, func(p *audit.BodyPatient) bool {
			return p.Telecoms == 2 && reflect.DeepEqual(p.TelecomUses, []string{"phone:temp", "phone:temp"})
		}},
		{"DSTU2 family array", dstu2, func(p *audit.BodyPatient) bool { return p.Family }},
	} {
		b := summariseBody("POST", "application/fhir+json", "", []byte(c.body))
		if b == nil || b.Patient == nil || !c.ok(b.Patient) {
			g, _ := json.Marshal(b)
			t.Errorf("%s: %s", c.name, g)
		}
	}
	// No name, address or telecom value reaches the summary.
	g, _ := json.Marshal(summariseBody("POST", "application/fhir+json", "", []byte(registration)))
	for _, private := range []string{"Jackson", "Jane", "LS1", "01234", "1 Road", "1982"} {
		if bytes.Contains(g, []byte(private)) {
			t.Errorf("the summary holds %q: %s", private, g)
		}
	}
}

func TestReferenceKind(t *testing.T) {
	for ref, want := range map[string]string{
		"Patient/1": "Patient", "Practitioner/2/_history/3": "Practitioner", "https://x/fhir/Location/1": "Location",
		"": "none", "Slot/1": "other", "#contained": "other", "/": "other",
	} {
		if got := referenceKind(ref); got != want {
			t.Errorf("referenceKind(%q) = %q, want %q", ref, got, want)
		}
	}
}

// FuzzSummariseBody feeds arbitrary bytes as JSON and XML bodies: the
// summary never panics, is bounded, and is always an encodable record
// member.
func FuzzSummariseBody(f *testing.F) {
	f.Add([]byte(registration), "application/fhir+json")
	f.Add([]byte(booking), "application/fhir+json")
	if x, err := fhir.JSONToXML([]byte(registration)); err == nil {
		f.Add(x, "application/fhir+xml")
	}
	f.Add([]byte(`{"resourceType":"Parameters","parameter":[{"name":"registerPatient","resource":{"resourceType":"Patient","name":[{"family":null,"given":[null,""]}]}}]}`), "")
	f.Add([]byte(`<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="x"/></parameter></Parameters>`), "")
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		b := summariseBody("POST", ct, "", body)
		if len(body) == 0 {
			if b != nil {
				t.Fatalf("a summary of no body: %+v", b)
			}
			return
		}
		if b == nil {
			t.Fatal("no summary of a body")
		}
		out, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) > 4096 {
			t.Fatalf("summary of %d bytes: %s", len(out), out)
		}
		if len(b.Parameters) > maxListed || b.Patient != nil && (len(b.Patient.TelecomUses) > maxListed || len(b.Patient.AddressUses) > maxListed) ||
			b.Appointment != nil && len(b.Appointment.ParticipantKinds) > maxListed {
			t.Fatalf("unbounded lists: %s", out)
		}
	})
}

// BenchmarkSummariseBody measures the summary's cost per POST or PUT (GET
// never pays it).
func BenchmarkSummariseBody(b *testing.B) {
	regXML, err := fhir.JSONToXML([]byte(registration))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name, ct string
		body     []byte
	}{
		{"registration-json", "application/fhir+json", []byte(registration)},
		{"registration-xml", "application/fhir+xml", regXML},
		{"booking-json", "application/fhir+json", []byte(booking)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.body)))
			for b.Loop() {
				if summariseBody("POST", c.ct, "", c.body) == nil {
					b.Fatal("no summary")
				}
			}
		})
	}
}

// TestRecordBodyAndVersionHeaders sends a booking and an amendment through
// the real SSP: the audit record keeps If-Match and the body's summary,
// the transaction the answer's Location and ETag; a GET has neither.
func TestRecordBodyAndVersionHeaders(t *testing.T) {
	p := startProvider(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json;charset=utf-8")
		w.Header().Set("ETag", `W/"2"`)
		if r.Method == "POST" {
			w.Header().Set("Location", "https://provider.example/fhir/Appointment/9/_history/1")
			w.WriteHeader(http.StatusCreated)
		}
		io.Copy(w, r.Body) // the body as the provider got it
	}))
	s := startSSP(t, testConfig(), registry(p.root))
	c := consumerClient(t)
	send := func(id, method, rel, body, ifMatch string) string {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, s.base+"/"+p.root+rel, rd)
		req.Header = validHeaders(mustLookup(t, id), p.root)
		if body != "" {
			req.Header.Set("Content-Type", gpconnect.MIMEJSON)
		}
		if ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := readBody(t, resp); got != body {
			t.Fatalf("%s %s: the provider got %q, want the body as sent", method, rel, got)
		}
		return req.Header.Get("Ssp-TraceID")
	}
	book := send(gpconnect.CreateAppointment, "POST", "/Appointment", booking, "")
	amend := send(gpconnect.UpdateAppointment, "PUT", "/Appointment/9", strings.Replace(booking, `"status":"booked",`, `"status":"booked","comment":"x",`, 1), `W/"1"`)
	read := send(gpconnect.ReadMetadata, "GET", "/metadata", "", "")

	if tx := waitTransaction(t, s, book); tx.Location != "https://provider.example/fhir/Appointment/9/_history/1" || tx.ETag != `W/"2"` {
		t.Errorf("booking: transaction Location %q, ETag %q", tx.Location, tx.ETag)
	}
	waitTransaction(t, s, amend)
	waitTransaction(t, s, read)
	recs := auditRecords(t, s)
	if r := recs[book]; r.V != audit.RecordVersion || r.IfMatch != nil || r.Body == nil || r.Body.Appointment == nil || r.Body.Appointment.Slots != 2 {
		t.Errorf("booking record: v %d, If-Match %v, body %+v", r.V, r.IfMatch, r.Body)
	}
	if r := recs[amend]; r.IfMatch == nil || *r.IfMatch != `W/"1"` || r.Body == nil || r.Body.Appointment == nil || !r.Body.Appointment.Comment {
		t.Errorf("amendment record: If-Match %v, body %+v", r.IfMatch, r.Body)
	}
	if r := recs[read]; r.IfMatch != nil || r.Body != nil {
		t.Errorf("read record: If-Match %v, body %+v", r.IfMatch, r.Body)
	}
}

// auditRecords maps each trace ID in the SSP's audit chain to its record.
func auditRecords(t *testing.T, s *ssp) map[string]audit.Record {
	t.Helper()
	files, err := audit.ChainFiles(s.dir, audit.AuditChain)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]audit.Record{}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			var r audit.Record
			if json.Unmarshal(line, &r) == nil {
				out[r.TraceID] = r
			}
		}
	}
	return out
}
