package report

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"sspemu/audit"
	"sspemu/gpconnect"
)

// Step is one call of a sequence test: several calls to one practice (the
// same Ssp-To) in audit seq order, such as find patient, register, search
// free slots, book, read the booking. Steps are catalogue data.
type Step struct {
	// Interactions are the GP Connect interactions that fill the step (any
	// of them: "read the appointment, or retrieve the patient's
	// appointments").
	Interactions []string
	// Expect is the answer wanted: "ok" (forwarded, 2xx), "4xx" or an
	// exact status ("201").
	Expect string
	// Query is conditions on the query string: "k" (present), "k=v"
	// (some value equal to v) or "k=p*" (some value starting with p).
	Query []string
	// Absent makes the step a prohibition: no such call may come between
	// the steps either side of it ("no registration" when the patient was
	// found).
	Absent bool
	// Key marks the call the test is about. When it was made but the
	// sequence around it is incomplete (a booking never read back, an
	// amendment of an appointment not read first), the test is not met
	// rather than not exercised.
	Key bool
	// SameAppointment ties the step's /Appointment/{id} to the one the
	// nearest earlier step named, when both name one (a retrieve of the
	// patient's appointments names none).
	SameAppointment bool
	// Count is the searchset the step's answer must be (the patient not
	// found before a registration); a call whose entries were not counted
	// (before audit record version 3) is not failed on it.
	Count *Count
	// IfMatch makes the step's call one that sent If-Match, and Body one
	// whose body summary meets the named condition (bodyConds): facts of
	// audit record version 4. A call recorded before it meets them only
	// in checkSequence's second, lenient pass, whose result then says they
	// were not recorded.
	IfMatch bool
	Body    string
}

// bodyConds are the conditions a Step may put on a call's body summary.
var bodyConds = map[string]struct {
	desc  string
	holds func(*audit.Body) bool
}{
	"two-slots": {"a body booking two or more slots", func(b *audit.Body) bool {
		return b != nil && b.Appointment != nil && b.Appointment.Slots >= 2
	}},
	"cancelled-with-reason": {"a body with status cancelled and a cancellation reason", func(b *audit.Body) bool {
		return b != nil && b.Appointment != nil && b.Appointment.Status == "cancelled" && b.Appointment.CancellationReason
	}},
}

// iaNames are the interactions as the report's sentences name them.
var iaNames = map[string]string{
	iaMetadata: "read metadata", iaFindPatient: "find patient", iaReadPatient: "read patient", iaRegister: "register patient",
	iaFindPract: "find practitioner", iaReadPract: "read practitioner", iaFindOrg: "find organisation", iaReadOrg: "read organisation",
	iaReadLoc: "read location", iaSlots: "search free slots", iaBook: "book appointment", iaReadAppt: "read appointment",
	iaAmend: "amend appointment", iaCancel: "cancel appointment", iaPatientAppt: "retrieve the patient's appointments",
}

func iaName(ia string) string {
	if n, ok := iaNames[ia]; ok {
		return n
	}
	return ia[strings.LastIndex(ia, ":")+1:]
}

func (s Step) String() string {
	var names []string
	for _, ia := range s.Interactions {
		names = append(names, iaName(ia))
	}
	out := strings.Join(names, " or ")
	if len(s.Query) > 0 {
		out += " (" + strings.Join(s.Query, ", ") + ")"
	}
	switch {
	case s.Absent:
		return "no " + out
	case s.Expect == "ok":
		out += " answered with success"
	default:
		out += " answered " + s.Expect
	}
	if s.SameAppointment {
		out += ", of the same appointment"
	}
	if s.Count != nil {
		out += " with " + s.Count.String()
	}
	if s.IfMatch {
		out += ", sent with If-Match"
	}
	if c, ok := bodyConds[s.Body]; ok {
		out += ", with " + c.desc
	}
	return out
}

// facts names what the steps ask of audit record version 4, for the
// sentence of a sequence decided leniently; "" when nothing.
func facts(steps []Step) string {
	var out []string
	for _, s := range steps {
		if s.IfMatch {
			out = appendNew(out, "the If-Match header of the "+iaName(s.Interactions[0])+" call")
		}
		if c, ok := bodyConds[s.Body]; ok {
			out = appendNew(out, "the "+iaName(s.Interactions[0])+" call's body ("+c.desc+")")
		}
	}
	return strings.Join(out, " and ")
}

func describeSteps(steps []Step) string {
	var parts []string
	for _, s := range steps {
		parts = append(parts, s.String())
	}
	return strings.Join(parts, " → ")
}

func (s Step) matches(c *call) bool { return s.match(c, false) }

