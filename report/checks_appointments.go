package report

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // Europe/London on hosts without zoneinfo
)

// london is the UK's calendar, which BST and GMT are told apart in.
var london = func() *time.Location {
	l, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err) // unreachable: time/tzdata is built in
	}
	return l
}()

// slotRange reads a free-slot search's period: start=ge<date> and
// end=le<date>, each exactly once (GP Connect 1.2.7 search for free slots;
// a date or a dateTime), and says what is wrong when the query does not
// have that form.
func slotRange(target string) (from, to time.Time, problem string) {
	q := queryOf(target)
	one := func(name, prefix string) (time.Time, string) {
		vs := q[name]
		if len(vs) != 1 {
			return time.Time{}, fmt.Sprintf("%s given %d times, want once", name, len(vs))
		}
		v, ok := strings.CutPrefix(vs[0], prefix)
		if !ok {
			return time.Time{}, fmt.Sprintf("%s=%s lacks the prefix %s", name, vs[0], prefix)
		}
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			return t, ""
		}
		if t, err := time.ParseInLocation(time.DateOnly, v, london); err == nil {
			return t, ""
		}
		return time.Time{}, fmt.Sprintf("%s=%s is not a date", name, vs[0])
	}
	from, p1 := one("start", "ge")
	to, p2 := one("end", "le")
	if p1 != "" || p2 != "" {
		return from, to, strings.TrimPrefix(p1+"; "+p2, "; ")
	}
	return from, to, ""
}

// slotSearchProblem is what keeps a free-slot search from the form the
// specification describes ("" when it has it): the period as above, at
// most 14 days and not ending before it starts, status=free exactly once,
// and _include=Slot:schedule.
func slotSearchProblem(target string) string {
	from, to, p := slotRange(target)
	var probs []string
	if p != "" {
		probs = append(probs, p)
	} else if to.Before(from) || to.Sub(from) > 14*24*time.Hour+time.Minute {
		probs = append(probs, fmt.Sprintf("the period %s to %s is not 0 to 14 days", from.Format(time.DateOnly), to.Format(time.DateOnly)))
	}
	q := queryOf(target)
	if st := q["status"]; len(st) != 1 || st[0] != "free" {
		probs = append(probs, "status=free not given exactly once")
	}
	if !queryHolds(target, []string{"_include=Slot:schedule"}, nil) {
		probs = append(probs, "no _include=Slot:schedule")
	}
	return strings.Join(probs, "; ")
}

// checkSlotSearchFormed decides GPC-AMUS-BPA-1/1, "the request is formed
// as described in the specification": a free-slot search of that form
// answered with success, and no successful search that lacks it (the
// practice let it through, the consumer still sent it).
func checkSlotSearchFormed(t Test, calls []*call) (string, string, []*call, []*call) {
	tried := filter(calls, func(c *call) bool { return c.rec.Interaction == iaSlots })
	good := filter(tried, func(c *call) bool { return c.ok() && slotSearchProblem(c.rec.Target) == "" })
	bad := filter(tried, func(c *call) bool { return c.ok() && slotSearchProblem(c.rec.Target) != "" })
	switch {
	case len(bad) > 0:
		return NotMet, "free-slot searches answered with success lacked the specified form: " + slotSearchProblem(bad[0].rec.Target), good, bad
	case len(good) > 0:
		return Met, "a free-slot search with start=ge and end=le once each, a period of at most 14 days, status=free and _include=Slot:schedule was answered with success", good, nil
	case len(tried) > 0:
		return NotMet, "free-slot searches were made, but none was answered with success", nil, tried
	}
	return NotExercised, "no free-slot search", nil, nil
}

// seasons reports whether a period touches British Summer Time and GMT
// (its first and last day in London).
func seasons(from, to time.Time) (bst, gmt bool) {
	for _, d := range []time.Time{from, to} {
		if d.In(london).IsDST() {
			bst = true
		} else {
			gmt = true
		}
	}
	return bst, gmt
}

// checkSlotSearchSeasons decides CONS-AppointmentsAPITest1 of the 1.2.7
// page, "execute twice: BST summer time and GMT winter time": well-formed
// free-slot searches answered with success whose periods fall in BST and
// in GMT (one search spanning the change counts for both).
func checkSlotSearchSeasons(t Test, calls []*call) (string, string, []*call, []*call) {
	var inBST, inGMT []*call
	for _, c := range calls {
		if c.rec.Interaction != iaSlots || !c.ok() || slotSearchProblem(c.rec.Target) != "" {
			continue
		}
		from, to, _ := slotRange(c.rec.Target)
		b, g := seasons(from, to)
		if b {
			inBST = append(inBST, c)
		}
		if g {
			inGMT = append(inGMT, c)
		}
	}
	switch {
	case len(inBST) > 0 && len(inGMT) > 0:
		return Met, "well-formed free-slot searches answered with success covered a period in British Summer Time and one in GMT", append(inBST[:1:1], inGMT[0]), nil
	case len(inBST) > 0:
		return NotExercised, "well-formed free-slot searches were answered with success for BST periods only; the test runs once more for a GMT (winter) period", inBST, nil
	case len(inGMT) > 0:
		return NotExercised, "well-formed free-slot searches were answered with success for GMT periods only; the test runs once more for a BST (summer) period", inGMT, nil
	}
	return NotExercised, "no well-formed free-slot search answered with success", nil, nil
}
