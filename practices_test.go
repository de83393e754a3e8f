package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/viper"

	"sspemu/demonstrator"
	"sspemu/demonstrator/demotest"
	"sspemu/fhir"
	"sspemu/fhir/fhirtest"
	"sspemu/gpconnect"
)

// TestCheckConfigNamesBadPractices runs check-config over configurations
// with one defect each in the practices: every problem names the practice.
func TestCheckConfigNamesBadPractices(t *testing.T) {
	const two = `demonstrator:
  practices:
    - {ods: A20047, asid: "918999198993", name: A}
`
	for _, tc := range []struct {
		name, config string
		want         []string
	}{
		{"ASID of two digits (the earlier form)", "demonstrator:\n  asid: \"12\"\n",
			[]string{`demonstrator practice 1 (A20047): asid "12" must be exactly 12 digits`, `demonstrator practice 1 (A20047): no system with asid "12" in the registry`}},
		{"ODS twice", two + `    - {ods: A20047, asid: "918999199177", name: B}` + "\n",
			[]string{"demonstrator practice 2 (A20047): ods A20047 is already the ODS code of demonstrator practice 1"}},
		{"ASID twice", two + `    - {ods: B82617, asid: "918999198993", name: B}` + "\n",
			[]string{"demonstrator practice 2 (B82617): asid 918999198993 is already the ASID of demonstrator practice 1"}},
		{"no registry entry", two + `    - {ods: C12345, asid: "918999199999", name: C}` + "\n",
			[]string{`demonstrator practice 2 (C12345): no system with asid "918999199999" in the registry`}},
		{"registry ODS differs", two + `    - {ods: C12345, asid: "918999199177", name: C}` + "\n",
			[]string{`demonstrator practice 2 (C12345): the registry gives asid 918999199177 the ODS code "B82617", not C12345`,
				"demonstrator practice 2 (C12345): registry endpoint of asid 918999199177: \"https://localhost:9443/B82617/STU3/1/gpconnect\" is not the practice's service root: its path must be /C12345/STU3/1/gpconnect"}},
		{"listener on another port", "demonstrator:\n  listen: localhost:9444\n",
			[]string{`demonstrator practice 1 (A20047): registry endpoint of asid 918999198993: "https://localhost:9443/A20047/STU3/1/gpconnect" names port 9443, but demonstrator.listen is on port 9444`,
				`demonstrator practice 2 (B82617): registry endpoint of asid 918999199177: "https://localhost:9443/B82617/STU3/1/gpconnect" names port 9443`}},
		{"both forms", "demonstrator:\n  asid: \"918999198993\"\n  practices:\n    - {ods: A20047, asid: \"918999198993\", name: A}\n",
			[]string{"set either practices or the earlier asid + ods, not both"}},
		{"bad seed", two + `    - ods: B82617
      asid: "918999199177"
      name: B
      seed:
        practitioners: [{sds_user_id: G1, family: ONE}]
        locations: [{name: Site}]
        schedules: [{practitioner: 1, location: 2, minutes: 15, service_type: GP}]
        patients: [{nhs_number: "9690937287", family: X, gender: male, birth_date: "1980-01-01"}, {nhs_number: "9690937286", family: Y, gender: male, birth_date: "1980-01-01"}]
`, []string{"demonstrator practice 2 (B82617): seed: schedule 1: location 2 is not one of the 1 locations",
			`demonstrator practice 2 (B82617): seed: patient 1: NHS number "9690937287" is not 10 digits`,
			"demonstrator practice 2 (B82617): seed: patient 2: NHS number 9690937286 is already registered at demonstrator practice 1"}},
		{"mistyped seed key", two + `    - {ods: B82617, asid: "918999199177", name: B, seed: {practitioner: []}}` + "\n",
			[]string{"practitioner"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			file := writeFile(t, "c.yaml", tc.config)
			var out bytes.Buffer
			root := newRootCmd(&out, &out)
			root.SetArgs([]string{"check-config", "--config", file})
			if err := root.Execute(); !errors.Is(err, errReported) {
				t.Fatalf("check-config returned %v, want problems\n%s", err, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("check-config does not say %q:\n%s", w, out.String())
				}
			}
			// serve refuses what check-config refuses, before any listener.
			if cfg, err := loadConfig(viper.New(), file, nil); err == nil {
				if err := cfg.validate(); err == nil {
					t.Error("check-config refused a configuration that serve would start with")
				}
			}
		})
	}
}

