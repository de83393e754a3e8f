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

	"sspemu/gpconnect"
)

func (d *Demonstrator) slot(st *state, sl *slotRec) slotResource {
	status := "free"
	if !sl.free {
		status = "busy"
	}
	sc := st.schedule(sl.scheduleID)
	return slotResource{
		ResourceType: "Slot",
		ID:           sl.id,
		Meta:         d.meta(sl.version, st.seededAt, profileSlot),
		ServiceType:  []codeableConcept{{Text: sc.serviceType}},
		Schedule:     reference{Reference: "Schedule/" + sl.scheduleID},
		Status:       status,
		Start:        formatTime(sl.start, d.loc),
		End:          formatTime(sl.end, d.loc),
	}
}

func (d *Demonstrator) schedule(st *state, sc *scheduleRec) scheduleResource {
	y, m, day := st.seededAt.In(d.loc).Date()
	start := time.Date(y, m, day, 0, 0, 0, 0, d.loc)
	return scheduleResource{
		ResourceType:    "Schedule",
		ID:              sc.id,
		Meta:            d.meta(1, st.seededAt, profileSchedule),
		ServiceCategory: &codeableConcept{Text: "GP Surgery"},
		ServiceType:     []codeableConcept{{Text: sc.serviceType}},
		Actor: []reference{
			{Reference: "Location/" + sc.locationID},
			{Reference: "Practitioner/" + sc.practitionerID},
		},
		PlanningHorizon: period{Start: formatTime(start, d.loc), End: formatTime(start.AddDate(0, 0, 28), d.loc)},
	}
}

func (d *Demonstrator) appointment(a *appointmentRec) appointmentBody {
	b := a.body
	b.ID = a.id
	b.Meta = mustJSON(d.meta(a.version, a.lastUpdated, profileAppointment))
	return b
}

func (d *Demonstrator) searchSlots(rq *request) (*reply, *outcome) {
	q, o := parseSlotQuery(rq.params, d.loc)
	if o != nil {
		return nil, o
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	st := d.st
	var res []any
	var kinds, ids []string
	add := func(kind, id string, r any) {
		res, kinds, ids = append(res, r), append(kinds, kind), append(ids, id)
	}
	schedules := map[string]bool{}
	for _, sl := range st.slotOrder {
		if !sl.free || sl.start.Before(q.from) || !sl.end.Before(q.before) || !sl.start.After(rq.now) {
			continue
		}
		add("Slot", sl.id, d.slot(st, sl))
		schedules[sl.scheduleID] = true
	}
	practitioners, locations := map[string]bool{}, map[string]bool{}
	for _, sc := range st.schedules {
		if !schedules[sc.id] {
			continue
		}
		add("Schedule", sc.id, d.schedule(st, sc))
		practitioners[sc.practitionerID] = true
		locations[sc.locationID] = true
	}
	if q.includePractitioner {
		for _, p := range st.practitioners {
			if practitioners[p.id] {
				add("Practitioner", p.id, d.practitioner(st, p))
			}
		}
	}
	if q.includeLocation {
		for _, l := range st.locations {
			if locations[l.id] {
				add("Location", l.id, d.location(st, l))
			}
		}
	}
	return &reply{status: http.StatusOK, body: d.bundle(rq.now, res, kinds, ids)}, nil
}

func (d *Demonstrator) readAppointment(rq *request) (*reply, *outcome) {
	id := idOf(rq.rel, 2)
	d.mu.RLock()
	defer d.mu.RUnlock()
	a, ok := d.st.appointments[id]
	if !ok {
		return nil, refuse(http.StatusNotFound, gpconnect.CodeNoRecordFound, "no appointment with logical ID %q", id)
	}
	return &reply{status: http.StatusOK, etag: strconv.Itoa(a.version), body: d.appointment(a)}, nil
}

func (d *Demonstrator) patientAppointments(rq *request) (*reply, *outcome) {
	from, before, o := parseAppointmentsQuery(rq.params, d.loc)
	if o != nil {
		return nil, o
	}
	id := idOf(rq.rel, 2)
	d.mu.RLock()
	defer d.mu.RUnlock()
	if _, ok := d.st.patients[id]; !ok {
		return nil, refuse(http.StatusNotFound, gpconnect.CodePatientNotFound, "no patient with logical ID %q", id)
	}
	var list []*appointmentRec
	for _, aid := range d.st.apptOrder {
		a := d.st.appointments[aid]
		if a.patientID == id && !a.start.Before(from) && a.start.Before(before) {
			list = append(list, a)
		}
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].start.Before(list[j].start) })
	var res []any
	var kinds, ids []string
	for _, a := range list {
		res, kinds, ids = append(res, d.appointment(a)), append(kinds, "Appointment"), append(ids, a.id)
	}
	return &reply{status: http.StatusOK, body: d.bundle(rq.now, res, kinds, ids)}, nil
}

// readAppointment is the request's body as an Appointment: book, amend and
// cancel all start here.
func readAppointment(rq *request) (appointmentBody, *outcome) {
	b, o := readBody(rq)
	if o != nil {
		return appointmentBody{}, o
	}
	return decodeAppointment(b)
}

