package demonstrator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"sspemu/fhir"
	"sspemu/gpconnect"
)

// The extensions and codes of Appointment Management that the practice
// fills from its own schedules and slots.
const (
	extDeliveryChannel  = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-DeliveryChannel-2"
	extPractitionerRole = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-PractitionerRole-1"
	codeSDSJobRoleName  = "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-SDSJobRoleName-1"

	defaultServiceCategory  = "GP Surgery"
	defaultPractitionerRole = "R0260"
	defaultDeliveryChannel  = "In-person"
)

// deliveryChannels is ValueSet GPConnect-DeliveryChannel-1.
var deliveryChannels = []string{"In-person", "Telephone", "Video"}

// practitionerRoles is ValueSet GPConnect-PractitionerRole-1 (codes of
// CareConnect-SDSJobRoleName-1 and their displays), which a schedule's
// practitioner_role must come from.
var practitionerRoles = map[string]string{
	"R0260": "General Medical Practitioner", "R0270": "Salaried General Practitioner",
	"R0410": "Student Practice Nurse", "R0600": "Specialist Nurse Practitioner",
	"R0610": "Sister/Charge Nurse", "R0620": "Staff Nurse", "R0680": "Midwife",
	"R0690": "Community Practitioner", "R0700": "Community Nurse", "R0790": "Dietitian",
	"R1290": "Pharmacist", "R1300": "Psychotherapist", "R1310": "Clinical Psychologist",
	"R1330": "Social Worker", "R1450": "Health Care Support Worker", "R1480": "Healthcare Assistant",
	"R1550": "Counsellor", "R1590": "Phlebotomist", "R6200": "GP Registrar", "R6300": "Sessional GP",
}

// practitionerRoleExtension is the schedule's Extension-GPConnect-PractitionerRole-1,
// which its appointments carry too.
func practitionerRoleExtension(sc Schedule) fhir.Extension {
	return fhir.Extension{URL: extPractitionerRole, ValueCodeableConcept: &fhir.CodeableConcept{Coding: []fhir.Coding{{
		System: codeSDSJobRoleName, Code: sc.PractitionerRole, Display: practitionerRoles[sc.PractitionerRole],
	}}}}
}

func deliveryChannelExtension(sc Schedule) fhir.Extension {
	return fhir.Extension{URL: extDeliveryChannel, ValueCode: sc.DeliveryChannel}
}

// slotShared is what every slot of one schedule shares in a search's
// answer, made once per search rather than once per slot.
type slotShared struct {
	lastUpdated string
	profile     []string
	extension   []fhir.Extension
	serviceType []fhir.CodeableConcept
	schedule    fhir.Reference
}

func (p *practice) slotShared(seededAt time.Time, sc Schedule) slotShared {
	return slotShared{
		lastUpdated: formatTime(seededAt, p.loc),
		profile:     []string{profileSlot},
		extension:   []fhir.Extension{deliveryChannelExtension(sc)},
		serviceType: []fhir.CodeableConcept{{Text: sc.ServiceType}},
		schedule:    fhir.Reference{Reference: "Schedule/" + sc.ID},
	}
}

func (p *practice) slot(sl Slot, sh *slotShared) slotResource {
	status := "free"
	if !sl.Free {
		status = "busy"
	}
	return slotResource{
		ResourceType: "Slot",
		ID:           sl.ID,
		Meta:         fhir.Meta{VersionID: strconv.Itoa(sl.Version), LastUpdated: sh.lastUpdated, Profile: sh.profile},
		Extension:    sh.extension,
		ServiceType:  sh.serviceType,
		Schedule:     sh.schedule,
		Status:       status,
		Start:        formatTime(sl.Start, p.loc),
		End:          formatTime(sl.End, p.loc),
	}
}

