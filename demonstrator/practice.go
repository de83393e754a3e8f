package demonstrator

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"sspemu/gpconnect"
)

// Config is the demonstrator: section of config.yaml.
type Config struct {
	Enabled bool   `mapstructure:"enabled"`
	Listen  string `mapstructure:"listen"`
	// ASID and ODS are the earlier one-practice form: when either is set,
	// the practices are that one practice (the other taking A20047's value)
	// with the built-in seed, and Practices is not read.
	ASID             string `mapstructure:"asid"`
	ODS              string `mapstructure:"ods"`
	RequireSSPClient bool   `mapstructure:"require_ssp_client"`
	// Cert and Key are its server certificate; empty: the dev PKI's
	// provider.pem / provider-key.pem (SANs localhost, 127.0.0.1, ::1).
	Cert      string     `mapstructure:"cert"`
	Key       string     `mapstructure:"key"`
	Practices []Practice `mapstructure:"practices"`
}

// The identities of the built-in practice, the public GP Connect
// demonstrator's, which the earlier one-practice form defaults to.
const (
	DefaultODS  = "A20047"
	DefaultASID = "918999198993"
	DefaultName = "GP Connect Demonstrator Surgery"
)

// Practice is one GP practice as configured: its identity and its seed.
// It is served at https://<listen>/<ODS>/STU3/1/gpconnect.
type Practice struct {
	ODS  string `mapstructure:"ods"`
	ASID string `mapstructure:"asid"`
	Name string `mapstructure:"name"`
	// Seed is its starting data; nil: the built-in seed (DefaultSeed).
	Seed *Seed `mapstructure:"seed"`
}

// PracticeList is the practices the configuration describes: the earlier
// demonstrator.asid + demonstrator.ods form when either is set, else
// demonstrator.practices.
func (c Config) PracticeList() []Practice {
	if c.ASID == "" && c.ODS == "" {
		return c.Practices
	}
	p := Practice{ODS: c.ODS, ASID: c.ASID, Name: DefaultName}
	if p.ODS == "" {
		p.ODS = DefaultODS
	}
	if p.ASID == "" {
		p.ASID = DefaultASID
	}
	return []Practice{p}
}

// ServiceRootPath is the path of a practice's service root.
func ServiceRootPath(ods string) string { return "/" + ods + "/STU3/1/gpconnect" }

var (
	asidPattern = regexp.MustCompile(`^[0-9]{12}$`)
	odsPattern  = regexp.MustCompile(`^[A-Z0-9]{3,10}$`)
)

// Validate reports every problem of the practices at once, each naming the
// practice: an ASID that is not 12 digits (Ssp-To is 12 digits, so another
// could never be addressed), an ODS code that cannot be a path segment, a
// repeated ODS code or ASID, an NHS number registered at two practices, and
// whatever is wrong in a seed.
func (c Config) Validate() error {
	list := c.PracticeList()
	if len(list) == 0 {
		return errors.New("demonstrator.practices: no practices: list at least one (ods, asid, name)")
	}
	return validatePractices(list)
}

func validatePractices(list []Practice) error {
	var errs []error
	odsSeen, asidSeen, nhsSeen := map[string]string{}, map[string]string{}, map[string]string{}
	for i, p := range list {
		label := practiceLabel(i, p)
		fail := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("%s: "+format, append([]any{label}, a...)...))
		}
		if !asidPattern.MatchString(p.ASID) {
			fail("asid %q must be exactly 12 digits (Ssp-To carries it)", p.ASID)
		} else if other, dup := asidSeen[p.ASID]; dup {
			fail("asid %s is already the ASID of %s", p.ASID, other)
		} else {
			asidSeen[p.ASID] = label
		}
		if !odsPattern.MatchString(p.ODS) {
			fail("ods %q must be 3 to 10 capital letters or digits (it is a path segment of the service root)", p.ODS)
		} else if other, dup := odsSeen[p.ODS]; dup {
			fail("ods %s is already the ODS code of %s", p.ODS, other)
		} else {
			odsSeen[p.ODS] = label
		}
		if p.Name == "" {
			fail("name must not be empty (it is the Organization's name)")
		}
		seed := p.seed()
		for _, err := range seed.validate() {
			fail("seed: %v", err)
		}
		for j, pt := range seed.Patients {
			switch other, dup := nhsSeen[pt.NHSNumber]; {
			case !dup:
				nhsSeen[pt.NHSNumber] = label
			case other != label:
				fail("seed: patient %d: NHS number %s is already registered at %s (a patient has one registered practice)", j+1, pt.NHSNumber, other)
			}
		}
	}
	return errors.Join(errs...)
}

