package demonstrator

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// seedNHSNumbers are the registered patients' NHS numbers; all pass the
// modulus-11 check and the first is the one the NHS examples use.
var seedNHSNumbers = [10]string{
	"9690937286", "9690937294", "9690937308", "9690937316", "9690937324",
	"9690937332", "9690937340", "9690937359", "9690937367", "9690937375",
}

type seedPerson struct {
	family, given, prefix, gender, birthDate string
}

var seedPatients = [10]seedPerson{
	{"SKELLY", "Horace", "Mr", "male", "1952-03-14"},
	{"MEAKIN", "Julie", "Mrs", "female", "1978-07-02"},
	{"PATEL", "Arjun", "Mr", "male", "1990-11-23"},
	{"OKAFOR", "Grace", "Ms", "female", "1965-01-30"},
	{"WILLIAMS", "Owen", "Mr", "male", "2001-05-09"},
	{"NOWAK", "Zofia", "Miss", "female", "1987-09-17"},
	{"HUGHES", "Dylan", "Mr", "male", "1949-12-01"},
	{"BEGUM", "Ayesha", "Mrs", "female", "1983-04-26"},
	{"MURRAY", "Fiona", "Dr", "female", "1971-08-08"},
	{"TAYLOR", "Sam", "Mx", "unknown", "1995-02-12"},
}

type practitionerRec struct {
	id, sdsUserID, sdsRoleID string
	name                     seedPerson
}

type locationRec struct {
	id, name, line, city, postalCode string
}

type scheduleRec struct {
	id, practitionerID, locationID string
	minutes                        int
	serviceType                    string
}

type slotRec struct {
	id         string
	scheduleID string
	start, end time.Time
	free       bool
	version    int
}

type patientRec struct {
	resource  patientResource
	nhsNumber string
}

type appointmentRec struct {
	id          string
	version     int
	lastUpdated time.Time
	body        appointmentBody
	start, end  time.Time
	patientID   string
	slotIDs     []string
}

// state is everything the demonstrator holds; it is replaced wholesale by
// Reset and guarded by Demonstrator.mu.
type state struct {
	seededAt      time.Time
	practitioners []*practitionerRec
	locations     []*locationRec
	schedules     []*scheduleRec
	slots         map[string]*slotRec
	slotOrder     []*slotRec // by start, then ID
	patients      map[string]*patientRec
	patientOrder  []string
	appointments  map[string]*appointmentRec
	apptOrder     []string
	nextPatient   int
	nextSlot      int
	nextAppt      int
}

