package report

import (
	"net/url"
	"testing"

	"sspemu/gpconnect"
)

// v3 makes the session's last call one of audit record version 3: its
// transaction names its audit record (audit_seq) and carries the answer's
// facts, the provider's error code and the searchset's entries per
// resource type (nil: not counted), as proxy's sniff records them.
func (s *session) v3(code string, entries map[string]int) *session {
	i := len(s.recs) - 1
	s.recs[i].V = 3
	tx := &s.txs[len(s.txs)-1]
	tx.AuditSeq = uint64(i + 1)
	tx.RespContentType = gpconnect.MIMEJSON + ";charset=utf-8"
	tx.ProviderCode = code
	if tx.Status >= 400 {
		tx.ProviderIssueCode = "invalid"
	}
	if entries != nil {
		n := 0
		for _, k := range entries {
			n += k
		}
		tx.Entries, tx.EntryTypes = &n, entries
	}
	return s
}

func (s *session) findNHS(nhs string, st int) *session {
	return s.call(practiceA, iaFindPatient, "GET", "/Patient?identifier="+url.QueryEscape("https://fhir.nhs.uk/Id/nhs-number|"+nhs), st)
}

func (s *session) findPract(sds string, st int) *session {
	return s.call(practiceA, iaFindPract, "GET", "/Practitioner?identifier="+url.QueryEscape("https://fhir.nhs.uk/Id/sds-user-id|"+sds), st)
}

func (s *session) findOrg(ods string, st int) *session {
	return s.call(practiceA, iaFindOrg, "GET", "/Organization?identifier="+url.QueryEscape("https://fhir.nhs.uk/Id/ods-organization-code|"+ods), st)
}

func pts(n int) map[string]int { return map[string]int{"Patient": n} }

// TestSearchCounts: the Foundations searches are decided by the entries
// of the searchset a version 3 transaction counts; older calls stay "not
// recorded by this audit version".
func TestSearchCounts(t *testing.T) {
	runReportCases(t, []reportCase{
		{"one patient found", "GPC-FOU-FPA-01/1", ss().find(200).v3("", pts(1)), Met, []uint64{1}, []uint64{}, "exactly one Patient entry"},
		{"an empty searchset is not the single record", "GPC-FOU-FPA-01/1", ss().find(200).v3("", pts(0)), NotExercised, []uint64{}, []uint64{1}, "none with exactly one Patient"},
		{"old version: not recorded", "GPC-FOU-FPA-01/1", ss().find(200), NotExercised, []uint64{1}, []uint64{}, "not recorded by this audit version"},
		{"too large to count: not recorded", "GPC-FOU-FPA-01/1", ss().find(200).v3("", nil), NotExercised, []uint64{1}, nil, "not recorded by this audit version"},
		{"every search refused", "GPC-FOU-FPA-01/1", ss().find(400).v3(gpconnect.CodeBadRequest, nil), NotExercised, []uint64{}, []uint64{1}, "none was answered with success"},
		{"counted one among uncounted", "GPC-FOU-FPA-01/1", ss().find(200).find(200).v3("", pts(1)), Met, []uint64{2}, nil, ""},

		{"two records", "GPC-FOU-FPA-01/2", ss().find(200).v3("", pts(2)), Met, []uint64{1}, nil, "two or more Patient entries"},
		{"one record is not multiple", "GPC-FOU-FPA-01/2", ss().find(200).v3("", pts(1)), NotExercised, []uint64{}, []uint64{1}, "not exercised"},
		{"old version: the count is not recorded", "GPC-FOU-FPA-01/2", ss().find(200), NotExercised, []uint64{1}, nil, "number of resources"},

		{"not found: an empty searchset", "GPC-FOU-FPA-01/3", ss().find(200).v3("", pts(0)), Met, []uint64{1}, nil, "no Patient entry"},
		{"found is not the no-record case", "GPC-FOU-FPA-01/3", ss().find(200).v3("", pts(1)), NotExercised, []uint64{}, []uint64{1}, ""},
		{"included resources are not the patient", "GPC-FOU-FPA-01/3", ss().find(200).v3("", map[string]int{"Organization": 1}), Met, []uint64{1}, nil, ""},

		{"sensitive: the empty searchsets are shown", "GPC-FOU-FPA-01/4", ss().find(200).v3("", pts(1)).find(200).v3("", pts(0)), NotExercised, []uint64{2}, []uint64{}, "not on the wire"},
		{"deceased: old calls are shown too", "GPC-FOU-FPA-01/6", ss().find(200).find(200).v3("", pts(1)), NotExercised, []uint64{1}, nil, "uncounted"},

		{"practitioners: several", "GPC-FOU-FPR-01/1", ss().findPract("G1", 200).v3("", map[string]int{"Practitioner": 3}), Met, []uint64{1}, nil, ""},
		{"practitioners: one", "GPC-FOU-FPR-01/2", ss().findPract("G1", 200).v3("", map[string]int{"Practitioner": 1}), Met, []uint64{1}, nil, ""},
		{"practitioners: none", "GPC-FOU-FPR-01/3", ss().findPract("G9", 200).v3("", map[string]int{}), Met, []uint64{1}, nil, ""},
		{"practitioners: one is not none", "GPC-FOU-FPR-01/3", ss().findPract("G1", 200).v3("", map[string]int{"Practitioner": 1}), NotExercised, nil, []uint64{1}, ""},
		{"organisations: several", "GPC-FOU-FOR-01/1", ss().findOrg("A1", 200).v3("", map[string]int{"Organization": 2}), Met, []uint64{1}, nil, ""},
		{"organisations: one", "GPC-FOU-FOR-01/2", ss().findOrg("A1", 200).v3("", map[string]int{"Organization": 1}), Met, []uint64{1}, nil, ""},
		{"organisations: none", "GPC-FOU-FOR-01/3", ss().findOrg("ZZ", 200).v3("", map[string]int{}), Met, []uint64{1}, nil, ""},
		{"organisations: old version", "GPC-FOU-FOR-01/3", ss().findOrg("ZZ", 200), NotExercised, []uint64{1}, nil, "not recorded by this audit version"},
	})
}

