package demonstrator

import (
	"cmp"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"
)

// MemoryStore is the default Store: everything in maps and slices behind
// one read-write lock. An Update holds the write lock for its whole
// function, audit write included, so bookings of one slot are serialised
// and every View sees either all of a change or none of it. Its changes go
// to an overlay that is folded in only when the function succeeds.
type MemoryStore struct {
	mu sync.RWMutex
	d  *memData
}

// memData is one practice's state. Slots never move once loaded, so they
// sit in a slice sorted by start that a search can cut with a binary
// search.
type memData struct {
	seededAt      time.Time
	practitioners []Practitioner
	locations     []Location
	schedules     []Schedule
	slots         []Slot // by start, then load order
	slotAt        map[string]int
	patients      map[string]Patient
	byNHS         map[string]string
	appts         map[string]Appointment
	apptOrder     []string
	nextPatient   int
	nextAppt      int
}

// NewMemoryStore returns a MemoryStore holding d.
func NewMemoryStore(d Data) *MemoryStore {
	s := &MemoryStore{}
	_ = s.Reset(d) // loading into memory cannot fail
	return s
}

// Reset implements Store.
func (s *MemoryStore) Reset(d Data) error {
	m := &memData{
		seededAt:      d.SeededAt,
		practitioners: slices.Clone(d.Practitioners),
		locations:     slices.Clone(d.Locations),
		schedules:     slices.Clone(d.Schedules),
		slots:         slices.Clone(d.Slots),
		slotAt:        make(map[string]int, len(d.Slots)),
		patients:      make(map[string]Patient, len(d.Patients)),
		byNHS:         make(map[string]string, len(d.Patients)),
		appts:         make(map[string]Appointment, len(d.Appointments)),
	}
	sort.SliceStable(m.slots, func(i, j int) bool { return m.slots[i].Start.Before(m.slots[j].Start) })
	for i, sl := range m.slots {
		m.slotAt[sl.ID] = i
	}
	for _, p := range d.Patients {
		m.patients[p.ID] = p
		m.byNHS[p.NHSNumber] = p.ID
		m.nextPatient = max(m.nextPatient, number(p.ID))
	}
	for _, a := range d.Appointments {
		m.appts[a.ID] = a
		m.apptOrder = append(m.apptOrder, a.ID)
		m.nextAppt = max(m.nextAppt, number(a.ID))
	}
	s.mu.Lock()
	s.d = m
	s.mu.Unlock()
	return nil
}

// number reads a decimal logical ID; anything else counts as 0.
func number(id string) int {
	n, err := strconv.Atoi(id)
	if err != nil {
		return 0
	}
	return n
}

