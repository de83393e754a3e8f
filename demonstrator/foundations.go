package demonstrator

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"sspemu/fhir"
	"sspemu/gpconnect"
)

const orgID = "1"

// dispatch hands a checked request to its interaction's handler.
func (p *practice) dispatch(rq *request) (*reply, *gpconnect.Refusal) {
	switch rq.in.ID {
	case gpconnect.ReadMetadata:
		return p.capabilityStatement(rq), nil
	case gpconnect.ReadPatient:
		return p.readPatient(rq)
	case gpconnect.SearchPatient:
		return p.findPatient(rq)
	case gpconnect.RegisterPatient:
		return p.registerPatient(rq)
	case gpconnect.ReadPractitioner:
		return p.readPractitioner(rq)
	case gpconnect.SearchPractitioner:
		return p.findPractitioner(rq)
	case gpconnect.ReadOrganization:
		return p.readOrganization(rq)
	case gpconnect.SearchOrganization:
		return p.findOrganization(rq)
	case gpconnect.ReadLocation:
		return p.readLocation(rq)
	case gpconnect.SearchSlot:
		return p.searchSlots(rq)
	case gpconnect.ReadAppointment:
		return p.readAppointment(rq)
	case gpconnect.CreateAppointment:
		return p.bookAppointment(rq)
	case gpconnect.UpdateAppointment:
		return p.amendAppointment(rq)
	case gpconnect.CancelAppointment:
		return p.cancelAppointment(rq)
	case gpconnect.SearchPatientAppts:
		return p.patientAppointments(rq)
	}
	return nil, refuse(http.StatusNotImplemented, gpconnect.CodeNotImplemented, "the demonstrator does not offer %s", rq.in.ID)
}

// view runs fn in a read transaction of the practice's store; a refusal
// comes back as it is, a store failure as a 500.
func (p *practice) view(fn func(Tx) (*reply, *gpconnect.Refusal)) (*reply, *gpconnect.Refusal) {
	var rep *reply
	err := p.store.View(func(tx Tx) error {
		var o *gpconnect.Refusal
		if rep, o = fn(tx); o != nil {
			return o
		}
		return nil
	})
	if err != nil {
		return nil, asOutcome(err)
	}
	return rep, nil
}

// update runs fn in a write transaction: fn decides, writes through tx and
// returns the reply; the request's commit then records it in the audit,
// inside the same transaction, so the change lands only with its record.
func (p *practice) update(rq *request, fn func(Tx) (*reply, string, *gpconnect.Refusal)) (*reply, *gpconnect.Refusal) {
	var rep *reply
	err := p.store.Update(func(tx Tx) error {
		var note string
		var o *gpconnect.Refusal
		if rep, note, o = fn(tx); o != nil {
			return o
		}
		if rq.commit == nil {
			return nil
		}
		return rq.commit(rep, note)
	})
	if err != nil {
		return nil, asOutcome(err)
	}
	return rep, nil
}

func (p *practice) meta(version int, at time.Time, profile string) fhir.Meta {
	return fhir.Meta{VersionID: strconv.Itoa(version), LastUpdated: formatTime(at, p.loc), Profile: []string{profile}}
}

// bundle is a searchset of resources, each entry's fullUrl the service
// root, its kind and its ID.
type bundle struct {
	p       *practice
	entries []bundleEntry
}

func (b *bundle) add(kind, id string, r any) {
	b.entries = append(b.entries, bundleEntry{FullURL: b.p.baseURL + "/" + kind + "/" + id, Resource: r})
}

func (b *bundle) resource(now time.Time) bundleResource {
	return bundleResource{
		ResourceType: "Bundle",
		ID:           uuid.NewString(),
		Meta:         fhir.Meta{LastUpdated: formatTime(now, b.p.loc), Profile: []string{profileBundle}},
		Type:         "searchset",
		Entry:        b.entries,
	}
}

func (p *practice) searchset(rq *request, b *bundle) *reply {
	return &reply{status: http.StatusOK, body: b.resource(rq.now)}
}

