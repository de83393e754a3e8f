package demonstrator

import (
	"strings"
	"testing"
	"time"

	"sspemu/gpconnect"
)

// TestScheduleSeedKeys checks the schedule keys of a seed: their defaults,
// what is refused, and that weekend surgeries exist only when asked for.
func TestScheduleSeedKeys(t *testing.T) {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	s := testSeedB()
	d := s.build(testNow, loc)
	for _, sc := range d.Schedules {
		if sc.ServiceCategory != "GP Surgery" || sc.PractitionerRole != "R0260" || sc.DeliveryChannel != "In-person" {
			t.Errorf("schedule %s defaults: %+v", sc.ID, sc)
		}
	}
	weekend := func(d Data) int {
		n := 0
		for _, sl := range d.Slots {
			if wd := sl.Start.In(loc).Weekday(); wd == time.Saturday || wd == time.Sunday {
				n++
			}
		}
		return n
	}
	if n := weekend(d); n != 0 {
		t.Errorf("%d weekend slots without weekend_sessions", n)
	}
	s.WeekendSessions = []string{"10:00-11:00"}
	// Four weekends in 21 days from Monday 10 March: 6 days, 2 schedules
	// of 15 and 20 minutes: 4 + 3 slots a day.
	if n := weekend(s.build(testNow, loc)); n != 6*(4+3) {
		t.Errorf("%d weekend slots, want %d", n, 6*(4+3))
	}

	bad := testSeedB()
	bad.Schedules[0].PractitionerRole = "R9999"
	bad.Schedules[1].DeliveryChannel = "Carrier pigeon"
	bad.WeekendSessions = []string{"9-12"}
	got := bad.validate()
	for _, want := range []string{`schedule 1: practitioner_role "R9999"`, `schedule 2: delivery_channel "Carrier pigeon"`, `weekend_sessions: session "9-12"`} {
		found := false
		for _, err := range got {
			found = found || strings.Contains(err.Error(), want)
		}
		if !found {
			t.Errorf("validate does not say %q: %v", want, got)
		}
	}
}

func TestParseAppointmentsQuery(t *testing.T) {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		query    string
		from, to string // the range, dates; empty: refused
		diag     string // a part of the refusal's diagnostics
	}{
		{"start=ge2025-03-10&start=le2025-03-10", "2025-03-10", "2025-03-11", ""},
		{"start=le2025-04-01&start=ge2025-03-12&_sort=date", "2025-03-12", "2025-04-02", ""},
		{"start=ge2025-03-09&start=le2025-03-12", "", "", "in the past"},
		{"start=ge2025-03-12", "", "", "sent 1 times"},
		{"", "", "", "sent 0 times"},
		{"start=ge2025-03-12&start=le2025-03-13&start=le2025-03-14", "", "", "sent 3 times"},
		{"start=ge2025-03-12&start=ge2025-03-13", "", "", "start=ge is sent twice"},
		{"start=le2025-03-12&start=le2025-03-13", "", "", "start=le is sent twice"},
		{"start=ge2025-03-12T00:00:00%2B00:00&start=le2025-03-13", "", "", "no time"},
		{"start=ge2025-03-12&start=le2025-03-13T10:00:00Z", "", "", "no time"},
		{"start=ge2025-03&start=le2025-03-13", "", "", "not a date"},
		{"start=eq2025-03-12&start=le2025-03-13", "", "", "prefix must be ge or le"},
		{"start=2025-03-12&start=2025-03-13", "", "", "prefix must be ge or le"},
		{"start=ge2025-03-13&start=le2025-03-12", "", "", "before"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			params, err := parseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			from, before, o := parseAppointmentsQuery(params, loc, testNow)
			if tc.from == "" {
				if o == nil || o.Status != 422 || o.Code != gpconnect.CodeInvalidParameter || !strings.Contains(o.Reason, tc.diag) {
					t.Fatalf("got %v, want 422 INVALID_PARAMETER saying %q", o, tc.diag)
				}
				return
			}
			if o != nil {
				t.Fatalf("refused: %v", o)
			}
			if got := from.Format(time.DateOnly) + " " + before.Format(time.DateOnly); got != tc.from+" "+tc.to {
				t.Errorf("range %s, want %s %s", got, tc.from, tc.to)
			}
		})
	}
}

