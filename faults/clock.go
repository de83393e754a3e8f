package faults

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	// The zone database is built in, so Europe/London is known on machines
	// and containers without /usr/share/zoneinfo.
	_ "time/tzdata"
)

// Clock is the practices' business time: real time moved by an offset that
// the admin API sets, so a consumer can test booking in summer and in winter,
// or a week ahead, without waiting. Setting a moment ("now") fixes where
// business time starts; it runs on from there at the real rate. Token
// lifetimes and the audit use Real, never Now. A Clock is safe for
// concurrent use.
type Clock struct {
	realTime func() time.Time
	state    atomic.Pointer[clockSetting]
}

// clockSetting is swapped whole, so the offset and the mode that set it are
// always read together.
type clockSetting struct {
	offset time.Duration // added to real time
	mode   string        // ModeReal, ModeNow or ModeOffset
}

// NewClock returns a clock on real time. realTime is the source of real time;
// nil means time.Now (tests pass a fixed one).
func NewClock(realTime func() time.Time) *Clock {
	if realTime == nil {
		realTime = time.Now
	}
	c := &Clock{realTime: realTime}
	c.state.Store(&clockSetting{mode: ModeReal})
	return c
}

// The modes a clock reports.
const (
	ModeReal   = "real"   // business time is real time
	ModeNow    = "now"    // set to a moment, running on from it
	ModeOffset = "offset" // real time plus an offset
)

// The bounds of business time: wide enough for any test of a GP Connect
// journey, narrow enough that an offset fits a time.Duration.
var (
	minClock = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	maxClock = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Now is business time: real time plus the offset in force.
func (c *Clock) Now() time.Time {
	return c.realTime().Add(c.state.Load().offset)
}

// Real is real time, for token lifetimes and anything else the clock must
// not move.
func (c *Clock) Real() time.Time { return c.realTime() }

// Set makes business time t now; it runs on from there.
func (c *Clock) Set(t time.Time) error {
	if t.Before(minClock) || !t.Before(maxClock) {
		return fmt.Errorf("now: %s is not between %d and %d", t.Format(time.RFC3339), minClock.Year(), maxClock.Year()-1)
	}
	c.state.Store(&clockSetting{offset: t.Sub(c.realTime()), mode: ModeNow})
	return nil
}

// SetOffset moves business time d from real time (negative: back).
func (c *Clock) SetOffset(d time.Duration) error {
	if t := c.realTime().Add(d); t.Before(minClock) || !t.Before(maxClock) {
		return fmt.Errorf("offset: %s puts business time at %s, not between %d and %d", d, t.Format(time.RFC3339), minClock.Year(), maxClock.Year()-1)
	}
	c.state.Store(&clockSetting{offset: d, mode: ModeOffset})
	return nil
}

// Reset puts business time back on real time.
func (c *Clock) Reset() {
	c.state.Store(&clockSetting{mode: ModeReal})
}

// Offset is business time minus real time.
func (c *Clock) Offset() time.Duration { return c.state.Load().offset }

// ClockState is the clock as GET /api/clock shows it; times are UK local
// time with their offset.
type ClockState struct {
	Mode   string `json:"mode"`
	Now    string `json:"now"`
	Real   string `json:"real"`
	Offset string `json:"offset"`
}

// State reports the clock for the admin API.
func (c *Clock) State() ClockState {
	now, st := c.realTime(), c.state.Load()
	return ClockState{
		Mode:   st.mode,
		Now:    FormatUK(now.Add(st.offset)),
		Real:   FormatUK(now),
		Offset: st.offset.String(),
	}
}

// london is the UK's zone, read once from the system or the built-in
// database; it never changes after.
var london = sync.OnceValue(func() *time.Location {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		// Unreachable: time/tzdata is built in.
		panic("faults: Europe/London missing from the built-in zone database: " + err.Error())
	}
	return loc
})

// London returns the Europe/London zone: GMT (+00:00) in winter, BST
// (+01:00) from 01:00 UTC on the last Sunday of March to 01:00 UTC on the
// last Sunday of October.
func London() *time.Location { return london() }