func (p *practice) organization(seededAt time.Time) organizationResource {
	s := p.seed
	return organizationResource{
		ResourceType: "Organization",
		ID:           orgID,
		Meta:         p.meta(1, seededAt, profileOrganization),
		Identifier:   []fhir.Identifier{{System: systemODSCode, Value: p.ods}},
		Name:         p.name,
		Telecom:      phone(s.Phone),
		Address:      []fhir.Address{workAddress(s.Address)},
	}
}

func phone(v string) []fhir.ContactPoint {
	if v == "" {
		return nil
	}
	return []fhir.ContactPoint{{System: "phone", Value: v, Use: "work"}}
}

func (p *practice) practitioner(seededAt time.Time, pr Practitioner) practitionerResource {
	ids := []fhir.Identifier{{System: systemSDSUserID, Value: pr.SDSUserID}}
	for _, role := range append([]string{pr.SDSRoleProfileID}, pr.MoreRoleProfileIDs...) {
		if role != "" {
			ids = append(ids, fhir.Identifier{System: systemSDSRoleID, Value: role})
		}
	}
	return practitionerResource{
		ResourceType: "Practitioner",
		ID:           pr.ID,
		Meta:         p.meta(1, seededAt, profilePractitioner),
		Identifier:   ids,
		Name:         []fhir.HumanName{{Use: "usual", Family: pr.Family, Given: nonEmpty(pr.Given), Prefix: nonEmpty(pr.Prefix)}},
		Gender:       pr.Gender,
	}
}

func (p *practice) location(seededAt time.Time, l Location) locationResource {
	addr := l.Address
	return locationResource{
		ResourceType:         "Location",
		ID:                   l.ID,
		Meta:                 p.meta(1, seededAt, profileLocation),
		Identifier:           []fhir.Identifier{{System: systemLocalLocation, Value: "LOC" + l.ID}},
		Status:               "active",
		Name:                 l.Name,
		Telecom:              phone(l.Phone),
		Address:              &addr,
		ManagingOrganization: &fhir.Reference{Reference: "Organization/" + orgID},
	}
}

// temporaryMonths is how long a temporary registration lasts: a
// temporary resident is registered for up to three months.
const temporaryMonths = 3

// patient is the CareConnect-GPC-Patient-1 resource of a registered
// patient. Its NHS number is verified (01) unless the record was never
// traced on PDS (02). A temporary registration's period ends when it
// expires.
func (p *practice) patient(pt Patient) patientResource {
	display := map[string]string{"R": "Regular", "T": "Temporary"}[pt.RegistrationType]
	period := &fhir.Period{Start: pt.Registered.In(p.loc).Format(time.DateOnly)}
	if pt.RegistrationType == "T" {
		period.End = pt.Registered.In(p.loc).AddDate(0, temporaryMonths, 0).Format(time.DateOnly)
	}
	exts := []fhir.Extension{{
		URL: extRegistrationDetails,
		Extension: []fhir.Extension{
			{URL: "registrationPeriod", ValuePeriod: period},
			{URL: "registrationType", ValueCodeableConcept: &fhir.CodeableConcept{Coding: []fhir.Coding{{System: codeRegistrationType, Code: pt.RegistrationType, Display: display}}}},
		},
	}}
	if c := pt.Communication; c != nil {
		language := c.Language
		sub := []fhir.Extension{{URL: "language", ValueCodeableConcept: &fhir.CodeableConcept{Coding: []fhir.Coding{language}}}}
		if c.Preferred != nil {
			sub = append(sub, fhir.Extension{URL: "preferred", ValueBoolean: c.Preferred})
		}
		if c.InterpreterRequired != nil {
			sub = append(sub, fhir.Extension{URL: "interpreterRequired", ValueBoolean: c.InterpreterRequired})
		}
		exts = append(exts, fhir.Extension{URL: extNHSCommunication, Extension: sub})
	}
	verification := fhir.Coding{System: codeNHSNumberVerification, Code: "01", Display: "Number present and verified"}
	if pt.NotOnPDS {
		verification = fhir.Coding{System: codeNHSNumberVerification, Code: "02", Display: "Number present but not traced"}
	}
	names := []fhir.HumanName{{Use: "official", Family: pt.Family, Given: append(nonEmpty(pt.Given), pt.MoreGiven...), Prefix: nonEmpty(pt.Prefix)}}
	names = append(names, pt.OtherNames...)
	return patientResource{
		ResourceType: "Patient",
		ID:           pt.ID,
		Meta:         p.meta(pt.Version, pt.LastUpdated, profilePatient),
		Extension:    exts,
		Identifier: []fhir.Identifier{{
			Extension: []fhir.Extension{{URL: extNHSNumberVerification, ValueCodeableConcept: &fhir.CodeableConcept{Coding: []fhir.Coding{verification}}}},
			System:    systemNHSNumber,
			Value:     pt.NHSNumber,
		}},
		Active:               !pt.Inactive && pt.Deceased == "",
		Name:                 names,
		Telecom:              pt.Telecom,
		Gender:               pt.Gender,
		BirthDate:            pt.BirthDate,
		DeceasedDateTime:     pt.Deceased,
		Address:              pt.Address,
		GeneralPractitioner:  []fhir.Reference{{Reference: "Practitioner/" + pt.GPID}},
		ManagingOrganization: &fhir.Reference{Reference: "Organization/" + orgID},
	}
}

