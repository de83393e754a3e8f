package report

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"sspemu/audit"
)

// session builds a consumer's calls as the SSP writes them: a request
// record (forwarded with status 0, the answer's status in its transaction
// record, as proxy.forward does; or refused with its status) and, for a
// forwarded call, the transaction record, joined by a trace ID of its own.
type session struct {
	recs []audit.Record
	txs  []audit.Transaction
}

const (
	practiceA = "918999198993"
	practiceB = "918999198994"
	root      = "https://localhost:9443/A20047/STU3/1/gpconnect"
)

// call adds a forwarded call to practice to answered status.
func (s *session) call(to, ia, method, path string, status int) *session {
	n := len(s.recs) + 1
	r := goodRecord()
	r.Time, r.TraceID, r.To, r.Interaction, r.Method, r.Target = t0.Add(time.Duration(n)*time.Second), fmt.Sprintf("7f1c1a4e-0000-4000-8000-%012d", n), to, ia, method, root+path
	r.Status = 0
	s.recs = append(s.recs, r)
	s.txs = append(s.txs, audit.Transaction{Time: r.Time, TraceID: r.TraceID, Status: status, Decision: "forwarded", From: r.From, To: to, Interaction: ia})
	return s
}

// refused adds a call the SSP refused itself.
func (s *session) refused(to, ia, method, path string, status int) *session {
	n := len(s.recs) + 1
	r := goodRecord()
	r.Time, r.TraceID, r.To, r.Interaction, r.Method, r.Target = t0.Add(time.Duration(n)*time.Second), fmt.Sprintf("7f1c1a4e-0000-4000-8000-%012d", n), to, ia, method, root+path
	r.Decision, r.Rule, r.Status, r.Token, r.Reason = "refused", "interaction-route", status, "BAD_REQUEST", "refused"
	s.recs = append(s.recs, r)
	return s
}

// The calls of a session, to practice A unless named.
func (s *session) find(st int) *session {
	return s.call(practiceA, iaFindPatient, "GET", "/Patient?identifier="+url.QueryEscape("https://fhir.nhs.uk/Id/nhs-number|9658218865"), st)
}
func (s *session) register(st int) *session {
	return s.call(practiceA, iaRegister, "POST", "/Patient/$gpc.registerpatient", st)
}
func (s *session) slots(st int) *session {
	return s.call(practiceA, iaSlots, "GET", "/Slot?"+slotQuery("2026-03-02", "2026-03-09"), st)
}
func (s *session) book(st int) *session { return s.call(practiceA, iaBook, "POST", "/Appointment", st) }
func (s *session) readAppt(id string, st int) *session {
	return s.call(practiceA, iaReadAppt, "GET", "/Appointment/"+id, st)
}
func (s *session) retrieve(st int) *session {
	return s.call(practiceA, iaPatientAppt, "GET", "/Patient/2/Appointment?start=ge2026-03-01&start=le2026-03-14", st)
}
func (s *session) amend(id string, st int) *session {
	return s.call(practiceA, iaAmend, "PUT", "/Appointment/"+id, st)
}
func (s *session) cancel(id string, st int) *session {
	return s.call(practiceA, iaCancel, "PUT", "/Appointment/"+id, st)
}

// last edits the last call as record version 4 (the record and, when
// forwarded, its transaction).
func (s *session) last(edit func(*audit.Record, *audit.Transaction)) *session {
	r := &s.recs[len(s.recs)-1]
	r.V = 4
	var tx *audit.Transaction
	for i := range s.txs {
		if s.txs[i].TraceID == r.TraceID {
			tx = &s.txs[i]
		}
	}
	if tx == nil {
		tx = &audit.Transaction{}
	}
	edit(r, tx)
	return s
}

// v4 marks the last call as recorded with version 4 and nothing more.
func (s *session) v4() *session { return s.last(func(*audit.Record, *audit.Transaction) {}) }

// ifMatch sets the last call's If-Match (version 4).
func (s *session) ifMatch(v string) *session {
	return s.last(func(r *audit.Record, _ *audit.Transaction) { r.IfMatch = &v })
}

