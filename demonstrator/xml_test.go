package demonstrator

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"sspemu/fhir"
	"sspemu/gpconnect"
)

const (
	xmlType  = "application/fhir+xml;charset=utf-8"
	jsonType = "application/fhir+json;charset=utf-8"
)

// asXML is c asking for XML and, when it has a body, sending it as XML
// (converted by the codec from the test's JSON).
func asXML(t testing.TB, c call) call {
	t.Helper()
	h := map[string]string{"Accept": "application/fhir+xml"}
	for k, v := range c.header {
		h[k] = v
	}
	if c.body != "" {
		b, err := fhir.JSONToXML([]byte(c.body))
		if err != nil {
			t.Fatalf("the test's body does not convert to XML: %v\n%s", err, c.body)
		}
		c.body = string(b)
		if _, set := c.header["Content-Type"]; !set {
			h["Content-Type"] = "application/fhir+xml"
		}
	}
	c.header = h
	return c
}

// fromXML turns an XML answer into the generic map of its JSON form.
func fromXML(t testing.TB, b []byte) map[string]any {
	t.Helper()
	j, err := fhir.XMLToJSON(b)
	if err != nil {
		t.Fatalf("the XML answer does not convert to JSON: %v\n%s", err, b)
	}
	return decode(t, j)
}

// withoutRandomID drops the top-level id of a Bundle or OperationOutcome: a
// new UUID in each answer.
func withoutRandomID(m map[string]any) map[string]any {
	if m["resourceType"] == "Bundle" || m["resourceType"] == "OperationOutcome" {
		delete(m, "id")
	}
	return m
}

// TestXMLAnswers asks every read and search, and a set of refusals, in JSON
// and in XML: the XML answer has the same status and ETag, says the same as
// the JSON one, and is valid against the official STU3 schema.
func TestXMLAnswers(t *testing.T) {
	d := newTwoPractices(t, Options{})
	h := d.Handler()
	xsd := newXMLAnswers(t)
	type ask struct {
		p                testPractice
		rel, interaction string
	}
	var asks []ask
	for _, p := range []testPractice{practiceA, practiceB} {
		asks = append(asks,
			ask{p, "/metadata", gpconnect.ReadMetadata},
			ask{p, "/Patient/1", gpconnect.ReadPatient},
			ask{p, "/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9690937286", gpconnect.SearchPatient},
			ask{p, "/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9690937413", gpconnect.SearchPatient},
			ask{p, "/Practitioner/2", gpconnect.ReadPractitioner},
			ask{p, "/Practitioner?identifier=https://fhir.nhs.uk/Id/sds-user-id|G44444446", gpconnect.SearchPractitioner},
			ask{p, "/Organization/1", gpconnect.ReadOrganization},
			ask{p, "/Organization?identifier=https://fhir.nhs.uk/Id/ods-organization-code|" + p.ods, gpconnect.SearchOrganization},
			ask{p, "/Location/1", gpconnect.ReadLocation},
			ask{p, strings.TrimPrefix(slotSearch, testRoot), gpconnect.SearchSlot},
			ask{p, "/Appointment/2", gpconnect.ReadAppointment},
			ask{p, "/Appointment/3", gpconnect.ReadAppointment},
			ask{p, "/Patient/1/Appointment?start=ge2025-01-01&start=le2025-12-31", gpconnect.SearchPatientAppts},
			// Refusals.
			ask{p, "/Patient/999", gpconnect.ReadPatient},
			ask{p, "/Patient?identifier=9690937286", gpconnect.SearchPatient},
			ask{p, "/Slot?status=free", gpconnect.SearchSlot},
			ask{p, "/Metadata", gpconnect.ReadMetadata},
		)
	}
	for _, a := range asks {
		name := a.p.ods + " " + a.rel
		t.Run(name, func(t *testing.T) {
			c := a.p.call("GET", a.rel, a.interaction, "")
			wj := do(t, h, c)
			wx := do(t, h, asXML(t, c))
			if wx.Code != wj.Code || wx.Header().Get("ETag") != wj.Header().Get("ETag") {
				t.Errorf("XML: %d ETag %q; JSON: %d ETag %q", wx.Code, wx.Header().Get("ETag"), wj.Code, wj.Header().Get("ETag"))
			}
			if ct := wx.Header().Get("Content-Type"); ct != xmlType {
				t.Errorf("Content-Type %q, want %s", ct, xmlType)
			}
			if !strings.HasPrefix(wx.Body.String(), "<") || !strings.Contains(wx.Body.String(), `xmlns="http://hl7.org/fhir"`) {
				t.Fatalf("not FHIR XML:\n%s", wx.Body)
			}
			x, j := withoutRandomID(fromXML(t, wx.Body.Bytes())), withoutRandomID(decode(t, wj.Body.Bytes()))
			if !reflect.DeepEqual(x, j) {
				t.Errorf("the XML answer says something else than the JSON one:\nXML  %v\nJSON %v", x, j)
			}
			xsd.add(name, wx.Body.Bytes())
		})
	}
}