// match is matches, lenient or not on the facts of record version 4 that
// a call recorded before it lacks (see Step.IfMatch).
func (s Step) match(c *call, lenient bool) bool {
	for _, ia := range s.Interactions {
		if c.rec.Interaction == ia {
			return (s.Absent || expected(s.Expect, c)) && queryHolds(c.rec.Target, s.Query, nil) && s.Count.allows(c) && s.factsHold(c, lenient)
		}
	}
	return false
}

func (s Step) factsHold(c *call, lenient bool) bool {
	cond, hasBody := bodyConds[s.Body]
	if !s.IfMatch && !hasBody {
		return true
	}
	if !v4(c) {
		return lenient
	}
	return (!s.IfMatch || c.rec.IfMatch != nil) && (!hasBody || cond.holds(c.rec.Body))
}

// queryHolds reports whether target's query meets every condition of has
// and none of lacks ("k", "k=v" or "k=p*").
func queryHolds(target string, has, lacks []string) bool {
	q := queryOf(target)
	holds := func(cond string) bool {
		k, v, eq := strings.Cut(cond, "=")
		vs, present := q[k]
		if !eq {
			return present
		}
		prefix, isPrefix := strings.CutSuffix(v, "*")
		for _, x := range vs {
			if x == v || isPrefix && strings.HasPrefix(x, prefix) {
				return true
			}
		}
		return false
	}
	for _, c := range has {
		if !holds(c) {
			return false
		}
	}
	for _, c := range lacks {
		if holds(c) {
			return false
		}
	}
	return true
}

// appointmentID is the logical ID in a target of the form
// .../Appointment/{id}; "" for any other target.
func appointmentID(target string) string {
	path, _, _ := strings.Cut(target, "?")
	i := strings.LastIndex(path, "/Appointment/")
	if i < 0 {
		return ""
	}
	id := path[i+len("/Appointment/"):]
	if id == "" || strings.Contains(id, "/") {
		return ""
	}
	return id
}

// callAppointmentID is the appointment a call names: its target's, or for
// a booking the one its answer's Location names (.../Appointment/{id} or
// .../Appointment/{id}/_history/{v}; audit record version 4), which ties
// the booking to the read that follows it.
func callAppointmentID(c *call) string {
	if id := appointmentID(c.rec.Target); id != "" {
		return id
	}
	if c.rec.Interaction != iaBook || c.tx == nil || c.tx.Location == "" {
		return ""
	}
	loc, _, _ := strings.Cut(c.tx.Location, "?")
	if i := strings.LastIndex(loc, "/_history/"); i >= 0 {
		loc = loc[:i]
	}
	return appointmentID(loc)
}

// sameRequest reports whether n repeats c: the same method and target,
// and, where both were recorded with version 4, the same If-Match and the
// same body summary (the audit keeps no body to compare byte for byte).
func sameRequest(c, n *call) bool {
	if n.rec.Method != c.rec.Method || n.rec.Target != c.rec.Target {
		return false
	}
	if !v4(c) || !v4(n) {
		return true
	}
	return reflect.DeepEqual(c.rec.IfMatch, n.rec.IfMatch) && reflect.DeepEqual(c.rec.Body, n.rec.Body)
}

// byReceiver splits calls by Ssp-To, keeping seq order: a sequence runs
// against one practice.
func byReceiver(calls []*call) (order []string, groups map[string][]*call) {
	groups = map[string][]*call{}
	for _, c := range calls {
		if _, ok := groups[c.rec.To]; !ok {
			order = append(order, c.rec.To)
		}
		groups[c.rec.To] = append(groups[c.rec.To], c)
	}
	return order, groups
}