// appt sets the last call's Appointment body summary (version 4).
func (s *session) appt(a audit.BodyAppointment) *session {
	return s.last(func(r *audit.Record, _ *audit.Transaction) {
		r.Body = &audit.Body{Format: "json", ResourceType: "Appointment", Appointment: &a}
	})
}

// located sets the last call's answer Location (version 4).
func (s *session) located(id string) *session {
	return s.last(func(_ *audit.Record, tx *audit.Transaction) {
		tx.Location, tx.ETag = root+"/Appointment/"+id+"/_history/1", `W/"1"`
	})
}

// amendM is an amendment with If-Match, cancelR a cancellation with
// If-Match, status cancelled and a reason (version 4).
func (s *session) amendM(id string, st int) *session { return s.amend(id, st).ifMatch(`W/"1"`) }
func (s *session) cancelR(id string, st int) *session {
	return s.cancel(id, st).ifMatch(`W/"1"`).appt(audit.BodyAppointment{Status: "cancelled", Slots: 1, CancellationReason: true})
}

// reg is a registration whose Patient summary is p (version 4), answered
// st with the provider's code.
func (s *session) reg(p *audit.BodyPatient, st int, code string) *session {
	return s.register(st).last(func(r *audit.Record, tx *audit.Transaction) {
		r.Body = &audit.Body{Format: "json", ResourceType: "Parameters", Parameters: []string{"registerPatient"}, Patient: p}
		tx.ProviderCode = code
	})
}

func (s *session) metadata() *session { return s.call(practiceA, iaMetadata, "GET", "/metadata", 200) }

func slotQuery(from, to string) string {
	return "start=ge" + from + "&end=le" + to + "&status=free&_include=Slot:schedule"
}

// build writes the session through the real audit store and reports on it.
func (s *session) build(t *testing.T) map[string]Result {
	t.Helper()
	if len(s.recs) == 0 {
		s.metadata()
	}
	dir, _ := writeAudit(t, s.recs, s.txs)
	rep, err := Build(Options{AuditDir: dir, From: asidA, Version: "test", Now: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	res := map[string]Result{}
	for _, r := range rep.Results {
		res[r.ID] = r
	}
	return res
}

// reportCase is one session and what one test ID must make of it.
type reportCase struct {
	name string
	id   string
	s    *session
	want string
	// shows and against are the seqs (1-based call numbers) wanted among
	// the exemplars and the counter-evidence; nil: not checked.
	shows, against []uint64
	why            string // a part of Why; "": not checked
}

func runReportCases(t *testing.T, cases []reportCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.id+"/"+tc.name, func(t *testing.T) {
			r, ok := tc.s.build(t)[tc.id]
			if !ok {
				t.Fatalf("%s is not in the report", tc.id)
			}
			if r.Result != tc.want {
				t.Fatalf("%s (%s), want %s; evidence %+v", r.Result, r.Why, tc.want, r.Evidence)
			}
			var shows, against []uint64
			for _, e := range r.Evidence {
				if e.Counter {
					against = append(against, e.Seq)
				} else {
					shows = append(shows, e.Seq)
				}
			}
			if tc.shows != nil && fmt.Sprint(shows) != fmt.Sprint(tc.shows) {
				t.Errorf("exemplars %v, want %v (%s)", shows, tc.shows, r.Why)
			}
			if tc.against != nil && fmt.Sprint(against) != fmt.Sprint(tc.against) {
				t.Errorf("counter-evidence %v, want %v (%s)", against, tc.against, r.Why)
			}
			if !strings.Contains(r.Why, tc.why) {
				t.Errorf("why %q lacks %q", r.Why, tc.why)
			}
		})
	}
}

func ss() *session { return &session{} }

