package report

// Test is one NHS consumer test ID the report gives a result for. The
// catalogue is data: adding an ID (the Appointments IDs cut off in the
// stored wiki pages, for one) is a new row, not new logic, as long as one
// of the checks fits it.
type Test struct {
	ID    string
	Group string // Spine Integration | Foundations | Appointment Management
	Title string
	// SCAL is the SCAL requirement IDs the source gives; empty (shown as
	// "—") where it gives none, as for every Foundations test.
	SCAL []string
	// Check names the predicate in checks (checks.go) that decides it.
	Check string
	// Interaction, Expect and the query conditions parameterise the
	// generic "interaction" check: the GP Connect interaction, the answer
	// expected ("ok" for 2xx, "4xx", or an exact status such as "404"),
	// and query parameters the request must (not) have.
	Interaction string
	Expect      string
	QueryHas    []string
	QueryLacks  []string
	// CannotProve is what the audit of a local SSP cannot show for this ID;
	// printed with its result.
	CannotProve string
	// Note flags a test text that lags GP Connect 1.2.7; a note, not a
	// failure.
	Note   string
	Source string
}

// Sources of the catalogue (research notes for issue 15, report-tests.md):
//
//	S1 nhsconnect/gpc-consumer-support consumer_tests/spine_integration.feature
//	   @64d74c91d25583db4ae464312e6d93b7ea4348d0 (SCAL IDs from its "# SCAL:" lines)
//	S2 the same repository, consumer_tests/foundations.feature @64d74c91 (no SCAL IDs)
//	S6c nhsconnect/gpconnect-provider-testing wiki, New-Appointments-Consumer-Tests
//	   (Sep 15, 2020; only its first part is stored: GPC-AMUS-BPA-1/1 to 1/6)
//	S7 nhsconnect/gpconnect release/1.2.7 @40f2b1a2eb24faa436d87ce0d0994901f87fdbb2
const (
	srcSpine       = "nhsconnect/gpc-consumer-support consumer_tests/spine_integration.feature @64d74c91"
	srcFoundations = "nhsconnect/gpc-consumer-support consumer_tests/foundations.feature @64d74c91"
	srcAppts       = "nhsconnect/gpconnect-provider-testing wiki New-Appointments-Consumer-Tests (2020-09-15)"
)

const (
	GroupSpine        = "Spine Integration"
	GroupFoundations  = "Foundations"
	GroupAppointments = "Appointment Management"
)

const (
	urn           = "urn:nhs:names:services:gpconnect:"
	iaMetadata    = urn + "fhir:rest:read:metadata-1"
	iaFindPatient = urn + "fhir:rest:search:patient-1"
	iaReadPatient = urn + "fhir:rest:read:patient-1"
	iaRegister    = urn + "fhir:operation:gpc.registerpatient-1"
	iaFindPract   = urn + "fhir:rest:search:practitioner-1"
	iaReadPract   = urn + "fhir:rest:read:practitioner-1"
	iaFindOrg     = urn + "fhir:rest:search:organization-1"
	iaReadOrg     = urn + "fhir:rest:read:organization-1"
	iaReadLoc     = urn + "fhir:rest:read:location-1"
	iaSlots       = urn + "fhir:rest:search:slot-1"
	iaBook        = urn + "fhir:rest:create:appointment-1"
	iaReadAppt    = urn + "fhir:rest:read:appointment-1"
	iaAmend       = urn + "fhir:rest:update:appointment-1"
	iaCancel      = urn + "fhir:rest:cancel:appointment-1"
	iaPatientAppt = urn + "fhir:rest:search:patient_appointments-1"
)

const (
	noDisplay = "display of the answer to the user (consumer UI)"
	noSDS     = "real SDS: the lookups shown are against sspemu's SDS (its Spine services journal); which consumer made an LDAP lookup is inferred from the GP Connect call that used its result, as the directory does not name an LDAP connection's peer"
	noAudit   = "the consumer's own audit trail (the trace IDs listed let an assessor look them up there)"
	noCode    = "the provider's OperationOutcome code is not in the audit; the status (and any fault rule that produced it) is"
	noCount   = "the number of resources in the answer is not in the audit; the call and its status are"
)

