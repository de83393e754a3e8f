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

	"sspemu/gpconnect"
)

const orgID = "1"

func (d *Demonstrator) meta(version int, at time.Time, profile string) meta {
	return meta{VersionID: strconv.Itoa(version), LastUpdated: formatTime(at, d.loc), Profile: []string{profile}}
}

func (d *Demonstrator) bundle(now time.Time, resources []any, kinds []string, ids []string) bundleResource {
	b := bundleResource{
		ResourceType: "Bundle",
		ID:           uuid.NewString(),
		Meta:         meta{LastUpdated: formatTime(now, d.loc), Profile: []string{profileBundle}},
		Type:         "searchset",
		Total:        len(resources),
	}
	for i, r := range resources {
		b.Entry = append(b.Entry, bundleEntry{FullURL: d.baseURL + "/" + kinds[i] + "/" + ids[i], Resource: r})
	}
	return b
}

func (d *Demonstrator) organization(st *state) organizationResource {
	return organizationResource{
		ResourceType: "Organization",
		ID:           orgID,
		Meta:         d.meta(1, st.seededAt, profileOrganization),
		Identifier:   []identifier{{System: systemODSCode, Value: d.ods}},
		Name:         "GP Connect Demonstrator Surgery",
		Telecom:      []contactPoint{{System: "phone", Value: "0113 496 0000", Use: "work"}},
		Address:      []address{{Use: "work", Type: "physical", Line: []string{"12 Leeds Road"}, City: "Leeds", PostalCode: "LS1 4AP"}},
	}
}

func (d *Demonstrator) practitioner(st *state, p *practitionerRec) practitionerResource {
	return practitionerResource{
		ResourceType: "Practitioner",
		ID:           p.id,
		Meta:         d.meta(1, st.seededAt, profilePractitioner),
		Identifier:   []identifier{{System: systemSDSUserID, Value: p.sdsUserID}, {System: systemSDSRoleID, Value: p.sdsRoleID}},
		Name:         []humanName{{Use: "usual", Family: p.name.family, Given: []string{p.name.given}, Prefix: nonEmpty(p.name.prefix)}},
		Gender:       p.name.gender,
	}
}

func (d *Demonstrator) location(st *state, l *locationRec) locationResource {
	return locationResource{
		ResourceType:         "Location",
		ID:                   l.id,
		Meta:                 d.meta(1, st.seededAt, profileLocation),
		Identifier:           []identifier{{System: systemLocalLocation, Value: "LOC" + l.id}},
		Status:               "active",
		Name:                 l.name,
		Telecom:              []contactPoint{{System: "phone", Value: "0113 496 000" + l.id, Use: "work"}},
		Address:              &address{Use: "work", Type: "physical", Line: []string{l.line}, City: l.city, PostalCode: l.postalCode},
		ManagingOrganization: &reference{Reference: "Organization/" + orgID},
	}
}

// idOf returns the logical ID at the end of the relative path (or the
// segment before a trailing /Appointment).
func idOf(rel string, segment int) string {
	parts := strings.Split(rel, "/")
	if segment < len(parts) {
		return parts[segment]
	}
	return ""
}