// TestXMLNegotiation checks the order _format, Accept, Content-Type, the
// legacy types and the format of a 415.
func TestXMLNegotiation(t *testing.T) {
	dm := newTestDemonstrator(t)
	h := dm.Handler()
	xsd := newXMLAnswers(t)
	slot, loc := freeSlot(t, h, 0)
	book := bookingBody(slot, "Patient/1", loc)
	xmlBook, err := fhir.JSONToXML([]byte(book))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		query         string
		accept, ctype string // request headers; "" leaves Accept out
		body          string
		status        int
		wantType      string
	}{
		{"_format=xml", "_format=xml", "", "", "", 200, xmlType},
		{"_format STU3 XML", "_format=application/fhir%2Bxml", "", "", "", 200, xmlType},
		{"_format legacy XML", "_format=application/xml%2Bfhir", "", "", "", 200, xmlType},
		{"_format legacy XML, plus unencoded", "_format=application/xml+fhir", "", "", "", 200, xmlType},
		{"_format=json beats Accept XML", "_format=json", "application/fhir+xml", "", "", 200, jsonType},
		{"_format=xml beats Accept JSON", "_format=xml", "application/fhir+json", "", "", 200, xmlType},
		{"Accept XML", "", "application/fhir+xml", "", "", 200, xmlType},
		{"Accept XML with charset", "", "application/fhir+xml;charset=utf-8", "", "", 200, xmlType},
		{"Accept legacy XML", "", "application/xml+fhir", "", "", 200, xmlType},
		{"Accept legacy JSON", "", "application/json+fhir", "", "", 200, jsonType},
		{"Accept by q", "", "application/fhir+xml;q=0.5, application/fhir+json", "", "", 200, jsonType},
		{"Accept wildcard", "", "*/*", "", "", 200, jsonType},
		{"nothing said", "", "", "", "", 200, jsonType},
		{"Accept HTML: 415 in JSON", "", "text/html", "", "", 415, jsonType},
		{"_format HTML, Accept XML: 415 in XML", "_format=text/html", "application/fhir+xml", "", "", 415, xmlType},
		{"XML body, no Accept: XML answer", "", "", "application/fhir+xml", string(xmlBook), 201, xmlType},
		{"legacy XML body, no Accept: XML answer", "", "", "application/xml+fhir;charset=utf-8", string(xmlBook), 201, xmlType},
		{"legacy JSON body, Accept XML", "", "application/fhir+xml", "application/json+fhir", book, 201, xmlType},
		{"Accept on two lines, XML first", "", "application/fhir+xml\napplication/fhir+json", "", "", 200, xmlType},
		{"Accept on two lines, text first", "", "text/html\napplication/fhir+xml", "", "", 200, xmlType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := call{method: "GET", path: testRoot + "/metadata", interaction: gpconnect.ReadMetadata, header: map[string]string{"Accept": tc.accept}}
			if tc.body != "" {
				if err := dm.Reset(); err != nil {
					t.Fatal(err)
				}
				c = call{method: "POST", path: testRoot + "/Appointment", interaction: gpconnect.CreateAppointment, body: tc.body,
					header: map[string]string{"Accept": tc.accept, "Content-Type": tc.ctype}}
			}
			if tc.query != "" {
				c.path += "?" + tc.query
			}
			w := do(t, h, c)
			if w.Code != tc.status || w.Header().Get("Content-Type") != tc.wantType {
				t.Fatalf("%d %q, want %d %q: %s", w.Code, w.Header().Get("Content-Type"), tc.status, tc.wantType, w.Body)
			}
			if tc.wantType == xmlType {
				xsd.add(tc.name, w.Body.Bytes())
			}
		})
	}
}