// TestCheckConfigEarlierForm checks demonstrator.asid + demonstrator.ods
// alone still configure one practice that the default registry serves.
func TestCheckConfigEarlierForm(t *testing.T) {
	t.Chdir(t.TempDir())
	file := writeFile(t, "c.yaml", "demonstrator:\n  asid: \"918999198993\"\n  ods: A20047\n")
	var out bytes.Buffer
	root := newRootCmd(&out, &out)
	root.SetArgs([]string{"check-config", "--config", file})
	if err := root.Execute(); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	cfg, err := loadConfig(viper.New(), file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ps := cfg.Demonstrator.PracticeList(); len(ps) != 1 || ps[0].ODS != "A20047" || ps[0].ASID != "918999198993" || ps[0].Seed != nil {
		t.Errorf("the earlier form gives %+v", ps)
	}
	// From the environment too; with practices in the file, refused.
	t.Setenv("SSPEMU_DEMONSTRATOR_ODS", "A20047")
	cfg, err = loadConfig(viper.New(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ps := cfg.Demonstrator.PracticeList(); len(ps) != 1 || ps[0].ASID != "918999198993" {
		t.Errorf("SSPEMU_DEMONSTRATOR_ODS gives %+v", ps)
	}
	file = writeFile(t, "p.yaml", "demonstrator:\n  practices:\n    - {ods: A20047, asid: \"918999198993\", name: A}\n")
	if _, err := loadConfig(viper.New(), file, nil); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("practices in the file and SSPEMU_DEMONSTRATOR_ODS: %v", err)
	}
}

// TestEmbeddedPractices checks the embedded config.yaml: at least two
// practices, each registered with its service root and an agreement with
// the default consumer, and NHS numbers that no two practices share.
func TestEmbeddedPractices(t *testing.T) {
	cfg, err := loadConfig(viper.New(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ps := cfg.Demonstrator.PracticeList()
	if len(ps) < 2 || ps[0].ODS != "A20047" || ps[0].ASID != "918999198993" || ps[0].Seed != nil {
		t.Fatalf("embedded practices %+v: want A20047 (918999198993, the built-in seed) first and another", ps)
	}
	table, err := cfg.Registry.Build()
	if err != nil {
		t.Fatal(err)
	}
	in, _ := gpconnect.Lookup(gpconnect.CreateAppointment)
	for _, p := range ps {
		sys, ok := table.System(p.ASID)
		if !ok || sys.Endpoint != "https://localhost:9443"+demonstrator.ServiceRootPath(p.ODS) {
			t.Errorf("practice %s: registry %+v", p.ODS, sys)
		}
		allowed := false
		for _, a := range table.Agreements() {
			if a.From == "200000000359" && a.To == p.ASID {
				for _, id := range a.Interactions {
					allowed = allowed || id == in.ID
				}
			}
		}
		if !allowed {
			t.Errorf("practice %s: no agreement lets the default consumer book", p.ODS)
		}
	}
}

// practiceClient is the default consumer calling the practices through a
// running stack's SSP over mutual TLS.
type practiceClient struct {
	t      *testing.T
	http   *http.Client
	ssp    string // host:port
	xsd    *xmlDocs
	format string // "json" or "xml"
}

// xmlDocs gathers XML answers to validate against the STU3 schema when
// the test ends.
type xmlDocs struct {
	mu   sync.Mutex
	docs [][]byte
}

func (x *xmlDocs) add(b []byte) {
	x.mu.Lock()
	x.docs = append(x.docs, bytes.Clone(b))
	x.mu.Unlock()
}

// call sends one GP Connect request to the practice at root through the
// SSP, its body (JSON) sent and its answer read in the client's format,
// and returns the status, headers and the answer as JSON.
func (c *practiceClient) call(asid, root, method, rel, interaction, body string, extra map[string]string) (int, http.Header, map[string]any) {
	c.t.Helper()
	in, ok := gpconnect.Lookup(interaction)
	if !ok {
		c.t.Fatalf("no interaction %s", interaction)
	}
	var rd io.Reader
	mime := gpconnect.MIMEJSON
	if c.format == "xml" {
		mime = gpconnect.MIMEXML
	}
	if body != "" {
		b := []byte(body)
		if c.format == "xml" {
			var err error
			if b, err = fhir.JSONToXML(b); err != nil {
				c.t.Fatalf("body to XML: %v", err)
			}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "https://"+c.ssp+"/"+root+rel, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Ssp-TraceID", uuid.NewString())
	req.Header.Set("Ssp-From", "200000000359")
	req.Header.Set("Ssp-To", asid)
	req.Header.Set("Ssp-InteractionID", in.ID)
	req.Header.Set("Authorization", "Bearer "+gpconnect.DefaultTokenSpec(in, root, time.Now()).Encode())
	req.Header.Set("Accept", mime)
	if body != "" {
		req.Header.Set("Content-Type", mime)
	}
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, rel, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if len(b) == 0 {
		return resp.StatusCode, resp.Header, nil
	}
	if ct := resp.Header.Get("Content-Type"); ct != mime+";charset=utf-8" {
		c.t.Errorf("%s %s: Content-Type %q, want %s: %s", method, rel, ct, mime, b)
	}
	if c.format == "xml" {
		c.xsd.add(b)
		if b, err = fhir.XMLToJSON(b); err != nil {
			c.t.Fatalf("%s %s: the XML answer does not read: %v", method, rel, err)
		}
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("%s %s: %v\n%s", method, rel, err, b)
	}
	return resp.StatusCode, resp.Header, m
}

// TestJourneyAtEachPractice runs `serve` with the embedded configuration
// (listeners moved to free ports) and, as the default consumer through the
// real SSP over mutual TLS, at each practice and in JSON and in XML: reads
// the capability statement, finds its patient (and not the other
// practice's), searches free slots, books, reads, amends and cancels, and
// lists the patient's appointments. Every XML answer is checked against the
// official STU3 schema.
func TestJourneyAtEachPractice(t *testing.T) {
	state := t.TempDir()
	demoPort := freeLoopbackPort(t)
	cfg, err := loadConfig(viper.New(), writeCrashConfig(t, state, demoPort, "batch"), nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := start(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.shutdown(context.Background()) })
	client := consumerClient(t, cfg.PKIDir())
	xsd := &xmlDocs{}

	practices := cfg.Demonstrator.PracticeList()
	firstNHS := map[string]string{"A20047": "9690937286", "B82617": "9690937413"}
	for i, p := range practices {
		other := practices[(i+1)%len(practices)]
		root := "https://localhost:" + strconv.Itoa(demoPort) + demonstrator.ServiceRootPath(p.ODS)
		for _, format := range []string{"json", "xml"} {
			t.Run(p.ODS+" "+format, func(t *testing.T) {
				c := &practiceClient{t: t, http: client, ssp: st.addrs["ssp"], xsd: xsd, format: format}
				call := func(method, rel, interaction, body string, extra map[string]string) (int, http.Header, map[string]any) {
					return c.call(p.ASID, root, method, rel, interaction, body, extra)
				}
				status, _, cs := call("GET", "/metadata", gpconnect.ReadMetadata, "", nil)
				if status != 200 || cs["resourceType"] != "CapabilityStatement" || !strings.Contains(mustMarshal(t, cs["format"]), gpconnect.MIMEXML) {
					t.Fatalf("metadata: %d %v", status, cs)
				}
				nhs := firstNHS[p.ODS]
				status, _, found := call("GET", "/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|"+nhs, gpconnect.SearchPatient, "", nil)
				if status != 200 || len(entryResources(found)) != 1 {
					t.Fatalf("find patient %s: %d %v", nhs, status, found)
				}
				patientID := entryResources(found)[0]["id"].(string)
				if _, _, none := call("GET", "/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|"+firstNHS[other.ODS], gpconnect.SearchPatient, "", nil); len(entryResources(none)) != 0 {
					t.Errorf("%s's patient found at %s: %v", other.ODS, p.ODS, none)
				}

				from := time.Now()
				for from.Weekday() == time.Saturday || from.Weekday() == time.Sunday {
					from = from.AddDate(0, 0, 1)
				}
				q := "/Slot?start=ge" + from.Format(time.DateOnly) + "&end=le" + from.AddDate(0, 0, 6).Format(time.DateOnly) +
					"&status=free&_include=Slot:schedule&_include:recurse=Schedule:actor:Location"
				status, _, slots := call("GET", q, gpconnect.SearchSlot, "", nil)
				if status != 200 {
					t.Fatalf("slot search: %d %v", status, slots)
				}
				slot, loc := firstFreeSlot(t, entryResources(slots))

				book := demotest.JSON(demotest.Booking(slot, "Patient/"+patientID, loc, time.Now()))
				status, h, appt := call("POST", "/Appointment", gpconnect.CreateAppointment, book, nil)
				if status != 201 || h.Get("ETag") != `W/"1"` || !strings.HasPrefix(h.Get("Location"), root+"/Appointment/") {
					t.Fatalf("book: %d ETag %q Location %q %v", status, h.Get("ETag"), h.Get("Location"), appt)
				}
				id := appt["id"].(string)
				if status, _, again := call("POST", "/Appointment", gpconnect.CreateAppointment, book, nil); status != 409 || !strings.Contains(mustMarshal(t, again), gpconnect.CodeDuplicateRejected) {
					t.Errorf("second booking: %d %v", status, again)
				}
				status, h, read := call("GET", "/Appointment/"+id, gpconnect.ReadAppointment, "", nil)
				if status != 200 || h.Get("ETag") != `W/"1"` {
					t.Fatalf("read: %d %q", status, h.Get("ETag"))
				}
				read["comment"] = "Amended through the SSP in " + format + "."
				status, h, amended := call("PUT", "/Appointment/"+id, gpconnect.UpdateAppointment, mustMarshal(t, read), map[string]string{"If-Match": `W/"1"`})
				if status != 200 || h.Get("ETag") != `W/"2"` || amended["comment"] != read["comment"] {
					t.Fatalf("amend: %d %q %v", status, h.Get("ETag"), amended)
				}
				amended["status"] = "cancelled"
				amended["extension"] = append(amended["extension"].([]any), map[string]any{
					"url": "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-AppointmentCancellationReason-1", "valueString": "Journey done"})
				status, h, cancelled := call("PUT", "/Appointment/"+id, gpconnect.CancelAppointment, mustMarshal(t, amended), map[string]string{"If-Match": `W/"2"`})
				if status != 200 || h.Get("ETag") != `W/"3"` || cancelled["status"] != "cancelled" {
					t.Fatalf("cancel: %d %q %v", status, h.Get("ETag"), cancelled)
				}
				status, _, list := call("GET", "/Patient/"+patientID+"/Appointment?start=ge"+from.Format(time.DateOnly)+"&start=le"+from.AddDate(0, 0, 7).Format(time.DateOnly),
					gpconnect.SearchPatientAppts, "", nil)
				if status != 200 || !strings.Contains(mustMarshal(t, list), `"id":"`+id+`"`) {
					t.Errorf("the patient's appointments lack %s: %d %v", id, status, list)
				}
			})
		}
	}
	if len(xsd.docs) < 10 {
		t.Fatalf("only %d XML answers to validate", len(xsd.docs))
	}
	var wg sync.WaitGroup
	for _, doc := range xsd.docs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fhirtest.ValidateXML(t, doc)
		}()
	}
	wg.Wait()
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// entryResources lists the resources of a Bundle.
func entryResources(bundle map[string]any) []map[string]any {
	var out []map[string]any
	es, _ := bundle["entry"].([]any)
	for _, e := range es {
		out = append(out, e.(map[string]any)["resource"].(map[string]any))
	}
	return out
}

// firstFreeSlot picks the first Slot of a slot search and its schedule's
// location.
func firstFreeSlot(t *testing.T, res []map[string]any) (map[string]any, string) {
	t.Helper()
	for _, s := range res {
		if s["resourceType"] != "Slot" {
			continue
		}
		ref := s["schedule"].(map[string]any)["reference"].(string)
		for _, sc := range res {
			if sc["resourceType"] == "Schedule" && "Schedule/"+sc["id"].(string) == ref {
				for _, a := range sc["actor"].([]any) {
					if r := a.(map[string]any)["reference"].(string); strings.HasPrefix(r, "Location/") {
						return s, r
					}
				}
			}
		}
	}
	t.Fatal("no free slot with a located schedule in the next week")
	return nil, ""
}
