package faults

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeReal is a real-time source the test moves by hand.
type fakeReal struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeReal) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeReal) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

func TestClockModes(t *testing.T) {
	real := &fakeReal{t: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)}
	c := NewClock(real.now)
	if !c.Now().Equal(real.now()) || c.Offset() != 0 || c.State().Mode != ModeReal {
		t.Fatalf("new clock not on real time: %+v", c.State())
	}

	// now: business time starts at the moment given and runs on.
	summer := time.Date(2026, 7, 1, 9, 0, 0, 0, London())
	if err := c.Set(summer); err != nil {
		t.Fatal(err)
	}
	if !c.Now().Equal(summer) {
		t.Errorf("now %s, want %s", c.Now(), summer)
	}
	real.advance(90 * time.Minute)
	if want := summer.Add(90 * time.Minute); !c.Now().Equal(want) {
		t.Errorf("after 90 real minutes: %s, want %s", c.Now(), want)
	}
	if !c.Real().Equal(real.now()) {
		t.Error("Real moved with business time")
	}
	st := c.State()
	if st.Mode != ModeNow || st.Now != "2026-07-01T10:30:00+01:00" || st.Real != "2026-11-24T10:30:00+00:00" {
		t.Errorf("state %+v", st)
	}

	// offset: real time plus the offset.
	if err := c.SetOffset(72 * time.Hour); err != nil {
		t.Fatal(err)
	}
	if want := real.now().Add(72 * time.Hour); !c.Now().Equal(want) {
		t.Errorf("offset: %s, want %s", c.Now(), want)
	}
	if st := c.State(); st.Mode != ModeOffset || st.Offset != "72h0m0s" || st.Now != "2026-11-27T10:30:00+00:00" {
		t.Errorf("state %+v", st)
	}
	if err := c.SetOffset(-24 * time.Hour); err != nil || !c.Now().Equal(real.now().Add(-24*time.Hour)) {
		t.Errorf("negative offset: %v, %s", err, c.Now())
	}

	c.Reset()
	if !c.Now().Equal(real.now()) || c.State().Mode != ModeReal || c.State().Offset != "0s" {
		t.Errorf("reset: %+v", c.State())
	}

	// Out of range settings are refused and change nothing.
	if err := c.Set(time.Date(1800, 1, 1, 0, 0, 0, 0, time.UTC)); err == nil {
		t.Error("1800 accepted")
	}
	if err := c.SetOffset(200 * 365 * 24 * time.Hour); err == nil {
		t.Error("an offset into the 23rd century accepted")
	}
	if c.State().Mode != ModeReal {
		t.Errorf("a refused setting changed the clock: %+v", c.State())
	}
}

func TestClockDefaultsToTimeNow(t *testing.T) {
	c := NewClock(nil)
	before := time.Now()
	got := c.Now()
	if got.Before(before) || got.After(time.Now()) {
		t.Errorf("Now %s outside real time", got)
	}
}

// lastSunday finds the last Sunday of a month by walking back from its end,
// independently of the zone database.
func lastSunday(year int, month time.Month) int {
	d := time.Date(year, month+1, 0, 12, 0, 0, 0, time.UTC)
	for d.Weekday() != time.Sunday {
		d = d.AddDate(0, 0, -1)
	}
	return d.Day()
}

// TestUKChangeovers checks the UK offset on both sides of every changeover
// of 2026 and 2027: at 01:00 UTC on the last Sunday of March the clocks go
// forward to BST (+01:00), and at 01:00 UTC on the last Sunday of October
// back to GMT (+00:00).
func TestUKChangeovers(t *testing.T) {
	want := map[int][2]int{2026: {29, 25}, 2027: {28, 31}}
	for year, days := range want {
		if lastSunday(year, time.March) != days[0] || lastSunday(year, time.October) != days[1] {
			t.Fatalf("%d: last Sundays %d March, %d October; want %d, %d", year, lastSunday(year, time.March), lastSunday(year, time.October), days[0], days[1])
		}
	}
	cases := []struct {
		utc  time.Time
		want string
	}{
		{time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC), "2026-01-15T12:00:00+00:00"},
		{time.Date(2026, 3, 29, 0, 59, 59, 0, time.UTC), "2026-03-29T00:59:59+00:00"},
		{time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC), "2026-03-29T02:00:00+01:00"},
		{time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC), "2026-07-01T09:00:00+01:00"},
		{time.Date(2026, 10, 25, 0, 59, 59, 0, time.UTC), "2026-10-25T01:59:59+01:00"},
		{time.Date(2026, 10, 25, 1, 0, 0, 0, time.UTC), "2026-10-25T01:00:00+00:00"},
		{time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), "2026-12-01T09:00:00+00:00"},
		{time.Date(2027, 3, 28, 0, 59, 59, 0, time.UTC), "2027-03-28T00:59:59+00:00"},
		{time.Date(2027, 3, 28, 1, 0, 0, 0, time.UTC), "2027-03-28T02:00:00+01:00"},
		{time.Date(2027, 10, 31, 0, 59, 59, 0, time.UTC), "2027-10-31T01:59:59+01:00"},
		{time.Date(2027, 10, 31, 1, 0, 0, 0, time.UTC), "2027-10-31T01:00:00+00:00"},
		// Sub-seconds are dropped; a time in another zone is shown in the UK's.
		{time.Date(2027, 6, 1, 12, 0, 0, 999, time.FixedZone("CEST", 2*3600)), "2027-06-01T11:00:00+01:00"},
	}
	for _, c := range cases {
		if got := FormatUK(c.utc); got != c.want {
			t.Errorf("FormatUK(%s) = %s, want %s", c.utc.Format(time.RFC3339), got, c.want)
		}
		// What FormatUK writes reads back as the same instant.
		back, err := time.Parse(time.RFC3339, c.want)
		if err != nil || !back.Equal(c.utc.Truncate(time.Second)) {
			t.Errorf("%s reads back as %s (%v)", c.want, back, err)
		}
	}
	if u := UK(time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC)); u.Location() != London() || u.Hour() != 9 {
		t.Errorf("UK(08:00 UTC in July) = %s", u)
	}
	if got := FormatUKDate(time.Date(2026, 10, 24, 23, 30, 0, 0, time.UTC)); got != "2026-10-25" {
		t.Errorf("UK date of 23:30 UTC in BST: %s", got)
	}
}