func practiceLabel(i int, p Practice) string {
	if p.ODS != "" {
		return fmt.Sprintf("demonstrator practice %d (%s)", i+1, p.ODS)
	}
	return fmt.Sprintf("demonstrator practice %d", i+1)
}

func (p Practice) seed() *Seed {
	if p.Seed == nil {
		return DefaultSeed()
	}
	return p.Seed
}

// Seed is a practice's starting data, recomputed from the business clock
// at start and at every reset, so that there are always free slots ahead.
// Logical IDs follow list order (the first practitioner is Practitioner/1,
// the second Practitioner/2, ...) and the numbers in schedules, patients
// and appointments refer to them.
type Seed struct {
	// Phone and Address are the Organization's.
	Phone         string             `mapstructure:"phone"`
	Address       SeedAddress        `mapstructure:"address"`
	Practitioners []SeedPractitioner `mapstructure:"practitioners"`
	Locations     []SeedLocation     `mapstructure:"locations"`
	Schedules     []SeedSchedule     `mapstructure:"schedules"`
	// Sessions are the daily surgeries, "09:00-12:00" in UK time, Monday
	// to Friday; empty: 09:00-12:00 and 14:00-17:00.
	Sessions []string `mapstructure:"sessions"`
	// WeekendSessions are the Saturday and Sunday surgeries (extended
	// access), in the same form; empty: none.
	WeekendSessions []string `mapstructure:"weekend_sessions"`
	// Days is how many days ahead, from today, have slots; 0: 28.
	Days         int               `mapstructure:"days"`
	Patients     []SeedPatient     `mapstructure:"patients"`
	Appointments []SeedAppointment `mapstructure:"appointments"`
}

// SeedAddress is a postal address.
type SeedAddress struct {
	Line       string `mapstructure:"line"`
	City       string `mapstructure:"city"`
	PostalCode string `mapstructure:"postal_code"`
}

// SeedPractitioner is one practitioner.
type SeedPractitioner struct {
	SDSUserID        string `mapstructure:"sds_user_id"`
	SDSRoleProfileID string `mapstructure:"sds_role_profile_id"`
	Family           string `mapstructure:"family"`
	Given            string `mapstructure:"given"`
	Prefix           string `mapstructure:"prefix"`
	Gender           string `mapstructure:"gender"`

	// MoreRoleProfileIDs are further SDS role profiles: a practitioner has
	// none (no sds_role_profile_id), one or several.
	MoreRoleProfileIDs []string `mapstructure:"more_role_profile_ids"`
}

// SeedLocation is one site of the practice.
type SeedLocation struct {
	Name    string      `mapstructure:"name"`
	Phone   string      `mapstructure:"phone"`
	Address SeedAddress `mapstructure:"address"`
}

// SeedSchedule is one practitioner's surgeries at one location, cut into
// slots of Minutes.
type SeedSchedule struct {
	Practitioner int    `mapstructure:"practitioner"`
	Location     int    `mapstructure:"location"`
	Minutes      int    `mapstructure:"minutes"`
	ServiceType  string `mapstructure:"service_type"`
	// ServiceCategory is the schedule's type (session name); empty: "GP
	// Surgery".
	ServiceCategory string `mapstructure:"service_category"`
	// PractitionerRole is an SDS job role code of GPConnect-PractitionerRole-1
	// (R0260 General Medical Practitioner, R0620 Staff Nurse, ...); empty:
	// R0260.
	PractitionerRole string `mapstructure:"practitioner_role"`
	// DeliveryChannel is how its slots are delivered: In-person, Telephone
	// or Video; empty: In-person.
	DeliveryChannel string `mapstructure:"delivery_channel"`
}

