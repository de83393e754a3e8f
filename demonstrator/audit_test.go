package demonstrator

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"sspemu/audit"
	"sspemu/gpconnect"
)

// auditLine is one line of the audit chain as written.
type auditLine struct {
	Seq uint64 `json:"seq"`
	audit.Record
}

// newAuditedDemonstrator is a test demonstrator keeping its audit in a real
// store in a temporary directory.
func newAuditedDemonstrator(t testing.TB) (*Demonstrator, *audit.Store, string) {
	t.Helper()
	dir := t.TempDir()
	// The tests read the head as soon as a request is answered: batch.
	st, err := audit.Open(dir, audit.Options{Sync: audit.SyncBatch})
	if err != nil {
		t.Fatalf("audit.Open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	d, err := New(Options{ASID: testASID, ODS: testODS, BaseURL: testBase, Now: func() time.Time { return testNow }, Audit: st})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return d, st, dir
}

// auditLines reads every record of the audit chain in dir.
func auditLines(t testing.TB, dir string) []auditLine {
	t.Helper()
	files, err := audit.ChainFiles(dir, audit.AuditChain)
	if err != nil {
		t.Fatal(err)
	}
	var out []auditLine
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var l auditLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("audit line is not JSON: %v\n%s", err, sc.Bytes())
			}
			out = append(out, l)
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// wantChainIntact verifies the audit chain in dir and that it holds n
// records.
func wantChainIntact(t testing.TB, dir string, n int) {
	t.Helper()
	files, err := audit.ChainFiles(dir, audit.AuditChain)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(files...)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.First != nil || rep.TornTail != nil || !rep.Anchored {
		t.Fatalf("audit chain not intact: first=%v torn=%v anchored=%v", rep.First, rep.TornTail, rep.Anchored)
	}
	if rep.Records != n || rep.LastSeq != uint64(n) {
		t.Fatalf("audit chain holds %d records (last seq %d), want %d", rep.Records, rep.LastSeq, n)
	}
}

// lastRecord sends c and returns the response and the one audit record it
// added.
func lastRecord(t *testing.T, h http.Handler, dir string, c call) (int, string, auditLine) {
	t.Helper()
	before := len(auditLines(t, dir))
	w := do(t, h, c)
	lines := auditLines(t, dir)
	if len(lines) != before+1 {
		t.Fatalf("%s %s (%d) added %d audit records, want 1", c.method, c.path, w.Code, len(lines)-before)
	}
	return w.Code, w.Body.String(), lines[len(lines)-1]
}

func TestAuditOneRecordPerRequest(t *testing.T) {
	d, _, dir := newAuditedDemonstrator(t)
	h := d.Handler()
	user := gpconnect.DefaultTokenSpec(gpconnect.Interaction{}, testBase, testNow)
	const otherASID = "123456789012"

	for _, tc := range []struct {
		name     string
		c        call
		status   int
		decision gpconnect.Decision
		rule     gpconnect.Rule
		target   string // in the record's Target
		to       string
		jwt      bool   // the record names the user
		reason   string // in the record's Reason
	}{
		{"read patient", call{method: "GET", path: testRoot + "/Patient/2", interaction: gpconnect.ReadPatient},
			200, "answered", "", "/Patient/2", testASID, true, ""},
		{"find patient by NHS number", call{method: "GET", path: testRoot + "/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9690937286", interaction: gpconnect.SearchPatient},
			200, "answered", "", "nhs-number|9690937286", testASID, true, ""},
		{"unknown patient", call{method: "GET", path: testRoot + "/Patient/999", interaction: gpconnect.ReadPatient},
			404, "refused", gpconnect.CodePatientNotFound, "/Patient/999", testASID, true, "999"},
		{"unknown path", call{method: "GET", path: testRoot + "/Nothing/2", interaction: gpconnect.ReadPatient},
			404, "refused", gpconnect.CodeNoRecordFound, "/Nothing/2", testASID, true, "/Nothing/2"},
		{"outside the service root", call{method: "GET", path: "/elsewhere", interaction: gpconnect.ReadMetadata},
			404, "refused", gpconnect.CodeNoRecordFound, "/elsewhere", testASID, true, "service root"},
		{"method not allowed", call{method: "DELETE", path: testRoot + "/Patient/2", interaction: gpconnect.ReadPatient},
			405, "refused", gpconnect.CodeBadRequest, "/Patient/2", testASID, true, "DELETE"},
		{"unsupported type asked for", call{method: "GET", path: testRoot + "/Patient/2", interaction: gpconnect.ReadPatient, header: map[string]string{"Accept": "text/html"}},
			415, "refused", gpconnect.CodeBadRequest, "/Patient/2", testASID, true, "application/fhir+xml"},
		{"missing Ssp-From", call{method: "GET", path: testRoot + "/Patient/2", interaction: gpconnect.ReadPatient, header: map[string]string{"Ssp-From": ""}},
			400, "refused", gpconnect.CodeBadRequest, "/Patient/2", testASID, true, "Ssp-From"},
		{"another provider's ASID", call{method: "GET", path: testRoot + "/Patient/2", interaction: gpconnect.ReadPatient, header: map[string]string{"Ssp-To": otherASID}},
			400, "refused", gpconnect.CodeBadRequest, "/Patient/2", otherASID, true, "Ssp-To"},
		{"token not a JWT", call{method: "GET", path: testRoot + "/Patient/2", interaction: gpconnect.ReadPatient, header: map[string]string{"Authorization": "Bearer nonsense"}},
			400, "refused", gpconnect.CodeBadRequest, "/Patient/2", testASID, false, "JWT"},
		{"token for another audience", call{method: "GET", path: testRoot + "/Patient/2", interaction: gpconnect.ReadPatient, header: map[string]string{
			"Authorization": "Bearer " + gpconnect.DefaultTokenSpec(mustLookup(t, gpconnect.ReadPatient), "https://elsewhere.example/fhir", testNow).Encode()}},
			0, "refused", "", "/Patient/2", testASID, true, "aud"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			trace := uuid.NewString()
			if tc.c.header == nil {
				tc.c.header = map[string]string{}
			}
			tc.c.header["Ssp-TraceID"] = trace
			status, body, rec := lastRecord(t, h, dir, tc.c)
			if tc.status != 0 && status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if rec.Status != status || rec.Decision != tc.decision {
				t.Errorf("record status %d decision %q, want %d %q", rec.Status, rec.Decision, status, tc.decision)
			}
			if tc.decision == "refused" {
				if code := outcomeCode(t, []byte(body)); string(rec.Rule) != code || (tc.rule != "" && code != string(tc.rule)) {
					t.Errorf("record rule %q, answer code %q, want %q", rec.Rule, code, tc.rule)
				}
				if diag := diagnostics(t, []byte(body)); rec.Reason != diag {
					t.Errorf("record reason %q is not the answer's diagnostics %q", rec.Reason, diag)
				}
			} else if rec.Rule != "" {
				t.Errorf("answered request has rule %q", rec.Rule)
			}
			if !strings.Contains(rec.Reason, tc.reason) {
				t.Errorf("reason %q lacks %q", rec.Reason, tc.reason)
			}
			if rec.Target != tc.c.path || !strings.Contains(rec.Target, tc.target) {
				t.Errorf("target %q, want the request's %q (holding %q)", rec.Target, tc.c.path, tc.target)
			}
			if rec.TraceID != trace || rec.To != tc.to || rec.Method != tc.c.method || rec.Interaction != tc.c.interaction {
				t.Errorf("record trace %q to %q method %q interaction %q, want %q %q %q %q",
					rec.TraceID, rec.To, rec.Method, rec.Interaction, trace, tc.to, tc.c.method, tc.c.interaction)
			}
			wantFrom := testConsumer
			if _, sent := tc.c.header["Ssp-From"]; sent {
				wantFrom = tc.c.header["Ssp-From"]
			}
			if rec.From != wantFrom {
				t.Errorf("from %q, want %q", rec.From, wantFrom)
			}
			if !rec.Time.Equal(testNow) {
				t.Errorf("time %v, want %v", rec.Time, testNow)
			}
			switch {
			case !tc.jwt && rec.JWT != nil:
				t.Errorf("JWT %+v recorded from a token that does not decode", rec.JWT)
			case tc.jwt && (rec.JWT == nil || rec.JWT.SDSUserID != user.SDSUserID || rec.JWT.RoleProfileID != user.RoleProfileID ||
				rec.JWT.ODSCode != user.ODSCode || rec.JWT.Device != "sspemu 1.0" || rec.JWT.Issuer != user.Issuer):
				t.Errorf("JWT %+v, want the default consumer's user", rec.JWT)
			}
			if rec.ClientFingerprint != "" || rec.ClientSubject != "" {
				t.Errorf("client %q %q without TLS", rec.ClientSubject, rec.ClientFingerprint)
			}
		})
	}

	// A booking is recorded with what it did, a second one on the same slot
	// with its refusal.
	slot, loc := freeSlot(t, h, 0)
	book := call{method: "POST", path: testRoot + "/Appointment", interaction: gpconnect.CreateAppointment, body: bookingBody(slot, "Patient/3", loc)}
	status, body, rec := lastRecord(t, h, dir, book)
	if status != 201 || rec.Status != 201 || rec.Decision != "answered" || rec.Rule != "" {
		t.Fatalf("booking %d recorded as %d %q %q: %s", status, rec.Status, rec.Decision, rec.Rule, body)
	}
	id := decode(t, []byte(body))["id"].(string)
	if want := "booked Appointment/" + id + " in Slot/" + slot["id"].(string) + " for Patient/3"; rec.Reason != want {
		t.Errorf("booking reason %q, want %q", rec.Reason, want)
	}
	status, _, rec = lastRecord(t, h, dir, book)
	if status != 409 || rec.Status != 409 || rec.Decision != "refused" || rec.Rule != gpconnect.CodeDuplicateRejected {
		t.Errorf("second booking %d recorded as %d %q %q", status, rec.Status, rec.Decision, rec.Rule)
	}

	lines := auditLines(t, dir)
	for i, l := range lines {
		if l.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i, l.Seq)
		}
	}
	wantChainIntact(t, dir, len(lines))
}