// decodeAppointment reads an Appointment request body strictly: bad JSON is
// 400 BAD_REQUEST, an unknown member or a wrong resource type 422
// INVALID_RESOURCE.
func decodeAppointment(b []byte) (appointmentBody, *outcome) {
	var a appointmentBody
	if o := decodeStrict(b, "Appointment", &a); o != nil {
		return a, o
	}
	if a.ResourceType != "Appointment" {
		return a, invalidResource("resourceType %q: the body must be an Appointment", a.ResourceType)
	}
	for i, p := range a.Participant {
		if p.Actor == nil || p.Actor.Reference == "" {
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
func extensions(a appointmentBody) ([]rawExtension, *outcome) {
	out := make([]rawExtension, 0, len(a.Extension))
	for i, raw := range a.Extension {
		var e rawExtension
		if err := json.Unmarshal(raw, &e); err != nil || e.URL == "" {
			return nil, invalidResource("extension[%d] is not an extension with a url", i)
		}
		out = append(out, e)
	}
	return out, nil
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
func validateBooking(a appointmentBody, now time.Time) (booking, *outcome) {
	var bk booking
	if a.ID != "" {
		return bk, invalidResource("a new appointment must not carry an id (got %q)", a.ID)
	}
	if len(a.Reason) > 0 {
		return bk, invalidResource("Appointment.reason must not be sent (GP Connect appointments carry no clinical codes)")
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
	if a.Created == "" {
		return bk, invalidResource("created is mandatory")
	}
	if _, ok := parseDateTime(a.Created); !ok {
		if _, err := time.Parse("2006-01-02", a.Created); err != nil {
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
	for i, p := range a.Participant {
		kind, id, ok := refID(p.Actor.Reference)
		if !ok {
			return bk, invalidResource("participant[%d] reference %q is not <Type>/<id>", i, p.Actor.Reference)
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

func preferMinimal(r *http.Request) bool {
	for _, v := range r.Header.Values("Prefer") {
		if strings.Contains(strings.ReplaceAll(v, " ", ""), "return=minimal") {
			return true
		}
	}
	return false
}

func (d *Demonstrator) bookAppointment(rq *request) (*reply, *outcome) {
	a, o := readAppointment(rq)
	if o != nil {
		return nil, o
	}
	bk, o := validateBooking(a, rq.now)
	if o != nil {
		return nil, o
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.st
	if _, ok := st.patients[bk.patientID]; !ok {
		return nil, refuse(http.StatusUnprocessableEntity, gpconnect.CodeReferenceNotFound, "participant Patient/%s does not exist", bk.patientID)
	}
	if st.location(bk.locationID) == nil {
		return nil, refuse(http.StatusUnprocessableEntity, gpconnect.CodeReferenceNotFound, "participant Location/%s does not exist", bk.locationID)
	}
	for _, p := range bk.practitioner {
		if st.practitioner(p) == nil {
			return nil, refuse(http.StatusUnprocessableEntity, gpconnect.CodeReferenceNotFound, "participant Practitioner/%s does not exist", p)
		}
	}
	var slots []*slotRec
	for _, id := range bk.slotIDs {
		sl, ok := st.slots[id]
		if !ok {
			return nil, refuse(http.StatusUnprocessableEntity, gpconnect.CodeReferenceNotFound, "Slot/%s does not exist", id)
		}
		if slices.Contains(slots, sl) {
			return nil, invalidResource("Slot/%s is referenced twice", id)
		}
		slots = append(slots, sl)
	}
	sort.Slice(slots, func(i, j int) bool { return slots[i].start.Before(slots[j].start) })
	for i, sl := range slots {
		if !sl.free {
			return nil, refuse(http.StatusConflict, gpconnect.CodeDuplicateRejected, "Slot/%s is no longer free", sl.id)
		}
		if i > 0 && (sl.scheduleID != slots[0].scheduleID || !sl.start.Equal(slots[i-1].end)) {
			return nil, invalidResource("Slot/%s does not follow Slot/%s in the same schedule: book adjacent slots only", sl.id, slots[i-1].id)
		}
	}
	first, last := slots[0], slots[len(slots)-1]
	if !bk.start.Equal(first.start) || !bk.end.Equal(last.end) {
		return nil, invalidResource("start %s and end %s do not match the slots (%s to %s)", a.Start, a.End,
			formatTime(first.start, d.loc), formatTime(last.end, d.loc))
	}
	if sc := st.schedule(first.scheduleID); sc.locationID != bk.locationID {
		return nil, invalidResource("participant Location/%s is not the slots' location Location/%s", bk.locationID, sc.locationID)
	}
	rec := &appointmentRec{
		id: strconv.Itoa(st.nextAppt + 1), version: 1, lastUpdated: rq.now, body: a,
		start: bk.start, end: bk.end, patientID: bk.patientID,
	}
	for _, sl := range slots {
		rec.slotIDs = append(rec.slotIDs, sl.id)
	}
	rep := &reply{
		status:   http.StatusCreated,
		etag:     "1",
		location: d.baseURL + "/Appointment/" + rec.id + "/_history/1",
	}
	if !preferMinimal(rq.r) {
		rep.body = d.appointment(rec)
	}
	note := fmt.Sprintf("booked Appointment/%s in Slot/%s for Patient/%s", rec.id, strings.Join(rec.slotIDs, ", Slot/"), rec.patientID)
	if o := d.commit(rq, rep, note); o != nil {
		return nil, o
	}
	for _, sl := range slots {
		sl.free = false
		sl.version++
	}
	st.nextAppt++
	st.appointments[rec.id] = rec
	st.apptOrder = append(st.apptOrder, rec.id)
	return rep, nil
}

// normalized renders a body as a member map for comparison: meta and text
// are the server's, and instants compare by value, not by spelling.
func normalized(a appointmentBody) map[string]any {
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
	return m
}

// changedMembers lists the top-level members that differ between the
// stored appointment and the request, leaving out those allowed to change.
func changedMembers(stored, sent appointmentBody, allowed ...string) []string {
	a, b := normalized(stored), normalized(sent)
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

// updateTarget reads an amend or cancel request and finds the stored
// appointment; the caller holds d.mu.
func (d *Demonstrator) updateTarget(rq *request, a appointmentBody) (*appointmentRec, *outcome) {
	id := idOf(rq.rel, 2)
	if a.ID != id {
		return nil, badRequest("the body's id %q does not match the URL's Appointment/%s", a.ID, id)
	}
	rec, ok := d.st.appointments[id]
	if !ok {
		return nil, refuse(http.StatusNotFound, gpconnect.CodeNoRecordFound, "no appointment with logical ID %q", id)
	}
	if im := rq.r.Header.Get("If-Match"); im != "" {
		want := `W/"` + strconv.Itoa(rec.version) + `"`
		if im != want && im != `"`+strconv.Itoa(rec.version)+`"` {
			return nil, refuse(http.StatusConflict, gpconnect.CodeDuplicateRejected,
				"If-Match %s does not match the current version %s: read the appointment again", im, want)
		}
	}
	if rec.body.Status == "cancelled" {
		return nil, invalidResource("Appointment/%s is already cancelled", id)
	}
	if rec.start.Before(rq.now) {
		return nil, invalidResource("Appointment/%s started in the past (%s) and cannot be changed", id, rec.body.Start)
	}
	return rec, nil
}

func (d *Demonstrator) amendAppointment(rq *request) (*reply, *outcome) {
	a, o := readAppointment(rq)
	if o != nil {
		return nil, o
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	rec, o := d.updateTarget(rq, a)
	if o != nil {
		return nil, o
	}
	if changed := changedMembers(rec.body, a, "comment", "description"); len(changed) > 0 {
		return nil, invalidResource("amend may change only comment and description; changed: %s", strings.Join(changed, ", "))
	}
	next := *rec
	next.body.Comment, next.body.Description = a.Comment, a.Description
	next.version++
	next.lastUpdated = rq.now
	rep := d.updated(rq, &next)
	if o := d.commit(rq, rep, fmt.Sprintf("amended Appointment/%s of Patient/%s", rec.id, rec.patientID)); o != nil {
		return nil, o
	}
	*rec = next
	return rep, nil
}

func (d *Demonstrator) cancelAppointment(rq *request) (*reply, *outcome) {
	a, o := readAppointment(rq)
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
			if e.ValueString == nil || strings.TrimSpace(*e.ValueString) == "" {
				return nil, invalidResource("the cancellation reason extension needs a valueString")
			}
			reason = i
		}
	}
	if reason < 0 {
		return nil, invalidResource("the cancellation reason extension (%s) is mandatory", extCancellationReason)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	rec, o := d.updateTarget(rq, a)
	if o != nil {
		return nil, o
	}
	compare := a
	compare.Status = rec.body.Status
	compare.Extension = slices.Delete(slices.Clone(a.Extension), reason, reason+1)
	if len(compare.Extension) == 0 {
		compare.Extension = nil
	}
	if changed := changedMembers(rec.body, compare); len(changed) > 0 {
		return nil, invalidResource("cancel may change only status and the cancellation reason; changed: %s", strings.Join(changed, ", "))
	}
	next := *rec
	next.body.Status = "cancelled"
	next.body.Extension = append(slices.Clone(rec.body.Extension), a.Extension[reason])
	next.version++
	next.lastUpdated = rq.now
	rep := d.updated(rq, &next)
	if o := d.commit(rq, rep, fmt.Sprintf("cancelled Appointment/%s of Patient/%s", rec.id, rec.patientID)); o != nil {
		return nil, o
	}
	*rec = next
	for _, id := range rec.slotIDs {
		if sl, ok := d.st.slots[id]; ok {
			sl.free = true
			sl.version++
		}
	}
	return rep, nil
}

func (d *Demonstrator) updated(rq *request, rec *appointmentRec) *reply {
	rep := &reply{status: http.StatusOK, etag: strconv.Itoa(rec.version)}
	if !preferMinimal(rq.r) {
		rep.body = d.appointment(rec)
	}
	return rep
}
