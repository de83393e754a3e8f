package demonstrator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
func (p *practice) dispatch(rq *request) (*reply, *outcome) {
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
func (p *practice) view(fn func(Tx) (*reply, *outcome)) (*reply, *outcome) {
	var rep *reply
	err := p.store.View(func(tx Tx) error {
		var o *outcome
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
func (p *practice) update(rq *request, fn func(Tx) (*reply, string, *outcome)) (*reply, *outcome) {
	var rep *reply
	err := p.store.Update(func(tx Tx) error {
		var note string
		var o *outcome
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
		Total:        len(b.entries),
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
	if pr.SDSRoleProfileID != "" {
		ids = append(ids, fhir.Identifier{System: systemSDSRoleID, Value: pr.SDSRoleProfileID})
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

func (p *practice) patient(pt Patient) patientResource {
	display := map[string]string{"R": "Regular", "T": "Temporary"}[pt.RegistrationType]
	return patientResource{
		ResourceType: "Patient",
		ID:           pt.ID,
		Meta:         p.meta(pt.Version, pt.LastUpdated, profilePatient),
		Extension: []fhir.Extension{{
			URL: extRegistrationDetails,
			Extension: []fhir.Extension{
				{URL: "registrationPeriod", ValuePeriod: &fhir.Period{Start: pt.Registered.In(p.loc).Format(time.DateOnly)}},
				{URL: "registrationType", ValueCodeableConcept: &fhir.CodeableConcept{Coding: []fhir.Coding{{System: codeRegistrationType, Code: pt.RegistrationType, Display: display}}}},
			},
		}},
		Identifier: []fhir.Identifier{{
			Extension: []fhir.Extension{{URL: extNHSNumberVerification, ValueCodeableConcept: &fhir.CodeableConcept{Coding: []fhir.Coding{{System: codeNHSNumberVerification, Code: "01", Display: "Number present and verified"}}}}},
			System:    systemNHSNumber,
			Value:     pt.NHSNumber,
		}},
		Active:               true,
		Name:                 []fhir.HumanName{{Use: "official", Family: pt.Family, Given: nonEmpty(pt.Given), Prefix: nonEmpty(pt.Prefix)}},
		Gender:               pt.Gender,
		BirthDate:            pt.BirthDate,
		Address:              pt.Address,
		GeneralPractitioner:  []fhir.Reference{{Reference: "Practitioner/" + pt.GPID}},
		ManagingOrganization: &fhir.Reference{Reference: "Organization/" + orgID},
	}
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

func (p *practice) capabilityStatement(rq *request) *reply {
	read := func(t, profile string, search ...map[string]string) map[string]any {
		res := map[string]any{
			"type":        t,
			"profile":     map[string]string{"reference": profile},
			"interaction": []map[string]string{{"code": "read"}},
		}
		if len(search) > 0 {
			res["interaction"] = []map[string]string{{"code": "read"}, {"code": "search-type"}}
			res["searchParam"] = []map[string]string{search[0]}
		}
		return res
	}
	ident := map[string]string{"name": "identifier", "type": "token"}
	cs := map[string]any{
		"resourceType": "CapabilityStatement",
		"version":      "1.2.7",
		"name":         "GP Connect",
		"status":       "active",
		"date":         rq.now.In(p.loc).Format(time.DateOnly),
		"publisher":    "sspemu demonstrator",
		"description":  "An in-memory GP Connect 1.2.7 provider: Foundations and Appointment Management.",
		"kind":         "instance",
		"software":     map[string]string{"name": "sspemu demonstrator", "version": "1.2.7"},
		"implementation": map[string]string{
			"description": "sspemu GP Connect demonstrator for ODS " + p.ods + " (" + p.name + ")",
			"url":         p.baseURL,
		},
		"fhirVersion":   "3.0.1",
		"acceptUnknown": "both",
		"format":        []string{gpconnect.MIMEJSON, gpconnect.MIMEXML},
		"profile": []map[string]string{
			{"reference": profilePatient}, {"reference": profilePractitioner}, {"reference": profileOrganization},
			{"reference": profileLocation}, {"reference": profileSlot}, {"reference": profileSchedule},
			{"reference": profileAppointment},
		},
		"rest": []map[string]any{{
			"mode": "server",
			"security": map[string]any{
				"cors": true,
			},
			"resource": []map[string]any{
				read("Patient", profilePatient, ident),
				read("Practitioner", profilePractitioner, ident),
				read("Organization", profileOrganization, ident),
				read("Location", profileLocation),
				{
					"type":          "Slot",
					"profile":       map[string]string{"reference": profileSlot},
					"interaction":   []map[string]string{{"code": "search-type"}},
					"searchInclude": []string{"Slot:schedule", "Schedule:actor:Practitioner", "Schedule:actor:Location", "Location:managingOrganization"},
					"searchParam": []map[string]string{
						{"name": "start", "type": "date"}, {"name": "end", "type": "date"},
						{"name": "status", "type": "token"}, {"name": "searchFilter", "type": "token"},
					},
				},
				{
					"type":        "Appointment",
					"profile":     map[string]string{"reference": profileAppointment},
					"interaction": []map[string]string{{"code": "read"}, {"code": "create"}, {"code": "update"}, {"code": "search-type"}},
					"versioning":  "versioned-update",
					"searchParam": []map[string]string{{"name": "start", "type": "date"}},
				},
			},
			"operation": []map[string]any{{
				"name":       "gpc.registerpatient",
				"definition": map[string]string{"reference": "OperationDefinition/gpc.registerpatient"},
			}},
		}},
	}
	return &reply{status: http.StatusOK, body: cs}
}

func (p *practice) readPatient(rq *request) (*reply, *outcome) {
	id := idOf(rq.rel, 2)
	return p.view(func(tx Tx) (*reply, *outcome) {
		pt, ok := tx.Patient(id)
		if !ok {
			return nil, refuse(http.StatusNotFound, gpconnect.CodePatientNotFound, "no patient with logical ID %q", id)
		}
		return &reply{status: http.StatusOK, version: strconv.Itoa(pt.Version), body: p.patient(pt)}, nil
	})
}

func (p *practice) findPatient(rq *request) (*reply, *outcome) {
	nhs, o := identifierParam(rq.params, systemNHSNumber)
	if o != nil {
		return nil, o
	}
	if !validNHSNumber(nhs) {
		return nil, refuse(http.StatusBadRequest, gpconnect.CodeInvalidNHSNumber,
			"%q is not a valid NHS number (10 digits with a modulus-11 check digit)", nhs)
	}
	return p.view(func(tx Tx) (*reply, *outcome) {
		b := &bundle{p: p}
		if pt, ok := tx.PatientByNHS(nhs); ok {
			b.add("Patient", pt.ID, p.patient(pt))
		}
		return p.searchset(rq, b), nil
	})
}

func (p *practice) readPractitioner(rq *request) (*reply, *outcome) {
	id := idOf(rq.rel, 2)
	return p.view(func(tx Tx) (*reply, *outcome) {
		pr, ok := tx.Practitioner(id)
		if !ok {
			return nil, refuse(http.StatusNotFound, gpconnect.CodePractitionerNotFound, "no practitioner with logical ID %q", id)
		}
		return &reply{status: http.StatusOK, version: "1", body: p.practitioner(tx.SeededAt(), pr)}, nil
	})
}

func (p *practice) findPractitioner(rq *request) (*reply, *outcome) {
	sds, o := identifierParam(rq.params, systemSDSUserID)
	if o != nil {
		return nil, o
	}
	return p.view(func(tx Tx) (*reply, *outcome) {
		b := &bundle{p: p}
		for _, pr := range tx.Practitioners() {
			if pr.SDSUserID == sds {
				b.add("Practitioner", pr.ID, p.practitioner(tx.SeededAt(), pr))
			}
		}
		return p.searchset(rq, b), nil
	})
}

func (p *practice) readOrganization(rq *request) (*reply, *outcome) {
	id := idOf(rq.rel, 2)
	if id != orgID {
		return nil, refuse(http.StatusNotFound, gpconnect.CodeOrganisationNotFound, "no organisation with logical ID %q", id)
	}
	return p.view(func(tx Tx) (*reply, *outcome) {
		return &reply{status: http.StatusOK, version: "1", body: p.organization(tx.SeededAt())}, nil
	})
}

func (p *practice) findOrganization(rq *request) (*reply, *outcome) {
	ods, o := identifierParam(rq.params, systemODSCode)
	if o != nil {
		return nil, o
	}
	return p.view(func(tx Tx) (*reply, *outcome) {
		b := &bundle{p: p}
		if ods == p.ods {
			b.add("Organization", orgID, p.organization(tx.SeededAt()))
		}
		return p.searchset(rq, b), nil
	})
}

func (p *practice) readLocation(rq *request) (*reply, *outcome) {
	id := idOf(rq.rel, 2)
	return p.view(func(tx Tx) (*reply, *outcome) {
		l, ok := tx.Location(id)
		if !ok {
			return nil, refuse(http.StatusNotFound, gpconnect.CodeNoRecordFound, "no location with logical ID %q", id)
		}
		return &reply{status: http.StatusOK, version: "1", body: p.location(tx.SeededAt(), l)}, nil
	})
}

// parametersBody is the Parameters resource of $gpc.registerpatient.
type parametersBody struct {
	ResourceType  string          `json:"resourceType"`
	ID            string          `json:"id,omitempty"`
	Meta          json.RawMessage `json:"meta,omitempty"`
	ImplicitRules json.RawMessage `json:"implicitRules,omitempty"`
	Language      json.RawMessage `json:"language,omitempty"`
	Parameter     []struct {
		Name     string          `json:"name"`
		Resource json.RawMessage `json:"resource,omitempty"`
	} `json:"parameter"`
}

// patientBody is an STU3 Patient as a consumer sends it for registration;
// every STU3 member is declared so an unknown one can be refused.
type patientBody struct {
	ResourceType         string            `json:"resourceType"`
	ID                   string            `json:"id,omitempty"`
	Meta                 json.RawMessage   `json:"meta,omitempty"`
	ImplicitRules        json.RawMessage   `json:"implicitRules,omitempty"`
	Language             json.RawMessage   `json:"language,omitempty"`
	Text                 json.RawMessage   `json:"text,omitempty"`
	Contained            json.RawMessage   `json:"contained,omitempty"`
	Extension            json.RawMessage   `json:"extension,omitempty"`
	ModifierExtension    json.RawMessage   `json:"modifierExtension,omitempty"`
	Identifier           []fhir.Identifier `json:"identifier,omitempty"`
	Active               json.RawMessage   `json:"active,omitempty"`
	Name                 []fhir.HumanName  `json:"name,omitempty"`
	Telecom              json.RawMessage   `json:"telecom,omitempty"`
	Gender               string            `json:"gender,omitempty"`
	BirthDate            string            `json:"birthDate,omitempty"`
	DeceasedBoolean      json.RawMessage   `json:"deceasedBoolean,omitempty"`
	DeceasedDateTime     json.RawMessage   `json:"deceasedDateTime,omitempty"`
	Address              json.RawMessage   `json:"address,omitempty"`
	MaritalStatus        json.RawMessage   `json:"maritalStatus,omitempty"`
	MultipleBirthBoolean json.RawMessage   `json:"multipleBirthBoolean,omitempty"`
	MultipleBirthInteger json.RawMessage   `json:"multipleBirthInteger,omitempty"`
	Photo                json.RawMessage   `json:"photo,omitempty"`
	Contact              json.RawMessage   `json:"contact,omitempty"`
	Animal               json.RawMessage   `json:"animal,omitempty"`
	Communication        json.RawMessage   `json:"communication,omitempty"`
	GeneralPractitioner  json.RawMessage   `json:"generalPractitioner,omitempty"`
	ManagingOrganization json.RawMessage   `json:"managingOrganization,omitempty"`
	Link                 []json.RawMessage `json:"link,omitempty"`
}

// decodeStrict decodes one JSON value into v, refusing unknown members
// (422 INVALID_RESOURCE) and anything that is not a single JSON object
// (400 BAD_REQUEST).
func decodeStrict(b []byte, what string, v any) *outcome {
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

// decodeRegistration reads a $gpc.registerpatient Parameters body and
// returns the patient it registers: NHS number, demographics and the
// addresses sent.
func decodeRegistration(b []byte, now time.Time) (Patient, *outcome) {
	var p Patient
	var params parametersBody
	if o := decodeStrict(b, "Parameters", &params); o != nil {
		return p, o
	}
	if params.ResourceType != "Parameters" {
		return p, invalidResource("resourceType %q: $gpc.registerpatient takes a Parameters resource", params.ResourceType)
	}
	var patientRaw json.RawMessage
	for _, prm := range params.Parameter {
		if prm.Name != "registerPatient" {
			return p, invalidParameter("parameter %q is not a parameter of $gpc.registerpatient (only registerPatient)", prm.Name)
		}
		if patientRaw != nil {
			return p, invalidParameter("parameter registerPatient is repeated")
		}
		if len(prm.Resource) == 0 {
			return p, invalidParameter("parameter registerPatient has no resource")
		}
		patientRaw = prm.Resource
	}
	if patientRaw == nil {
		return p, invalidParameter("parameter registerPatient (a Patient) is missing")
	}
	var pt patientBody
	if o := decodeStrict(patientRaw, "Patient", &pt); o != nil {
		return p, o
	}
	if pt.ResourceType != "Patient" {
		return p, invalidResource("registerPatient holds a %q, not a Patient", pt.ResourceType)
	}
	for _, id := range pt.Identifier {
		if id.System == systemNHSNumber {
			if p.NHSNumber != "" {
				return p, invalidResource("the Patient has more than one NHS number")
			}
			p.NHSNumber = id.Value
		}
	}
	if p.NHSNumber == "" {
		return p, invalidResource("the Patient has no identifier with system %s", systemNHSNumber)
	}
	if !validNHSNumber(p.NHSNumber) {
		return p, refuse(http.StatusBadRequest, gpconnect.CodeInvalidNHSNumber, "%q is not a valid NHS number", p.NHSNumber)
	}
	for _, n := range pt.Name {
		if n.Family != "" && (p.Family == "" || n.Use == "official") {
			p.Family, p.Given, p.Prefix = n.Family, "", ""
			if len(n.Given) > 0 {
				p.Given = n.Given[0]
			}
			if len(n.Prefix) > 0 {
				p.Prefix = n.Prefix[0]
			}
		}
	}
	if p.Family == "" {
		return p, invalidResource("the Patient has no name with a family name")
	}
	if !genders[pt.Gender] {
		return p, invalidResource("the Patient's gender %q is not male, female, other or unknown", pt.Gender)
	}
	p.Gender = pt.Gender
	bd, err := time.Parse(time.DateOnly, pt.BirthDate)
	if err != nil {
		return p, invalidResource("the Patient's birthDate %q is not a date (2006-01-02)", pt.BirthDate)
	}
	if bd.After(now) {
		return p, invalidResource("the Patient's birthDate %q is in the future", pt.BirthDate)
	}
	p.BirthDate = pt.BirthDate
	if len(pt.Address) > 0 {
		// Kept as sent, without the members the practice does not write.
		if err := json.Unmarshal(pt.Address, &p.Address); err != nil {
			return p, invalidResource("the Patient's address is not a list of Address: %v", err)
		}
	}
	return p, nil
}

func (p *practice) registerPatient(rq *request) (*reply, *outcome) {
	pt, o := decodeRegistration(rq.body, rq.now)
	if o != nil {
		return nil, o
	}
	return p.update(rq, func(tx Tx) (*reply, string, *outcome) {
		if _, dup := tx.PatientByNHS(pt.NHSNumber); dup {
			return nil, "", refuse(http.StatusConflict, gpconnect.CodeDuplicateRejected, "the patient with NHS number %s is already registered", pt.NHSNumber)
		}
		pt.ID = tx.NewPatientID()
		pt.RegistrationType, pt.Registered, pt.Version, pt.LastUpdated = "T", rq.now, 1, rq.now
		if prs := tx.Practitioners(); len(prs) > 0 {
			pt.GPID = prs[0].ID
		}
		tx.PutPatient(pt)
		b := &bundle{p: p}
		b.add("Patient", pt.ID, p.patient(pt))
		return p.searchset(rq, b), fmt.Sprintf("registered Patient/%s with NHS number %s", pt.ID, pt.NHSNumber), nil
	})
}