// SeedPatient is one registered patient.
type SeedPatient struct {
	NHSNumber string       `mapstructure:"nhs_number"`
	Family    string       `mapstructure:"family"`
	Given     string       `mapstructure:"given"`
	Prefix    string       `mapstructure:"prefix"`
	Gender    string       `mapstructure:"gender"`
	BirthDate string       `mapstructure:"birth_date"`
	Address   *SeedAddress `mapstructure:"address"`
	// GP is the patient's usual GP (a practitioner number); 0: the first.
	GP int `mapstructure:"gp"`

	// The states a provider must handle (the provider conformance suite
	// needs one patient in each): Deceased is the date (or dateTime) of
	// death; Inactive a lapsed registration; Sensitive PDS's sensitive
	// flag; NotOnPDS a record PDS does not hold. A patient search finds
	// none of the first three, and Register Patient refuses all but an
	// inactive one, which it re-activates.
	Deceased  string `mapstructure:"deceased"`
	Inactive  bool   `mapstructure:"inactive"`
	Sensitive bool   `mapstructure:"sensitive"`
	NotOnPDS  bool   `mapstructure:"not_on_pds"`

	// Error makes the patient a designated error patient: every request
	// that names them is answered with it (SeedError); nil: none.
	Error *SeedError `mapstructure:"error"`
}

// SeedAppointment is an appointment already in the book: DaysAgo > 0 puts
// it at 10:00 that many days ago (a slot made for it, busy), otherwise it
// takes the FreeSlot-th (from 0) free slot of the schedule that starts more
// than two days ahead.
type SeedAppointment struct {
	Patient            int    `mapstructure:"patient"`
	Schedule           int    `mapstructure:"schedule"`
	DaysAgo            int    `mapstructure:"days_ago"`
	FreeSlot           int    `mapstructure:"free_slot"`
	Description        string `mapstructure:"description"`
	CancellationReason string `mapstructure:"cancellation_reason"` // non-empty: cancelled
}

var defaultSessions = []string{"09:00-12:00", "14:00-17:00"}

const defaultDays = 28

// session is one parsed surgery: minutes after midnight.
type session struct{ from, to int }

func parseSession(s string) (session, error) {
	var h1, m1, h2, m2 int
	if n, err := fmt.Sscanf(s, "%d:%d-%d:%d", &h1, &m1, &h2, &m2); err != nil || n != 4 ||
		len(s) != len("09:00-12:00") || h1 > 23 || h2 > 24 || m1 > 59 || m2 > 59 || h1 < 0 || m1 < 0 || h2 < 0 || m2 < 0 {
		return session{}, fmt.Errorf("session %q is not HH:MM-HH:MM", s)
	}
	se := session{h1*60 + m1, h2*60 + m2}
	if se.to <= se.from || se.to > 24*60 {
		return session{}, fmt.Errorf("session %q ends before it starts", s)
	}
	return se, nil
}