// TestXMLJourney books, reads, amends and cancels at each practice with XML
// bodies and XML answers, registers a patient in XML, and checks every
// answer against the STU3 schema.
func TestXMLJourney(t *testing.T) {
	dm := newTwoPractices(t, Options{})
	h := dm.Handler()
	xsd := newXMLAnswers(t)
	for _, p := range []testPractice{practiceA, practiceB} {
		t.Run(p.ods, func(t *testing.T) {
			w := do(t, h, asXML(t, p.call("GET", strings.TrimPrefix(slotSearch, testRoot), gpconnect.SearchSlot, "")))
			if w.Code != 200 {
				t.Fatalf("slot search: %d %s", w.Code, w.Body)
			}
			xsd.add(p.ods+" slot search", w.Body.Bytes())
			slot, loc := firstSlot(t, fromXML(t, w.Body.Bytes()))

			book := asXML(t, p.call("POST", "/Appointment", gpconnect.CreateAppointment, bookingBody(slot, "Patient/2", loc)))
			w = do(t, h, book)
			if w.Code != 201 || w.Header().Get("ETag") != `W/"1"` || w.Header().Get("Content-Type") != xmlType {
				t.Fatalf("book: %d ETag %q %s", w.Code, w.Header().Get("ETag"), w.Body)
			}
			xsd.add(p.ods+" book", w.Body.Bytes())
			appt := fromXML(t, w.Body.Bytes())
			id := appt["id"].(string)
			if got, want := w.Header().Get("Location"), p.base+"/Appointment/"+id+"/_history/1"; got != want {
				t.Errorf("Location %q, want %q", got, want)
			}
			if appt["comment"] != "Free text comment." || appt["status"] != "booked" {
				t.Errorf("booked %v", appt)
			}

			again := do(t, h, book)
			if again.Code != 409 || again.Header().Get("Content-Type") != xmlType || !strings.Contains(again.Body.String(), gpconnect.CodeDuplicateRejected) {
				t.Errorf("second booking: %d %s", again.Code, again.Body)
			}
			xsd.add(p.ods+" book again", again.Body.Bytes())

			w = do(t, h, asXML(t, p.call("GET", "/Appointment/"+id, gpconnect.ReadAppointment, "")))
			xsd.add(p.ods+" read", w.Body.Bytes())
			amended := edit(t, mustJSONOf(t, fromXML(t, w.Body.Bytes())), func(m map[string]any) { m["comment"] = "Amended in XML." })
			amend := asXML(t, p.call("PUT", "/Appointment/"+id, gpconnect.UpdateAppointment, amended))
			amend.header["If-Match"] = `W/"1"`
			amend.header["Content-Type"] = "application/xml+fhir"
			w = do(t, h, amend)
			if w.Code != 200 || w.Header().Get("ETag") != `W/"2"` || fromXML(t, w.Body.Bytes())["comment"] != "Amended in XML." {
				t.Fatalf("amend: %d ETag %q %s", w.Code, w.Header().Get("ETag"), w.Body)
			}
			xsd.add(p.ods+" amend", w.Body.Bytes())

			cancelled := edit(t, mustJSONOf(t, fromXML(t, w.Body.Bytes())), func(m map[string]any) {
				m["status"] = "cancelled"
				m["extension"] = append(m["extension"].([]any), map[string]any{"url": extCancellationReason, "valueString": "Patient recovered"})
			})
			cancel := asXML(t, p.call("PUT", "/Appointment/"+id, gpconnect.CancelAppointment, cancelled))
			cancel.header["If-Match"] = `W/"2"`
			w = do(t, h, cancel)
			if w.Code != 200 || w.Header().Get("ETag") != `W/"3"` || fromXML(t, w.Body.Bytes())["status"] != "cancelled" {
				t.Fatalf("cancel: %d ETag %q %s", w.Code, w.Header().Get("ETag"), w.Body)
			}
			xsd.add(p.ods+" cancel", w.Body.Bytes())

			w = do(t, h, asXML(t, p.call("POST", "/Patient/$gpc.registerpatient", gpconnect.RegisterPatient, registration)))
			if w.Code != 200 {
				t.Fatalf("register: %d %s", w.Code, w.Body)
			}
			xsd.add(p.ods+" register", w.Body.Bytes())
			if res := fromXML(t, w.Body.Bytes()); res["total"] != nil || len(res["entry"].([]any)) != 1 {
				t.Errorf("register answered %v", res)
			}
		})
	}
}

// firstSlot finds the first Slot of a slot search's Bundle and the
// location of its schedule.
func firstSlot(t testing.TB, bundle map[string]any) (map[string]any, string) {
	t.Helper()
	var res []map[string]any
	for _, e := range bundle["entry"].([]any) {
		res = append(res, e.(map[string]any)["resource"].(map[string]any))
	}
	slots := ofType(res, "Slot")
	if len(slots) == 0 {
		t.Fatal("no free slot")
	}
	ref := slots[0]["schedule"].(map[string]any)["reference"].(string)
	for _, sc := range ofType(res, "Schedule") {
		if "Schedule/"+sc["id"].(string) == ref {
			for _, a := range sc["actor"].([]any) {
				if r := a.(map[string]any)["reference"].(string); strings.HasPrefix(r, "Location/") {
					return slots[0], r
				}
			}
		}
	}
	t.Fatalf("no location for %s", ref)
	return nil, ""
}