// TestErrorCodes: an error test whose error the specification codes is
// met only by that code where the transaction records it (version 3); an
// older call is judged on its status, and the Why says so.
func TestErrorCodes(t *testing.T) {
	readPatient := func(s *session, st int) *session { return s.call(practiceA, iaReadPatient, "GET", "/Patient/99", st) }
	invalid := func(s *session, st int) *session { return s.findNHS("9999999991", st) }
	register := func(s *session, code string) *session { return s.register(400).v3(code, nil) }
	runReportCases(t, []reportCase{
		{"invalid NHS number: the practice's code", "GPC-FOU-FPA-01/8", invalid(ss(), 400).v3(gpconnect.CodeInvalidNHSNumber, nil), Met, []uint64{1}, []uint64{}, "with code INVALID_NHS_NUMBER"},
		{"invalid NHS number: another code", "GPC-FOU-FPA-01/8", invalid(ss(), 400).v3(gpconnect.CodeBadRequest, nil), NotExercised, []uint64{}, []uint64{1}, "not answered 4xx with code INVALID_NHS_NUMBER"},
		{"invalid NHS number: old version, the status decides", "GPC-FOU-FPA-01/8", invalid(ss(), 400), Met, []uint64{1}, nil, "was not recorded before audit record version 3"},
		{"invalid NHS number: sent again unchanged", "GPC-FOU-FPA-01/8",
			invalid(invalid(ss(), 400).v3(gpconnect.CodeInvalidNHSNumber, nil), 400).v3(gpconnect.CodeInvalidNHSNumber, nil), NotMet, nil, []uint64{2}, "not handled"},

		{"patient not found", "GPC-FOU-RPA-01/2", readPatient(ss(), 404).v3(gpconnect.CodePatientNotFound, nil), Met, []uint64{1}, nil, "PATIENT_NOT_FOUND"},
		{"404 without the code is not the test's error", "GPC-FOU-RPA-01/2", readPatient(ss(), 404).v3("", nil), NotExercised, []uint64{}, []uint64{1}, ""},
		{"a coded call and an old one", "GPC-FOU-RPA-01/2", readPatient(ss(), 404).call(practiceA, iaReadPatient, "GET", "/Patient/98", 404).v3(gpconnect.CodePatientNotFound, nil), Met, []uint64{1, 2}, nil, "and 1 call(s) recorded before audit record version 3"},
		{"practitioner not found", "GPC-FOU-RPR-01/3", ss().call(practiceA, iaReadPract, "GET", "/Practitioner/99", 404).v3(gpconnect.CodePractitionerNotFound, nil), Met, []uint64{1}, nil, ""},
		{"organisation not found", "GPC-FOU-ROR-01/3", ss().call(practiceA, iaReadOrg, "GET", "/Organization/99", 404).v3(gpconnect.CodeOrganisationNotFound, nil), Met, []uint64{1}, nil, ""},
		{"location not found", "GPC-FOU-RLO-01/3", ss().call(practiceA, iaReadLoc, "GET", "/Location/99", 404).v3(gpconnect.CodeNoRecordFound, nil), Met, []uint64{1}, nil, "NO_RECORD_FOUND"},
		{"location: PATIENT_NOT_FOUND is not the answer", "GPC-FOU-RLO-01/3", ss().call(practiceA, iaReadLoc, "GET", "/Location/99", 404).v3(gpconnect.CodePatientNotFound, nil), NotExercised, nil, []uint64{1}, ""},
		{"invalid SDS user ID", "GPC-FOU-FPR-01/4", ss().findPract("", 422).v3(gpconnect.CodeInvalidParameter, nil), Met, []uint64{1}, nil, ""},
		{"invalid ODS code", "GPC-FOU-FOR-01/4", ss().findOrg("", 422).v3(gpconnect.CodeInvalidParameter, nil).findOrg("A20047", 200).v3("", map[string]int{"Organization": 1}), Met, []uint64{1, 2}, nil, "corrected"},
		{"slots without status=free: BAD_REQUEST", "GPC-AMUS-BPA-1/3",
			ss().call(practiceA, iaSlots, "GET", "/Slot?start=ge2026-03-02&end=le2026-03-09&_include=Slot:schedule", 400).v3(gpconnect.CodeBadRequest, nil), Met, []uint64{1}, nil, "BAD_REQUEST"},
		{"slots without status=free: INVALID_PARAMETER is another error", "GPC-AMUS-BPA-1/3",
			ss().call(practiceA, iaSlots, "GET", "/Slot?start=ge2026-03-02&end=le2026-03-09&_include=Slot:schedule", 422).v3(gpconnect.CodeInvalidParameter, nil), NotExercised, nil, []uint64{1}, ""},

		// Registration: only the demographics mismatch has a code of its own.
		{"demographics mismatch", "GPC-FOU-REG-01/11", register(ss(), gpconnect.CodeInvalidPatientDemographics), Met, []uint64{1}, nil, "INVALID_PATIENT_DEMOGRAPHICS"},
		{"demographics: INVALID_RESOURCE is another defect", "GPC-FOU-REG-01/11", register(ss(), gpconnect.CodeInvalidResource), NotExercised, nil, []uint64{1}, ""},
		{"demographics: old version, on the status", "GPC-FOU-REG-01/11", ss().register(400), Met, []uint64{1}, nil, "not recorded before audit record version 3"},
		{"blank date of birth: INVALID_RESOURCE shown, the body is not recorded", "GPC-FOU-REG-01/6",
			register(register(ss(), gpconnect.CodeInvalidPatientDemographics), gpconnect.CodeInvalidResource), NotExercised, []uint64{2}, []uint64{}, "answered with code INVALID_RESOURCE"},
		{"blank NHS number: old calls stay candidates", "GPC-FOU-REG-01/5", ss().register(422), NotExercised, []uint64{1}, nil, "not recorded by this audit version"},
		{"inactive NHS number: INVALID_NHS_NUMBER shown", "GPC-FOU-REG-01/12",
			register(register(ss(), gpconnect.CodeInvalidResource), gpconnect.CodeInvalidNHSNumber), NotExercised, []uint64{2}, nil, "INVALID_NHS_NUMBER"},
	})
}