// diagnostics returns the diagnostics of an OperationOutcome body.
func diagnostics(t testing.TB, b []byte) string {
	t.Helper()
	var o struct {
		Issue []struct{ Diagnostics string } `json:"issue"`
	}
	if err := json.Unmarshal(b, &o); err != nil || len(o.Issue) == 0 {
		t.Fatalf("not an OperationOutcome (%v): %s", err, b)
	}
	return o.Issue[0].Diagnostics
}

func mustLookup(t testing.TB, id string) gpconnect.Interaction {
	t.Helper()
	in, ok := gpconnect.Lookup(id)
	if !ok {
		t.Fatalf("no interaction %s", id)
	}
	return in
}

// TestAuditChanges checks the records of amend, cancel and register name
// the patient, whose ID their URLs do not hold.
func TestAuditChanges(t *testing.T) {
	d, _, dir := newAuditedDemonstrator(t)
	h := d.Handler()
	slot, loc := freeSlot(t, h, 0)
	w := do(t, h, call{method: "POST", path: testRoot + "/Appointment", interaction: gpconnect.CreateAppointment, body: bookingBody(slot, "Patient/5", loc)})
	if w.Code != 201 {
		t.Fatalf("book: %d %s", w.Code, w.Body)
	}
	id := decode(t, w.Body.Bytes())["id"].(string)
	amended := edit(t, w.Body.Bytes(), func(m map[string]any) { m["comment"] = "Amended." })
	status, body, rec := lastRecord(t, h, dir, call{method: "PUT", path: testRoot + "/Appointment/" + id, interaction: gpconnect.UpdateAppointment, body: amended})
	if status != 200 || rec.Reason != "amended Appointment/"+id+" of Patient/5" {
		t.Errorf("amend %d recorded as %q: %s", status, rec.Reason, body)
	}
	cancelled := edit(t, []byte(body), func(m map[string]any) {
		m["status"] = "cancelled"
		m["extension"] = append(m["extension"].([]any), map[string]any{"url": extCancellationReason, "valueString": "Better"})
	})
	status, body, rec = lastRecord(t, h, dir, call{method: "PUT", path: testRoot + "/Appointment/" + id, interaction: gpconnect.CancelAppointment, body: cancelled})
	if status != 200 || rec.Reason != "cancelled Appointment/"+id+" of Patient/5" {
		t.Errorf("cancel %d recorded as %q: %s", status, rec.Reason, body)
	}
	status, body, rec = lastRecord(t, h, dir, call{method: "POST", path: testRoot + "/Patient/$gpc.registerpatient", interaction: gpconnect.RegisterPatient, body: registration})
	if status != 200 || rec.Reason != "registered Patient/19 with NHS number 9690937405 as a temporary patient" {
		t.Errorf("register %d recorded as %q: %s", status, rec.Reason, body)
	}
	wantChainIntact(t, dir, len(auditLines(t, dir)))
}