func (d *Demonstrator) capabilityStatement(rq *request) *reply {
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
		"date":         rq.now.In(d.loc).Format("2006-01-02"),
		"publisher":    "sspemu demonstrator",
		"description":  "An in-memory GP Connect 1.2.7 provider: Foundations and Appointment Management.",
		"kind":         "instance",
		"software":     map[string]string{"name": "sspemu demonstrator", "version": "1.2.7"},
		"implementation": map[string]string{
			"description": "sspemu GP Connect demonstrator for ODS " + d.ods,
			"url":         d.baseURL,
		},
		"fhirVersion":   "3.0.1",
		"acceptUnknown": "both",
		"format":        []string{"application/fhir+json"},
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
					"searchInclude": []string{"Slot:schedule", "Schedule:actor:Practitioner", "Schedule:actor:Location"},
					"searchParam": []map[string]string{
						{"name": "start", "type": "date"}, {"name": "end", "type": "date"},
						{"name": "status", "type": "token"}, {"name": "searchFilter", "type": "token"},
					},
				},
				{
					"type":        "Appointment",
					"profile":     map[string]string{"reference": profileAppointment},
					"interaction": []map[string]string{{"code": "read"}, {"code": "create"}, {"code": "update"}},
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

func (d *Demonstrator) readPatient(rq *request) (*reply, *outcome) {
	id := idOf(rq.rel, 2)
	d.mu.RLock()
	defer d.mu.RUnlock()
	p, ok := d.st.patients[id]
	if !ok {
		return nil, refuse(http.StatusNotFound, gpconnect.CodePatientNotFound, "no patient with logical ID %q", id)
	}
	return &reply{status: http.StatusOK, etag: p.resource.Meta.VersionID, body: p.resource}, nil
}

func (d *Demonstrator) findPatient(rq *request) (*reply, *outcome) {
	nhs, o := identifierParam(rq.params, systemNHSNumber)
	if o != nil {
		return nil, o
	}
	if !validNHSNumber(nhs) {
		return nil, refuse(http.StatusBadRequest, gpconnect.CodeInvalidNHSNumber,
			"%q is not a valid NHS number (10 digits with a modulus-11 check digit)", nhs)
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	var res []any
	var kinds, ids []string
	if p := d.st.patientByNHS(nhs); p != nil {
		res, kinds, ids = []any{p.resource}, []string{"Patient"}, []string{p.resource.ID}
	}
	return &reply{status: http.StatusOK, body: d.bundle(rq.now, res, kinds, ids)}, nil
}

func (d *Demonstrator) readPractitioner(rq *request) (*reply, *outcome) {
	id := idOf(rq.rel, 2)
	d.mu.RLock()
	defer d.mu.RUnlock()
	p := d.st.practitioner(id)
	if p == nil {
		return nil, refuse(http.StatusNotFound, gpconnect.CodePractitionerNotFound, "no practitioner with logical ID %q", id)
	}
	return &reply{status: http.StatusOK, etag: "1", body: d.practitioner(d.st, p)}, nil
}

func (d *Demonstrator) findPractitioner(rq *request) (*reply, *outcome) {
	sds, o := identifierParam(rq.params, systemSDSUserID)
	if o != nil {
		return nil, o
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	var res []any
	var kinds, ids []string
	for _, p := range d.st.practitioners {
		if p.sdsUserID == sds {
			res, kinds, ids = append(res, d.practitioner(d.st, p)), append(kinds, "Practitioner"), append(ids, p.id)
		}
	}
	return &reply{status: http.StatusOK, body: d.bundle(rq.now, res, kinds, ids)}, nil
}

func (d *Demonstrator) readOrganization(rq *request) (*reply, *outcome) {
	id := idOf(rq.rel, 2)
	if id != orgID {
		return nil, refuse(http.StatusNotFound, gpconnect.CodeOrganisationNotFound, "no organisation with logical ID %q", id)
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	return &reply{status: http.StatusOK, etag: "1", body: d.organization(d.st)}, nil
}

func (d *Demonstrator) findOrganization(rq *request) (*reply, *outcome) {
	ods, o := identifierParam(rq.params, systemODSCode)
	if o != nil {
		return nil, o
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	var res []any
	var kinds, ids []string
	if ods == d.ods {
		res, kinds, ids = []any{d.organization(d.st)}, []string{"Organization"}, []string{orgID}
	}
	return &reply{status: http.StatusOK, body: d.bundle(rq.now, res, kinds, ids)}, nil
}

func (d *Demonstrator) readLocation(rq *request) (*reply, *outcome) {
	id := idOf(rq.rel, 2)
	d.mu.RLock()
	defer d.mu.RUnlock()
	l := d.st.location(id)
	if l == nil {
		return nil, refuse(http.StatusNotFound, gpconnect.CodeNoRecordFound, "no location with logical ID %q", id)
	}
	return &reply{status: http.StatusOK, etag: "1", body: d.location(d.st, l)}, nil
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
	Identifier           []identifierBody  `json:"identifier,omitempty"`
	Active               json.RawMessage   `json:"active,omitempty"`
	Name                 []humanNameBody   `json:"name,omitempty"`
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

type identifierBody struct {
	ID        json.RawMessage `json:"id,omitempty"`
	Extension json.RawMessage `json:"extension,omitempty"`
	Use       json.RawMessage `json:"use,omitempty"`
	Type      json.RawMessage `json:"type,omitempty"`
	System    string          `json:"system,omitempty"`
	Value     string          `json:"value,omitempty"`
	Period    json.RawMessage `json:"period,omitempty"`
	Assigner  json.RawMessage `json:"assigner,omitempty"`
}

type humanNameBody struct {
	ID        json.RawMessage `json:"id,omitempty"`
	Extension json.RawMessage `json:"extension,omitempty"`
	Use       string          `json:"use,omitempty"`
	Text      string          `json:"text,omitempty"`
	Family    string          `json:"family,omitempty"`
	Given     []string        `json:"given,omitempty"`
	Prefix    []string        `json:"prefix,omitempty"`
	Suffix    []string        `json:"suffix,omitempty"`
	Period    json.RawMessage `json:"period,omitempty"`
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
// returns the patient's NHS number and demographics.
func decodeRegistration(b []byte, now time.Time) (string, seedPerson, *outcome) {
	var p seedPerson
	var params parametersBody
	if o := decodeStrict(b, "Parameters", &params); o != nil {
		return "", p, o
	}
	if params.ResourceType != "Parameters" {
		return "", p, invalidResource("resourceType %q: $gpc.registerpatient takes a Parameters resource", params.ResourceType)
	}
	var patientRaw json.RawMessage
	for _, prm := range params.Parameter {
		if prm.Name != "registerPatient" {
			return "", p, invalidParameter("parameter %q is not a parameter of $gpc.registerpatient (only registerPatient)", prm.Name)
		}
		if patientRaw != nil {
			return "", p, invalidParameter("parameter registerPatient is repeated")
		}
		if len(prm.Resource) == 0 {
			return "", p, invalidParameter("parameter registerPatient has no resource")
		}
		patientRaw = prm.Resource
	}
	if patientRaw == nil {
		return "", p, invalidParameter("parameter registerPatient (a Patient) is missing")
	}
	var pt patientBody
	if o := decodeStrict(patientRaw, "Patient", &pt); o != nil {
		return "", p, o
	}
	if pt.ResourceType != "Patient" {
		return "", p, invalidResource("registerPatient holds a %q, not a Patient", pt.ResourceType)
	}
	nhs := ""
	for _, id := range pt.Identifier {
		if id.System == systemNHSNumber {
			if nhs != "" {
				return "", p, invalidResource("the Patient has more than one NHS number")
			}
			nhs = id.Value
		}
	}
	if nhs == "" {
		return "", p, invalidResource("the Patient has no identifier with system %s", systemNHSNumber)
	}
	if !validNHSNumber(nhs) {
		return "", p, refuse(http.StatusBadRequest, gpconnect.CodeInvalidNHSNumber, "%q is not a valid NHS number", nhs)
	}
	for _, n := range pt.Name {
		if n.Family != "" && (p.family == "" || n.Use == "official") {
			p.family, p.given, p.prefix = n.Family, "", ""
			if len(n.Given) > 0 {
				p.given = n.Given[0]
			}
			if len(n.Prefix) > 0 {
				p.prefix = n.Prefix[0]
			}
		}
	}
	if p.family == "" {
		return "", p, invalidResource("the Patient has no name with a family name")
	}
	if !genders[pt.Gender] {
		return "", p, invalidResource("the Patient's gender %q is not male, female, other or unknown", pt.Gender)
	}
	p.gender = pt.Gender
	bd, err := time.Parse("2006-01-02", pt.BirthDate)
	if err != nil {
		return "", p, invalidResource("the Patient's birthDate %q is not a date (2006-01-02)", pt.BirthDate)
	}
	if bd.After(now) {
		return "", p, invalidResource("the Patient's birthDate %q is in the future", pt.BirthDate)
	}
	p.birthDate = pt.BirthDate
	return nhs, p, nil
}

func (d *Demonstrator) registerPatient(rq *request) (*reply, *outcome) {
	b, o := readBody(rq)
	if o != nil {
		return nil, o
	}
	nhs, person, o := decodeRegistration(b, rq.now)
	if o != nil {
		return nil, o
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.st.patientByNHS(nhs) != nil {
		return nil, refuse(http.StatusConflict, gpconnect.CodeDuplicateRejected, "the patient with NHS number %s is already registered", nhs)
	}
	id := strconv.Itoa(d.st.nextPatient + 1)
	res := newPatientResource(id, nhs, person, "T", "1", rq.now, d.loc)
	rep := &reply{status: http.StatusOK, body: d.bundle(rq.now, []any{res}, []string{"Patient"}, []string{id})}
	if o := d.commit(rq, rep, fmt.Sprintf("registered Patient/%s with NHS number %s", id, nhs)); o != nil {
		return nil, o
	}
	d.st.nextPatient++
	d.st.addPatient(res, nhs)
	return rep, nil
}