// UK returns t on the UK's wall clock.
func UK(t time.Time) time.Time { return t.In(london()) }

// ukLayout is RFC 3339 with a numeric offset always: time.RFC3339 writes
// "Z" for a zero offset, and GP Connect examples write +00:00 in winter.
const ukLayout = "2006-01-02T15:04:05-07:00"

// FormatUK writes t as a FHIR dateTime/instant in UK local time with its
// offset: 2026-07-01T09:00:00+01:00 in summer, 2026-12-01T09:00:00+00:00 in
// winter. Sub-second parts are dropped, as the GP Connect examples do.
func FormatUK(t time.Time) string { return t.In(london()).Format(ukLayout) }

// FormatUKDate writes the UK calendar date of t (a FHIR date).
func FormatUKDate(t time.Time) string { return t.In(london()).Format(time.DateOnly) }

// StartOfUKDay returns midnight UK time of t's UK date (never in a
// changeover hour: the UK changes at 01:00 and 02:00).
func StartOfUKDay(t time.Time) time.Time {
	y, m, d := t.In(london()).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, london())
}

// ErrNoSuchUKTime is UKTime's error for a wall-clock time that does not
// happen: 01:00 to 01:59 on the last Sunday of March, skipped when the
// clocks go forward.
var ErrNoSuchUKTime = errors.New("that time does not exist on the UK clock (the clocks go forward from 01:00 to 02:00 that day)")

// UKTimes returns every instant at which the UK wall clock shows the given
// date and time, in order: none in the hour skipped in March, two in the
// hour repeated in October (the first in BST, the second in GMT), one
// otherwise. Unlike time.Date, which picks one without saying, it lets a
// practice's slot generator choose.
func UKTimes(year int, month time.Month, day, hour, min, sec int) []time.Time {
	loc := london()
	wall := time.Date(year, month, day, hour, min, sec, 0, time.UTC)
	if !sameWall(wall, year, month, day, hour, min, sec) {
		return nil // not a calendar date and time (31 April, 24:00)
	}
	// The offsets in force a day either side cover every UK changeover.
	var offsets []int
	for _, probe := range []time.Time{wall.Add(-24 * time.Hour), wall.Add(24 * time.Hour)} {
		_, off := probe.In(loc).Zone()
		if len(offsets) == 0 || offsets[0] != off {
			offsets = append(offsets, off)
		}
	}
	var out []time.Time
	for _, off := range offsets {
		t := wall.Add(-time.Duration(off) * time.Second).In(loc)
		if _, o := t.Zone(); o != off {
			continue
		}
		if sameWall(t, year, month, day, hour, min, sec) {
			out = append(out, t)
		}
	}
	if len(out) == 2 && out[1].Before(out[0]) {
		out[0], out[1] = out[1], out[0]
	}
	return out
}

// sameWall reports whether t's wall clock, in its own zone, shows exactly
// the given date and time.
func sameWall(t time.Time, year int, month time.Month, day, hour, min, sec int) bool {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return y == year && mo == month && d == day && h == hour && mi == min && s == sec
}

// UKTime returns the instant the UK wall clock shows the given date and
// time: the first (BST) of the two in the hour repeated in October, and
// ErrNoSuchUKTime in the hour skipped in March.
func UKTime(year int, month time.Month, day, hour, min, sec int) (time.Time, error) {
	if !sameWall(time.Date(year, month, day, hour, min, sec, 0, time.UTC), year, month, day, hour, min, sec) {
		return time.Time{}, fmt.Errorf("%04d-%02d-%02d %02d:%02d:%02d is not a calendar date and time", year, month, day, hour, min, sec)
	}
	ts := UKTimes(year, month, day, hour, min, sec)
	if len(ts) == 0 {
		return time.Time{}, fmt.Errorf("%04d-%02d-%02d %02d:%02d:%02d: %w", year, month, day, hour, min, sec, ErrNoSuchUKTime)
	}
	return ts[0], nil
}
