package demonstrator

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"sspemu/fhir"
)

// build makes the practice's data relative to now: Days of surgeries from
// today (at weekends only when WeekendSessions has some), so that every run
// has free slots ahead, with the slots that have already started left out,
// and the seed's appointments placed in the past or in free slots more
// than two days ahead. The same seed and the same now always give the same
// data, IDs included.
func (s *Seed) build(now time.Time, loc *time.Location) Data {
	d := Data{SeededAt: now}
	id := func(i int) string { return strconv.Itoa(i + 1) }
	for i, p := range s.Practitioners {
		d.Practitioners = append(d.Practitioners, Practitioner{
			ID: id(i), SDSUserID: p.SDSUserID, SDSRoleProfileID: p.SDSRoleProfileID,
			Family: p.Family, Given: p.Given, Prefix: p.Prefix, Gender: p.Gender,
			MoreRoleProfileIDs: slices.Clone(p.MoreRoleProfileIDs),
		})
	}
	for i, l := range s.Locations {
		d.Locations = append(d.Locations, Location{ID: id(i), Name: l.Name, Phone: l.Phone, Address: workAddress(l.Address)})
	}
	for i, sc := range s.Schedules {
		d.Schedules = append(d.Schedules, Schedule{
			ID: id(i), PractitionerID: strconv.Itoa(sc.Practitioner), LocationID: strconv.Itoa(sc.Location),
			Minutes: sc.Minutes, ServiceType: sc.ServiceType,
			ServiceCategory:  cmp.Or(sc.ServiceCategory, defaultServiceCategory),
			PractitionerRole: cmp.Or(sc.PractitionerRole, defaultPractitionerRole),
			DeliveryChannel:  cmp.Or(sc.DeliveryChannel, defaultDeliveryChannel),
		})
	}
	for i, p := range s.Patients {
		gp := max(p.GP, 1)
		pt := Patient{
			ID: id(i), NHSNumber: p.NHSNumber, Family: p.Family, Given: p.Given, Prefix: p.Prefix,
			Gender: p.Gender, BirthDate: p.BirthDate, GPID: strconv.Itoa(gp),
			RegistrationType: "R", Registered: now, Version: 1, LastUpdated: now,
			Deceased: p.Deceased, Inactive: p.Inactive, Sensitive: p.Sensitive, NotOnPDS: p.NotOnPDS, Seeded: true,
		}
		if p.Address != nil {
			pt.Address = []fhir.Address{{Use: "home", Type: "physical", Line: nonEmpty(p.Address.Line), City: p.Address.City, PostalCode: p.Address.PostalCode}}
		}
		d.Patients = append(d.Patients, pt)
	}

	sessions := s.Sessions
	if len(sessions) == 0 {
		sessions = defaultSessions
	}
	parse := func(list []string) []session {
		var out []session
		for _, v := range list {
			if se, err := parseSession(v); err == nil { // validated before; a bad one is left out
				out = append(out, se)
			}
		}
		return out
	}
	weekday, weekend := parse(sessions), parse(s.WeekendSessions)
	days := s.Days
	if days == 0 {
		days = defaultDays
	}
	var slots []Slot
	add := func(scheduleID string, start, end time.Time, free bool) int {
		slots = append(slots, Slot{ID: strconv.Itoa(len(slots) + 1), ScheduleID: scheduleID, Start: start, End: end, Free: free, Version: 1})
		return len(slots) - 1
	}
	y, m, day := now.In(loc).Date()
	for n := 0; n < days; n++ {
		date := time.Date(y, m, day+n, 0, 0, 0, 0, loc)
		parsed := weekday
		if wd := date.Weekday(); wd == time.Saturday || wd == time.Sunday {
			parsed = weekend
		}
		for _, sc := range d.Schedules {
			step := time.Duration(sc.Minutes) * time.Minute
			for _, se := range parsed {
				t := time.Date(date.Year(), date.Month(), date.Day(), se.from/60, se.from%60, 0, 0, loc)
				stop := time.Date(date.Year(), date.Month(), date.Day(), se.to/60, se.to%60, 0, 0, loc)
				for ; t.Before(stop); t = t.Add(step) {
					if t.After(now) {
						add(sc.ID, t, t.Add(step), true)
					}
				}
			}
		}
	}
	sortSlots(slots)
	// order is the slots by start as generated; past slots made below go
	// to its end, as busy slots they are never picked as free ones.
	order := make([]int, len(slots))
	for i := range order {
		order[i] = i
	}
	futureFree := func(scheduleID string, nth int) int {
		count := 0
		for _, i := range order {
			sl := &slots[i]
			if sl.ScheduleID == scheduleID && sl.Free && sl.Start.After(now.Add(48*time.Hour)) {
				if count == nth {
					sl.Free = false
					return i
				}
				count++
			}
		}
		return -1
	}
	for _, a := range s.Appointments {
		sc := d.Schedules[a.Schedule-1]
		i := -1
		if a.DaysAgo > 0 {
			t := time.Date(y, m, day-a.DaysAgo, 10, 0, 0, 0, loc)
			i = add(sc.ID, t, t.Add(time.Duration(sc.Minutes)*time.Minute), false)
		} else {
			i = futureFree(sc.ID, a.FreeSlot)
		}
		if i < 0 {
			continue // no working day ahead in the calendar; nothing to book
		}
		sl := slots[i]
		created := sl.Start.Add(-10 * 24 * time.Hour)
		patientID := strconv.Itoa(a.Patient)
		body := AppointmentBody{
			ResourceType: "Appointment",
			Contained: []json.RawMessage{mustJSON(organizationResource{
				ResourceType: "Organization", ID: "1",
				Meta:    fhir.Meta{Profile: []string{profileOrganization}},
				Name:    "Example consumer practice",
				Telecom: []fhir.ContactPoint{{System: "phone", Value: "0300 303 5678"}},
			})},
			Extension:   []json.RawMessage{mustJSON(fhir.Extension{URL: extBookingOrganisation, ValueReference: &fhir.Reference{Reference: "#1"}})},
			Status:      "booked",
			Description: a.Description,
			Start:       formatTime(sl.Start, loc),
			End:         formatTime(sl.End, loc),
			Slot:        []fhir.Reference{{Reference: "Slot/" + sl.ID}},
			Created:     formatTime(created, loc),
			Participant: []Participant{
				{Actor: &fhir.Reference{Reference: "Patient/" + patientID}, Status: "accepted"},
				{Actor: &fhir.Reference{Reference: "Location/" + sc.LocationID}, Status: "accepted"},
				{Actor: &fhir.Reference{Reference: "Practitioner/" + sc.PractitionerID}, Status: "accepted"},
			},
		}
		if a.CancellationReason != "" {
			body.Status = "cancelled"
			body.Extension = append(body.Extension, mustJSON(fhir.Extension{URL: extCancellationReason, ValueString: a.CancellationReason}))
		}
		d.Appointments = append(d.Appointments, Appointment{
			ID: strconv.Itoa(len(d.Appointments) + 1), Version: 1, LastUpdated: created,
			Start: sl.Start, End: sl.End, PatientID: patientID, SlotIDs: []string{sl.ID}, Body: withPracticeFields(body, sc),
		})
	}
	sortSlots(slots)
	d.Slots = slots
	return d
}

// sortSlots orders slots by start, keeping the order of equal starts.
func sortSlots(slots []Slot) {
	slices.SortStableFunc(slots, func(a, b Slot) int { return a.Start.Compare(b.Start) })
}

// fhirDateOrDateTime reports whether s is a FHIR date (2006-01-02) or a
// dateTime with seconds and a UTC offset.
func fhirDateOrDateTime(s string) bool {
	if _, err := time.Parse(time.DateOnly, s); err == nil {
		return true
	}
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

func workAddress(a SeedAddress) fhir.Address {
	return fhir.Address{Use: "work", Type: "physical", Line: nonEmpty(a.Line), City: a.City, PostalCode: a.PostalCode}
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("demonstrator: marshal seed value: %v", err)) // static shapes; cannot fail
	}
	return b
}