// TestUKWallClock covers the hour that does not exist in March and the hour
// that happens twice in October, both years.
func TestUKWallClock(t *testing.T) {
	type inst = time.Time
	u := func(y int, m time.Month, d, h, mi int) inst { return time.Date(y, m, d, h, mi, 0, 0, time.UTC) }
	cases := []struct {
		name        string
		y           int
		m           time.Month
		d, h, mi    int
		want        []inst
		wantOffsets []string
	}{
		{"winter", 2026, time.January, 15, 9, 0, []inst{u(2026, 1, 15, 9, 0)}, []string{"+00:00"}},
		{"summer", 2026, time.July, 1, 9, 0, []inst{u(2026, 7, 1, 8, 0)}, []string{"+01:00"}},
		{"before the March change", 2026, time.March, 29, 0, 59, []inst{u(2026, 3, 29, 0, 59)}, []string{"+00:00"}},
		{"missing hour 2026", 2026, time.March, 29, 1, 30, nil, nil},
		{"missing hour starts at 01:00", 2026, time.March, 29, 1, 0, nil, nil},
		{"after the March change", 2026, time.March, 29, 2, 0, []inst{u(2026, 3, 29, 1, 0)}, []string{"+01:00"}},
		{"repeated hour 2026", 2026, time.October, 25, 1, 30, []inst{u(2026, 10, 25, 0, 30), u(2026, 10, 25, 1, 30)}, []string{"+01:00", "+00:00"}},
		{"after the October change", 2026, time.October, 25, 2, 0, []inst{u(2026, 10, 25, 2, 0)}, []string{"+00:00"}},
		{"missing hour 2027", 2027, time.March, 28, 1, 15, nil, nil},
		{"repeated hour 2027", 2027, time.October, 31, 1, 0, []inst{u(2027, 10, 31, 0, 0), u(2027, 10, 31, 1, 0)}, []string{"+01:00", "+00:00"}},
		{"a slot at 09:00 on the day of change", 2027, time.October, 31, 9, 0, []inst{u(2027, 10, 31, 9, 0)}, []string{"+00:00"}},
		{"not a date", 2026, time.April, 31, 9, 0, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := UKTimes(c.y, c.m, c.d, c.h, c.mi, 0)
			if len(got) != len(c.want) {
				t.Fatalf("UKTimes = %v, want %v", got, c.want)
			}
			for i := range got {
				if !got[i].Equal(c.want[i]) {
					t.Errorf("instant %d = %s, want %s", i, got[i].UTC(), c.want[i])
				}
				if off := FormatUK(got[i])[19:]; off != c.wantOffsets[i] {
					t.Errorf("instant %d offset %s, want %s", i, off, c.wantOffsets[i])
				}
			}
			first, err := UKTime(c.y, c.m, c.d, c.h, c.mi, 0)
			switch {
			case len(c.want) == 0 && c.name == "not a date":
				if err == nil || errors.Is(err, ErrNoSuchUKTime) {
					t.Errorf("UKTime error %v, want a calendar error", err)
				}
			case len(c.want) == 0:
				if !errors.Is(err, ErrNoSuchUKTime) {
					t.Errorf("UKTime error %v, want ErrNoSuchUKTime", err)
				}
			default:
				if err != nil || !first.Equal(c.want[0]) {
					t.Errorf("UKTime = %s, %v; want %s", first, err, c.want[0])
				}
			}
		})
	}
}

func TestStartOfUKDay(t *testing.T) {
	cases := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 7, 1, 23, 30, 0, 0, time.UTC), "2026-07-02T00:00:00+01:00"}, // 00:30 BST on the 2nd
		{time.Date(2026, 3, 29, 12, 0, 0, 0, time.UTC), "2026-03-29T00:00:00+00:00"},
		{time.Date(2026, 10, 25, 12, 0, 0, 0, time.UTC), "2026-10-25T00:00:00+01:00"},
		{time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), "2027-01-01T00:00:00+00:00"},
	}
	for _, c := range cases {
		if got := FormatUK(StartOfUKDay(c.in)); got != c.want {
			t.Errorf("StartOfUKDay(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}