// seed builds the demonstrator's data relative to now: four weeks of working
// day surgeries, so that every run has free slots in the future.
func seed(now time.Time, loc *time.Location) *state {
	s := &state{
		seededAt:     now,
		slots:        map[string]*slotRec{},
		patients:     map[string]*patientRec{},
		appointments: map[string]*appointmentRec{},
	}
	s.practitioners = []*practitionerRec{
		{id: "1", sdsUserID: "G13579135", sdsRoleID: "111111111111", name: seedPerson{family: "GILBERT", given: "Nichole", prefix: "Dr", gender: "female"}},
		{id: "2", sdsUserID: "G22222226", sdsRoleID: "222222222222", name: seedPerson{family: "SPENCER", given: "Adrian", prefix: "Dr", gender: "male"}},
		{id: "3", sdsUserID: "G33333336", sdsRoleID: "333333333333", name: seedPerson{family: "LOWE", given: "Priya", prefix: "Nurse", gender: "female"}},
	}
	s.locations = []*locationRec{
		{id: "1", name: "Leeds Road Surgery", line: "12 Leeds Road", city: "Leeds", postalCode: "LS1 4AP"},
		{id: "2", name: "Headingley Branch Surgery", line: "3 Otley Road", city: "Leeds", postalCode: "LS6 2AL"},
	}
	s.schedules = []*scheduleRec{
		{id: "1", practitionerID: "1", locationID: "1", minutes: 15, serviceType: "General GP Appointment"},
		{id: "2", practitionerID: "2", locationID: "1", minutes: 10, serviceType: "General GP Appointment"},
		{id: "3", practitionerID: "3", locationID: "2", minutes: 15, serviceType: "Nurse Appointment"},
	}
	for i, nhs := range seedNHSNumbers {
		p := seedPatients[i]
		s.nextPatient++
		id := strconv.Itoa(s.nextPatient)
		s.addPatient(newPatientResource(id, nhs, p, "R", "2", now, loc), nhs)
	}

	// Surgeries: 09:00-12:00 and 14:00-17:00 UK time, Monday to Friday,
	// from today for four weeks; slots that have already started are left out.
	y, m, d := now.In(loc).Date()
	for day := 0; day < 28; day++ {
		date := time.Date(y, m, d+day, 0, 0, 0, 0, loc)
		if wd := date.Weekday(); wd == time.Saturday || wd == time.Sunday {
			continue
		}
		for _, sc := range s.schedules {
			for _, session := range [][2]int{{9, 12}, {14, 17}} {
				t := time.Date(date.Year(), date.Month(), date.Day(), session[0], 0, 0, 0, loc)
				stop := time.Date(date.Year(), date.Month(), date.Day(), session[1], 0, 0, 0, loc)
				for ; t.Before(stop); t = t.Add(time.Duration(sc.minutes) * time.Minute) {
					if !t.After(now) {
						continue
					}
					s.addSlot(sc.id, t, t.Add(time.Duration(sc.minutes)*time.Minute), true)
				}
			}
		}
	}

	// Past appointments need past slots; they are made busy at 10:00 on
	// earlier days.
	past := func(daysAgo int, scheduleID string) *slotRec {
		t := time.Date(y, m, d-daysAgo, 10, 0, 0, 0, loc)
		return s.addSlot(scheduleID, t, t.Add(15*time.Minute), false)
	}
	s.sortSlots()
	futureFree := func(scheduleID string, n int) *slotRec {
		count := 0
		for _, sl := range s.slotOrder {
			if sl.scheduleID == scheduleID && sl.free && sl.start.After(now.Add(48*time.Hour)) {
				if count == n {
					sl.free = false
					return sl
				}
				count++
			}
		}
		return nil
	}
	type seedAppt struct {
		patientID string
		slot      *slotRec
		cancelled bool
		desc      string
	}
	appts := []seedAppt{
		{"1", past(14, "1"), false, "Blood pressure review"},
		{"1", futureFree("1", 0), false, "Medication review"},
		{"2", past(7, "1"), false, "Follow-up"},
		{"2", futureFree("2", 3), false, "Asthma check"},
		{"3", past(21, "3"), true, "Travel vaccinations"},
		{"4", futureFree("3", 5), false, "Dressing change"},
	}
	for _, a := range appts {
		if a.slot == nil {
			continue // a calendar with no working day ahead; nothing to book
		}
		sc := s.schedule(a.slot.scheduleID)
		body := appointmentBody{
			ResourceType: "Appointment",
			Contained: []json.RawMessage{mustJSON(organizationResource{
				ResourceType: "Organization", ID: "1",
				Meta:    meta{Profile: []string{profileOrganization}},
				Name:    "Example consumer practice",
				Telecom: []contactPoint{{System: "phone", Value: "0300 303 5678"}},
			})},
			Extension:   []json.RawMessage{mustJSON(extension{URL: extBookingOrganisation, ValueReference: &reference{Reference: "#1"}})},
			Status:      "booked",
			Description: a.desc,
			Start:       formatTime(a.slot.start, loc),
			End:         formatTime(a.slot.end, loc),
			Slot:        []reference{{Reference: "Slot/" + a.slot.id}},
			Created:     formatTime(a.slot.start.Add(-10*24*time.Hour), loc),
			Participant: []participant{
				{Actor: &reference{Reference: "Patient/" + a.patientID}, Status: "accepted"},
				{Actor: &reference{Reference: "Location/" + sc.locationID}, Status: "accepted"},
				{Actor: &reference{Reference: "Practitioner/" + sc.practitionerID}, Status: "accepted"},
			},
		}
		if a.cancelled {
			body.Status = "cancelled"
			body.Extension = append(body.Extension, mustJSON(extension{URL: extCancellationReason, ValueString: "Patient no longer travelling"}))
		}
		s.addAppointment(body, a.patientID, a.slot, a.slot.start.Add(-10*24*time.Hour))
	}
	s.sortSlots()
	return s
}