// validate lists every problem of the seed, each naming its item.
func (s *Seed) validate() []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if len(s.Practitioners) == 0 || len(s.Locations) == 0 || len(s.Schedules) == 0 {
		fail("needs at least one practitioner, one location and one schedule")
	}
	for i, p := range s.Practitioners {
		if p.SDSUserID == "" || p.Family == "" {
			fail("practitioner %d: sds_user_id and family are mandatory", i+1)
		}
		if p.Gender != "" && !genders[p.Gender] {
			fail("practitioner %d: gender %q is not male, female, other or unknown", i+1, p.Gender)
		}
	}
	for i, l := range s.Locations {
		if l.Name == "" {
			fail("location %d: name is mandatory", i+1)
		}
	}
	for i, sc := range s.Schedules {
		if sc.Practitioner < 1 || sc.Practitioner > len(s.Practitioners) {
			fail("schedule %d: practitioner %d is not one of the %d practitioners", i+1, sc.Practitioner, len(s.Practitioners))
		}
		if sc.Location < 1 || sc.Location > len(s.Locations) {
			fail("schedule %d: location %d is not one of the %d locations", i+1, sc.Location, len(s.Locations))
		}
		if sc.Minutes < 5 || sc.Minutes > 240 {
			fail("schedule %d: minutes %d must be between 5 and 240", i+1, sc.Minutes)
		}
		if sc.ServiceType == "" {
			fail("schedule %d: service_type is mandatory", i+1)
		}
		if _, ok := practitionerRoles[sc.PractitionerRole]; sc.PractitionerRole != "" && !ok {
			fail("schedule %d: practitioner_role %q is not a code of GPConnect-PractitionerRole-1 (e.g. R0260, R0620)", i+1, sc.PractitionerRole)
		}
		if sc.DeliveryChannel != "" && !slices.Contains(deliveryChannels, sc.DeliveryChannel) {
			fail("schedule %d: delivery_channel %q is not one of %s", i+1, sc.DeliveryChannel, strings.Join(deliveryChannels, ", "))
		}
	}
	for _, se := range s.Sessions {
		if _, err := parseSession(se); err != nil {
			fail("%v", err)
		}
	}
	for _, se := range s.WeekendSessions {
		if _, err := parseSession(se); err != nil {
			fail("weekend_sessions: %v", err)
		}
	}
	if s.Days < 0 || s.Days > 366 {
		fail("days %d must be between 1 and 366 (0: %d)", s.Days, defaultDays)
	}
	seen := map[string]int{}
	for i, p := range s.Patients {
		switch {
		case !gpconnect.ValidNHSNumber(p.NHSNumber):
			fail("patient %d: NHS number %q is not 10 digits with a modulus-11 check digit", i+1, p.NHSNumber)
		case seen[p.NHSNumber] > 0:
			fail("patient %d: NHS number %s is also patient %d's", i+1, p.NHSNumber, seen[p.NHSNumber])
		default:
			seen[p.NHSNumber] = i + 1
		}
		if p.Family == "" {
			fail("patient %d: family is mandatory", i+1)
		}
		if !genders[p.Gender] {
			fail("patient %d: gender %q is not male, female, other or unknown", i+1, p.Gender)
		}
		if _, err := time.Parse(time.DateOnly, p.BirthDate); err != nil {
			fail("patient %d: birth_date %q is not a date (2006-01-02)", i+1, p.BirthDate)
		}
		if p.GP < 0 || p.GP > len(s.Practitioners) {
			fail("patient %d: gp %d is not one of the %d practitioners", i+1, p.GP, len(s.Practitioners))
		}
		if p.Error != nil {
			for _, err := range p.Error.validate() {
				fail("patient %d (%s): %v", i+1, p.NHSNumber, err)
			}
		}
		if p.Deceased != "" && !fhirDateOrDateTime(p.Deceased) {
			fail("patient %d: deceased %q is not a date (2006-01-02) or a dateTime with offset (2006-01-02T15:04:05+00:00)", i+1, p.Deceased)
		}
	}
	for i, a := range s.Appointments {
		if a.Patient < 1 || a.Patient > len(s.Patients) {
			fail("appointment %d: patient %d is not one of the %d patients", i+1, a.Patient, len(s.Patients))
		}
		if a.Schedule < 1 || a.Schedule > len(s.Schedules) {
			fail("appointment %d: schedule %d is not one of the %d schedules", i+1, a.Schedule, len(s.Schedules))
		}
		if a.DaysAgo < 0 || a.FreeSlot < 0 {
			fail("appointment %d: days_ago and free_slot must not be negative", i+1)
		}
	}
	return errs
}