func TestSequenceRegisterAndBook(t *testing.T) {
	runReportCases(t, []reportCase{
		{"find, register, search, book, read", "GPC-FOU-REG-01/1", ss().find(200).register(200).slots(200).book(201).readAppt("1", 200), Met, []uint64{1, 2, 3, 4, 5}, []uint64{}, "in seq order to ASID " + practiceA},
		{"read back by retrieving the patient's appointments", "GPC-FOU-REG-01/1", ss().find(200).register(200).slots(200).book(201).retrieve(200), Met, []uint64{1, 2, 3, 4, 5}, nil, ""},
		{"booked but never read back", "GPC-FOU-REG-01/1", ss().find(200).register(200).slots(200).book(201), NotMet, []uint64{}, []uint64{2}, "not within the sequence"},
		{"read before the booking does not count", "GPC-FOU-REG-01/1", ss().find(200).register(200).readAppt("1", 200).slots(200).book(201), NotMet, nil, []uint64{2}, ""},
		{"registered without a search first", "GPC-FOU-REG-01/1", ss().register(200).slots(200).book(201).readAppt("1", 200), NotMet, nil, []uint64{1}, ""},
		{"registration refused only", "GPC-FOU-REG-01/1", ss().find(200).register(422), NotMet, nil, []uint64{2}, "none was answered as needed"},
		{"steps at two practices are not one sequence", "GPC-FOU-REG-01/1",
			ss().find(200).register(200).call(practiceB, iaSlots, "GET", "/Slot?"+slotQuery("2026-03-02", "2026-03-09"), 200).
				call(practiceB, iaBook, "POST", "/Appointment", 201).call(practiceB, iaReadAppt, "GET", "/Appointment/1", 200), NotMet, nil, []uint64{2}, ""},
		{"no registration", "GPC-FOU-REG-01/1", ss().find(200).slots(200), NotExercised, []uint64{}, []uint64{}, "no calls in the order"},

		{"found, no registration, booked and read", "GPC-FOU-REG-01/2", ss().find(200).slots(200).book(201).readAppt("1", 200), Met, []uint64{1, 2, 3, 4}, nil, ""},
		{"a registration between is not this test", "GPC-FOU-REG-01/2", ss().find(200).register(200).slots(200).book(201).readAppt("1", 200), NotExercised, nil, nil, ""},
		{"a later search after the registration is", "GPC-FOU-REG-01/2", ss().find(200).register(200).find(200).slots(200).book(201).readAppt("1", 200), Met, []uint64{3, 4, 5, 6}, nil, ""},

		{"search, book, read", "GPC-AMUS-BPA-4", ss().slots(200).book(201).readAppt("9", 200), Met, []uint64{1, 2, 3}, nil, ""},
		{"search, book, read the booked one (Location)", "GPC-AMUS-BPA-4", ss().slots(200).book(201).located("9").readAppt("9", 200), Met, []uint64{1, 2, 3}, nil, "of the same appointment"},
		{"search, book, read another appointment (Location)", "GPC-AMUS-BPA-4", ss().slots(200).book(201).located("9").readAppt("8", 200), NotMet, nil, []uint64{2}, ""},
		{"the read of the booked one comes later", "GPC-AMUS-BPA-4", ss().slots(200).book(201).located("9").readAppt("8", 200).readAppt("9", 200), Met, []uint64{1, 2, 4}, nil, ""},
		{"booking never retrieved", "GPC-AMUS-BPA-4", ss().slots(200).book(201).metadata(), NotMet, nil, []uint64{2}, ""},
		{"booking without a search first", "GPC-AMUS-BPA-4", ss().book(201).readAppt("9", 200), NotMet, nil, []uint64{1}, ""},
		{"booking refused (slot taken)", "GPC-AMUS-BPA-4", ss().slots(200).book(409), NotMet, nil, []uint64{2}, ""},
		{"no booking", "GPC-AMUS-BPA-4", ss().slots(200), NotExercised, nil, nil, ""},

		{"logical ID resolved, then read", "GPC-FOU-RPA-01/1", ss().find(200).call(practiceA, iaReadPatient, "GET", "/Patient/2", 200), Met, []uint64{1, 2}, nil, ""},
		{"read without resolving the ID first", "GPC-FOU-RPA-01/1", ss().call(practiceA, iaReadPatient, "GET", "/Patient/2", 200), NotMet, nil, []uint64{1}, ""},
		{"read refused by the SSP", "GPC-FOU-RPA-01/1", ss().find(200).refused(practiceA, iaReadPatient, "GET", "/metadata", 400), NotMet, nil, []uint64{2}, ""},

		{"find, then retrieve with a start range", "GPC-AMUS-MPA-1", ss().find(200).retrieve(200), Met, []uint64{1, 2}, nil, ""},
		{"retrieve without a lower bound is not the request", "GPC-AMUS-MPA-1",
			ss().find(200).call(practiceA, iaPatientAppt, "GET", "/Patient/2/Appointment?start=le2026-03-14", 200), NotExercised, nil, nil, ""},

		{"cancel, then book again", "GPC-AMUS-MPA-3", ss().readAppt("1", 200).cancel("1", 200).slots(200).book(201), Met, []uint64{2, 4}, nil, ""},
		{"book, then cancel is an ordinary session", "GPC-AMUS-MPA-3", ss().slots(200).book(201).readAppt("1", 200).cancel("1", 200), NotExercised, nil, nil, ""},
	})
}