// schedule renders a Schedule as GPConnect-Schedule-1 has it: exactly one
// PractitionerRole extension, its category but no serviceType (0..0: the
// type is each slot's) and no specialty.
func (p *practice) schedule(seededAt time.Time, sc Schedule) scheduleResource {
	y, m, day := seededAt.In(p.loc).Date()
	start := time.Date(y, m, day, 0, 0, 0, 0, p.loc)
	return scheduleResource{
		ResourceType:    "Schedule",
		ID:              sc.ID,
		Meta:            p.meta(1, seededAt, profileSchedule),
		Extension:       []fhir.Extension{practitionerRoleExtension(sc)},
		ServiceCategory: &fhir.CodeableConcept{Text: sc.ServiceCategory},
		Actor: []fhir.Reference{
			{Reference: "Location/" + sc.LocationID},
			{Reference: "Practitioner/" + sc.PractitionerID},
		},
		PlanningHorizon: fhir.Period{Start: formatTime(start, p.loc), End: formatTime(start.AddDate(0, 0, 28), p.loc)},
	}
}

func (p *practice) appointment(a Appointment) AppointmentBody {
	b := a.Body
	b.ID = a.ID
	b.Meta = mustJSON(p.meta(a.Version, a.LastUpdated, profileAppointment))
	return b
}

// withPracticeFields gives a booked appointment what the practice, not the
// consumer, defines: serviceCategory and serviceType from the schedule and
// its slots, and the schedule's PractitionerRole and the slots'
// DeliveryChannel extensions. Whatever the consumer sent in their place is
// replaced, so an appointment always shows the practice's own values.
func withPracticeFields(b AppointmentBody, sc Schedule) AppointmentBody {
	b.ServiceCategory = mustJSON(fhir.CodeableConcept{Text: sc.ServiceCategory})
	b.ServiceType = mustJSON([]fhir.CodeableConcept{{Text: sc.ServiceType}})
	var exts []json.RawMessage
	for _, raw := range b.Extension {
		if u := extensionURL(raw); u != extPractitionerRole && u != extDeliveryChannel {
			exts = append(exts, raw)
		}
	}
	b.Extension = append(exts, mustJSON(practitionerRoleExtension(sc)), mustJSON(deliveryChannelExtension(sc)))
	return b
}

// extensionURL reads the url of a raw extension; "" when it has none.
func extensionURL(raw json.RawMessage) string {
	var e struct {
		URL string `json:"url"`
	}
	_ = json.Unmarshal(raw, &e) // a body's extensions were checked when it was decoded
	return e.URL
}

func (p *practice) searchSlots(rq *request) (*reply, *gpconnect.Refusal) {
	q, o := parseSlotQuery(rq.params, p.loc)
	if o != nil {
		return nil, o
	}
	return p.view(func(tx Tx) (*reply, *gpconnect.Refusal) {
		seeded := tx.SeededAt()
		schedules := tx.Schedules()
		byID := make(map[string]int, len(schedules))
		shared := make([]slotShared, len(schedules))
		for i, sc := range schedules {
			byID[sc.ID] = i
			shared[i] = p.slotShared(seeded, sc)
		}
		used := make([]bool, len(schedules))
		b := &bundle{p: p}
		tx.SlotsStarting(q.from, q.before, func(sl Slot) bool {
			if !sl.Free || !sl.End.Before(q.before) || !sl.Start.After(rq.now) {
				return true
			}
			i, ok := byID[sl.ScheduleID]
			if !ok {
				return true
			}
			b.add("Slot", sl.ID, p.slot(sl, &shared[i]))
			used[i] = true
			return true
		})
		practitioners, locations := map[string]bool{}, map[string]bool{}
		for i, sc := range schedules {
			if !used[i] {
				continue
			}
			b.add("Schedule", sc.ID, p.schedule(seeded, sc))
			practitioners[sc.PractitionerID] = true
			locations[sc.LocationID] = true
		}
		if q.includePractitioner {
			for _, pr := range tx.Practitioners() {
				if practitioners[pr.ID] {
					b.add("Practitioner", pr.ID, p.practitioner(seeded, pr))
				}
			}
		}
		if q.includeLocation {
			for _, l := range tx.Locations() {
				if locations[l.ID] {
					b.add("Location", l.ID, p.location(seeded, l))
				}
			}
		}
		// The Organization managing the slots' locations is always there
		// when slots are, whether or not the consumer asked for it with
		// _include:recurse=Location:managingOrganization.
		if len(locations) > 0 {
			b.add("Organization", orgID, p.organization(seeded))
		}
		return p.searchset(rq, b), nil
	})
}