// DefaultSeed is the built-in practice's data (A20047 in Leeds): five
// practitioners, three locations (the third, a branch with no bookable
// surgeries of its own), three schedules with weekday and weekend
// surgeries, eighteen patients (three of them designated error patients) and six appointments. Every earlier contract of the demonstrator (IDs, NHS
// numbers, slot lengths, surgery hours) rests on it, so it changes only
// with them.
func DefaultSeed() *Seed {
	leeds := func(line string) *SeedAddress { return &SeedAddress{Line: line, City: "Leeds", PostalCode: "LS1 1AA"} }
	return &Seed{
		Phone:   "0113 496 0000",
		Address: SeedAddress{Line: "12 Leeds Road", City: "Leeds", PostalCode: "LS1 4AP"},
		Practitioners: []SeedPractitioner{
			{SDSUserID: "G13579135", SDSRoleProfileID: "111111111111", Family: "GILBERT", Given: "Nichole", Prefix: "Dr", Gender: "female"},
			{SDSUserID: "G22222226", SDSRoleProfileID: "222222222222", Family: "SPENCER", Given: "Adrian", Prefix: "Dr", Gender: "male"},
			{SDSUserID: "G33333336", SDSRoleProfileID: "333333333333", Family: "LOWE", Given: "Priya", Prefix: "Nurse", Gender: "female"},
			// A locum without an SDS role profile, and a GP with two.
			{SDSUserID: "G44444454", Family: "OWUSU", Given: "Kwame", Prefix: "Dr", Gender: "male"},
			{SDSUserID: "G55555564", SDSRoleProfileID: "555555555564", MoreRoleProfileIDs: []string{"555555555572"}, Family: "REID", Given: "Morag", Prefix: "Dr", Gender: "female"},
		},
		Locations: []SeedLocation{
			{Name: "Leeds Road Surgery", Phone: "0113 496 0001", Address: SeedAddress{Line: "12 Leeds Road", City: "Leeds", PostalCode: "LS1 4AP"}},
			{Name: "Headingley Branch Surgery", Phone: "0113 496 0002", Address: SeedAddress{Line: "3 Otley Road", City: "Leeds", PostalCode: "LS6 2AL"}},
			{Name: "Moortown Branch Surgery", Phone: "0113 496 0003", Address: SeedAddress{Line: "1 King Lane", City: "Leeds", PostalCode: "LS17 5NX"}},
		},
		Schedules: []SeedSchedule{
			{Practitioner: 1, Location: 1, Minutes: 15, ServiceType: "General GP Appointment", ServiceCategory: "GP Surgery", PractitionerRole: "R0260", DeliveryChannel: "In-person"},
			{Practitioner: 2, Location: 1, Minutes: 10, ServiceType: "General GP Appointment", ServiceCategory: "GP Telephone Surgery", PractitionerRole: "R0260", DeliveryChannel: "Telephone"},
			{Practitioner: 3, Location: 2, Minutes: 15, ServiceType: "Nurse Appointment", ServiceCategory: "Nurse Clinic", PractitionerRole: "R0620", DeliveryChannel: "In-person"},
		},
		Sessions:        defaultSessions,
		WeekendSessions: []string{"09:00-12:00"},
		Days:            defaultDays,
		Patients: []SeedPatient{
			{NHSNumber: "9690937286", Family: "SKELLY", Given: "Horace", Prefix: "Mr", Gender: "male", BirthDate: "1952-03-14", Address: leeds("Horace Street"), GP: 2},
			{NHSNumber: "9690937294", Family: "MEAKIN", Given: "Julie", Prefix: "Mrs", Gender: "female", BirthDate: "1978-07-02", Address: leeds("Julie Street"), GP: 2},
			{NHSNumber: "9690937308", Family: "PATEL", Given: "Arjun", Prefix: "Mr", Gender: "male", BirthDate: "1990-11-23", Address: leeds("Arjun Street"), GP: 2},
			{NHSNumber: "9690937316", Family: "OKAFOR", Given: "Grace", Prefix: "Ms", Gender: "female", BirthDate: "1965-01-30", Address: leeds("Grace Street"), GP: 2},
			{NHSNumber: "9690937324", Family: "WILLIAMS", Given: "Owen", Prefix: "Mr", Gender: "male", BirthDate: "2001-05-09", Address: leeds("Owen Street"), GP: 2},
			{NHSNumber: "9690937332", Family: "NOWAK", Given: "Zofia", Prefix: "Miss", Gender: "female", BirthDate: "1987-09-17", Address: leeds("Zofia Street"), GP: 2},
			{NHSNumber: "9690937340", Family: "HUGHES", Given: "Dylan", Prefix: "Mr", Gender: "male", BirthDate: "1949-12-01", Address: leeds("Dylan Street"), GP: 2},
			{NHSNumber: "9690937359", Family: "BEGUM", Given: "Ayesha", Prefix: "Mrs", Gender: "female", BirthDate: "1983-04-26", Address: leeds("Ayesha Street"), GP: 2},
			{NHSNumber: "9690937367", Family: "MURRAY", Given: "Fiona", Prefix: "Dr", Gender: "female", BirthDate: "1971-08-08", Address: leeds("Fiona Street"), GP: 2},
			{NHSNumber: "9690937375", Family: "TAYLOR", Given: "Sam", Prefix: "Mx", Gender: "unknown", BirthDate: "1995-02-12", Address: leeds("Sam Street"), GP: 2},
			// The states a provider must handle: found by no patient search,
			// and refused by Register Patient (the inactive one is
			// re-activated instead). The last has dissented from sharing
			// their record, which Foundations and Appointment Management do
			// not look at: it is found and booked like any other.
			{NHSNumber: "9690937383", Family: "BARNES", Given: "Walter", Prefix: "Mr", Gender: "male", BirthDate: "1938-10-04", Address: leeds("Walter Street"), GP: 2, Deceased: "2025-01-19"},
			{NHSNumber: "9690937391", Family: "QUINN", Given: "Roisin", Prefix: "Ms", Gender: "female", BirthDate: "1980-03-27", GP: 2, Sensitive: true},
			{NHSNumber: "9690937480", Family: "DOYLE", Given: "Patrick", Prefix: "Mr", Gender: "male", BirthDate: "1969-06-15", Address: leeds("Patrick Street"), GP: 2, Inactive: true},
			{NHSNumber: "9690937499", Family: "FENWICK", Given: "Lily", Prefix: "Miss", Gender: "female", BirthDate: "2012-12-03", Address: leeds("Lily Street"), GP: 2, NotOnPDS: true},
			{NHSNumber: "9690937502", Family: "AHMED", Given: "Bilal", Prefix: "Mr", Gender: "male", BirthDate: "1999-08-21", Address: leeds("Bilal Street"), GP: 2},
			// Designated error patients (README, Testing your consumer's
			// error handling): every request that names them is answered
			// with their error, as the NHS demonstrator's are.
			{NHSNumber: "9690937561", Family: "CONSENT", Given: "Noel", Prefix: "Mr", Gender: "male", BirthDate: "1970-01-01", Address: leeds("Consent Street"), GP: 2,
				Error: &SeedError{Status: 403, Code: gpconnect.CodeNoPatientConsent}},
			{NHSNumber: "9690937588", Family: "FAILURE", Given: "Ivy", Prefix: "Ms", Gender: "female", BirthDate: "1970-01-02", Address: leeds("Failure Street"), GP: 2,
				Error: &SeedError{Status: 500, Code: gpconnect.CodeInternalServerError}},
			{NHSNumber: "9690937596", Family: "REFUSED", Given: "Bram", Prefix: "Mr", Gender: "male", BirthDate: "1970-01-03", Address: leeds("Refused Street"), GP: 2,
				Error: &SeedError{Status: 403, Code: gpconnect.CodeAccessDenied, On: []string{gpconnect.CreateAppointment}}},
		},
		Appointments: []SeedAppointment{
			{Patient: 1, Schedule: 1, DaysAgo: 14, Description: "Blood pressure review"},
			{Patient: 1, Schedule: 1, FreeSlot: 0, Description: "Medication review"},
			{Patient: 2, Schedule: 1, DaysAgo: 7, Description: "Follow-up"},
			{Patient: 2, Schedule: 2, FreeSlot: 3, Description: "Asthma check"},
			{Patient: 3, Schedule: 3, DaysAgo: 21, Description: "Travel vaccinations", CancellationReason: "Patient no longer travelling"},
			{Patient: 4, Schedule: 3, FreeSlot: 5, Description: "Dressing change"},
		},
	}
}