// matchSequence finds the calls that fill steps in order in cs (one
// practice's calls in seq order), or nil. Prohibitions (Absent) hold
// between their neighbours. The earliest candidate of a step is taken
// unless a later step depends on which one it is (a prohibition right
// after it, or an appointment tie), in which case each candidate is
// tried; failures are remembered, so the search stays polynomial.
func matchSequence(steps []Step, cs []*call, lenient bool) []*call {
	type pos struct {
		step    Step
		absents []Step // prohibitions between the previous positive step and this one
	}
	var ps []pos
	var pending []Step
	for _, s := range steps {
		if s.Absent {
			pending = append(pending, s)
			continue
		}
		ps = append(ps, pos{s, pending})
		pending = nil
	}
	// A trailing prohibition has no right neighbour: it holds to the end
	// of the calls.
	trailing := pending
	choice := make([]bool, len(ps))
	for i := range ps {
		for _, later := range ps[i+1:] {
			if later.step.SameAppointment {
				choice[i] = true
			}
		}
		if i+1 < len(ps) && len(ps[i+1].absents) > 0 {
			choice[i] = true
		}
	}
	type key struct {
		i, from int
		appt    string
	}
	failed := map[key]bool{}
	var rec func(i, from int, appt string) []*call
	rec = func(i, from int, appt string) []*call {
		if i == len(ps) {
			for _, c := range cs[from:] {
				for _, a := range trailing {
					if a.match(c, lenient) {
						return nil
					}
				}
			}
			return []*call{}
		}
		k := key{i, from, appt}
		if failed[k] {
			return nil
		}
		p := ps[i]
		for j := from; j < len(cs); j++ {
			c := cs[j]
			if p.step.match(c, lenient) {
				id := callAppointmentID(c)
				if !p.step.SameAppointment || appt == "" || id == "" || id == appt {
					next := appt
					if id != "" {
						next = id
					}
					if rest := rec(i+1, j+1, next); rest != nil {
						return append([]*call{c}, rest...)
					}
					if !choice[i] {
						break
					}
				}
			}
			blocked := false
			for _, a := range p.absents {
				if i > 0 && a.match(c, lenient) {
					blocked = true
				}
			}
			if blocked {
				break
			}
		}
		failed[k] = true
		return nil
	}
	// The first positive step has no left neighbour: a prohibition before
	// it would hold from the start of the calls, which no catalogue row
	// asks for; rec ignores it (i > 0).
	return rec(0, 0, "")
}

// checkSequence decides a test of several calls in order (Test.Sequences:
// any one of the alternatives will do).
func checkSequence(t Test, calls []*call) (string, string, []*call, []*call) {
	if len(t.Sequences) == 0 {
		return NotExercised, "the catalogue row names no sequence (catalogue error)", nil, nil
	}
	order, groups := byReceiver(calls)
	var retries []*call
	if t.BlindRetry {
		retries = blindVersionRetries(t, calls)
	}
	for _, to := range order {
		for _, steps := range t.Sequences {
			if m := matchSequence(steps, groups[to], false); m != nil {
				if len(retries) > 0 {
					return NotMet, fmt.Sprintf("the sequence was done (%s), but after a version conflict (409) the same request was sent again without reading the appointment first", describeSteps(steps)), m, retries
				}
				return Met, fmt.Sprintf("in seq order to ASID %s: %s", to, describeSteps(steps)), m, nil
			}
		}
	}
	// Done but with calls recorded before version 4, which lack the facts
	// a step needs: not recorded, neither met nor not met.
	for _, to := range order {
		for _, steps := range t.Sequences {
			if m := matchSequence(steps, groups[to], true); m != nil {
				return NotExercised, fmt.Sprintf("not recorded by this audit version: %s (recorded from audit record version 4); the calls were otherwise in the order the test needs, to ASID %s: %s", facts(steps), to, describeSteps(steps)), m, nil
			}
		}
	}
	want := describeSteps(t.Sequences[0])
	for _, alt := range t.Sequences[1:] {
		want += "; or " + describeSteps(alt)
	}
	// The key call: made without the sequence around it is not met.
	var keys, tried []*call
	var keyName string
	for _, steps := range t.Sequences {
		for _, s := range steps {
			if !s.Key {
				continue
			}
			keyName = s.String()
			for _, c := range calls {
				if s.match(c, true) {
					keys = append(keys, c)
				} else if (Step{Interactions: s.Interactions, Absent: true, Query: s.Query}).matches(c) {
					tried = append(tried, c)
				}
			}
		}
	}
	switch {
	case len(keys) > 0:
		return NotMet, fmt.Sprintf("%s was done, but not within the sequence the test needs (%s)", keyName, want), nil, append(keys, retries...)
	case len(tried) > 0:
		return NotMet, fmt.Sprintf("calls for the step %q were made, but none was answered as needed or carried what the step needs; the test needs %s", keyName, want), nil, tried
	}
	return NotExercised, "no calls in the order the test needs: " + want, nil, nil
}