const registration = `{"resourceType":"Parameters","parameter":[{"name":"registerPatient","resource":{
	"resourceType":"Patient",
	"meta":{"profile":["https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Patient-1"]},
	"identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9690937405"}],
	"name":[{"use":"official","family":"NEWMAN","given":["Nia"]}],
	"gender":"female","birthDate":"1999-04-01"}}]}`

// TestAuditFailureFailsClosed closes the store under the demonstrator: every
// request is then answered 500, and no change is applied.
func TestAuditFailureFailsClosed(t *testing.T) {
	d, st, dir := newAuditedDemonstrator(t)
	h := d.Handler()
	slot, loc := freeSlot(t, h, 0)
	w := do(t, h, call{method: "POST", path: testRoot + "/Appointment", interaction: gpconnect.CreateAppointment, body: bookingBody(slot, "Patient/2", loc)})
	if w.Code != 201 {
		t.Fatalf("book: %d %s", w.Code, w.Body)
	}
	booked := decode(t, w.Body.Bytes())
	id := booked["id"].(string)
	other, _ := freeSlot(t, h, 0)
	recorded := len(auditLines(t, dir))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	cancelled := edit(t, w.Body.Bytes(), func(m map[string]any) {
		m["status"] = "cancelled"
		m["extension"] = append(m["extension"].([]any), map[string]any{"url": extCancellationReason, "valueString": "Better"})
	})
	amended := edit(t, w.Body.Bytes(), func(m map[string]any) { m["comment"] = "Amended." })
	for _, c := range []call{
		{method: "GET", path: testRoot + "/metadata", interaction: gpconnect.ReadMetadata},
		{method: "GET", path: testRoot + "/Patient/999", interaction: gpconnect.ReadPatient},
		{method: "DELETE", path: testRoot + "/Patient/2", interaction: gpconnect.ReadPatient},
		{method: "POST", path: testRoot + "/Appointment", interaction: gpconnect.CreateAppointment, body: bookingBody(other, "Patient/2", loc)},
		{method: "PUT", path: testRoot + "/Appointment/" + id, interaction: gpconnect.UpdateAppointment, body: amended},
		{method: "PUT", path: testRoot + "/Appointment/" + id, interaction: gpconnect.CancelAppointment, body: cancelled},
		{method: "POST", path: testRoot + "/Patient/$gpc.registerpatient", interaction: gpconnect.RegisterPatient, body: registration},
	} {
		w := do(t, h, c)
		if w.Code != 500 || outcomeCode(t, w.Body.Bytes()) != gpconnect.CodeInternalServerError || !strings.Contains(w.Body.String(), "audit") {
			t.Errorf("%s %s with the audit closed: %d %s, want 500 INTERNAL_SERVER_ERROR", c.method, c.path, w.Code, w.Body)
		}
		if w.Header().Get("Location") != "" || w.Header().Get("ETag") != "" {
			t.Errorf("%s %s: a refused change sent Location %q ETag %q", c.method, c.path, w.Header().Get("Location"), w.Header().Get("ETag"))
		}
	}

	ms := state(t, d, "")
	if sl := ms.slot(other["id"].(string)); !sl.Free || sl.Version != 1 {
		t.Errorf("slot %s free=%v version %d after a refused booking, want free at version 1", sl.ID, sl.Free, sl.Version)
	}
	if len(ms.appts) != len(ms.apptOrder) || ms.nextAppt != len(ms.appts) || len(ms.appts) != 7 {
		t.Errorf("%d appointments, order %d, next %d after a refused booking, want 7", len(ms.appts), len(ms.apptOrder), ms.nextAppt)
	}
	a := ms.appts[id]
	if a.Version != 1 || a.Body.Status != "booked" || a.Body.Comment != booked["comment"] {
		t.Errorf("appointment %s changed by a refused amend or cancel: version %d status %q comment %q", id, a.Version, a.Body.Status, a.Body.Comment)
	}
	if sl := ms.slot(slot["id"].(string)); sl.Free {
		t.Errorf("slot %s freed by a refused cancel", sl.ID)
	}
	if _, ok := ms.patientByNHS("9690937405"); ok || ms.nextPatient != 18 {
		t.Errorf("patient registered (next %d) with the audit closed", ms.nextPatient)
	}
	if n := len(auditLines(t, dir)); n != recorded {
		t.Errorf("%d records after the store closed, want %d", n, recorded)
	}
	wantChainIntact(t, dir, recorded)
}