func TestSequenceAmendAndCancel(t *testing.T) {
	runReportCases(t, []reportCase{
		{"read, then amend it", "GPC-AMUS-MPA-5", ss().readAppt("7", 200).amendM("7", 200), Met, []uint64{1, 2}, []uint64{}, "sent with If-Match"},
		{"read, then amend it without If-Match", "GPC-AMUS-MPA-5", ss().readAppt("7", 200).amend("7", 200).v4(), NotMet, nil, []uint64{2}, "carried what the step needs"},
		{"read, then amend it, recorded before version 4", "GPC-AMUS-MPA-5", ss().readAppt("7", 200).amend("7", 200), NotExercised, []uint64{1, 2}, nil, "not recorded by this audit version: the If-Match header"},
		{"retrieve, then amend", "GPC-AMUS-MPA-5", ss().retrieve(200).amendM("7", 200), Met, []uint64{1, 2}, nil, ""},
		{"the amended appointment is the one read later, not the first", "GPC-AMUS-MPA-5", ss().readAppt("8", 200).readAppt("7", 200).amendM("7", 200), Met, []uint64{2, 3}, nil, ""},
		{"amend without reading it first", "GPC-AMUS-MPA-5", ss().amend("7", 200), NotMet, nil, []uint64{1}, ""},
		{"amend of another appointment than the one read", "GPC-AMUS-MPA-5", ss().readAppt("8", 200).amend("7", 200), NotMet, nil, []uint64{2}, ""},
		{"stale version: read again, then amended", "GPC-AMUS-MPA-5", ss().readAppt("7", 200).amendM("7", 409).readAppt("7", 200).amendM("7", 200), Met, []uint64{1, 4}, nil, ""},
		{"stale version: the same request again", "GPC-AMUS-MPA-5", ss().readAppt("7", 200).amendM("7", 409).amendM("7", 409).readAppt("7", 200).amendM("7", 200), NotMet, []uint64{1, 5}, []uint64{3}, "version conflict"},
		{"stale version: sent again with another If-Match is not blind", "GPC-AMUS-MPA-5", ss().readAppt("7", 200).amendM("7", 409).amend("7", 200).ifMatch(`W/"2"`), Met, []uint64{1, 3}, nil, ""},
		{"amendments refused only", "GPC-AMUS-MPA-5", ss().readAppt("7", 200).amend("7", 422), NotMet, nil, []uint64{2}, ""},
		{"no amendment", "GPC-AMUS-MPA-5", ss().readAppt("7", 200), NotExercised, nil, nil, ""},

		{"read, amend, cancel", "GPC-AMUS-MPA-4", ss().readAppt("7", 200).amendM("7", 200).cancelR("7", 200), Met, []uint64{1, 3}, nil, "cancellation reason"},
		{"cancelled without a reason", "GPC-AMUS-MPA-4", ss().readAppt("7", 200).cancel("7", 200).ifMatch(`W/"1"`).appt(audit.BodyAppointment{Status: "cancelled"}), NotMet, nil, []uint64{2}, ""},
		{"cancelled, recorded before version 4", "GPC-AMUS-MPA-4", ss().readAppt("7", 200).cancel("7", 200), NotExercised, []uint64{1, 2}, nil, "not recorded by this audit version"},
		{"cancel without reading it first", "GPC-AMUS-MPA-4", ss().cancelR("7", 200), NotMet, nil, []uint64{1}, ""},
		{"no cancellation", "GPC-AMUS-MPA-4", ss().retrieve(200), NotExercised, nil, nil, ""},
	})
}