// Catalogue is every test ID the report evaluates, in report order.
func Catalogue() []Test {
	s := func(id, title, check string, scal ...string) Test {
		return Test{ID: id, Group: GroupSpine, Title: title, Check: check, SCAL: scal, Source: srcSpine}
	}
	f := func(id, title, ia, expect, cannot string) Test {
		return Test{ID: id, Group: GroupFoundations, Title: title, Check: "interaction", Interaction: ia, Expect: expect, CannotProve: cannot, Source: srcFoundations}
	}
	a := func(id, title, expect string, has, lacks []string, cannot string) Test {
		return Test{ID: id, Group: GroupAppointments, Title: title, Check: "interaction", Interaction: iaSlots, Expect: expect,
			QueryHas: has, QueryLacks: lacks, SCAL: []string{id}, CannotProve: cannot, Source: srcAppts}
	}
	tests := []Test{
		s("GPC-SPN-TST-01", "Retrieve ASID and party key from SDS", "sds-asid", "GPC-SSP03-02"),
		s("GPC-SPN-TST-02", "Retrieve the FHIR endpoint URL of the MHS from SDS", "sds-endpoint", "GPC-SSP03-03"),
		s("GPC-SPN-TST-03", "Retrieve a patient record using a valid security certificate and TLS", "tls-version", "GPC-SSP04-02", "GPC-SSP04-03", "GPC-SSP04-04"),
		s("GPC-SPN-TST-04", "Retrieve a patient record using a valid SSLCipherSuite", "tls-cipher", "GPC-SSP04-05"),
		s("GPC-SPN-TST-05", "FHIR content type: Accept JSON, request XML", "accept-json-send-xml", "GPC-SSP06-03"),
		s("GPC-SPN-TST-06", "FHIR content type: _format JSON, request JSON, no Accept", "format-json", "GPC-SSP06-04"),
		s("GPC-SPN-TST-07", "Receive and handle a Spine OperationOutcome (403 NO_PATIENT_CONSENT)", "refusal-403", "GPC-SSP07-01"),
		s("GPC-SPN-TST-08", "Write to the audit trail: successful interaction", "audit-items-ok", "GPC-SSP08-01"),
		s("GPC-SPN-TST-09", "Write to the audit trail: unsuccessful interaction", "audit-items-error", "GPC-SSP08-01"),
		s("GPC-SPN-TST-10", "JWT is valid: practitioner with a smartcard", "jwt-smartcard", "GPC-SSP10-01"),
		s("GPC-SPN-TST-11", "JWT is valid: practitioner without a smartcard login", "jwt-no-smartcard", "GPC-SSP10-01"),
		s("GPC-SPN-TST-12", "Use transfer encoding and compression headers", "chunked-gzip", "GPC-SSP04-07"),
		s("GPC-SPN-TST-13", "Use Spine headers", "spine-headers", "GPC-SSP05-09"),

		f("GPC-FOU-CAP-01/1", "Get the FHIR capability statement", iaMetadata, "ok", "handling the capability statement accurately"),
		f("GPC-FOU-FPA-01/1", "Find a patient with a single record", iaFindPatient, "ok", noCount),
		f("GPC-FOU-FPA-01/8", "Find a patient with an invalid NHS number", iaFindPatient, "4xx", noCode+"; "+noDisplay),
		f("GPC-FOU-RPA-01/1", "Read a patient: request conforms to the specification", iaReadPatient, "ok", ""),
		f("GPC-FOU-RPA-01/2", "Read a patient not found on the server", iaReadPatient, "404", noCode+"; "+noDisplay),
		f("GPC-FOU-REG-01/1", "Register a new patient (and book an appointment)", iaRegister, "ok", "the sequence find, register, search, book, read is not checked; "+noDisplay),
		f("GPC-FOU-FPR-01/2", "Find a practitioner with a single record", iaFindPract, "ok", noCount),
		f("GPC-FOU-FPR-01/4", "Find a practitioner with an invalid SDS user ID", iaFindPract, "4xx", noCode+"; "+noDisplay),
		f("GPC-FOU-RPR-01/1", "Read a practitioner: request conforms", iaReadPract, "ok", ""),
		f("GPC-FOU-RPR-01/3", "Read a practitioner not found", iaReadPract, "404", noCode+"; "+noDisplay),
		f("GPC-FOU-FOR-01/2", "Find an organisation with a single record", iaFindOrg, "ok", noCount),
		f("GPC-FOU-FOR-01/4", "Find an organisation with an invalid ODS code", iaFindOrg, "4xx", noCode+"; "+noDisplay),
		f("GPC-FOU-ROR-01/1", "Read an organisation: request conforms", iaReadOrg, "ok", ""),
		f("GPC-FOU-ROR-01/3", "Read an organisation not found", iaReadOrg, "404", noCode+"; "+noDisplay),
		f("GPC-FOU-RLO-01/1", "Read a location: request conforms", iaReadLoc, "ok", ""),
		f("GPC-FOU-RLO-01/3", "Read a location not found", iaReadLoc, "404", noCode+"; "+noDisplay),

		a("GPC-AMUS-BPA-1/1", "Search free slots: the request is formed as the specification describes", "ok",
			[]string{"start", "end", "status=free", "_include=Slot:schedule"}, nil, ""),
		a("GPC-AMUS-BPA-1/3", "Search slots without status=free: the error is captured", "4xx", nil, []string{"status=free"}, noDisplay),
		a("GPC-AMUS-BPA-1/4", "Search slots without _include=Slot:schedule: the error is captured", "4xx", nil, []string{"_include=Slot:schedule"}, noDisplay),
		a("GPC-AMUS-BPA-1/5", "Search slots including the Practitioner", "ok", []string{"_include:recurse=Schedule:actor:Practitioner"}, nil, "reading the included Practitioner"),
		a("GPC-AMUS-BPA-1/6", "Search slots including the Location", "ok", []string{"_include:recurse=Schedule:actor:Location"}, nil, "reading the included Location"),
	}
	for i := range tests {
		t := &tests[i]
		switch t.ID {
		case "GPC-SPN-TST-01", "GPC-SPN-TST-02":
			t.CannotProve = noSDS
			t.Note = "1.2.7 looks up the MHS record first and the AS record second (integration_spine_directory_service l.79-118); the order is not enforced"
		case "GPC-SPN-TST-03":
			t.CannotProve = "a certificate issued by the NHS DIR team chaining to the real Spine CAs; HSCN connectivity"
			t.Note = "the wiki title says TLSv1; GP Connect 1.2.7 requires TLS 1.2 (development_api_security_guidance l.45-46)"
		case "GPC-SPN-TST-05", "GPC-SPN-TST-06":
			t.CannotProve = "the content type of the answer for calls recorded before audit record version 3"
			t.Note = "the test text uses the DSTU2 names application/json+fhir and application/xml+fhir; 1.2.7 mandates application/fhir+json and application/fhir+xml, which are what counts here"
		case "GPC-SPN-TST-07":
			t.CannotProve = "displaying the error; " + noAudit
			t.Note = "in 1.2.7 Foundations and Appointments NO_PATIENT_CONSENT is only exercised through a provider-side fault rule"
		case "GPC-SPN-TST-08", "GPC-SPN-TST-09":
			t.CannotProve = noAudit
		case "GPC-SPN-TST-11":
			t.CannotProve = "that the practitioner is the logged-on user rather than a fixed user"
		case "GPC-SPN-TST-12":
			t.CannotProve = "whether the answer was gzip-compressed and chunked (not in the audit)"
		}
	}
	return tests
}

// CannotProve is what a local emulator cannot show at all, whatever the
// audit holds (report-tests.md §7).
func CannotProve() []string {
	return []string{
		"Display and UI behaviour: every \"display\", \"captured and displayed appropriately\", \"read ... and display them correctly\" step.",
		"The consumer's own audit trail (GPC-SPN-TST-07 last step, 08, 09).",
		"Real SDS and PDS: sspemu's SDS and PDS are emulations fed by its registry; live party keys, ASIDs and PDS flags (sensitive, deceased, superseded) cannot be shown.",
		"INT-only and environment checks: HSCN connectivity, a certificate from the NHS DIR team chaining to the real Spine CAs, NTP sync with NHS servers, the live SSP's undocumented behaviour.",
		"Failed TLS handshakes: no HTTP request, so no audit record.",
		"Live provider behaviour: real GP systems' data, embargo and booking-window rules, slot configuration, provider audit.",
		"Clinical safety, IG and data-sharing agreements as documents (DPIA, connection agreement, hazard log).",
		"Intent: whether requesting_practitioner is the real logged-on user rather than a fixed user.",
	}
}