func (p *practice) readAppointment(rq *request) (*reply, *gpconnect.Refusal) {
	id := idOf(rq.rel, 2)
	return p.view(func(tx Tx) (*reply, *gpconnect.Refusal) {
		a, ok := tx.Appointment(id)
		if !ok {
			return nil, refuse(http.StatusNotFound, gpconnect.CodeNoRecordFound, "no appointment with logical ID %q", id)
		}
		// GP Connect reads future appointments only; today's count as
		// future (Appointment Management design decisions).
		if a.Start.Before(p.today(rq.now)) {
			return nil, invalidParameter("Appointment/%s started on %s, before today: GP Connect reads only today's and future appointments",
				id, a.Start.In(p.loc).Format(time.DateOnly))
		}
		return &reply{status: http.StatusOK, version: strconv.Itoa(a.Version), body: p.appointment(a)}, nil
	})
}

// today is the start of the practice's (UK) calendar day at now.
func (p *practice) today(now time.Time) time.Time {
	y, m, d := now.In(p.loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, p.loc)
}

func (p *practice) patientAppointments(rq *request) (*reply, *gpconnect.Refusal) {
	from, before, o := parseAppointmentsQuery(rq.params, p.loc, rq.now)
	if o != nil {
		return nil, o
	}
	id := idOf(rq.rel, 2)
	return p.view(func(tx Tx) (*reply, *gpconnect.Refusal) {
		if _, ok := tx.Patient(id); !ok {
			return nil, refuse(http.StatusNotFound, gpconnect.CodePatientNotFound, "no patient with logical ID %q", id)
		}
		var list []Appointment
		for _, a := range tx.AppointmentsOf(id) {
			if !a.Start.Before(from) && a.Start.Before(before) {
				list = append(list, a)
			}
		}
		sort.SliceStable(list, func(i, j int) bool { return list[i].Start.Before(list[j].Start) })
		b := &bundle{p: p}
		for _, a := range list {
			b.add("Appointment", a.ID, p.appointment(a))
		}
		return p.searchset(rq, b), nil
	})
}

// decodeAppointment reads an Appointment request body strictly: bad JSON is
// 400 BAD_REQUEST, an unknown member or a wrong resource type 422
// INVALID_RESOURCE.
func decodeAppointment(b []byte) (AppointmentBody, *gpconnect.Refusal) {
	var a AppointmentBody
	if o := decodeStrict(b, "Appointment", &a); o != nil {
		return a, o
	}
	if a.ResourceType != "Appointment" {
		return a, invalidResource("resourceType %q: the body must be an Appointment", a.ResourceType)
	}
	for i, pt := range a.Participant {
		if pt.Actor == nil || pt.Actor.Reference == "" {
			return a, invalidResource("participant[%d] has no actor reference", i)
		}
	}
	return a, nil
}

// refID splits a relative reference "Kind/id".
func refID(ref string) (kind, id string, ok bool) {
	kind, id, ok = strings.Cut(ref, "/")
	return kind, id, ok && gpconnect.IsLogicalID(id)
}

func parseDateTime(v string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, v)
	return t, err == nil
}

// extensions decodes the raw extensions of a body.
func extensions(a AppointmentBody) ([]fhir.Extension, *gpconnect.Refusal) {
	out := make([]fhir.Extension, 0, len(a.Extension))
	for i, raw := range a.Extension {
		var e fhir.Extension
		if err := json.Unmarshal(raw, &e); err != nil || e.URL == "" {
			return nil, invalidResource("extension[%d] is not an extension with a url", i)
		}
		out = append(out, e)
	}
	return out, nil
}

// participantStatuses is STU3's participationstatus, Appointment.participant.status (1..1).
var participantStatuses = []string{"accepted", "declined", "tentative", "needs-action"}