// View implements Store.
func (s *MemoryStore) View(fn func(Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return fn(&memTx{d: s.d})
}

// Update implements Store.
func (s *MemoryStore) Update(fn func(Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx := &memTx{d: s.d, write: true, nextPatient: s.d.nextPatient, nextAppt: s.d.nextAppt}
	if err := fn(tx); err != nil {
		return err
	}
	tx.commit()
	return nil
}

// memTx reads through its own writes to the state underneath.
type memTx struct {
	d     *memData
	write bool

	slots       map[string]Slot
	patients    map[string]Patient
	appts       map[string]Appointment
	newAppts    []string
	nextPatient int
	nextAppt    int
}

func (t *memTx) mustWrite() {
	if !t.write {
		panic("demonstrator: a write in a read-only transaction")
	}
}

// commit folds the transaction's writes into the state; the caller holds
// the write lock.
func (t *memTx) commit() {
	d := t.d
	for id, sl := range t.slots {
		d.slots[d.slotAt[id]] = sl
	}
	for id, p := range t.patients {
		d.patients[id] = p
		d.byNHS[p.NHSNumber] = id
	}
	for id, a := range t.appts {
		d.appts[id] = a
	}
	d.apptOrder = append(d.apptOrder, t.newAppts...)
	d.nextPatient, d.nextAppt = t.nextPatient, t.nextAppt
}

func (t *memTx) SeededAt() time.Time { return t.d.seededAt }

func (t *memTx) Practitioners() []Practitioner { return slices.Clone(t.d.practitioners) }

func (t *memTx) Practitioner(id string) (Practitioner, bool) {
	for _, p := range t.d.practitioners {
		if p.ID == id {
			return p, true
		}
	}
	return Practitioner{}, false
}

func (t *memTx) Locations() []Location { return slices.Clone(t.d.locations) }

func (t *memTx) Location(id string) (Location, bool) {
	for _, l := range t.d.locations {
		if l.ID == id {
			return l, true
		}
	}
	return Location{}, false
}

func (t *memTx) Schedules() []Schedule { return slices.Clone(t.d.schedules) }

func (t *memTx) Schedule(id string) (Schedule, bool) {
	for _, s := range t.d.schedules {
		if s.ID == id {
			return s, true
		}
	}
	return Schedule{}, false
}

func (t *memTx) Slot(id string) (Slot, bool) {
	if sl, ok := t.slots[id]; ok {
		return sl, true
	}
	i, ok := t.d.slotAt[id]
	if !ok {
		return Slot{}, false
	}
	return t.d.slots[i], true
}

func (t *memTx) SlotsStarting(from, before time.Time, fn func(Slot) bool) {
	slots := t.d.slots
	i := sort.Search(len(slots), func(i int) bool { return !slots[i].Start.Before(from) })
	for ; i < len(slots) && slots[i].Start.Before(before); i++ {
		sl := slots[i]
		if w, ok := t.slots[sl.ID]; ok {
			sl = w
		}
		if !fn(sl) {
			return
		}
	}
}

func (t *memTx) PutSlot(sl Slot) {
	t.mustWrite()
	if _, ok := t.d.slotAt[sl.ID]; !ok {
		panic("demonstrator: PutSlot of a slot the store does not hold: " + sl.ID)
	}
	if t.slots == nil {
		t.slots = map[string]Slot{}
	}
	t.slots[sl.ID] = sl
}

func (t *memTx) Patient(id string) (Patient, bool) {
	if p, ok := t.patients[id]; ok {
		return p, true
	}
	p, ok := t.d.patients[id]
	return p, ok
}

func (t *memTx) PatientByNHS(nhs string) (Patient, bool) {
	for _, p := range t.patients {
		if p.NHSNumber == nhs {
			return p, true
		}
	}
	id, ok := t.d.byNHS[nhs]
	if !ok {
		return Patient{}, false
	}
	return t.Patient(id)
}

func (t *memTx) Patients() []Patient {
	out := make([]Patient, 0, len(t.d.patients)+len(t.patients))
	for id, p := range t.d.patients {
		if _, changed := t.patients[id]; !changed {
			out = append(out, p)
		}
	}
	for _, p := range t.patients {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Patient) int { return cmp.Compare(number(a.ID), number(b.ID)) })
	return out
}

func (t *memTx) NewPatientID() string {
	t.mustWrite()
	t.nextPatient++
	return strconv.Itoa(t.nextPatient)
}

func (t *memTx) PutPatient(p Patient) {
	t.mustWrite()
	if t.patients == nil {
		t.patients = map[string]Patient{}
	}
	t.patients[p.ID] = p
}

func (t *memTx) Appointment(id string) (Appointment, bool) {
	if a, ok := t.appts[id]; ok {
		return a, true
	}
	a, ok := t.d.appts[id]
	return a, ok
}

func (t *memTx) AppointmentsOf(patientID string) []Appointment {
	var out []Appointment
	for _, ids := range [][]string{t.d.apptOrder, t.newAppts} {
		for _, id := range ids {
			if a, _ := t.Appointment(id); a.PatientID == patientID {
				out = append(out, a)
			}
		}
	}
	return out
}

func (t *memTx) NewAppointmentID() string {
	t.mustWrite()
	t.nextAppt++
	return strconv.Itoa(t.nextAppt)
}

func (t *memTx) PutAppointment(a Appointment) {
	t.mustWrite()
	if t.appts == nil {
		t.appts = map[string]Appointment{}
	}
	if _, ok := t.Appointment(a.ID); !ok {
		t.newAppts = append(t.newAppts, a.ID)
	}
	t.appts[a.ID] = a
}