// TestXMLBodyRefusals sends XML bodies the practice must refuse, each with
// the code its JSON twin gets.
func TestXMLBodyRefusals(t *testing.T) {
	h := newTestDemonstrator(t).Handler()
	xsd := newXMLAnswers(t)
	slot, loc := freeSlot(t, h, 0)
	good, err := fhir.JSONToXML([]byte(bookingBody(slot, "Patient/1", loc)))
	if err != nil {
		t.Fatal(err)
	}
	patient, err := fhir.JSONToXML([]byte(`{"resourceType":"Patient","id":"1"}`))
	if err != nil {
		t.Fatal(err)
	}
	appt := testRoot + "/Appointment"
	for _, tc := range []struct {
		name, path, interaction, body string
		status                        int
		code                          string
	}{
		{"unknown element", appt, gpconnect.CreateAppointment,
			strings.Replace(string(good), "<status ", `<colour value="red"/><status `, 1), 422, gpconnect.CodeInvalidResource},
		{"unknown attribute", appt, gpconnect.CreateAppointment,
			strings.Replace(string(good), "<status ", `<status colour="red" `, 1), 422, gpconnect.CodeInvalidResource},
		{"not well-formed", appt, gpconnect.CreateAppointment, strings.TrimSuffix(string(good), "</Appointment>"), 400, gpconnect.CodeBadRequest},
		{"a DOCTYPE", appt, gpconnect.CreateAppointment, `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>` + string(good), 400, gpconnect.CodeBadRequest},
		{"JSON sent as XML", appt, gpconnect.CreateAppointment, bookingBody(slot, "Patient/1", loc), 400, gpconnect.CodeBadRequest},
		{"empty", appt, gpconnect.CreateAppointment, " ", 400, gpconnect.CodeBadRequest},
		{"another namespace", appt, gpconnect.CreateAppointment, strings.Replace(string(good), "http://hl7.org/fhir", "http://example.org/", 1), 422, gpconnect.CodeInvalidResource},
		{"a Patient to book", appt, gpconnect.CreateAppointment, string(patient), 422, gpconnect.CodeInvalidResource},
		{"a Patient to register", testRoot + "/Patient/$gpc.registerpatient", gpconnect.RegisterPatient, string(patient), 422, gpconnect.CodeInvalidResource},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, h, call{method: "POST", path: tc.path, interaction: tc.interaction, body: tc.body,
				header: map[string]string{"Content-Type": "application/fhir+xml", "Accept": "application/fhir+xml"}})
			if w.Code != tc.status || w.Header().Get("Content-Type") != xmlType {
				t.Fatalf("%d %q, want %d in XML: %s", w.Code, w.Header().Get("Content-Type"), tc.status, w.Body)
			}
			if o := fromXML(t, w.Body.Bytes()); !strings.Contains(mustString(t, o), tc.code) {
				t.Errorf("answer lacks %s: %s", tc.code, w.Body)
			}
			xsd.add(tc.name, w.Body.Bytes())
		})
	}
	if w := do(t, h, call{method: "GET", path: slotSearch, interaction: gpconnect.SearchSlot}); !strings.Contains(w.Body.String(), `"id":"`+slot["id"].(string)+`"`) {
		t.Error("a refused XML booking took the slot")
	}
}

func mustJSONOf(t testing.TB, m map[string]any) []byte {
	t.Helper()
	return mustJSON(m)
}

func mustString(t testing.TB, m map[string]any) string {
	t.Helper()
	return string(mustJSON(m))
}

// TestXMLOverHTTP sends one XML request over a real connection: the
// answer has its length and type (uncompressed: gzip is asked for by
// Accept-Encoding, which Go's client would otherwise send).
func TestXMLOverHTTP(t *testing.T) {
	srv := httptest.NewServer(newTestDemonstrator(t).Handler())
	defer srv.Close()
	c := asXML(t, call{method: "GET", path: testRoot + "/Patient/1", interaction: gpconnect.ReadPatient})
	r, err := http.NewRequest("GET", srv.URL+c.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	setHeaders(t, r, c)
	r.Header.Set("Accept-Encoding", "identity")
	resp, err := srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != xmlType || resp.ContentLength <= 0 {
		t.Errorf("%d %q length %d", resp.StatusCode, resp.Header.Get("Content-Type"), resp.ContentLength)
	}
}