// checkIdentifiers applies GPConnect-Appointment-1 to the identifiers of a
// new appointment: each has a system and a value, and nothing else.
func checkIdentifiers(raw json.RawMessage) *gpconnect.Refusal {
	if len(raw) == 0 {
		return nil
	}
	var ids []fhir.Identifier
	if err := json.Unmarshal(raw, &ids); err != nil {
		return invalidResource("identifier is not a list of Identifier: %v", err)
	}
	for i, id := range ids {
		switch {
		case id.System == "" || id.Value == "":
			return invalidResource("identifier[%d] needs both system and value (GPConnect-Appointment-1)", i)
		case id.Use != "" || id.Type != nil || id.Period != nil || id.Assigner != nil:
			return invalidResource("identifier[%d] carries use, type, period or assigner, which GPConnect-Appointment-1 does not use", i)
		}
	}
	return nil
}

// booking is what a valid book request asks for.
type booking struct {
	start, end   time.Time
	slotIDs      []string
	patientID    string
	locationID   string
	practitioner []string
}

// validateBooking checks the rules of the book appointment request that do
// not depend on the appointment book.
func validateBooking(a AppointmentBody, now time.Time) (booking, *gpconnect.Refusal) {
	var bk booking
	if a.ID != "" {
		return bk, invalidResource("a new appointment must not carry an id (got %q)", a.ID)
	}
	if len(a.Reason) > 0 {
		return bk, invalidResource("Appointment.reason must not be sent (GP Connect appointments carry no clinical codes)")
	}
	if len(a.Specialty) > 0 {
		return bk, invalidResource("Appointment.specialty must not be sent: the practice defines its appointments' types")
	}
	for _, m := range []struct {
		name  string
		value json.RawMessage
	}{
		{"appointmentType", a.AppointmentType}, {"indication", a.Indication}, {"supportingInformation", a.SupportingInformation},
		{"incomingReferral", a.IncomingReferral}, {"requestedPeriod", a.RequestedPeriod},
	} {
		if len(m.value) > 0 {
			return bk, invalidResource("Appointment.%s must not be sent: GPConnect-Appointment-1 does not use it (0..0)", m.name)
		}
	}
	if o := checkIdentifiers(a.Identifier); o != nil {
		return bk, o
	}
	if a.Status != "booked" {
		return bk, invalidResource("status %q: a new appointment has status booked", a.Status)
	}
	var ok bool
	if bk.start, ok = parseDateTime(a.Start); !ok {
		return bk, invalidResource("start %q is not a dateTime with offset", a.Start)
	}
	if bk.end, ok = parseDateTime(a.End); !ok {
		return bk, invalidResource("end %q is not a dateTime with offset", a.End)
	}
	if !bk.end.After(bk.start) {
		return bk, invalidResource("end %s is not after start %s", a.End, a.Start)
	}
	if !bk.start.After(now) {
		return bk, invalidResource("start %s is in the past: only future appointments can be booked", a.Start)
	}
	if a.Description == "" {
		return bk, invalidResource("description is mandatory: a brief description of the appointment")
	}
	if a.Created == "" {
		return bk, invalidResource("created is mandatory")
	}
	if _, ok := parseDateTime(a.Created); !ok {
		if _, err := time.Parse(time.DateOnly, a.Created); err != nil {
			return bk, invalidResource("created %q is not a dateTime", a.Created)
		}
	}
	if len(a.Slot) == 0 {
		return bk, invalidResource("slot is mandatory: reference at least one free Slot")
	}
	for i, s := range a.Slot {
		kind, id, ok := refID(s.Reference)
		if !ok || kind != "Slot" {
			return bk, invalidResource("slot[%d] reference %q is not Slot/<id>", i, s.Reference)
		}
		bk.slotIDs = append(bk.slotIDs, id)
	}
	for i, pt := range a.Participant {
		kind, id, ok := refID(pt.Actor.Reference)
		if !ok {
			return bk, invalidResource("participant[%d] reference %q is not <Type>/<id>", i, pt.Actor.Reference)
		}
		if !slices.Contains(participantStatuses, pt.Status) {
			return bk, invalidResource("participant[%d] status %q: each participant needs a status, one of %s", i, pt.Status, strings.Join(participantStatuses, ", "))
		}
		switch kind {
		case "Patient":
			if bk.patientID != "" {
				return bk, invalidResource("more than one Patient participant")
			}
			bk.patientID = id
		case "Location":
			if bk.locationID != "" {
				return bk, invalidResource("more than one Location participant")
			}
			bk.locationID = id
		case "Practitioner":
			bk.practitioner = append(bk.practitioner, id)
		default:
			return bk, invalidResource("participant[%d] is a %s: only Patient, Location and Practitioner take part", i, kind)
		}
	}
	if bk.patientID == "" {
		return bk, invalidResource("a Patient participant is mandatory")
	}
	if bk.locationID == "" {
		return bk, invalidResource("a Location participant is mandatory")
	}
	exts, o := extensions(a)
	if o != nil {
		return bk, o
	}
	orgRef := ""
	for _, e := range exts {
		switch e.URL {
		case extCancellationReason:
			return bk, invalidResource("a new appointment must not carry a cancellation reason")
		case extBookingOrganisation:
			if e.ValueReference == nil || !strings.HasPrefix(e.ValueReference.Reference, "#") {
				return bk, invalidResource("the bookingOrganisation extension must reference a contained Organization (#id)")
			}
			orgRef = e.ValueReference.Reference[1:]
		}
	}
	if orgRef == "" {
		return bk, invalidResource("the bookingOrganisation extension (%s) is mandatory", extBookingOrganisation)
	}
	found := false
	for _, raw := range a.Contained {
		var c containedHead
		if err := json.Unmarshal(raw, &c); err != nil {
			return bk, invalidResource("a contained resource cannot be read: %v", err)
		}
		if c.ID != orgRef {
			continue
		}
		if c.ResourceType != "Organization" || c.Name == "" || len(c.Telecom) == 0 {
			return bk, invalidResource("the booking organisation #%s must be a contained Organization with name and telecom", orgRef)
		}
		found = true
	}
	if !found {
		return bk, invalidResource("the booking organisation #%s is not among the contained resources", orgRef)
	}
	return bk, nil
}