// findable reports whether a patient search may return pt: only active
// patients (spec, Find a patient), and not those whose record fails the
// PDS checks the spec asks for an untraced record (never traced, so not on
// PDS; sensitive).
func findable(pt Patient) bool {
	return !pt.Inactive && pt.Deceased == "" && !pt.Sensitive && !pt.NotOnPDS
}

// idOf returns the path segment at index segment of the relative path
// (/Patient/2 has "2" at 2).
func idOf(rel string, segment int) string {
	parts := strings.Split(rel, "/")
	if segment < len(parts) {
		return parts[segment]
	}
	return ""
}

// capabilityProfiles are the profiles the capability statement lists: the
// specification's example statement's, the Access Record Structured ones
// included (see capabilityStatement).
var capabilityProfiles = []string{
	profilePatient, profileOrganization, profilePractitioner,
	"https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-PractitionerRole-1",
	profileLocation, gpconnect.OutcomeProfile, profileAppointment, profileSchedule, profileSlot,
	"https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-AllergyIntolerance-1",
	"https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-Medication-1",
	"https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-MedicationStatement-1",
	"https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-MedicationRequest-1",
	"https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-List-1",
	"https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-StructuredRecord-Bundle-1",
}

// The operation definitions the capability statement names.
const (
	operationRegisterPatient     = "https://fhir.nhs.uk/STU3/OperationDefinition/GPConnect-RegisterPatient-Operation-1"
	operationGetStructuredRecord = "https://fhir.nhs.uk/STU3/OperationDefinition/GPConnect-GetStructuredRecord-Operation-1/_history/1.12"
)

