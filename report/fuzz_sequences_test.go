package report

import (
	"strings"
	"testing"
)

// FuzzTargetReaders feeds the readers of a record's target (untrusted:
// the audit file is whatever --audit names) arbitrary strings: the slot
// search's period, the NHS number of a find, the appointment ID of a
// read, amend or cancel, and the query conditions. They must not panic,
// and what they return must hold what the checks rely on.
func FuzzTargetReaders(f *testing.F) {
	for _, s := range []string{
		root + "/Slot?" + slotQuery("2026-03-02", "2026-03-09"),
		root + "/Slot?start=ge2026-03-02T00:00:00%2B01:00&end=le2026-03-16&status=free&status=free",
		root + "/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C9658218865",
		root + "/Appointment/7?_format=json",
		root + "/Patient/2/Appointment?start=ge2026-03-01&start=le2026-03-14",
		"/Appointment/", "/Appointment//x", "?%zz&start=ge&end=le", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		if p := slotSearchProblem(target); p == "" && !queryHolds(target, []string{"status=free", "_include=Slot:schedule", "start=ge*", "end=le*"}, nil) {
			t.Errorf("%q passes as well formed without the mandatory parameters", target)
		}
		if from, to, p := slotRange(target); p == "" {
			seasons(from, to)
		}
		if n, ok := nhsNumberOf(target); ok && validNHSNumber(n) && len(n) != 10 {
			t.Errorf("%q: NHS number %q valid with %d characters", target, n, len(n))
		}
		if id := appointmentID(target); strings.ContainsAny(id, "/?") {
			t.Errorf("%q: appointment ID %q", target, id)
		}
	})
}