func (p *practice) bookAppointment(rq *request) (*reply, *gpconnect.Refusal) {
	a, o := decodeAppointment(rq.body)
	if o != nil {
		return nil, o
	}
	bk, o := validateBooking(a, rq.now)
	if o != nil {
		return nil, o
	}
	return p.update(rq, func(tx Tx) (*reply, string, *gpconnect.Refusal) {
		if _, ok := tx.Patient(bk.patientID); !ok {
			return nil, "", refuse(http.StatusUnprocessableEntity, gpconnect.CodeReferenceNotFound, "participant Patient/%s does not exist", bk.patientID)
		}
		if _, ok := tx.Location(bk.locationID); !ok {
			return nil, "", refuse(http.StatusUnprocessableEntity, gpconnect.CodeReferenceNotFound, "participant Location/%s does not exist", bk.locationID)
		}
		for _, id := range bk.practitioner {
			if _, ok := tx.Practitioner(id); !ok {
				return nil, "", refuse(http.StatusUnprocessableEntity, gpconnect.CodeReferenceNotFound, "participant Practitioner/%s does not exist", id)
			}
		}
		var slots []Slot
		for _, id := range bk.slotIDs {
			sl, ok := tx.Slot(id)
			if !ok {
				return nil, "", refuse(http.StatusUnprocessableEntity, gpconnect.CodeReferenceNotFound, "Slot/%s does not exist", id)
			}
			if slices.ContainsFunc(slots, func(s Slot) bool { return s.ID == id }) {
				return nil, "", invalidResource("Slot/%s is referenced twice", id)
			}
			slots = append(slots, sl)
		}
		sort.Slice(slots, func(i, j int) bool { return slots[i].Start.Before(slots[j].Start) })
		for i, sl := range slots {
			if !sl.Free {
				return nil, "", refuse(http.StatusConflict, gpconnect.CodeDuplicateRejected, "Slot/%s is no longer free", sl.ID)
			}
			if i > 0 && (sl.ScheduleID != slots[0].ScheduleID || !sl.Start.Equal(slots[i-1].End)) {
				return nil, "", invalidResource("Slot/%s does not follow Slot/%s in the same schedule: book adjacent slots only", sl.ID, slots[i-1].ID)
			}
		}
		first, last := slots[0], slots[len(slots)-1]
		if !bk.start.Equal(first.Start) || !bk.end.Equal(last.End) {
			return nil, "", invalidResource("start %s and end %s do not match the slots (%s to %s)", a.Start, a.End,
				formatTime(first.Start, p.loc), formatTime(last.End, p.loc))
		}
		sc, _ := tx.Schedule(first.ScheduleID)
		if sc.LocationID != bk.locationID {
			return nil, "", invalidResource("participant Location/%s is not the slots' location Location/%s", bk.locationID, sc.LocationID)
		}
		rec := Appointment{
			ID: tx.NewAppointmentID(), Version: 1, LastUpdated: rq.now, Body: withPracticeFields(a, sc),
			Start: bk.start, End: bk.end, PatientID: bk.patientID,
		}
		for _, sl := range slots {
			rec.SlotIDs = append(rec.SlotIDs, sl.ID)
			sl.Free = false
			sl.Version++
			tx.PutSlot(sl)
		}
		tx.PutAppointment(rec)
		rep := &reply{status: http.StatusCreated, version: "1", created: "Appointment/" + rec.ID, minimal: true, body: p.appointment(rec)}
		note := fmt.Sprintf("booked Appointment/%s in Slot/%s for Patient/%s", rec.ID, strings.Join(rec.SlotIDs, ", Slot/"), rec.PatientID)
		return rep, note, nil
	})
}