// capabilityStatement follows the specification's example statement
// (get_capability_statement_response_example.json), which providers are
// told to use as their base: its profiles, resources, interactions, search
// includes and operations. Like the example it lists gpc.getstructuredrecord
// and the Access Record Structured profiles, so that a consumer reading it
// sees what an assured provider offers; the demonstrator answers that
// operation 501 NOT_IMPLEMENTED (README, Conformance).
func (p *practice) capabilityStatement(rq *request) *reply {
	type ref struct {
		Reference string `json:"reference"`
	}
	type code struct {
		Code string `json:"code"`
	}
	type param struct {
		Name          string `json:"name"`
		Type          string `json:"type"`
		Documentation string `json:"documentation,omitempty"`
	}
	type resource struct {
		Type          string   `json:"type"`
		Profile       *ref     `json:"profile,omitempty"`
		Interaction   []code   `json:"interaction"`
		Versioning    string   `json:"versioning,omitempty"`
		UpdateCreate  *bool    `json:"updateCreate,omitempty"`
		SearchInclude []string `json:"searchInclude,omitempty"`
		SearchParam   []param  `json:"searchParam,omitempty"`
	}
	codes := func(cs ...string) []code {
		out := make([]code, len(cs))
		for i, c := range cs {
			out[i] = code{c}
		}
		return out
	}
	identifier := func(doc string) []param { return []param{{Name: "identifier", Type: "token", Documentation: doc}} }
	noUpdateCreate := false
	profiles := make([]ref, len(capabilityProfiles))
	for i, pr := range capabilityProfiles {
		profiles[i] = ref{pr}
	}
	cs := map[string]any{
		"resourceType": "CapabilityStatement",
		"version":      "1.2.7",
		"name":         "GP Connect",
		"status":       "active",
		"date":         rq.now.In(p.loc).Format(time.DateOnly),
		"publisher":    "sspemu demonstrator",
		"description":  "This server implements the GP Connect API version 1.2.7: Foundations and Appointment Management (sspemu's in-memory practice " + p.ods + ").",
		"kind":         "instance",
		"software":     map[string]string{"name": "sspemu demonstrator", "version": "1.2.7"},
		"implementation": map[string]string{
			"description": "sspemu GP Connect demonstrator for ODS " + p.ods + " (" + p.name + ")",
			"url":         p.baseURL,
		},
		"fhirVersion":   "3.0.1",
		"acceptUnknown": "both",
		"format":        []string{gpconnect.MIMEJSON, gpconnect.MIMEXML},
		"profile":       profiles,
		"rest": []map[string]any{{
			"mode":     "server",
			"security": map[string]any{"cors": true},
			"resource": []resource{
				{Type: "Patient", Profile: &ref{profilePatient}, Interaction: codes("read", "search-type"),
					SearchParam: identifier("NHS Number (i.e. " + systemNHSNumber + "|9690937286)")},
				{Type: "Organization", Profile: &ref{profileOrganization}, Interaction: codes("read", "search-type"),
					SearchParam: identifier("ODS Code (i.e. " + systemODSCode + "|" + p.ods + ")")},
				{Type: "Practitioner", Profile: &ref{profilePractitioner}, Interaction: codes("read", "search-type"),
					SearchParam: identifier("SDS User Id (i.e. " + systemSDSUserID + "|G13579135)")},
				{Type: "Location", Profile: &ref{profileLocation}, Interaction: codes("read")},
				{Type: "Appointment", Profile: &ref{profileAppointment}, Interaction: codes("read", "create", "update", "search-type"),
					Versioning: "versioned-update", UpdateCreate: &noUpdateCreate,
					SearchParam: []param{{Name: "start", Type: "date", Documentation: "The patient's appointments (Patient/{id}/Appointment) from start=ge<date> to start=le<date>"}}},
				{Type: "Slot", Profile: &ref{profileSlot}, Interaction: codes("search-type"),
					SearchInclude: []string{"Schedule:actor:Location", "Schedule:actor:Practitioner", "Slot:schedule", "Location:managingOrganization"},
					SearchParam: []param{
						{Name: "start", Type: "date"}, {Name: "end", Type: "date"},
						{Name: "status", Type: "token"}, {Name: "searchFilter", Type: "token"},
					}},
			},
			"operation": []map[string]any{
				{"name": "gpc.registerpatient", "definition": ref{operationRegisterPatient}},
				{"name": "gpc.getstructuredrecord", "definition": ref{operationGetStructuredRecord}},
			},
		}},
	}
	return &reply{status: http.StatusOK, body: cs}
}

func (p *practice) readPatient(rq *request) (*reply, *gpconnect.Refusal) {
	id := idOf(rq.rel, 2)
	return p.view(func(tx Tx) (*reply, *gpconnect.Refusal) {
		pt, ok := tx.Patient(id)
		if !ok {
			return nil, refuse(http.StatusNotFound, gpconnect.CodePatientNotFound, "no patient with logical ID %q", id)
		}
		return &reply{status: http.StatusOK, version: strconv.Itoa(pt.Version), body: p.patient(pt)}, nil
	})
}