// TestPracticeOwnedMembers books through the handler and amends and
// cancels with the members the practice owns left out, sent as they are,
// and changed.
func TestPracticeOwnedMembers(t *testing.T) {
	h := newTestDemonstrator(t).Handler()
	put := func(interaction, id, body string) int {
		t.Helper()
		w := do(t, h, call{method: "PUT", path: testRoot + "/Appointment/" + id, interaction: interaction, body: body})
		return w.Code
	}
	book := func(skip int) (string, []byte) {
		t.Helper()
		slot, loc := freeSlot(t, h, skip)
		w := do(t, h, call{method: "POST", path: testRoot + "/Appointment", interaction: gpconnect.CreateAppointment,
			body: edit(t, []byte(bookingBody(slot, "Patient/2", loc)), func(m map[string]any) {
				m["serviceCategory"] = map[string]any{"text": "mine"}
				m["extension"] = append(m["extension"].([]any), map[string]any{"url": extDeliveryChannel, "valueCode": "Video"})
			})})
		if w.Code != 201 {
			t.Fatalf("book: %d %s", w.Code, w.Body)
		}
		m := decode(t, w.Body.Bytes())
		if sc := m["serviceCategory"].(map[string]any)["text"]; sc != "GP Surgery" {
			t.Errorf("serviceCategory %v, want the schedule's", sc)
		}
		if !strings.Contains(w.Body.String(), `"valueCode":"In-person"`) || strings.Contains(w.Body.String(), "Video") {
			t.Errorf("the slot's delivery channel is not the appointment's: %s", w.Body)
		}
		return m["id"].(string), w.Body.Bytes()
	}
	id, appt := book(0)
	without := func(m map[string]any) {
		delete(m, "serviceCategory")
		delete(m, "serviceType")
		var keep []any
		for _, e := range m["extension"].([]any) {
			if u := e.(map[string]any)["url"]; u != extDeliveryChannel && u != extPractitionerRole {
				keep = append(keep, e)
			}
		}
		m["extension"] = keep
	}
	for _, tc := range []struct {
		name string
		f    func(m map[string]any)
		want int
	}{
		{"left out", func(m map[string]any) { without(m); m["comment"] = "one" }, 200},
		{"sent as they are", func(m map[string]any) { m["comment"] = "two" }, 200},
		{"serviceCategory changed", func(m map[string]any) { m["serviceCategory"] = map[string]any{"text": "other"} }, 422},
		{"delivery channel changed", func(m map[string]any) {
			for _, e := range m["extension"].([]any) {
				if e := e.(map[string]any); e["url"] == extDeliveryChannel {
					e["valueCode"] = "Telephone"
				}
			}
		}, 422},
	} {
		t.Run("amend "+tc.name, func(t *testing.T) {
			if got := put(gpconnect.UpdateAppointment, id, edit(t, appt, tc.f)); got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
		})
	}
	w := do(t, h, call{method: "GET", path: testRoot + "/Appointment/" + id, interaction: gpconnect.ReadAppointment})
	cancel := edit(t, w.Body.Bytes(), func(m map[string]any) {
		without(m)
		m["status"] = "cancelled"
		m["extension"] = append(m["extension"].([]any), map[string]any{"url": extCancellationReason, "valueString": "better"})
	})
	w = do(t, h, call{method: "PUT", path: testRoot + "/Appointment/" + id, interaction: gpconnect.CancelAppointment, body: cancel})
	if w.Code != 200 || !strings.Contains(w.Body.String(), extDeliveryChannel) || !strings.Contains(w.Body.String(), `"serviceCategory"`) {
		t.Errorf("cancel without the practice's members: %d %s", w.Code, w.Body)
	}
}

// TestReadPastAppointment: GP Connect reads future appointments only.
func TestReadPastAppointment(t *testing.T) {
	h := newTestDemonstrator(t).Handler()
	w := do(t, h, call{method: "GET", path: testRoot + "/Appointment/1", interaction: gpconnect.ReadAppointment})
	if w.Code != 422 || outcomeCode(t, w.Body.Bytes()) != gpconnect.CodeInvalidParameter || !strings.Contains(w.Body.String(), "before today") {
		t.Errorf("read a past appointment: %d %s", w.Code, w.Body)
	}
}