// normalized renders a body as a member map for comparison: meta and text
// are the server's, instants compare by value, not by spelling, and
// extensions as a set, in no order.
func normalized(a AppointmentBody) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(mustJSON(a), &m) // a marshalled struct always decodes into a map
	delete(m, "meta")
	delete(m, "text")
	for _, k := range []string{"start", "end", "created"} {
		if s, ok := m[k].(string); ok {
			if t, ok := parseDateTime(s); ok {
				m[k] = t.UTC().Format(time.RFC3339Nano)
			}
		}
	}
	if exts, ok := m["extension"].([]any); ok {
		slices.SortFunc(exts, func(x, y any) int { return strings.Compare(string(mustJSON(x)), string(mustJSON(y))) })
	}
	return m
}

// withPracticeFieldsOf fills in what the practice owns (serviceCategory,
// serviceType, the PractitionerRole and DeliveryChannel extensions) from
// the stored appointment where an amend or cancel body leaves it out, so
// that a consumer that does not know these members (1.2.6 and earlier)
// can still amend and cancel. One that sends them must send them as they
// are.
func withPracticeFieldsOf(stored, sent AppointmentBody) AppointmentBody {
	if len(sent.ServiceCategory) == 0 {
		sent.ServiceCategory = stored.ServiceCategory
	}
	if len(sent.ServiceType) == 0 {
		sent.ServiceType = stored.ServiceType
	}
	for _, url := range []string{extPractitionerRole, extDeliveryChannel} {
		if slices.ContainsFunc(sent.Extension, func(r json.RawMessage) bool { return extensionURL(r) == url }) {
			continue
		}
		for _, r := range stored.Extension {
			if extensionURL(r) == url {
				sent.Extension = append(slices.Clip(sent.Extension), r)
			}
		}
	}
	return sent
}

