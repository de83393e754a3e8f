// Package pds is a minimal Personal Demographics Service FHIR R4 API: the
// trace a GP Connect consumer makes before anything else, to verify an NHS
// number and learn the patient's registered practice (its ODS code in
// generalPractitioner). It answers over the practices' patients, given by a
// Source, and over its own test patients for the error paths.
package pds

import (
	"fmt"
	"slices"
	"strings"
)

// Patient is one person as PDS holds them. Practices give their registered
// patients in this form through a Source; PDS makes the FHIR resource.
type Patient struct {
	NHSNumber string
	// Family and Given are the usual name; Prefix is a title (Mr, Dr).
	Family string
	Given  []string
	Prefix []string
	// Gender is male, female, other or unknown.
	Gender string
	// BirthDate is YYYY-MM-DD.
	BirthDate string
	// Address is the home address; nil when unknown.
	Address *Address
	Telecom []Telecom
	// PracticeODS is the ODS code of the registered GP practice: the value
	// of generalPractitioner that sends the consumer to SDS.
	PracticeODS string

	// Restricted marks a sensitive patient: meta.security R, and no
	// address, telecom or practice in any answer.
	Restricted bool
	// DeceasedDateTime is an RFC 3339 time, empty while alive.
	DeceasedDateTime string
}

// Address is a home address.
type Address struct {
	Lines      []string
	PostalCode string
}

// Telecom is one contact point: System phone or email, Use home, work or
// mobile.
type Telecom struct {
	System, Value, Use string
}

// Source gives the practices' patients. It is asked on every request, so a
// patient registered at a practice (Register Patient) is on PDS at once.
// Implementations must be safe for concurrent use and return a list the
// caller may keep.
type Source interface {
	Patients() []Patient
}

// SourceFunc adapts a function to Source.
type SourceFunc func() []Patient

// Patients calls f.
func (f SourceFunc) Patients() []Patient { return f() }

// The NHS numbers of PDS's own test patients, for the error paths a
// consumer must handle; every one passes the Modulus 11 check, and none is
// any practice's patient.
const (
	// TestDeceased is a patient who has died: deceasedDateTime and the
	// death notification status are set.
	TestDeceased = "9990000018"
	// TestSensitive is a restricted patient: meta.security R, no address,
	// telecom or registered practice.
	TestSensitive = "9990000026"
	// TestSuperseded is an NHS number that was replaced: asking for it
	// answers the record of TestSuperseding.
	TestSuperseded = "9990000034"
	// TestSuperseding is the record that replaced TestSuperseded.
	TestSuperseding = "9990000042"
	// TestNotFound is a valid NHS number PDS holds no record for (so is any
	// other valid number that is not held): 404 RESOURCE_NOT_FOUND.
	TestNotFound = "9990000050"
)

// testPatients are PDS's own patients; practice is the ODS code the
// deceased and superseding patients are registered at.
func testPatients(practice string) []Patient {
	return []Patient{
		{
			NHSNumber: TestDeceased, Family: "HOLLOWAY", Given: []string{"Edith"}, Prefix: []string{"Mrs"},
			Gender: "female", BirthDate: "1931-04-02", DeceasedDateTime: "2024-11-03T09:12:00+00:00",
			Address:     &Address{Lines: []string{"4 Mill Lane", "Leeds"}, PostalCode: "LS6 1AA"},
			PracticeODS: practice,
		},
		{
			NHSNumber: TestSensitive, Family: "ASHDOWN", Given: []string{"Rowan"}, Prefix: []string{"Ms"},
			Gender: "female", BirthDate: "1989-06-16", Restricted: true,
			// Held, never shown: a restricted record answers without them.
			Address:     &Address{Lines: []string{"1 Hidden Row", "Leeds"}, PostalCode: "LS2 9ZZ"},
			Telecom:     []Telecom{{System: "phone", Value: "01632960001", Use: "home"}},
			PracticeODS: practice,
		},
		{
			NHSNumber: TestSuperseding, Family: "FAIRBAIRN", Given: []string{"Callum", "James"}, Prefix: []string{"Mr"},
			Gender: "male", BirthDate: "1975-09-30",
			Address:     &Address{Lines: []string{"22 Kirkstall Road", "Leeds"}, PostalCode: "LS3 1HS"},
			Telecom:     []Telecom{{System: "phone", Value: "01632960002", Use: "home"}, {System: "email", Value: "callum.fairbairn@example.com", Use: "home"}},
			PracticeODS: practice,
		},
	}
}

// superseded maps replaced NHS numbers to the numbers that replaced them.
func superseded() map[string]string {
	return map[string]string{TestSuperseded: TestSuperseding}
}

// DesignatedNumbers lists PDS's test NHS numbers with what each shows,
// for the README and a consumer's test plan.
func DesignatedNumbers() [][2]string {
	return [][2]string{
		{TestDeceased, "deceased"},
		{TestSensitive, "sensitive (restricted): meta.security R, no address, telecom or practice"},
		{TestSuperseded, "superseded: answers the record of " + TestSuperseding},
		{TestSuperseding, "the record that superseded " + TestSuperseded},
		{TestNotFound, "not on PDS: 404 RESOURCE_NOT_FOUND"},
		{Unregistered()[0].NHSNumber + " to " + Unregistered()[UnregisteredCount-1].NHSNumber,
			fmt.Sprintf("%d patients registered at no practice, for Register Patient", UnregisteredCount)},
	}
}

// clone copies a patient so a caller's changes do not reach the source.
func (p Patient) clone() Patient {
	p.Given = slices.Clone(p.Given)
	p.Prefix = slices.Clone(p.Prefix)
	p.Telecom = slices.Clone(p.Telecom)
	if p.Address != nil {
		a := *p.Address
		a.Lines = slices.Clone(a.Lines)
		p.Address = &a
	}
	return p
}

// normGender lower-cases a gender for comparison.
func normGender(g string) string { return strings.ToLower(strings.TrimSpace(g)) }