func (s *state) addPatient(p patientResource, nhs string) {
	s.patients[p.ID] = &patientRec{resource: p, nhsNumber: nhs}
	s.patientOrder = append(s.patientOrder, p.ID)
}

func (s *state) addSlot(scheduleID string, start, end time.Time, free bool) *slotRec {
	s.nextSlot++
	sl := &slotRec{id: strconv.Itoa(s.nextSlot), scheduleID: scheduleID, start: start, end: end, free: free, version: 1}
	s.slots[sl.id] = sl
	s.slotOrder = append(s.slotOrder, sl)
	return sl
}

func (s *state) sortSlots() {
	sort.SliceStable(s.slotOrder, func(i, j int) bool { return s.slotOrder[i].start.Before(s.slotOrder[j].start) })
}

func (s *state) addAppointment(body appointmentBody, patientID string, sl *slotRec, when time.Time) *appointmentRec {
	s.nextAppt++
	a := &appointmentRec{
		id: strconv.Itoa(s.nextAppt), version: 1, lastUpdated: when, body: body,
		start: sl.start, end: sl.end, patientID: patientID, slotIDs: []string{sl.id},
	}
	s.appointments[a.id] = a
	s.apptOrder = append(s.apptOrder, a.id)
	return a
}

func (s *state) schedule(id string) *scheduleRec {
	for _, sc := range s.schedules {
		if sc.id == id {
			return sc
		}
	}
	return nil
}

func (s *state) practitioner(id string) *practitionerRec {
	for _, p := range s.practitioners {
		if p.id == id {
			return p
		}
	}
	return nil
}

func (s *state) location(id string) *locationRec {
	for _, l := range s.locations {
		if l.id == id {
			return l
		}
	}
	return nil
}

func (s *state) patientByNHS(nhs string) *patientRec {
	for _, id := range s.patientOrder {
		if p := s.patients[id]; p.nhsNumber == nhs {
			return p
		}
	}
	return nil
}

// newPatientResource builds a registered patient; regType is R (regular) for
// the seed and T (temporary) for $gpc.registerpatient.
func newPatientResource(id, nhs string, p seedPerson, regType, gpID string, now time.Time, loc *time.Location) patientResource {
	display := map[string]string{"R": "Regular", "T": "Temporary"}[regType]
	res := patientResource{
		ResourceType: "Patient",
		ID:           id,
		Meta:         meta{VersionID: "1", LastUpdated: formatTime(now, loc), Profile: []string{profilePatient}},
		Extension: []extension{{
			URL: extRegistrationDetails,
			Extension: []extension{
				{URL: "registrationPeriod", ValuePeriod: &period{Start: now.In(loc).Format("2006-01-02")}},
				{URL: "registrationType", ValueCodeableConcept: &codeableConcept{Coding: []coding{{System: codeRegistrationType, Code: regType, Display: display}}}},
			},
		}},
		Identifier: []identifier{{
			Extension: []extension{{URL: extNHSNumberVerification, ValueCodeableConcept: &codeableConcept{Coding: []coding{{System: codeNHSNumberVerification, Code: "01", Display: "Number present and verified"}}}}},
			System:    systemNHSNumber,
			Value:     nhs,
		}},
		Active:               true,
		Name:                 []humanName{{Use: "official", Family: p.family, Given: []string{p.given}, Prefix: nonEmpty(p.prefix)}},
		Gender:               p.gender,
		BirthDate:            p.birthDate,
		Address:              []address{{Use: "home", Type: "physical", Line: []string{fmt.Sprintf("%s Street", p.given)}, City: "Leeds", PostalCode: "LS1 1AA"}},
		GeneralPractitioner:  []reference{{Reference: "Practitioner/" + gpID}},
		ManagingOrganization: &reference{Reference: "Organization/1"},
	}
	return res
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("demonstrator: marshal seed value: %v", err)) // static data; cannot fail
	}
	return b
}
