package demonstrator

import (
	"encoding/json"
	"time"

	"sspemu/fhir"
)

// The profiles and systems the demonstrator writes into its resources.
const (
	profilePatient      = "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Patient-1"
	profilePractitioner = "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Practitioner-1"
	profileOrganization = "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Organization-1"
	profileLocation     = "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Location-1"
	profileSlot         = "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Slot-1"
	profileSchedule     = "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Schedule-1"
	profileAppointment  = "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Appointment-1"
	profileBundle       = "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Searchset-Bundle-1"

	systemNHSNumber     = "https://fhir.nhs.uk/Id/nhs-number"
	systemSDSUserID     = "https://fhir.nhs.uk/Id/sds-user-id"
	systemSDSRoleID     = "https://fhir.nhs.uk/Id/sds-role-profile-id"
	systemODSCode       = "https://fhir.nhs.uk/Id/ods-organization-code"
	systemLocalLocation = "https://fhir.nhs.uk/Id/local-location-identifier"

	extRegistrationDetails    = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-RegistrationDetails-1"
	extNHSNumberVerification  = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-NHSNumberVerificationStatus-1"
	codeNHSNumberVerification = "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-NHSNumberVerificationStatus-1"
	extBookingOrganisation    = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-BookingOrganisation-1"
	extCancellationReason     = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-AppointmentCancellationReason-1"
	codeRegistrationType      = "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-RegistrationType-1"

	extNHSCommunication = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-NHSCommunication-1"
	codeHumanLanguage   = "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-HumanLanguage-1"
)

// fhirTime is the dateTime layout the demonstrator writes: seconds and a
// numeric UTC offset, as in the GP Connect examples.
const fhirTime = "2006-01-02T15:04:05-07:00"

// formatTime writes t in loc as fhirTime does, by hand: a slot search
// writes three instants per slot, and time.Format's layout walk was a tenth
// of its CPU.
func formatTime(t time.Time, loc *time.Location) string {
	t = t.In(loc)
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	_, off := t.Zone()
	if y < 0 || y > 9999 {
		return t.Format(fhirTime)
	}
	b := make([]byte, 0, len(fhirTime))
	b = append4(b, y)
	b = append(b, '-')
	b = append2(b, int(mo))
	b = append(b, '-')
	b = append2(b, d)
	b = append(b, 'T')
	b = append2(b, h)
	b = append(b, ':')
	b = append2(b, mi)
	b = append(b, ':')
	b = append2(b, s)
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	b = append(b, sign)
	b = append2(b, off/3600)
	b = append(b, ':')
	b = append2(b, off%3600/60)
	return string(b)
}

func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10%10), byte('0'+n%10)) }

func append4(b []byte, n int) []byte {
	return append(b, byte('0'+n/1000), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10))
}

// The resources the practices answer with. Members follow the STU3 element
// order, so encoding/json writes them in the order the XML form needs too.

type patientResource struct {
	ResourceType         string              `json:"resourceType"`
	ID                   string              `json:"id"`
	Meta                 fhir.Meta           `json:"meta"`
	Extension            []fhir.Extension    `json:"extension,omitempty"`
	Identifier           []fhir.Identifier   `json:"identifier"`
	Active               bool                `json:"active"`
	Name                 []fhir.HumanName    `json:"name"`
	Telecom              []fhir.ContactPoint `json:"telecom,omitempty"`
	Gender               string              `json:"gender,omitempty"`
	BirthDate            string              `json:"birthDate"`
	DeceasedDateTime     string              `json:"deceasedDateTime,omitempty"`
	Address              []fhir.Address      `json:"address,omitempty"`
	GeneralPractitioner  []fhir.Reference    `json:"generalPractitioner,omitempty"`
	ManagingOrganization *fhir.Reference     `json:"managingOrganization,omitempty"`
}

type practitionerResource struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id"`
	Meta         fhir.Meta         `json:"meta"`
	Identifier   []fhir.Identifier `json:"identifier"`
	Name         []fhir.HumanName  `json:"name"`
	Gender       string            `json:"gender,omitempty"`
}

type organizationResource struct {
	ResourceType string              `json:"resourceType"`
	ID           string              `json:"id,omitempty"`
	Meta         fhir.Meta           `json:"meta"`
	Identifier   []fhir.Identifier   `json:"identifier,omitempty"`
	Name         string              `json:"name"`
	Telecom      []fhir.ContactPoint `json:"telecom,omitempty"`
	Address      []fhir.Address      `json:"address,omitempty"`
}

type locationResource struct {
	ResourceType         string              `json:"resourceType"`
	ID                   string              `json:"id"`
	Meta                 fhir.Meta           `json:"meta"`
	Identifier           []fhir.Identifier   `json:"identifier,omitempty"`
	Status               string              `json:"status"`
	Name                 string              `json:"name"`
	Telecom              []fhir.ContactPoint `json:"telecom,omitempty"`
	Address              *fhir.Address       `json:"address,omitempty"`
	ManagingOrganization *fhir.Reference     `json:"managingOrganization,omitempty"`
}