// TestRegistrationSequencesCount: the registration and read sequences
// hold the find step to the searchset where it was counted: a new patient
// is not found before registering; a registered one is found, as is one
// whose logical ID is read.
func TestRegistrationSequencesCount(t *testing.T) {
	runReportCases(t, []reportCase{
		{"not found, registered, booked", "GPC-FOU-REG-01/1", ss().find(200).v3("", pts(0)).register(200).slots(200).book(201).readAppt("1", 200), Met, []uint64{1, 2, 3, 4, 5}, nil, "with no Patient entry"},
		{"found, then registered anyway", "GPC-FOU-REG-01/1", ss().find(200).v3("", pts(1)).register(200).slots(200).book(201).readAppt("1", 200), NotMet, nil, []uint64{2}, ""},
		{"found, booked without registering", "GPC-FOU-REG-01/2", ss().find(200).v3("", pts(1)).slots(200).book(201).readAppt("1", 200), Met, []uint64{1, 2, 3, 4}, nil, ""},
		{"read after a search that found the patient", "GPC-FOU-RPA-01/1", ss().find(200).v3("", pts(1)).call(practiceA, iaReadPatient, "GET", "/Patient/2", 200), Met, []uint64{1, 2}, nil, "with one or more Patient entries"},
		{"read after a search that found none", "GPC-FOU-RPA-01/1", ss().find(200).v3("", pts(0)).call(practiceA, iaReadPatient, "GET", "/Patient/2", 200), NotMet, nil, []uint64{2}, ""},
		{"not found, booked without registering", "GPC-FOU-REG-01/2", ss().find(200).v3("", pts(0)).slots(200).book(201).readAppt("1", 200), NotExercised, nil, nil, ""},
	})
}