// TestAuditClientCertificate checks the record names the client
// certificate of a real TLS connection.
func TestAuditClientCertificate(t *testing.T) {
	p := newTestPKI(t)
	d, _, dir := newAuditedDemonstrator(t)
	srv := startTLS(t, p, d.Handler(), "ssp.sspemu.localhost")
	ssp := p.leaf("ssp.sspemu.localhost", true)
	resp, err := sendOver(t, p.client(&ssp), srv, call{method: "GET", path: testRoot + "/Patient/1", interaction: gpconnect.ReadPatient})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	lines := auditLines(t, dir)
	if resp.StatusCode != 200 || len(lines) != 1 {
		t.Fatalf("status %d, %d records", resp.StatusCode, len(lines))
	}
	sum := sha256.Sum256(ssp.Certificate[0])
	if rec := lines[0]; rec.ClientFingerprint != hex.EncodeToString(sum[:]) || rec.ClientSubject != "CN=ssp.sspemu.localhost" {
		t.Errorf("client %q %q, want CN=ssp.sspemu.localhost %x", rec.ClientSubject, rec.ClientFingerprint, sum)
	}
	if rec := lines[0]; rec.Target != testRoot+"/Patient/1" {
		t.Errorf("target %q", rec.Target)
	}
}

// TestAuditConcurrentBookings books one slot from many goroutines: every
// request has its record, exactly one says it booked, and the chain holds.
func TestAuditConcurrentBookings(t *testing.T) {
	d, _, dir := newAuditedDemonstrator(t)
	h := d.Handler()
	slot, loc := freeSlot(t, h, 0)
	body := bookingBody(slot, "Patient/4", loc)
	const n = 16
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := do(t, h, call{method: "POST", path: testRoot + "/Appointment", interaction: gpconnect.CreateAppointment, body: body})
			if w.Code != 201 && w.Code != 409 {
				t.Errorf("booking: %d %s", w.Code, w.Body)
			}
		}()
	}
	wg.Wait()
	lines := auditLines(t, dir)
	if len(lines) != n+1 {
		t.Fatalf("%d records, want %d", len(lines), n+1)
	}
	booked, refused := 0, 0
	for _, l := range lines[1:] {
		switch {
		case l.Status == 201 && l.Decision == "answered":
			booked++
		case l.Status == 409 && l.Rule == gpconnect.CodeDuplicateRejected:
			refused++
		}
	}
	if booked != 1 || refused != n-1 {
		t.Errorf("%d booked and %d refused records, want 1 and %d", booked, refused, n-1)
	}
	wantChainIntact(t, dir, n+1)
}

