package demonstrator

import (
	"time"

	"sspemu/fhir"
)

// Store holds one practice's resources behind read and write transactions,
// so the handlers never see how they are kept: the in-memory store is the
// default, and another (a database, a file) can replace it without touching
// them.
//
// A View sees one consistent state. An Update is atomic and isolated: the
// changes made through its Tx land together when fn returns nil, and none
// of them lands when fn returns an error or panics. The practice writes the
// audit record of a change inside the Update that makes it, so a change
// never lands without its record.
type Store interface {
	View(fn func(Tx) error) error
	Update(fn func(Tx) error) error
	// Reset replaces everything with d (the practice's seed data).
	Reset(d Data) error
}

// Tx is one transaction over a practice's resources. The values it returns
// are copies: changing one changes nothing until it is put back with a Put
// method, in an Update. Calling a Put method or a New*ID method in a View
// is a programming error and panics.
type Tx interface {
	// SeededAt is when the seed data was made: the lastUpdated of the
	// resources that never change.
	SeededAt() time.Time

	Practitioners() []Practitioner
	Practitioner(id string) (Practitioner, bool)
	Locations() []Location
	Location(id string) (Location, bool)
	Schedules() []Schedule
	Schedule(id string) (Schedule, bool)

	Slot(id string) (Slot, bool)
	// SlotsStarting calls fn for each slot whose start lies in [from,
	// before), in order of start, until fn returns false.
	SlotsStarting(from, before time.Time, fn func(Slot) bool)
	PutSlot(Slot)

	Patient(id string) (Patient, bool)
	PatientByNHS(nhs string) (Patient, bool)
	// Patients lists every registered patient in order of logical ID.
	Patients() []Patient
	// NewPatientID reserves the logical ID of the next patient.
	NewPatientID() string
	PutPatient(Patient)

	Appointment(id string) (Appointment, bool)
	// AppointmentsOf lists a patient's appointments in the order they were
	// booked.
	AppointmentsOf(patientID string) []Appointment
	// NewAppointmentID reserves the logical ID of the next appointment.
	NewAppointmentID() string
	PutAppointment(Appointment)
}

// Data is the whole content of a store: what a seed produces and Reset
// loads. Logical IDs are decimal numbers counted from 1 in each kind, so a
// store can go on counting from the largest.
type Data struct {
	SeededAt      time.Time
	Practitioners []Practitioner
	Locations     []Location
	Schedules     []Schedule
	Slots         []Slot
	Patients      []Patient
	Appointments  []Appointment
}

// Practitioner is a member of the practice's staff.
type Practitioner struct {
	ID               string
	SDSUserID        string
	SDSRoleProfileID string
	Family           string
	Given            string
	Prefix           string
	Gender           string

	// MoreRoleProfileIDs are the practitioner's further SDS role profiles,
	// after SDSRoleProfileID: a practitioner has none, one or several.
	MoreRoleProfileIDs []string
}

// Location is one of the practice's sites.
type Location struct {
	ID      string
	Name    string
	Phone   string
	Address fhir.Address
}

// Schedule is one practitioner's surgeries at one location.
type Schedule struct {
	ID             string
	PractitionerID string
	LocationID     string
	Minutes        int
	// ServiceType is its slots' type (Slot.serviceType.text) and
	// ServiceCategory its own (Schedule.serviceCategory.text): the
	// practice's names, which appointments carry too.
	ServiceType     string
	ServiceCategory string
	// PractitionerRole is the SDS job role code of whoever runs it
	// (GPConnect-PractitionerRole-1, e.g. R0260) and DeliveryChannel how
	// its slots are delivered (In-person, Telephone or Video).
	PractitionerRole string
	DeliveryChannel  string
}

// Slot is one bookable period of a schedule.
type Slot struct {
	ID         string
	ScheduleID string
	Start, End time.Time
	Free       bool
	Version    int
}

// Patient is a registered patient.
type Patient struct {
	ID        string
	NHSNumber string
	Family    string
	Given     string
	Prefix    string
	Gender    string
	BirthDate string // 2006-01-02
	Address   []fhir.Address
	// GPID is the logical ID of the patient's usual GP (a Practitioner).
	GPID string
	// RegistrationType is R (regular: the seed) or T (temporary:
	// $gpc.registerpatient), as in CareConnect-RegistrationType-1.
	RegistrationType string
	Registered       time.Time
	Version          int
	LastUpdated      time.Time

	// MoreGiven are the official name's further given names, after Given;
	// OtherNames the names of other uses (nickname, maiden, ...), as
	// registered.
	MoreGiven  []string
	OtherNames []fhir.HumanName
	// Telecom are the patient's phone numbers and email address.
	Telecom []fhir.ContactPoint
	// Communication is the patient's language (the NHSCommunication
	// extension); nil when not known.
	Communication *Communication
	// Deceased is when the patient died, a FHIR date or dateTime; empty
	// while alive.
	Deceased string
	// Inactive marks a lapsed registration: a patient search leaves the
	// patient out, and Register Patient re-activates them as temporary.
	Inactive bool
	// Sensitive marks a patient PDS flags as sensitive (restricted): a
	// patient search leaves them out, and Register Patient refuses them.
	Sensitive bool
	// NotOnPDS marks a record the practice holds under an NHS number PDS
	// does not know (one never traced): PDS answers 404 for it, so Register
	// Patient refuses it.
	NotOnPDS bool
	// Seeded marks a patient of the practice's seed, whom the Spine's PDS
	// holds as registered there. A patient Register Patient adds was on PDS
	// before, and a temporary registration leaves PDS as it was.
	Seeded bool
}

// Communication is a patient's language preference, as the
// Extension-CareConnect-GPC-NHSCommunication-1 extension carries it.
type Communication struct {
	Language            fhir.Coding // from CareConnect-HumanLanguage-1
	Preferred           *bool
	InterpreterRequired *bool
}

// Appointment is a booked (or cancelled) appointment: the Appointment as
// the consumer sent it, plus what the practice derived from it.
type Appointment struct {
	ID          string
	Version     int
	LastUpdated time.Time
	Start, End  time.Time
	PatientID   string
	SlotIDs     []string
	Body        AppointmentBody
}
