package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"sspemu/certs"
	"sspemu/demonstrator"
	"sspemu/demonstrator/demotest"
	"sspemu/gpconnect"
)

// startDemonstrator runs the built-in provider behind real mutual TLS that
// accepts only the SSP's client certificate, as serve does.
func startDemonstrator(t *testing.T) (root string) {
	t.Helper()
	cert, pool := providerPKI(t)
	var d *demonstrator.Demonstrator
	var err error
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { d.Handler().ServeHTTP(w, r) }))
	srv.TLS = demonstrator.ServerTLSConfig(cert, pool, certs.SSPClientFQDN)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	root = "https://localhost:" + srv.URL[strings.LastIndex(srv.URL, ":")+1:] + "/A20047/STU3/1/gpconnect"
	if d, err = demonstrator.New(demonstrator.Options{ASID: providerASID, ODS: "A20047", BaseURL: root}); err != nil {
		t.Fatal(err)
	}
	return root
}

type consumer struct {
	t      *testing.T
	client *http.Client
	ssp    string
	root   string
}

// call sends one GP Connect request through the SSP and decodes the JSON answer.
func (c *consumer) call(method, path, interaction, body string, extra map[string]string) (*http.Response, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.ssp+"/"+c.root+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header = validHeaders(mustLookup(c.t, interaction), c.root)
	if body != "" {
		req.Header.Set("Content-Type", gpconnect.MIMEJSON)
	}
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	raw := readBody(c.t, resp)
	var m map[string]any
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			c.t.Fatalf("%s %s: not JSON (%d): %s", method, path, resp.StatusCode, raw)
		}
	}
	return resp, m
}

func slotQuery(now time.Time) string {
	return fmt.Sprintf("/Slot?start=ge%s&end=le%s&status=free&_include=Slot:schedule&_include:recurse=Schedule:actor:Location",
		now.Format("2006-01-02"), now.AddDate(0, 0, 13).Format("2006-01-02"))
}

// TestJourneyThroughSSP books, reads, amends and cancels an appointment at
// the built-in practice through the SSP, both legs over mutual TLS.
func TestJourneyThroughSSP(t *testing.T) {
	root := startDemonstrator(t)
	s := startSSP(t, testConfig(), registry(root))
	c := &consumer{t: t, client: consumerClient(t), ssp: s.base, root: root}

	resp, bundle := c.call("GET", slotQuery(time.Now()), gpconnect.SearchSlot, "", nil)
	slots := demotest.Resources(bundle, "Slot")
	if resp.StatusCode != 200 || len(slots) == 0 {
		t.Fatalf("slot search: %d, %d slots", resp.StatusCode, len(slots))
	}
	slot := slots[0]
	book := demotest.JSON(demotest.Booking(slot, "Patient/2", demotest.SlotLocation(bundle, slot), time.Now()))
	resp, appt := c.call("POST", "/Appointment", gpconnect.CreateAppointment, book, nil)
	if resp.StatusCode != 201 || resp.Header.Get("ETag") != `W/"1"` || !strings.HasPrefix(resp.Header.Get("Location"), root+"/Appointment/") {
		t.Fatalf("book: %d %v %v", resp.StatusCode, resp.Header, appt)
	}
	id := appt["id"].(string)
	resp, _ = c.call("POST", "/Appointment", gpconnect.CreateAppointment, book, nil)
	if resp.StatusCode != 409 {
		t.Errorf("booking a taken slot: %d, want 409", resp.StatusCode)
	}

	resp, appt = c.call("GET", "/Appointment/"+id, gpconnect.ReadAppointment, "", nil)
	if resp.StatusCode != 200 || appt["status"] != "booked" {
		t.Fatalf("read: %d %v", resp.StatusCode, appt)
	}
	appt["comment"] = "Amended through the SSP."
	amended, _ := json.Marshal(appt)
	resp, appt = c.call("PUT", "/Appointment/"+id, gpconnect.UpdateAppointment, string(amended), map[string]string{"If-Match": `W/"1"`})
	if resp.StatusCode != 200 || appt["comment"] != "Amended through the SSP." || resp.Header.Get("ETag") != `W/"2"` {
		t.Fatalf("amend: %d %v", resp.StatusCode, appt)
	}
	resp, _ = c.call("PUT", "/Appointment/"+id, gpconnect.UpdateAppointment, string(amended), map[string]string{"If-Match": `W/"1"`})
	if resp.StatusCode != 409 {
		t.Errorf("stale If-Match: %d, want 409", resp.StatusCode)
	}

	appt["status"] = "cancelled"
	appt["extension"] = append(appt["extension"].([]any), map[string]any{
		"url":         "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-AppointmentCancellationReason-1",
		"valueString": "Patient recovered"})
	cancelled, _ := json.Marshal(appt)
	resp, appt = c.call("PUT", "/Appointment/"+id, gpconnect.CancelAppointment, string(cancelled), map[string]string{"If-Match": `W/"2"`})
	if resp.StatusCode != 200 || appt["status"] != "cancelled" {
		t.Fatalf("cancel: %d %v", resp.StatusCode, appt)
	}
	_, bundle = c.call("GET", slotQuery(time.Now()), gpconnect.SearchSlot, "", nil)
	free := false
	for _, sl := range demotest.Resources(bundle, "Slot") {
		free = free || sl["id"] == slot["id"]
	}
	if !free {
		t.Error("the slot is not free again after the cancellation")
	}
}

// TestBookingRaceThroughSSP books one slot twenty times at once through the
// SSP: exactly one 201, nineteen 409.
func TestBookingRaceThroughSSP(t *testing.T) {
	root := startDemonstrator(t)
	s := startSSP(t, testConfig(), registry(root))
	c := &consumer{t: t, client: consumerClient(t), ssp: s.base, root: root}
	_, bundle := c.call("GET", slotQuery(time.Now()), gpconnect.SearchSlot, "", nil)
	slots := demotest.Resources(bundle, "Slot")
	if len(slots) == 0 {
		t.Fatal("no free slots")
	}
	book := demotest.JSON(demotest.Booking(slots[0], "Patient/4", demotest.SlotLocation(bundle, slots[0]), time.Now()))
	var wg sync.WaitGroup
	codes := make(chan int, 20)
	for range 20 {
		wg.Go(func() {
			resp, oo := c.call("POST", "/Appointment", gpconnect.CreateAppointment, book, nil)
			if resp.StatusCode != 201 && resp.StatusCode != 409 {
				t.Logf("unexpected answer %d: %v", resp.StatusCode, oo)
			}
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for code := range codes {
		count[code]++
	}
	if count[201] != 1 || count[409] != 19 {
		t.Fatalf("answers %v, want one 201 and nineteen 409", count)
	}
}
