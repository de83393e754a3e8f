package demonstrator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"sspemu/fhir"
	"sspemu/gpconnect"
)

// PDSRecord is what PDS holds for an NHS number, as Register Patient reads
// it (Options.Demographics).
type PDSRecord struct {
	// NHSNumber is the number PDS holds the record under: another than the
	// one asked for when that one was superseded.
	NHSNumber string
	Family    string
	Given     []string
	Gender    string
	BirthDate string // 2006-01-02
	// Address is the home address; nil when PDS has none to show.
	Address *fhir.Address
	Telecom []fhir.ContactPoint
	// Deceased is set when PDS records the patient's death; Sensitive is
	// PDS's sensitive (restricted) flag.
	Deceased  bool
	Sensitive bool
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
// every STU3 member is declared so an unknown one can be refused, and those
// a registration must not carry are kept raw to be named.
type patientBody struct {
	ResourceType         string              `json:"resourceType"`
	ID                   string              `json:"id,omitempty"`
	Meta                 json.RawMessage     `json:"meta,omitempty"`
	ImplicitRules        json.RawMessage     `json:"implicitRules,omitempty"`
	Language             json.RawMessage     `json:"language,omitempty"`
	Text                 json.RawMessage     `json:"text,omitempty"`
	Contained            json.RawMessage     `json:"contained,omitempty"`
	Extension            json.RawMessage     `json:"extension,omitempty"`
	ModifierExtension    json.RawMessage     `json:"modifierExtension,omitempty"`
	Identifier           []fhir.Identifier   `json:"identifier,omitempty"`
	Active               json.RawMessage     `json:"active,omitempty"`
	Name                 []fhir.HumanName    `json:"name,omitempty"`
	Telecom              []fhir.ContactPoint `json:"telecom,omitempty"`
	Gender               string              `json:"gender,omitempty"`
	BirthDate            string              `json:"birthDate,omitempty"`
	DeceasedBoolean      json.RawMessage     `json:"deceasedBoolean,omitempty"`
	DeceasedDateTime     json.RawMessage     `json:"deceasedDateTime,omitempty"`
	Address              []fhir.Address      `json:"address,omitempty"`
	MaritalStatus        json.RawMessage     `json:"maritalStatus,omitempty"`
	MultipleBirthBoolean json.RawMessage     `json:"multipleBirthBoolean,omitempty"`
	MultipleBirthInteger json.RawMessage     `json:"multipleBirthInteger,omitempty"`
	Photo                json.RawMessage     `json:"photo,omitempty"`
	Contact              json.RawMessage     `json:"contact,omitempty"`
	Animal               json.RawMessage     `json:"animal,omitempty"`
	Communication        json.RawMessage     `json:"communication,omitempty"`
	GeneralPractitioner  json.RawMessage     `json:"generalPractitioner,omitempty"`
	ManagingOrganization json.RawMessage     `json:"managingOrganization,omitempty"`
	Link                 json.RawMessage     `json:"link,omitempty"`
}

// notAllowed names the members a registration carries that the
// specification says MUST NOT be populated ("All other fields MUST NOT be
// populated": only identifier, name, gender, birthDate, address, telecom
// and the NHSCommunication extension may be).
func (pt *patientBody) notAllowed() []string {
	var out []string
	for _, m := range []struct {
		name string
		raw  json.RawMessage
	}{
		{"implicitRules", pt.ImplicitRules}, {"language", pt.Language}, {"text", pt.Text}, {"contained", pt.Contained},
		{"modifierExtension", pt.ModifierExtension}, {"active", pt.Active},
		{"deceasedBoolean", pt.DeceasedBoolean}, {"deceasedDateTime", pt.DeceasedDateTime},
		{"maritalStatus", pt.MaritalStatus}, {"multipleBirthBoolean", pt.MultipleBirthBoolean},
		{"multipleBirthInteger", pt.MultipleBirthInteger}, {"photo", pt.Photo}, {"contact", pt.Contact},
		{"animal", pt.Animal}, {"communication", pt.Communication}, {"generalPractitioner", pt.GeneralPractitioner},
		{"managingOrganization", pt.ManagingOrganization}, {"link", pt.Link},
	} {
		if len(m.raw) > 0 && string(m.raw) != "null" {
			out = append(out, m.name)
		}
	}
	return out
}

// phoneUses are the uses a registration's phone numbers may have, one
// number each.
var phoneUses = map[string]bool{"home": true, "work": true, "mobile": true, "temp": true}

// decodeRegistration reads a $gpc.registerpatient Parameters body and
// returns the patient it asks to register, as sent: NHS number, the
// official name (every given name), other names, gender, birth date,
// addresses, telecoms and language. It applies the rules of the Register a
// patient page: the minimum details (an NHS number, one official name with
// family and given names, the birth date) are mandatory, at most one home
// and one temporary address, at most one phone number per use and one
// email address, at most one NHSCommunication extension, and nothing else.
// A body that breaks them is 422 INVALID_RESOURCE (the page's code for an
// invalid Parameters or Patient, or one without the minimum details); an
// NHS number that fails the modulus-11 check is 400 INVALID_NHS_NUMBER.
func decodeRegistration(b []byte, now time.Time) (Patient, *gpconnect.Refusal) {
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
			return p, invalidParameter("parameter registerPatient is repeated: send the Patient once")
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
	if bad := pt.notAllowed(); len(bad) > 0 {
		return p, invalidResource("the Patient carries %s, which a registration must not: send only identifier, name, gender, birthDate, address, telecom and the NHSCommunication extension",
			strings.Join(bad, ", "))
	}
	if o := registrationIdentifiers(pt.Identifier, &p); o != nil {
		return p, o
	}
	if o := registrationNames(pt.Name, &p); o != nil {
		return p, o
	}
	if pt.Gender != "" && !genders[pt.Gender] {
		return p, invalidResource("the Patient's gender %q is not male, female, other or unknown", pt.Gender)
	}
	p.Gender = pt.Gender
	if pt.BirthDate == "" {
		return p, invalidResource("the Patient has no birthDate: it is one of the minimum details of a registration")
	}
	bd, err := time.Parse(time.DateOnly, pt.BirthDate)
	if err != nil {
		return p, invalidResource("the Patient's birthDate %q is not a date (2006-01-02)", pt.BirthDate)
	}
	if bd.After(now) {
		return p, invalidResource("the Patient's birthDate %q is in the future", pt.BirthDate)
	}
	p.BirthDate = pt.BirthDate
	if o := registrationAddresses(pt.Address, &p); o != nil {
		return p, o
	}
	if o := registrationTelecoms(pt.Telecom, &p); o != nil {
		return p, o
	}
	if o := registrationExtensions(pt.Extension, &p); o != nil {
		return p, o
	}
	return p, nil
}

func registrationIdentifiers(ids []fhir.Identifier, p *Patient) *gpconnect.Refusal {
	for i, id := range ids {
		if id.System == "" || id.Value == "" {
			return invalidResource("the Patient's identifier %d needs both a system and a value", i+1)
		}
		if id.System != systemNHSNumber {
			continue // another business identifier: allowed, not kept
		}
		if p.NHSNumber != "" {
			return invalidResource("the Patient has more than one NHS number")
		}
		p.NHSNumber = id.Value
	}
	if p.NHSNumber == "" {
		return invalidResource("the Patient has no identifier with system %s: the NHS number is one of the minimum details of a registration", systemNHSNumber)
	}
	if !gpconnect.ValidNHSNumber(p.NHSNumber) {
		return refuse(http.StatusBadRequest, gpconnect.CodeInvalidNHSNumber, "%q is not a valid NHS number (10 digits with a modulus-11 check digit)", p.NHSNumber)
	}
	return nil
}

func registrationNames(names []fhir.HumanName, p *Patient) *gpconnect.Refusal {
	official := -1
	for i, n := range names {
		switch {
		case n.Use == "":
			return invalidResource("the Patient's name %d has no use: the official name has use official, others theirs (usual, nickname, ...)", i+1)
		case n.Use != "official":
			p.OtherNames = append(p.OtherNames, n)
			continue
		case official >= 0:
			return invalidResource("the Patient has more than one name with use official")
		}
		official = i
	}
	if official < 0 {
		return invalidResource("the Patient has no name with use official: it is one of the minimum details of a registration")
	}
	n := names[official]
	given := slices.DeleteFunc(slices.Clone(n.Given), func(s string) bool { return s == "" })
	if n.Family == "" || len(given) == 0 {
		return invalidResource("the Patient's official name needs a family name and a given name")
	}
	p.Family, p.Given, p.MoreGiven = n.Family, given[0], given[1:]
	if len(n.Prefix) > 0 {
		p.Prefix = n.Prefix[0]
	}
	return nil
}

func registrationAddresses(addrs []fhir.Address, p *Patient) *gpconnect.Refusal {
	seen := map[string]bool{}
	for i, a := range addrs {
		if a.Use != "home" && a.Use != "temp" {
			return invalidResource("the Patient's address %d has use %q: a registration carries a home address and a temp address, no other", i+1, a.Use)
		}
		if seen[a.Use] {
			return invalidResource("the Patient has more than one address with use %s", a.Use)
		}
		seen[a.Use] = true
		p.Address = append(p.Address, a)
	}
	return nil
}

func registrationTelecoms(telecoms []fhir.ContactPoint, p *Patient) *gpconnect.Refusal {
	phones, emails := map[string]bool{}, 0
	for i, t := range telecoms {
		if t.Value == "" {
			return invalidResource("the Patient's telecom %d has no value", i+1)
		}
		switch t.System {
		case "phone":
			if !phoneUses[t.Use] {
				return invalidResource("the Patient's telecom %d is a phone with use %q: use home, work, mobile or temp", i+1, t.Use)
			}
			if phones[t.Use] {
				return invalidResource("the Patient has more than one phone with use %s", t.Use)
			}
			phones[t.Use] = true
		case "email":
			if emails++; emails > 1 {
				return invalidResource("the Patient has more than one email address")
			}
		default:
			return invalidResource("the Patient's telecom %d has system %q: a registration carries phone numbers and an email address", i+1, t.System)
		}
		p.Telecom = append(p.Telecom, t)
	}
	return nil
}

// registrationExtensions accepts one extension only, NHSCommunication,
// with its language (coded in CareConnect-HumanLanguage-1) and the
// preferred and interpreterRequired flags.
func registrationExtensions(raw json.RawMessage, p *Patient) *gpconnect.Refusal {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var exts []fhir.Extension
	if o := decodeStrict(raw, "Patient extension", &exts); o != nil {
		return invalidResource("the Patient's extensions: %s", o.Reason)
	}
	for _, e := range exts {
		if e.URL != extNHSCommunication {
			return invalidResource("the Patient carries the extension %q: a registration carries only %s", e.URL, extNHSCommunication)
		}
		if p.Communication != nil {
			return invalidResource("the Patient carries more than one NHSCommunication extension")
		}
		c := &Communication{}
		for _, sub := range e.Extension {
			switch sub.URL {
			case "language":
				if c.Language.Code != "" || sub.ValueCodeableConcept == nil || len(sub.ValueCodeableConcept.Coding) != 1 {
					return invalidResource("NHSCommunication needs one language with one coding")
				}
				c.Language = sub.ValueCodeableConcept.Coding[0]
				if c.Language.System != codeHumanLanguage || c.Language.Code == "" {
					return invalidResource("NHSCommunication's language must be a code of %s", codeHumanLanguage)
				}
			case "preferred", "interpreterRequired":
				if sub.ValueBoolean == nil {
					return invalidResource("NHSCommunication's %s needs valueBoolean", sub.URL)
				}
				if sub.URL == "preferred" {
					c.Preferred = sub.ValueBoolean
				} else {
					c.InterpreterRequired = sub.ValueBoolean
				}
			default:
				return invalidResource("NHSCommunication's %q is not kept by a registration: send language, preferred and interpreterRequired", sub.URL)
			}
		}
		if c.Language.Code == "" {
			return invalidResource("NHSCommunication needs its language")
		}
		p.Communication = c
	}
	return nil
}

// checkPDS applies the PDS requirements of Register a patient to the
// record PDS holds for the number: it must be there and verify against
// what the consumer sent (the date of birth, or two of its three parts with
// the first three letters of the family name and the given name's
// initial), and be neither superseded (400 INVALID_NHS_NUMBER) nor a
// deceased or sensitive patient's (400 INVALID_PATIENT_DEMOGRAPHICS).
func checkPDS(rec PDSRecord, found bool, sent Patient) *gpconnect.Refusal {
	demographics := func(format string, args ...any) *gpconnect.Refusal {
		return refuse(http.StatusBadRequest, gpconnect.CodeInvalidPatientDemographics, format, args...)
	}
	switch {
	case !found:
		return demographics("PDS holds no patient with NHS number %s", sent.NHSNumber)
	case rec.NHSNumber != sent.NHSNumber:
		return refuse(http.StatusBadRequest, gpconnect.CodeInvalidNHSNumber,
			"PDS records NHS number %s as superseded (by %s): trace the patient again and register the current number", sent.NHSNumber, rec.NHSNumber)
	case !pdsVerified(rec, sent):
		return demographics("the NHS number %s does not verify against PDS: the birth date (or its parts with the family name and given name) differ from PDS's record", sent.NHSNumber)
	case rec.Deceased:
		return demographics("PDS records the patient with NHS number %s as deceased", sent.NHSNumber)
	case rec.Sensitive:
		return demographics("PDS flags the patient with NHS number %s as sensitive: a sensitive patient cannot be registered this way", sent.NHSNumber)
	}
	return nil
}

// pdsVerified is the verification rule of Register a patient: the date of
// birth matches exactly, or two of its three parts (year, month, day) match
// and so do the first three characters of the family name and the given
// name's initial, case aside.
func pdsVerified(rec PDSRecord, sent Patient) bool {
	if rec.BirthDate == sent.BirthDate {
		return true
	}
	a, b := strings.Split(rec.BirthDate, "-"), strings.Split(sent.BirthDate, "-")
	if len(a) != 3 || len(b) != 3 {
		return false
	}
	parts := 0
	for i := range a {
		if a[i] == b[i] {
			parts++
		}
	}
	prefix := func(s string, n int) string {
		s = strings.ToUpper(strings.TrimSpace(s))
		if len(s) < n {
			return s
		}
		return s[:n]
	}
	given := ""
	if len(rec.Given) > 0 {
		given = rec.Given[0]
	}
	return parts >= 2 && prefix(rec.Family, 3) == prefix(sent.Family, 3) && prefix(given, 1) != "" && prefix(given, 1) == prefix(sent.Given, 1)
}

// registerPatient is $gpc.registerpatient: the PDS checks first (when the
// practice has a PDS), then the practice's own record of the number: an
// active or deceased patient is refused, an inactive one re-activated as a
// temporary patient, anyone else registered as a new temporary patient. The
// record keeps what the consumer sent, with the gender, home address and
// telecoms from PDS where the consumer left them out; temporary addresses
// and phone numbers end when the registration does.
func (p *practice) registerPatient(rq *request) (*reply, *gpconnect.Refusal) {
	sent, o := decodeRegistration(rq.body, rq.now)
	if o != nil {
		return nil, o
	}
	if p.demographics != nil {
		rec, found := p.demographics(sent.NHSNumber)
		if o := checkPDS(rec, found, sent); o != nil {
			return nil, o
		}
		supplement(&sent, rec)
	}
	return p.update(rq, func(tx Tx) (*reply, string, *gpconnect.Refusal) {
		pt, held := tx.PatientByNHS(sent.NHSNumber)
		note := "registered"
		switch {
		case held && pt.Deceased != "":
			return nil, "", refuse(http.StatusBadRequest, gpconnect.CodeInvalidPatientDemographics,
				"the practice records the patient with NHS number %s as deceased", sent.NHSNumber)
		case held && pt.Sensitive:
			return nil, "", refuse(http.StatusBadRequest, gpconnect.CodeInvalidPatientDemographics,
				"the patient with NHS number %s is a sensitive patient: a sensitive patient cannot be registered this way", sent.NHSNumber)
		case held && !pt.Inactive:
			return nil, "", refuse(http.StatusConflict, gpconnect.CodeDuplicateRejected,
				"the patient with NHS number %s is already registered (Patient/%s)", sent.NHSNumber, pt.ID)
		case held:
			note = "re-activated"
			sent.ID, sent.Version, sent.GPID, sent.Seeded = pt.ID, pt.Version+1, pt.GPID, pt.Seeded
		default:
			sent.ID, sent.Version = tx.NewPatientID(), 1
			if prs := tx.Practitioners(); len(prs) > 0 {
				sent.GPID = prs[0].ID
			}
		}
		sent.RegistrationType, sent.Registered, sent.LastUpdated = "T", rq.now, rq.now
		endTemporary(&sent, rq.now.In(p.loc).AddDate(0, temporaryMonths, 0).Format(time.DateOnly))
		tx.PutPatient(sent)
		b := &bundle{p: p}
		b.add("Patient", sent.ID, p.patient(sent))
		return p.searchset(rq, b), fmt.Sprintf("%s Patient/%s with NHS number %s as a temporary patient", note, sent.ID, sent.NHSNumber), nil
	})
}

// supplement fills what the consumer left out from PDS's record: the
// gender, the home address and the telecoms ("the provider system will use
// demographics retrieved from PDS").
func supplement(p *Patient, rec PDSRecord) {
	if p.Gender == "" {
		p.Gender = rec.Gender
	}
	if rec.Address != nil && !slices.ContainsFunc(p.Address, func(a fhir.Address) bool { return a.Use == "home" }) {
		a := *rec.Address
		a.Use = "home"
		p.Address = append([]fhir.Address{a}, p.Address...)
	}
	if len(p.Telecom) == 0 {
		p.Telecom = slices.Clone(rec.Telecom)
	}
}

// endTemporary gives the temporary address and phone number sent an end
// date, the registration's, unless they came with one.
func endTemporary(p *Patient, end string) {
	for i := range p.Address {
		endIfTemporary(p.Address[i].Use, &p.Address[i].Period, end)
	}
	for i := range p.Telecom {
		endIfTemporary(p.Telecom[i].Use, &p.Telecom[i].Period, end)
	}
}

// endIfTemporary ends a temporary element's period at end, keeping its
// start, unless it already has an end.
func endIfTemporary(use string, period **fhir.Period, end string) {
	if use != "temp" || (*period != nil && (*period).End != "") {
		return
	}
	per := fhir.Period{End: end}
	if *period != nil {
		per.Start = (*period).Start
	}
	*period = &per
}
