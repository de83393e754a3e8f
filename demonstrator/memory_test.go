package demonstrator

import (
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"
)

// memoryFixture is a store with two slots, one patient and one appointment.
func memoryFixture() (*MemoryStore, Data) {
	t0 := time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)
	d := Data{
		SeededAt:      t0,
		Practitioners: []Practitioner{{ID: "1", SDSUserID: "G1", Family: "ONE"}},
		Locations:     []Location{{ID: "1", Name: "Site"}},
		Schedules:     []Schedule{{ID: "1", PractitionerID: "1", LocationID: "1", Minutes: 15, ServiceType: "GP"}},
		Slots: []Slot{
			{ID: "2", ScheduleID: "1", Start: t0.Add(15 * time.Minute), End: t0.Add(30 * time.Minute), Free: true, Version: 1},
			{ID: "1", ScheduleID: "1", Start: t0, End: t0.Add(15 * time.Minute), Free: true, Version: 1},
		},
		Patients:     []Patient{{ID: "1", NHSNumber: "9690937286", Family: "SKELLY", Version: 1}},
		Appointments: []Appointment{{ID: "1", Version: 1, PatientID: "1", SlotIDs: []string{"1"}}},
	}
	return NewMemoryStore(d), d
}

// snapshot reads everything a Tx can tell.
func snapshot(t *testing.T, s Store) map[string]any {
	t.Helper()
	out := map[string]any{}
	err := s.View(func(tx Tx) error {
		var slots []Slot
		tx.SlotsStarting(time.Time{}, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), func(sl Slot) bool { slots = append(slots, sl); return true })
		out["slots"] = slots
		p, _ := tx.Patient("1")
		p2, ok2 := tx.Patient("2")
		out["patients"] = []any{p, p2, ok2}
		out["appointments"] = tx.AppointmentsOf("1")
		a2, ok := tx.Appointment("2")
		out["appointment2"] = []any{a2, ok}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMemoryStoreUpdateIsAtomic makes changes and then fails (by error and
// by panic): nothing of them lands, and the next IDs are not used up.
func TestMemoryStoreUpdateIsAtomic(t *testing.T) {
	s, _ := memoryFixture()
	before := snapshot(t, s)
	change := func(tx Tx) {
		sl, _ := tx.Slot("1")
		sl.Free, sl.Version = false, 2
		tx.PutSlot(sl)
		tx.PutPatient(Patient{ID: tx.NewPatientID(), NHSNumber: "9690937294"})
		tx.PutAppointment(Appointment{ID: tx.NewAppointmentID(), PatientID: "1", SlotIDs: []string{"1"}})
		a, _ := tx.Appointment("1")
		a.Version = 9
		tx.PutAppointment(a)
	}
	refused := errors.New("audit refused")
	if err := s.Update(func(tx Tx) error { change(tx); return refused }); !errors.Is(err, refused) {
		t.Fatalf("Update returned %v", err)
	}
	if after := snapshot(t, s); !reflect.DeepEqual(before, after) {
		t.Errorf("a failed Update changed the store:\nbefore %+v\nafter  %+v", before, after)
	}
	func() {
		defer func() { _ = recover() }()
		_ = s.Update(func(tx Tx) error { change(tx); panic("boom") })
	}()
	if after := snapshot(t, s); !reflect.DeepEqual(before, after) {
		t.Errorf("a panicking Update changed the store:\nbefore %+v\nafter  %+v", before, after)
	}
	// The lock was released and the counters kept: the next IDs are 2.
	err := s.Update(func(tx Tx) error {
		if id := tx.NewPatientID(); id != "2" {
			t.Errorf("next patient ID %s, want 2", id)
		}
		if id := tx.NewAppointmentID(); id != "2" {
			t.Errorf("next appointment ID %s, want 2", id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMemoryStoreReadsItsWrites checks an Update sees its own changes
// before they land, and a View sees all of them after.
func TestMemoryStoreReadsItsWrites(t *testing.T) {
	s, _ := memoryFixture()
	err := s.Update(func(tx Tx) error {
		sl, _ := tx.Slot("2")
		sl.Free = false
		tx.PutSlot(sl)
		tx.PutPatient(Patient{ID: tx.NewPatientID(), NHSNumber: "9690937294", Family: "MEAKIN"})
		tx.PutAppointment(Appointment{ID: tx.NewAppointmentID(), PatientID: "1", SlotIDs: []string{"2"}})
		if got, _ := tx.Slot("2"); got.Free {
			t.Error("the Update does not see its slot change")
		}
		if p, ok := tx.PatientByNHS("9690937294"); !ok || p.ID != "2" {
			t.Errorf("the Update does not see its new patient: %+v", p)
		}
		if n := len(tx.AppointmentsOf("1")); n != 2 {
			t.Errorf("the Update sees %d appointments of patient 1, want 2", n)
		}
		var free []string
		tx.SlotsStarting(time.Time{}, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), func(sl Slot) bool {
			if sl.Free {
				free = append(free, sl.ID)
			}
			return true
		})
		if !reflect.DeepEqual(free, []string{"1"}) {
			t.Errorf("free slots in the Update %v, want [1]", free)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, s)
	if slots := after["slots"].([]Slot); slots[0].ID != "1" || slots[1].ID != "2" || slots[1].Free {
		t.Errorf("slots after the Update %+v (want by start, slot 2 busy)", slots)
	}
	if ps := after["patients"].([]any); ps[2] != true {
		t.Error("patient 2 not stored")
	}
}

func TestMemoryStoreViewCannotWrite(t *testing.T) {
	s, _ := memoryFixture()
	defer func() {
		if recover() == nil {
			t.Error("PutSlot in a View did not panic")
		}
	}()
	_ = s.View(func(tx Tx) error {
		sl, _ := tx.Slot("1")
		tx.PutSlot(sl)
		return nil
	})
}

// TestMemoryStoreSlotsStarting checks the window is [from, before) and the
// walk stops when asked.
func TestMemoryStoreSlotsStarting(t *testing.T) {
	s, d := memoryFixture()
	t0 := d.SeededAt
	for _, tc := range []struct {
		from, before time.Time
		want         []string
	}{
		{t0, t0.Add(15 * time.Minute), []string{"1"}},
		{t0.Add(time.Nanosecond), t0.Add(time.Hour), []string{"2"}},
		{t0.Add(-time.Hour), t0.Add(time.Hour), []string{"1", "2"}},
		{t0.Add(time.Hour), t0.Add(2 * time.Hour), nil},
	} {
		var got []string
		_ = s.View(func(tx Tx) error {
			tx.SlotsStarting(tc.from, tc.before, func(sl Slot) bool { got = append(got, sl.ID); return true })
			return nil
		})
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("[%s, %s): %v, want %v", tc.from, tc.before, got, tc.want)
		}
	}
	n := 0
	_ = s.View(func(tx Tx) error {
		tx.SlotsStarting(time.Time{}, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), func(Slot) bool { n++; return false })
		return nil
	})
	if n != 1 {
		t.Errorf("the walk went on after false: %d calls", n)
	}
}

// TestMemoryStoreConcurrentUpdates books one slot from many goroutines
// straight on the store: exactly one sees it free.
func TestMemoryStoreConcurrentUpdates(t *testing.T) {
	s, _ := memoryFixture()
	const n = 20
	var wg sync.WaitGroup
	won := make(chan string, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.Update(func(tx Tx) error {
				sl, _ := tx.Slot("2")
				if !sl.Free {
					return errors.New("busy")
				}
				sl.Free = false
				tx.PutSlot(sl)
				id := tx.NewAppointmentID()
				tx.PutAppointment(Appointment{ID: id, PatientID: "1", SlotIDs: []string{"2"}})
				won <- id
				return nil
			})
			_ = s.View(func(tx Tx) error { _ = tx.AppointmentsOf("1"); return nil })
		}()
	}
	wg.Wait()
	close(won)
	var ids []string
	for id := range won {
		ids = append(ids, id)
	}
	if !reflect.DeepEqual(ids, []string{"2"}) {
		t.Errorf("winners %v, want one, appointment 2", ids)
	}
}