type scheduleResource struct {
	ResourceType    string                `json:"resourceType"`
	ID              string                `json:"id"`
	Meta            fhir.Meta             `json:"meta"`
	Extension       []fhir.Extension      `json:"extension,omitempty"`
	ServiceCategory *fhir.CodeableConcept `json:"serviceCategory,omitempty"`
	Actor           []fhir.Reference      `json:"actor"`
	PlanningHorizon fhir.Period           `json:"planningHorizon"`
	Comment         string                `json:"comment,omitempty"`
}

type slotResource struct {
	ResourceType string                 `json:"resourceType"`
	ID           string                 `json:"id"`
	Meta         fhir.Meta              `json:"meta"`
	Extension    []fhir.Extension       `json:"extension,omitempty"`
	ServiceType  []fhir.CodeableConcept `json:"serviceType,omitempty"`
	Schedule     fhir.Reference         `json:"schedule"`
	Status       string                 `json:"status"`
	Start        string                 `json:"start"`
	End          string                 `json:"end"`
}

type bundleEntry struct {
	FullURL  string `json:"fullUrl"`
	Resource any    `json:"resource"`
}

// bundleResource is a searchset Bundle. It has no total: the profile
// GPConnect-Searchset-Bundle-1 makes Bundle.total 0..0.
type bundleResource struct {
	ResourceType string        `json:"resourceType"`
	ID           string        `json:"id"`
	Meta         fhir.Meta     `json:"meta"`
	Type         string        `json:"type"`
	Entry        []bundleEntry `json:"entry,omitempty"`
}

// AppointmentBody is the STU3 Appointment as it travels in a book, amend or
// cancel request, and as the practice keeps it. Every STU3 member is
// declared so that an unknown member can be refused (422 INVALID_RESOURCE);
// members the practice does not interpret are kept raw and handed back
// unchanged.
type AppointmentBody struct {
	ResourceType          string            `json:"resourceType"`
	ID                    string            `json:"id,omitempty"`
	Meta                  json.RawMessage   `json:"meta,omitempty"`
	ImplicitRules         json.RawMessage   `json:"implicitRules,omitempty"`
	Language              json.RawMessage   `json:"language,omitempty"`
	Text                  json.RawMessage   `json:"text,omitempty"`
	Contained             []json.RawMessage `json:"contained,omitempty"`
	Extension             []json.RawMessage `json:"extension,omitempty"`
	ModifierExtension     json.RawMessage   `json:"modifierExtension,omitempty"`
	Identifier            json.RawMessage   `json:"identifier,omitempty"`
	Status                string            `json:"status,omitempty"`
	ServiceCategory       json.RawMessage   `json:"serviceCategory,omitempty"`
	ServiceType           json.RawMessage   `json:"serviceType,omitempty"`
	Specialty             json.RawMessage   `json:"specialty,omitempty"`
	AppointmentType       json.RawMessage   `json:"appointmentType,omitempty"`
	Reason                json.RawMessage   `json:"reason,omitempty"`
	Indication            json.RawMessage   `json:"indication,omitempty"`
	Priority              json.RawMessage   `json:"priority,omitempty"`
	Description           string            `json:"description,omitempty"`
	SupportingInformation json.RawMessage   `json:"supportingInformation,omitempty"`
	Start                 string            `json:"start,omitempty"`
	End                   string            `json:"end,omitempty"`
	MinutesDuration       json.RawMessage   `json:"minutesDuration,omitempty"`
	Slot                  []fhir.Reference  `json:"slot,omitempty"`
	Created               string            `json:"created,omitempty"`
	Comment               string            `json:"comment,omitempty"`
	IncomingReferral      json.RawMessage   `json:"incomingReferral,omitempty"`
	Participant           []Participant     `json:"participant,omitempty"`
	RequestedPeriod       json.RawMessage   `json:"requestedPeriod,omitempty"`
}

// Participant is one participant of an Appointment.
type Participant struct {
	ID                json.RawMessage `json:"id,omitempty"`
	Extension         json.RawMessage `json:"extension,omitempty"`
	ModifierExtension json.RawMessage `json:"modifierExtension,omitempty"`
	Type              json.RawMessage `json:"type,omitempty"`
	Actor             *fhir.Reference `json:"actor,omitempty"`
	Required          string          `json:"required,omitempty"`
	Status            string          `json:"status,omitempty"`
}

// containedHead is what the practice reads of a contained resource.
type containedHead struct {
	ResourceType string              `json:"resourceType"`
	ID           string              `json:"id"`
	Name         string              `json:"name"`
	Telecom      []fhir.ContactPoint `json:"telecom"`
}