func TestErrorThenFixed(t *testing.T) {
	noFree := func(s *session, st int) *session {
		return s.call(practiceA, iaSlots, "GET", "/Slot?start=ge2026-03-02&end=le2026-03-09&_include=Slot:schedule", st)
	}
	runReportCases(t, []reportCase{
		{"error, then the corrected search", "GPC-AMUS-BPA-1/3", noFree(ss(), 400).slots(200), Met, []uint64{1, 2}, []uint64{}, "corrected"},
		{"error, not sent again", "GPC-AMUS-BPA-1/3", noFree(ss(), 400).metadata(), Met, []uint64{1}, []uint64{}, "not sent again unchanged"},
		{"refused by the SSP counts as the error", "GPC-AMUS-BPA-1/3", ss().refused(practiceA, iaSlots, "GET", "/Slot?start=ge2026-03-02&end=le2026-03-09", 400), Met, []uint64{1}, nil, ""},
		{"error, then the same request again", "GPC-AMUS-BPA-1/3", noFree(noFree(ss(), 400), 400).slots(200), NotMet, nil, []uint64{2}, "not handled"},
		{"the practice answered it with success", "GPC-AMUS-BPA-1/3", noFree(ss(), 200), NotExercised, nil, []uint64{1}, "not answered 4xx"},
		{"only well-formed searches", "GPC-AMUS-BPA-1/3", ss().slots(200), NotExercised, nil, nil, "no search free slots call without status=free"},

		{"read an unknown organisation: 404", "GPC-FOU-ROR-01/3", ss().call(practiceA, iaReadOrg, "GET", "/Organization/999", 404), Met, []uint64{1}, nil, ""},
		{"read an unknown organisation: 400 is not the answer", "GPC-FOU-ROR-01/3", ss().call(practiceA, iaReadOrg, "GET", "/Organization/x", 400), NotExercised, nil, []uint64{1}, ""},

		{"invalid NHS number refused", "GPC-FOU-FPA-01/8",
			ss().call(practiceA, iaFindPatient, "GET", "/Patient?identifier="+url.QueryEscape("https://fhir.nhs.uk/Id/nhs-number|9999999991"), 400).find(200), Met, []uint64{1, 2}, nil, "modulus 11"},
		{"valid NHS number refused is another matter", "GPC-FOU-FPA-01/8", ss().find(400), NotExercised, nil, nil, "checks the number itself"},
		{"invalid NHS number sent twice unchanged", "GPC-FOU-FPA-01/8",
			ss().call(practiceA, iaFindPatient, "GET", "/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|12345", 400).
				call(practiceA, iaFindPatient, "GET", "/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|12345", 400), NotMet, nil, []uint64{2}, ""},
	})
}

func TestCannotShowAndNotRecorded(t *testing.T) {
	readPatient := func(s *session) *session { return s.call(practiceA, iaReadPatient, "GET", "/Patient/2", 200) }
	runReportCases(t, []reportCase{
		{"display: the read is shown, the test is not met by it", "GPC-FOU-RPA-01/3", readPatient(ss()), NotExercised, []uint64{1}, []uint64{}, "cannot be shown locally"},
		{"display: no read at all", "GPC-FOU-RPA-01/3", ss().find(200), NotExercised, []uint64{}, nil, "no read patient call"},
		{"PDS-sensitive: never from the SSP audit", "GPC-FOU-FPA-01/5", ss().find(200), NotExercised, []uint64{}, nil, "the SSP never sees the PDS trace"},
		{"free-slot display", "GPC-AMUS-BPA-1/2", ss().slots(200), NotExercised, []uint64{1}, nil, "cannot be shown locally"},

		{"blank NHS number: a refused registration is shown", "GPC-FOU-REG-01/5", ss().register(422), NotExercised, []uint64{1}, []uint64{}, "not recorded by this audit version"},
		{"blank NHS number: a successful registration is not the case", "GPC-FOU-REG-01/5", ss().register(200), NotExercised, []uint64{}, nil, "no register patient call"},
		{"multiple records: the count is not recorded", "GPC-FOU-FPA-01/2", ss().find(200), NotExercised, []uint64{1}, nil, "number of resources"},
		{"multi-slot booking, recorded before version 4", "GPC-AMUS-BPA-2-1", ss().slots(200).book(201), NotExercised, []uint64{1, 2}, nil, "two or more slots"},
		{"multi-slot booking", "GPC-AMUS-BPA-2-1", ss().slots(200).book(201).appt(audit.BodyAppointment{Status: "booked", Slots: 2}), Met, []uint64{1, 2}, nil, ""},
		{"one-slot booking only", "GPC-AMUS-BPA-2-1", ss().slots(200).book(201).appt(audit.BodyAppointment{Status: "booked", Slots: 1}), NotExercised, []uint64{}, []uint64{}, "no calls in the order"},
	})
}