// panicBody is a request body whose reader panics, standing in for a bug
// met while answering.
type panicBody struct{}

func (panicBody) Read([]byte) (int, error) { panic("boom") }
func (panicBody) Close() error             { return nil }

// TestAuditPanic checks a request that panics is answered 500 and still
// gets its one record.
func TestAuditPanic(t *testing.T) {
	d, _, dir := newAuditedDemonstrator(t)
	c := call{method: "POST", path: testRoot + "/Appointment", interaction: gpconnect.CreateAppointment, body: "{}"}
	r := c.request(t)
	r.Body = panicBody{}
	w := httptest.NewRecorder()
	d.Handler().ServeHTTP(w, r)
	if w.Code != 500 || outcomeCode(t, w.Body.Bytes()) != gpconnect.CodeInternalServerError {
		t.Fatalf("panic answered %d %s", w.Code, w.Body)
	}
	lines := auditLines(t, dir)
	if len(lines) != 1 || lines[0].Status != 500 || lines[0].Decision != "refused" ||
		lines[0].Rule != gpconnect.CodeInternalServerError || !strings.Contains(lines[0].Reason, "boom") {
		t.Fatalf("records %+v, want one refusal naming the panic", lines)
	}
	wantChainIntact(t, dir, 1)
}

// failingAuditor refuses the records of changes (every method but GET)
// while failing is set, and keeps the records it accepts.
type failingAuditor struct {
	mu      sync.Mutex
	failing bool
	recs    []*audit.Record
}

