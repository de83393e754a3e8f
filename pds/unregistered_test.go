package pds

import (
	"testing"

	"sspemu/gpconnect"
)

// TestUnregistered checks PDS's patients for Register Patient: as many as
// promised, valid and distinct NHS numbers that no other test patient
// uses, each read with its home address and without a registered practice,
// and found by a demographic search.
func TestUnregistered(t *testing.T) {
	list := Unregistered()
	if len(list) != UnregisteredCount {
		t.Fatalf("%d unregistered patients, want %d", len(list), UnregisteredCount)
	}
	seen := map[string]bool{}
	for _, p := range testPatients("A20047") {
		seen[p.NHSNumber] = true
	}
	names := map[string]bool{}
	for _, p := range list {
		if !gpconnect.ValidNHSNumber(p.NHSNumber) || seen[p.NHSNumber] {
			t.Errorf("NHS number %s is invalid or used twice", p.NHSNumber)
		}
		seen[p.NHSNumber] = true
		key := p.Family + " " + p.Given[0] + " " + p.BirthDate
		if names[key] {
			t.Errorf("two unregistered patients are %s", key)
		}
		names[key] = true
	}
	h := newService().Handler()
	for _, p := range []Patient{list[0], list[len(list)-1]} {
		a := read(t, h, p.NHSNumber)
		if a.status != 200 || practiceOf(a.body) != "" || a.body["address"] == nil || a.body["deceasedDateTime"] != nil {
			t.Errorf("read %s: %d %s", p.NHSNumber, a.status, a.raw)
		}
		s := search(t, h, "family="+p.Family+"&given="+p.Given[0]+"&birthdate=eq"+p.BirthDate)
		if hs := hits(s); len(hs) != 1 || hs[0].nhs != p.NHSNumber {
			t.Errorf("search for %s: %v", p.NHSNumber, hs)
		}
	}
}