// TestRegistrationDefects decides the Register Patient error tests from
// the body summary of record version 4 and the provider's code.
func TestRegistrationDefects(t *testing.T) {
	good := func() *audit.BodyPatient {
		return &audit.BodyPatient{NHSNumbers: 1, NHSNumber: "9658218865", NHSNumberValid: true, Names: 1, Official: 1, Family: true, Given: true,
			Gender: "female", BirthDate: true, Telecoms: 1, TelecomUses: []string{"phone:temp"}, Addresses: 1, AddressUses: []string{"temp"}}
	}
	with := func(edit func(*audit.BodyPatient)) *audit.BodyPatient { p := good(); edit(p); return p }
	noNHS := with(func(p *audit.BodyPatient) { p.NHSNumbers, p.NHSNumber, p.NHSNumberValid = 0, "", false })
	noDOB := with(func(p *audit.BodyPatient) { p.BirthDate = false })
	twoPhones := with(func(p *audit.BodyPatient) { p.Telecoms, p.TelecomUses = 2, []string{"phone:temp", "phone:temp"} })
	twoAddr := with(func(p *audit.BodyPatient) { p.Addresses, p.AddressUses = 2, []string{"temp", "temp"} })
	oldAddr := with(func(p *audit.BodyPatient) { p.AddressUses = []string{"old"} })
	oldPhone := with(func(p *audit.BodyPatient) { p.TelecomUses = []string{"phone:old"} })
	regDetails := with(func(p *audit.BodyPatient) { p.RegistrationDetails = true })
	badNHS := with(func(p *audit.BodyPatient) { p.NHSNumber, p.NHSNumberValid = "9658218866", false })
	const ir, inn = "INVALID_RESOURCE", "INVALID_NHS_NUMBER"
	runReportCases(t, []reportCase{
		{"blank details: the registrationDetails extension", "GPC-FOU-REG-01/3", ss().reg(regDetails, 422, ir).reg(good(), 200, ""), Met, []uint64{1, 2}, []uint64{}, "registrationDetails"},
		{"blank details: no Patient", "GPC-FOU-REG-01/3", ss().reg(nil, 422, "INVALID_PARAMETER"), Met, []uint64{1}, nil, ""},
		{"optional fields", "GPC-FOU-REG-01/4", ss().reg(good(), 200, ""), Met, []uint64{1}, nil, "an address and a telecom"},
		{"optional fields left out", "GPC-FOU-REG-01/4", ss().reg(with(func(p *audit.BodyPatient) { p.Telecoms, p.TelecomUses = 0, nil }), 200, ""), NotExercised, nil, nil, ""},
		{"optional fields, recorded before version 4", "GPC-FOU-REG-01/4", ss().register(200), NotExercised, []uint64{1}, nil, "not recorded by this audit version"},
		{"blank NHS number", "GPC-FOU-REG-01/5", ss().reg(noNHS, 422, ir), Met, []uint64{1}, nil, "no NHS number identifier"},
		{"blank NHS number, sent again unchanged", "GPC-FOU-REG-01/5", ss().reg(noNHS, 422, ir).reg(noNHS, 422, ir), NotMet, nil, []uint64{2}, "not handled"},
		{"blank NHS number, then another defect is not a blind retry", "GPC-FOU-REG-01/5", ss().reg(noNHS, 422, ir).reg(noDOB, 422, ir), Met, []uint64{1}, []uint64{}, ""},
		{"blank NHS number accepted is not the error", "GPC-FOU-REG-01/5", ss().reg(noNHS, 200, ""), NotExercised, nil, []uint64{1}, "not answered 4xx"},
		{"blank date of birth", "GPC-FOU-REG-01/6", ss().reg(noNHS, 422, ir).reg(noDOB, 422, ir), Met, []uint64{2}, nil, "no birth date"},
		{"blank date of birth: another code is not the test's error", "GPC-FOU-REG-01/6", ss().reg(noDOB, 400, inn), NotExercised, nil, []uint64{1}, ""},
		{"duplicate phone use", "GPC-FOU-REG-01/7", ss().reg(twoPhones, 422, ir), Met, []uint64{1}, nil, ""},
		{"duplicate address use", "GPC-FOU-REG-01/8", ss().reg(twoAddr, 422, ir), Met, []uint64{1}, nil, ""},
		{"address use old", "GPC-FOU-REG-01/9", ss().reg(oldAddr, 422, ir), Met, []uint64{1}, nil, ""},
		{"a temp address is not the defect", "GPC-FOU-REG-01/9", ss().reg(twoPhones, 422, ir), NotExercised, nil, nil, ""},
		{"phone use old", "GPC-FOU-REG-01/10", ss().reg(oldPhone, 422, ir), Met, []uint64{1}, nil, ""},
		{"number status: a valid number refused as INVALID_NHS_NUMBER", "GPC-FOU-REG-01/12", ss().reg(good(), 400, inn), Met, []uint64{1}, nil, "modulus 11"},
		{"number status: a malformed number is not the case", "GPC-FOU-REG-01/12", ss().reg(badNHS, 400, inn), NotExercised, nil, nil, ""},
		{"number status: recorded before version 4", "GPC-FOU-REG-01/12", ss().register(400), NotExercised, []uint64{1}, nil, "not recorded by this audit version"},
	})
}