// blindVersionRetries are the amend or cancel calls that followed a 409
// (the If-Match named a stale version, or the slot was taken) with the
// same request, no read or retrieve of the appointment between: the
// refusal was not handled.
func blindVersionRetries(t Test, calls []*call) []*call {
	var key map[string]bool
	for _, steps := range t.Sequences {
		for _, s := range steps {
			if s.Key {
				key = map[string]bool{}
				for _, ia := range s.Interactions {
					key[ia] = true
				}
			}
		}
	}
	var out []*call
	for i, c := range calls {
		if !key[c.rec.Interaction] || c.status() != 409 {
			continue
		}
		id := appointmentID(c.rec.Target)
		for _, n := range calls[i+1:] {
			if n.rec.To != c.rec.To {
				continue
			}
			if n.rec.Interaction == iaPatientAppt || n.rec.Interaction == iaReadAppt && appointmentID(n.rec.Target) == id {
				break // read again: handled
			}
			if n.rec.Interaction == c.rec.Interaction && sameRequest(c, n) {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

// checkErrorThenFixed decides an error-handling test: the consumer made
// the faulty call (the catalogue's interaction and query conditions) and
// got the error (Expect), and did not send the same request again
// blindly. The corrected call that followed, if any, is shown with it.
// Displaying the error is the consumer's part (CannotProve).
func checkErrorThenFixed(t Test, calls []*call) (string, string, []*call, []*call) {
	return errorThenFixed(t, calls, func(c *call) bool {
		return c.rec.Interaction == t.Interaction && queryHolds(c.rec.Target, t.QueryHas, t.QueryLacks)
	}, "a "+iaName(t.Interaction)+" call"+queryPhrase(t))
}

func queryPhrase(t Test) string {
	s := ""
	if len(t.QueryHas) > 0 {
		s += " with " + strings.Join(t.QueryHas, ", ")
	}
	if len(t.QueryLacks) > 0 {
		s += " without " + strings.Join(t.QueryLacks, ", ")
	}
	return s
}

// errorThenFixed is checkErrorThenFixed over the faulty calls isCase picks
// (what names them for the reader).
//
// Where the test names error codes (Test.Codes), the error must carry one:
// a call answered with another code is not the test's error. A forwarded
// call recorded before audit record version 3 has no code, and its status
// alone decides, as the Why says.
func errorThenFixed(t Test, calls []*call, isCase func(*call) bool, what string) (string, string, []*call, []*call) {
	var errs, fixed, blind, other []*call
	var coded, uncoded []string
	for i, c := range calls {
		if !isCase(c) {
			continue
		}
		if !expected(t.Expect, c) {
			other = append(other, c)
			continue
		}
		if len(t.Codes) > 0 {
			k, known := errorCode(c)
			if known && !slices.Contains(t.Codes, k) {
				other = append(other, c)
				continue
			}
			if known {
				coded = appendNew(coded, k)
			} else {
				uncoded = append(uncoded, c.rec.TraceID)
			}
		}
		var next *call
		for _, n := range calls[i+1:] {
			if n.rec.To == c.rec.To && n.rec.Interaction == c.rec.Interaction {
				next = n
				break
			}
		}
		switch {
		case next != nil && sameRequest(c, next) && next.status() == c.status():
			blind = append(blind, next)
		case next != nil && next.ok():
			errs, fixed = append(errs, c), append(fixed, next)
		default:
			errs = append(errs, c)
		}
	}
	examples := append(errs[:len(errs):len(errs)], fixed...)
	want := t.Expect
	if len(t.Codes) > 0 {
		want += " with code " + strings.Join(t.Codes, " or ")
	}
	got := t.Expect
	switch {
	case len(coded) > 0 && len(uncoded) > 0:
		got += fmt.Sprintf(" with code %s (and %d call(s) recorded before audit record version 3, without the provider's code, on their status)", strings.Join(coded, " or "), len(uncoded))
	case len(coded) > 0:
		got += " with code " + strings.Join(coded, " or ")
	case len(uncoded) > 0:
		got += " (the provider's code, wanted " + strings.Join(t.Codes, " or ") + ", was not recorded before audit record version 3: the status decides)"
	}
	switch {
	case len(blind) > 0:
		return NotMet, fmt.Sprintf("%s was answered %s, and the consumer sent the same request again unchanged: the error was not handled", what, got), examples, blind
	case len(errs) > 0 && len(fixed) > 0:
		return Met, fmt.Sprintf("%s was answered %s, and the next call of that interaction was a corrected one answered with success", what, got), examples, blind
	case len(errs) > 0:
		return Met, fmt.Sprintf("%s was answered %s and was not sent again unchanged", what, got), examples, blind
	case len(other) > 0:
		return NotExercised, fmt.Sprintf("%s was made, but not answered %s, so the error handling was not exercised", what, want), nil, other
	}
	return NotExercised, "no " + strings.TrimPrefix(what, "a "), nil, nil
}

// errorCode is the code of a call's error answer, and whether the audit
// holds it: the SSP's token when it refused; the provider's
// OperationOutcome code when forwarded and recorded with version 3 ("" if
// the answer carried none).
func errorCode(c *call) (string, bool) {
	if c.rec.Decision != gpconnect.DecisionForwarded {
		return c.rec.Token, true
	}
	if v3(c) {
		return c.tx.ProviderCode, true
	}
	return "", false
}

func appendNew(xs []string, x string) []string {
	if slices.Contains(xs, x) {
		return xs
	}
	return append(xs, x)
}
