package demonstrator

import (
	"encoding/json"
	"time"
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
	extNHSNumberVerification  = "https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-NHSNumberVerificationStatus-1"
	codeNHSNumberVerification = "https://fhir.hl7.org.uk/STU3/CodeSystem/CareConnect-NHSNumberVerificationStatus-1"
	extBookingOrganisation    = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-BookingOrganisation-1"
	extCancellationReason     = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-AppointmentCancellationReason-1"
	codeRegistrationType      = "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-RegistrationType-1"
)

// fhirTime is the dateTime layout the demonstrator writes: seconds and a
// numeric UTC offset, as in the GP Connect examples.
const fhirTime = "2006-01-02T15:04:05-07:00"

type meta struct {
	VersionID   string   `json:"versionId,omitempty"`
	LastUpdated string   `json:"lastUpdated,omitempty"`
	Profile     []string `json:"profile,omitempty"`
}

type coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

type codeableConcept struct {
	Coding []coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

type period struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

type extension struct {
	URL                  string           `json:"url"`
	ValueString          string           `json:"valueString,omitempty"`
	ValueReference       *reference       `json:"valueReference,omitempty"`
	ValueCodeableConcept *codeableConcept `json:"valueCodeableConcept,omitempty"`
	ValuePeriod          *period          `json:"valuePeriod,omitempty"`
	Extension            []extension      `json:"extension,omitempty"`
}

type identifier struct {
	Extension []extension `json:"extension,omitempty"`
	System    string      `json:"system"`
	Value     string      `json:"value"`
}

type humanName struct {
	Use    string   `json:"use,omitempty"`
	Text   string   `json:"text,omitempty"`
	Family string   `json:"family,omitempty"`
	Given  []string `json:"given,omitempty"`
	Prefix []string `json:"prefix,omitempty"`
}

type contactPoint struct {
	System string `json:"system"`
	Value  string `json:"value"`
	Use    string `json:"use,omitempty"`
}

type address struct {
	Use        string   `json:"use,omitempty"`
	Type       string   `json:"type,omitempty"`
	Line       []string `json:"line,omitempty"`
	City       string   `json:"city,omitempty"`
	District   string   `json:"district,omitempty"`
	PostalCode string   `json:"postalCode,omitempty"`
	Country    string   `json:"country,omitempty"`
}

type reference struct {
	Reference string `json:"reference,omitempty"`
	Display   string `json:"display,omitempty"`
}

type patientResource struct {
	ResourceType         string         `json:"resourceType"`
	ID                   string         `json:"id"`
	Meta                 meta           `json:"meta"`
	Extension            []extension    `json:"extension,omitempty"`
	Identifier           []identifier   `json:"identifier"`
	Active               bool           `json:"active"`
	Name                 []humanName    `json:"name"`
	Telecom              []contactPoint `json:"telecom,omitempty"`
	Gender               string         `json:"gender"`
	BirthDate            string         `json:"birthDate"`
	Address              []address      `json:"address,omitempty"`
	GeneralPractitioner  []reference    `json:"generalPractitioner,omitempty"`
	ManagingOrganization *reference     `json:"managingOrganization,omitempty"`
}

type practitionerResource struct {
	ResourceType string       `json:"resourceType"`
	ID           string       `json:"id"`
	Meta         meta         `json:"meta"`
	Identifier   []identifier `json:"identifier"`
	Name         []humanName  `json:"name"`
	Gender       string       `json:"gender,omitempty"`
}

type organizationResource struct {
	ResourceType string         `json:"resourceType"`
	ID           string         `json:"id,omitempty"`
	Meta         meta           `json:"meta"`
	Identifier   []identifier   `json:"identifier,omitempty"`
	Name         string         `json:"name"`
	Telecom      []contactPoint `json:"telecom,omitempty"`
	Address      []address      `json:"address,omitempty"`
}

type locationResource struct {
	ResourceType         string         `json:"resourceType"`
	ID                   string         `json:"id"`
	Meta                 meta           `json:"meta"`
	Identifier           []identifier   `json:"identifier,omitempty"`
	Status               string         `json:"status"`
	Name                 string         `json:"name"`
	Telecom              []contactPoint `json:"telecom,omitempty"`
	Address              *address       `json:"address,omitempty"`
	ManagingOrganization *reference     `json:"managingOrganization,omitempty"`
}

type scheduleResource struct {
	ResourceType    string            `json:"resourceType"`
	ID              string            `json:"id"`
	Meta            meta              `json:"meta"`
	ServiceCategory *codeableConcept  `json:"serviceCategory,omitempty"`
	ServiceType     []codeableConcept `json:"serviceType,omitempty"`
	Actor           []reference       `json:"actor"`
	PlanningHorizon period            `json:"planningHorizon"`
	Comment         string            `json:"comment,omitempty"`
}

type slotResource struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id"`
	Meta         meta              `json:"meta"`
	ServiceType  []codeableConcept `json:"serviceType,omitempty"`
	Schedule     reference         `json:"schedule"`
	Status       string            `json:"status"`
	Start        string            `json:"start"`
	End          string            `json:"end"`
}

type bundleEntry struct {
	FullURL  string `json:"fullUrl"`
	Resource any    `json:"resource"`
}

type bundleResource struct {
	ResourceType string        `json:"resourceType"`
	ID           string        `json:"id"`
	Meta         meta          `json:"meta"`
	Type         string        `json:"type"`
	Total        int           `json:"total"`
	Entry        []bundleEntry `json:"entry,omitempty"`
}

// appointmentBody is the STU3 Appointment as it travels in a book, amend or
// cancel request. Every STU3 member is declared so that an unknown member can
// be refused (422 INVALID_RESOURCE); members the demonstrator does not
// interpret are kept raw and handed back unchanged.
type appointmentBody struct {
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
	Slot                  []reference       `json:"slot,omitempty"`
	Created               string            `json:"created,omitempty"`
	Comment               string            `json:"comment,omitempty"`
	IncomingReferral      json.RawMessage   `json:"incomingReferral,omitempty"`
	Participant           []participant     `json:"participant,omitempty"`
	RequestedPeriod       json.RawMessage   `json:"requestedPeriod,omitempty"`
}

type participant struct {
	Type     json.RawMessage `json:"type,omitempty"`
	Actor    *reference      `json:"actor,omitempty"`
	Required string          `json:"required,omitempty"`
	Status   string          `json:"status,omitempty"`
}

// rawExtension is an extension read from a request: the URL is interpreted,
// the value is kept as sent.
type rawExtension struct {
	URL            string     `json:"url"`
	ValueString    *string    `json:"valueString,omitempty"`
	ValueReference *reference `json:"valueReference,omitempty"`
}

type containedHead struct {
	ResourceType string         `json:"resourceType"`
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	Telecom      []contactPoint `json:"telecom"`
}

func formatTime(t time.Time, loc *time.Location) string { return t.In(loc).Format(fhirTime) }