func TestSlotSearches(t *testing.T) {
	search := func(s *session, q string, st int) *session { return s.call(practiceA, iaSlots, "GET", "/Slot?"+q, st) }
	runReportCases(t, []reportCase{
		{"formed as specified", "GPC-AMUS-BPA-1/1", ss().slots(200), Met, []uint64{1}, []uint64{}, ""},
		{"with times and 14 days", "GPC-AMUS-BPA-1/1", search(ss(), slotQuery("2026-03-02T00:00:00%2B00:00", "2026-03-16T00:00:00%2B00:00"), 200), Met, []uint64{1}, nil, ""},
		{"a 20-day period let through", "GPC-AMUS-BPA-1/1", ss().slots(200).call(practiceA, iaSlots, "GET", "/Slot?"+slotQuery("2026-03-02", "2026-03-22"), 200), NotMet, []uint64{1}, []uint64{2}, "not 0 to 14 days"},
		{"end before start", "GPC-AMUS-BPA-1/1", search(ss(), slotQuery("2026-03-09", "2026-03-02"), 200), NotMet, nil, []uint64{1}, ""},
		{"start twice", "GPC-AMUS-BPA-1/1", search(ss(), "start=ge2026-03-02&start=ge2026-03-03&end=le2026-03-09&status=free&_include=Slot:schedule", 200), NotMet, nil, []uint64{1}, "start given 2 times"},
		{"no prefix", "GPC-AMUS-BPA-1/1", search(ss(), "start=2026-03-02&end=le2026-03-09&status=free&_include=Slot:schedule", 200), NotMet, nil, []uint64{1}, "lacks the prefix ge"},
		{"refused only", "GPC-AMUS-BPA-1/1", search(ss(), "start=ge2026-03-02&end=le2026-03-09", 400), NotMet, nil, []uint64{1}, "none was answered with success"},
		{"no search", "GPC-AMUS-BPA-1/1", ss().find(200), NotExercised, nil, nil, ""},

		{"summer and winter", "CONS-AppointmentsAPITest1", search(search(ss(), slotQuery("2026-07-01", "2026-07-08"), 200), slotQuery("2026-01-05", "2026-01-12"), 200), Met, []uint64{1, 2}, nil, "British Summer Time"},
		{"one search across the clocks going forward", "CONS-AppointmentsAPITest1", search(ss(), slotQuery("2026-03-25", "2026-04-01"), 200), Met, []uint64{1, 1}, nil, ""},
		{"summer only", "CONS-AppointmentsAPITest1", search(ss(), slotQuery("2026-07-01", "2026-07-08"), 200), NotExercised, []uint64{1}, nil, "GMT (winter)"},
		{"winter only, and a malformed summer one", "CONS-AppointmentsAPITest1",
			search(search(ss(), slotQuery("2026-01-05", "2026-01-12"), 200), "start=ge2026-07-01&end=le2026-07-08&status=free", 200), NotExercised, []uint64{1}, nil, "BST (summer)"},
		{"none", "CONS-AppointmentsAPITest1", ss().find(200), NotExercised, nil, nil, ""},
	})
}