// changedMembers lists the top-level members that differ between the
// stored appointment and the request, leaving out those allowed to change
// and taking the practice's own members as sent when the request leaves
// them out.
func changedMembers(stored, sent AppointmentBody, allowed ...string) []string {
	a, b := normalized(stored), normalized(withPracticeFieldsOf(stored, sent))
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		if slices.Contains(allowed, k) || k == "id" {
			continue
		}
		if !reflect.DeepEqual(a[k], b[k]) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// updateTarget finds the appointment an amend or cancel names, inside the
// update's transaction, and checks it may change.
func updateTarget(tx Tx, rq *request, a AppointmentBody) (Appointment, *gpconnect.Refusal) {
	id := idOf(rq.rel, 2)
	if a.ID != id {
		return Appointment{}, badRequest("the body's id %q does not match the URL's Appointment/%s", a.ID, id)
	}
	rec, ok := tx.Appointment(id)
	if !ok {
		return rec, refuse(http.StatusNotFound, gpconnect.CodeNoRecordFound, "no appointment with logical ID %q", id)
	}
	if rq.ifMatchRaw != "" && rq.ifMatch != strconv.Itoa(rec.Version) {
		return rec, refuse(http.StatusConflict, gpconnect.CodeFHIRConstraintViolation,
			"If-Match %s does not match the current version W/\"%d\": read the appointment again", rq.ifMatchRaw, rec.Version)
	}
	if rec.Body.Status == "cancelled" {
		return rec, invalidResource("Appointment/%s is already cancelled", id)
	}
	if rec.Start.Before(rq.now) {
		return rec, invalidResource("Appointment/%s started in the past (%s) and cannot be changed", id, rec.Body.Start)
	}
	return rec, nil
}

func (p *practice) amendAppointment(rq *request) (*reply, *gpconnect.Refusal) {
	a, o := decodeAppointment(rq.body)
	if o != nil {
		return nil, o
	}
	return p.update(rq, func(tx Tx) (*reply, string, *gpconnect.Refusal) {
		rec, o := updateTarget(tx, rq, a)
		if o != nil {
			return nil, "", o
		}
		if changed := changedMembers(rec.Body, a, "comment", "description"); len(changed) > 0 {
			return nil, "", invalidResource("amend may change only comment and description; changed: %s", strings.Join(changed, ", "))
		}
		rec.Body.Comment, rec.Body.Description = a.Comment, a.Description
		rec.Version++
		rec.LastUpdated = rq.now
		tx.PutAppointment(rec)
		return p.updated(rec), fmt.Sprintf("amended Appointment/%s of Patient/%s", rec.ID, rec.PatientID), nil
	})
}

func (p *practice) cancelAppointment(rq *request) (*reply, *gpconnect.Refusal) {
	a, o := decodeAppointment(rq.body)
	if o != nil {
		return nil, o
	}
	if a.Status != "cancelled" {
		return nil, invalidResource("status %q: a cancellation sets status cancelled", a.Status)
	}
	exts, o := extensions(a)
	if o != nil {
		return nil, o
	}
	reason := -1
	for i, e := range exts {
		if e.URL == extCancellationReason {
			if reason >= 0 {
				return nil, invalidResource("the cancellation reason extension is repeated")
			}
			if strings.TrimSpace(e.ValueString) == "" {
				return nil, invalidParameter("the cancellation reason (%s) is empty: say why the appointment is cancelled", extCancellationReason)
			}
			reason = i
		}
	}
	if reason < 0 {
		return nil, invalidResource("the cancellation reason extension (%s) is mandatory", extCancellationReason)
	}
	return p.update(rq, func(tx Tx) (*reply, string, *gpconnect.Refusal) {
		rec, o := updateTarget(tx, rq, a)
		if o != nil {
			return nil, "", o
		}
		compare := a
		compare.Status = rec.Body.Status
		compare.Extension = slices.Delete(slices.Clone(a.Extension), reason, reason+1)
		if len(compare.Extension) == 0 {
			compare.Extension = nil
		}
		if changed := changedMembers(rec.Body, compare); len(changed) > 0 {
			return nil, "", invalidResource("cancel may change only status and the cancellation reason; changed: %s", strings.Join(changed, ", "))
		}
		rec.Body.Status = "cancelled"
		rec.Body.Extension = append(slices.Clone(rec.Body.Extension), a.Extension[reason])
		rec.Version++
		rec.LastUpdated = rq.now
		tx.PutAppointment(rec)
		for _, id := range rec.SlotIDs {
			if sl, ok := tx.Slot(id); ok {
				sl.Free = true
				sl.Version++
				tx.PutSlot(sl)
			}
		}
		return p.updated(rec), fmt.Sprintf("cancelled Appointment/%s of Patient/%s", rec.ID, rec.PatientID), nil
	})
}

func (p *practice) updated(rec Appointment) *reply {
	return &reply{status: http.StatusOK, version: strconv.Itoa(rec.Version), minimal: true, body: p.appointment(rec)}
}
