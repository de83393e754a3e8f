package main

import (
	"net/url"
	"strconv"
	"testing"
	"time"

	"sspemu/demonstrator"
	"sspemu/faults"
	"sspemu/gpconnect"
)

// TestDesignatedPatientsThroughStack runs the embedded configuration's
// stack and, as a consumer through the real SSP over mutual TLS, at each
// practice, in JSON and in XML, sends every kind of request that names
// each designated error patient (a search by NHS number, a read, their
// appointments, a booking for them) and checks that the practice answers
// the patient's error (status, code, Sspemu-Fault) where the error acts,
// and answers normally where it does not, and that the SSP's transaction
// names the fault.
func TestDesignatedPatientsThroughStack(t *testing.T) {
	demoPort := freeLoopbackPort(t)
	st, cfg := startTestStack(t, spineConfig(t, demoPort, nil))
	client := consumerClient(t, cfg.PKIDir())
	f := &faultStack{t: t, st: st, admin: "http://" + st.addrs["admin"]}

	today := time.Now().Format(time.DateOnly)
	week := time.Now().AddDate(0, 0, 7).Format(time.DateOnly)
	designatedSeen := 0
	for _, p := range cfg.Demonstrator.PracticeList() {
		seed := p.Seed
		if seed == nil {
			seed = demonstrator.DefaultSeed()
		}
		root := "https://localhost:" + strconv.Itoa(demoPort) + demonstrator.ServiceRootPath(p.ODS)
		perPractice := 0
		for i, pt := range seed.Patients {
			if pt.Error == nil {
				continue
			}
			perPractice++
			designatedSeen++
			id := strconv.Itoa(i + 1)
			on, err := gpconnect.Expand(pt.Error.On)
			if err != nil {
				t.Fatal(err)
			}
			acts := func(interaction string) bool {
				if len(pt.Error.On) == 0 {
					return true
				}
				for _, u := range on {
					if u == interaction {
						return true
					}
				}
				return false
			}
			booking := `{"resourceType":"Appointment","status":"booked","participant":[{"actor":{"reference":"Patient/` + id + `"},"status":"accepted"}]}`
			requests := []struct {
				name, method, rel, interaction, body string
				okStatus                             int
			}{
				{"search by NHS number", "GET", "/Patient?identifier=" + url.QueryEscape("https://fhir.nhs.uk/Id/nhs-number|"+pt.NHSNumber), gpconnect.SearchPatient, "", 200},
				{"read", "GET", "/Patient/" + id, gpconnect.ReadPatient, "", 200},
				{"appointments", "GET", "/Patient/" + id + "/Appointment?start=ge" + today + "&start=le" + week, gpconnect.SearchPatientAppts, "", 200},
				// Not a complete booking: where the error does not act, the
				// practice refuses the body (422), which shows it got past
				// the designated check.
				{"book", "POST", "/Appointment", gpconnect.CreateAppointment, booking, 422},
			}
			for _, format := range []string{"json", "xml"} {
				c := &practiceClient{t: t, http: client, ssp: st.addrs["ssp"], xsd: &xmlDocs{}, format: format}
				for _, rq := range requests {
					t.Run(p.ODS+"/"+pt.NHSNumber+"/"+format+"/"+rq.name, func(t *testing.T) {
						c.t = t
						trace := newTraceSafe(0)
						code, h, body := c.call(p.ASID, root, rq.method, rq.rel, rq.interaction, rq.body, map[string]string{"Ssp-TraceID": trace})
						if !acts(rq.interaction) {
							if code != rq.okStatus || h.Get(faults.Header) != "" {
								t.Errorf("error on %v acted on %s: %d %q %v", pt.Error.On, rq.name, code, h.Get(faults.Header), body)
							}
							return
						}
						got, diag := issue(body)
						if code != pt.Error.Status || got != pt.Error.Code || h.Get(faults.Header) != demonstrator.DesignatedFault {
							t.Fatalf("%d %s (%s), Sspemu-Fault %q; want %d %s, %q", code, got, diag, h.Get(faults.Header), pt.Error.Status, pt.Error.Code, demonstrator.DesignatedFault)
						}
						f.t = t
						if tx := f.transaction(trace); tx.Fault != demonstrator.DesignatedFault || tx.Status != pt.Error.Status {
							t.Errorf("SSP transaction %+v", tx)
						}
						if !f.reachedPractice(trace) {
							t.Error("the practice's audit has no record of the request")
						}
					})
				}
			}
		}
		if perPractice < 3 {
			t.Errorf("practice %s has %d designated error patients, want at least 3", p.ODS, perPractice)
		}
	}
	if designatedSeen == 0 {
		t.Fatal("no designated error patients in the embedded configuration")
	}
}