func TestValidNHSNumber(t *testing.T) {
	for n, want := range map[string]bool{
		"9658218865": true, "9658218873": true, "9000000009": true, "9324926233": true,
		"9999999991": false, "9658218866": false, "965821886": false, "96582188650": false, "965821886x": false, "": false,
		"0000000000": true, // check digit 0 from 11
	} {
		if got := validNHSNumber(n); got != want {
			t.Errorf("validNHSNumber(%q) = %v, want %v", n, got, want)
		}
	}
}

// TestFoundationsComplete: every scenario of foundations.feature
// (nhsconnect/gpc-consumer-support @64d74c91, 41 of them) is in the
// catalogue, and no other Foundations ID.
func TestFoundationsComplete(t *testing.T) {
	var want []string
	for _, g := range []struct {
		prefix string
		n      int
	}{{"CAP-01/", 1}, {"FPA-01/", 8}, {"RPA-01/", 3}, {"REG-01/", 12}, {"FPR-01/", 4}, {"RPR-01/", 3}, {"FOR-01/", 4}, {"ROR-01/", 3}, {"RLO-01/", 3}} {
		for i := 1; i <= g.n; i++ {
			want = append(want, fmt.Sprintf("GPC-FOU-%s%d", g.prefix, i))
		}
	}
	var got []string
	for _, tt := range Catalogue() {
		if tt.Group == GroupFoundations {
			got = append(got, tt.ID)
			if tt.Source != srcFoundations {
				t.Errorf("%s: source %q", tt.ID, tt.Source)
			}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Foundations IDs:\n got %v\nwant %v", got, want)
	}
}

// TestCatalogueRowsComplete: rows of the new kinds carry what their check
// reads, so none reports a catalogue error.
func TestCatalogueRowsComplete(t *testing.T) {
	for _, tt := range Catalogue() {
		switch tt.Check {
		case "sequence":
			keys := 0
			for _, seq := range tt.Sequences {
				if len(seq) < 2 {
					t.Errorf("%s: a sequence of %d step(s)", tt.ID, len(seq))
				}
				for _, s := range seq {
					if len(s.Interactions) == 0 || !s.Absent && s.Expect == "" {
						t.Errorf("%s: step %+v lacks interactions or an expected answer", tt.ID, s)
					}
					if s.Key {
						keys++
					}
				}
			}
			if keys > 1 {
				t.Errorf("%s: %d key steps", tt.ID, keys)
			}
		case "not-recorded":
			if tt.Needs == "" || tt.Interaction == "" {
				t.Errorf("%s: not-recorded without Needs or Interaction", tt.ID)
			}
		case "cannot-show":
			if tt.CannotProve == "" {
				t.Errorf("%s: cannot-show without CannotProve", tt.ID)
			}
		case "search-count":
			if tt.Count == nil || tt.Interaction == "" {
				t.Errorf("%s: search-count without Count or Interaction", tt.ID)
			}
		case "error-then-fixed", "find-invalid-nhs", "interaction":
			if tt.Interaction == "" || tt.Expect == "" {
				t.Errorf("%s: %s without Interaction or Expect", tt.ID, tt.Check)
			}
		}
	}
}