func (f *failingAuditor) Append(_ context.Context, r *audit.Record) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing && r.Method != "GET" {
		return 0, errors.New("disk full")
	}
	f.recs = append(f.recs, r)
	return uint64(len(f.recs)), nil
}

func (f *failingAuditor) fail(on bool) {
	f.mu.Lock()
	f.failing = on
	f.mu.Unlock()
}

// TestRefusedAuditWriteChangesNothing injects an audit writer that refuses
// the records of changes: at each practice, a booking, an amendment, a
// cancellation and a registration are answered 500 and leave the store
// exactly as it was, IDs included; reads go on; once the audit writes
// again, the next booking takes the next ID.
func TestRefusedAuditWriteChangesNothing(t *testing.T) {
	fa := &failingAuditor{}
	d := newTwoPractices(t, Options{Audit: fa})
	h := d.Handler()
	for _, p := range []testPractice{practiceA, practiceB} {
		t.Run(p.ods, func(t *testing.T) {
			slot, loc := freeSlotAt(t, h, p, 0)
			w := do(t, h, p.call("POST", "/Appointment", gpconnect.CreateAppointment, bookingBody(slot, "Patient/1", loc)))
			if w.Code != 201 {
				t.Fatalf("book: %d %s", w.Code, w.Body)
			}
			id := decode(t, w.Body.Bytes())["id"].(string)
			amended := edit(t, w.Body.Bytes(), func(m map[string]any) { m["comment"] = "Amended." })
			cancelled := edit(t, w.Body.Bytes(), func(m map[string]any) {
				m["status"] = "cancelled"
				m["extension"] = append(m["extension"].([]any), map[string]any{"url": extCancellationReason, "valueString": "Better"})
			})
			other, otherLoc := freeSlotAt(t, h, p, 0)
			before := state(t, d, p.ods)
			fa.fail(true)
			for _, c := range []call{
				p.call("POST", "/Appointment", gpconnect.CreateAppointment, bookingBody(other, "Patient/2", otherLoc)),
				p.call("PUT", "/Appointment/"+id, gpconnect.UpdateAppointment, amended),
				p.call("PUT", "/Appointment/"+id, gpconnect.CancelAppointment, cancelled),
				p.call("POST", "/Patient/$gpc.registerpatient", gpconnect.RegisterPatient, registration),
			} {
				w := do(t, h, c)
				if w.Code != 500 || outcomeCode(t, w.Body.Bytes()) != gpconnect.CodeInternalServerError || !strings.Contains(w.Body.String(), "disk full") {
					t.Errorf("%s %s with the audit refusing: %d %s", c.method, c.path, w.Code, w.Body)
				}
				if w.Header().Get("Location") != "" || w.Header().Get("ETag") != "" {
					t.Errorf("%s %s: a refused change sent Location %q ETag %q", c.method, c.path, w.Header().Get("Location"), w.Header().Get("ETag"))
				}
			}
			if w := do(t, h, p.call("GET", "/Appointment/"+id, gpconnect.ReadAppointment, "")); w.Code != 200 || w.Header().Get("ETag") != `W/"1"` {
				t.Errorf("read with the audit refusing changes: %d ETag %q", w.Code, w.Header().Get("ETag"))
			}
			if after := state(t, d, p.ods); !reflect.DeepEqual(before, after) {
				t.Errorf("refused audit writes changed the store")
			}
			fa.fail(false)
			w = do(t, h, p.call("POST", "/Appointment", gpconnect.CreateAppointment, bookingBody(other, "Patient/2", otherLoc)))
			if w.Code != 201 {
				t.Fatalf("book with the audit back: %d %s", w.Code, w.Body)
			}
			if got, want := decode(t, w.Body.Bytes())["id"], strconv.Itoa(number(id)+1); got != want {
				t.Errorf("the booking after the refused ones is Appointment/%v, want %s", got, want)
			}
		})
	}
	for _, r := range fa.recs {
		if r.Method != "GET" && r.Status == 500 {
			t.Errorf("a refused change has a record: %+v", r)
		}
	}
}