func (p *practice) findPatient(rq *request) (*reply, *gpconnect.Refusal) {
	nhs, o := identifierParam(rq.params, systemNHSNumber)
	if o != nil {
		return nil, o
	}
	if !gpconnect.ValidNHSNumber(nhs) {
		return nil, refuse(http.StatusBadRequest, gpconnect.CodeInvalidNHSNumber,
			"%q is not a valid NHS number (10 digits with a modulus-11 check digit)", nhs)
	}
	return p.view(func(tx Tx) (*reply, *gpconnect.Refusal) {
		b := &bundle{p: p}
		if pt, ok := tx.PatientByNHS(nhs); ok && findable(pt) {
			b.add("Patient", pt.ID, p.patient(pt))
		}
		return p.searchset(rq, b), nil
	})
}

func (p *practice) readPractitioner(rq *request) (*reply, *gpconnect.Refusal) {
	id := idOf(rq.rel, 2)
	return p.view(func(tx Tx) (*reply, *gpconnect.Refusal) {
		pr, ok := tx.Practitioner(id)
		if !ok {
			return nil, refuse(http.StatusNotFound, gpconnect.CodePractitionerNotFound, "no practitioner with logical ID %q", id)
		}
		return &reply{status: http.StatusOK, version: "1", body: p.practitioner(tx.SeededAt(), pr)}, nil
	})
}

func (p *practice) findPractitioner(rq *request) (*reply, *gpconnect.Refusal) {
	sds, o := identifierParam(rq.params, systemSDSUserID)
	if o != nil {
		return nil, o
	}
	return p.view(func(tx Tx) (*reply, *gpconnect.Refusal) {
		b := &bundle{p: p}
		for _, pr := range tx.Practitioners() {
			if pr.SDSUserID == sds {
				b.add("Practitioner", pr.ID, p.practitioner(tx.SeededAt(), pr))
			}
		}
		return p.searchset(rq, b), nil
	})
}

func (p *practice) readOrganization(rq *request) (*reply, *gpconnect.Refusal) {
	id := idOf(rq.rel, 2)
	if id != orgID {
		return nil, refuse(http.StatusNotFound, gpconnect.CodeOrganisationNotFound, "no organisation with logical ID %q", id)
	}
	return p.view(func(tx Tx) (*reply, *gpconnect.Refusal) {
		return &reply{status: http.StatusOK, version: "1", body: p.organization(tx.SeededAt())}, nil
	})
}

func (p *practice) findOrganization(rq *request) (*reply, *gpconnect.Refusal) {
	ods, o := identifierParam(rq.params, systemODSCode)
	if o != nil {
		return nil, o
	}
	return p.view(func(tx Tx) (*reply, *gpconnect.Refusal) {
		b := &bundle{p: p}
		if ods == p.ods {
			b.add("Organization", orgID, p.organization(tx.SeededAt()))
		}
		return p.searchset(rq, b), nil
	})
}

func (p *practice) readLocation(rq *request) (*reply, *gpconnect.Refusal) {
	id := idOf(rq.rel, 2)
	return p.view(func(tx Tx) (*reply, *gpconnect.Refusal) {
		l, ok := tx.Location(id)
		if !ok {
			return nil, refuse(http.StatusNotFound, gpconnect.CodeNoRecordFound, "no location with logical ID %q", id)
		}
		return &reply{status: http.StatusOK, version: "1", body: p.location(tx.SeededAt(), l)}, nil
	})
}

// decodeStrict decodes one JSON value into v, refusing unknown members
// (422 INVALID_RESOURCE) and anything that is not a single JSON object
// (400 BAD_REQUEST).
func decodeStrict(b []byte, what string, v any) *gpconnect.Refusal {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return badRequest("the %s body is not valid JSON: %v", what, err)
		case errors.As(err, &typ):
			return invalidResource("the %s body has a member of the wrong type: %v", what, err)
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return invalidResource("the %s body has a member that %s does not define: %s", what, what, strings.TrimPrefix(err.Error(), "json: "))
		}
		return badRequest("the %s body cannot be read: %v", what, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("the %s body has data after the JSON object", what)
	}
	return nil
}

var genders = map[string]bool{"male": true, "female": true, "other": true, "unknown": true}
