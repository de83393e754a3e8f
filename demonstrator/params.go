package demonstrator

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"sspemu/gpconnect"
)

// queryParam is one name=value pair of a query string, in the order sent.
type queryParam struct{ name, value string }

// parseQuery splits a raw query string into its pairs. Unlike url.ParseQuery
// it keeps '+' as a plus sign, because consumers put unencoded UTC offsets
// (2024-05-01T09:00:00+01:00) into search dates, and it keeps repeated
// names apart so that a repeated mandatory parameter can be refused.
func parseQuery(raw string) ([]queryParam, error) {
	var out []queryParam
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		name, value, _ := strings.Cut(part, "=")
		n, err := url.PathUnescape(name)
		if err != nil {
			return nil, fmt.Errorf("parameter name %q: %w", name, err)
		}
		v, err := url.PathUnescape(value)
		if err != nil {
			return nil, fmt.Errorf("parameter %q value %q: %w", n, value, err)
		}
		out = append(out, queryParam{n, v})
	}
	return out, nil
}

func values(params []queryParam, name string) []string {
	var out []string
	for _, p := range params {
		if p.name == name {
			out = append(out, p.value)
		}
	}
	return out
}

// single returns the one value of a mandatory parameter; a missing or
// repeated one is 400 BAD_REQUEST.
func single(params []queryParam, name string) (string, *gpconnect.Refusal) {
	vs := values(params, name)
	switch len(vs) {
	case 0:
		return "", badRequest("mandatory parameter %q is missing", name)
	case 1:
		return vs[0], nil
	}
	return "", badRequest("parameter %q is repeated (%d times); send it once", name, len(vs))
}

// identifierParam reads the mandatory identifier=system|value parameter and
// checks its system. A token without its system or its value is
// malformed: 422 INVALID_PARAMETER (as the provider conformance suite
// expects; the find pages fix no code). A well-formed token naming another
// system is 400 INVALID_IDENTIFIER_SYSTEM, the error-handling page's code
// for an identifier system the provider does not support.
func identifierParam(params []queryParam, system string) (string, *gpconnect.Refusal) {
	v, o := single(params, "identifier")
	if o != nil {
		return "", o
	}
	sys, val, ok := strings.Cut(v, "|")
	switch {
	case !ok || sys == "":
		return "", invalidParameter("identifier %q has no system: send identifier=%s|<value>", v, system)
	case val == "":
		return "", invalidParameter("identifier %q has an empty value: send identifier=%s|<value>", v, system)
	case sys != system:
		return "", refuse(http.StatusBadRequest, gpconnect.CodeInvalidIdentifierSystem,
			"identifier system %q is not %s", sys, system)
	}
	return val, nil
}

// dateBound is one end of a date range: from is inclusive, before exclusive.
type dateBound struct {
	t        time.Time
	dateOnly bool
}

// parseDatePrefixed reads a search date with its ge or le prefix: a plain
// date (UK calendar day) or a dateTime with a UTC offset.
func parseDatePrefixed(name, v string, loc *time.Location) (prefix string, b dateBound, o *gpconnect.Refusal) {
	if len(v) < 2 {
		return "", b, invalidParameter("parameter %s=%q: want ge or le followed by a date", name, v)
	}
	prefix, rest := v[:2], v[2:]
	if prefix != "ge" && prefix != "le" {
		return "", b, invalidParameter("parameter %s=%q: the prefix must be ge or le, not %q", name, v, prefix)
	}
	if t, err := time.ParseInLocation("2006-01-02", rest, loc); err == nil {
		return prefix, dateBound{t: t, dateOnly: true}, nil
	}
	// Exactly yyyy-mm-ddThh:mm:ss+hh:mm, as the slot search page has it:
	// no Z, no fractions of a second.
	t, err := time.Parse(fhirTime, rest)
	if err != nil || len(rest) != len(fhirTime) {
		return "", b, invalidParameter("parameter %s=%q: %q is neither a date (2006-01-02) nor a dateTime with offset (2006-01-02T15:04:05+01:00)", name, v, rest)
	}
	return prefix, dateBound{t: t}, nil
}

// upper turns an le bound into an exclusive instant: the whole day for a
// plain date, the instant itself for a dateTime.
func (b dateBound) upper() time.Time {
	if b.dateOnly {
		return b.t.AddDate(0, 0, 1)
	}
	return b.t.Add(time.Nanosecond)
}

// slotQuery is a parsed search-for-free-slots request.
type slotQuery struct {
	from, before        time.Time
	includePractitioner bool
	includeLocation     bool
}

const maxSlotRange = 14 // days

// parseSlotQuery applies the slot search rules: start=ge, end=le, status=free
// and _include=Slot:schedule mandatory; the range at most 14 days.
func parseSlotQuery(params []queryParam, loc *time.Location) (slotQuery, *gpconnect.Refusal) {
	var q slotQuery
	startV, o := single(params, "start")
	if o != nil {
		return q, o
	}
	endV, o := single(params, "end")
	if o != nil {
		return q, o
	}
	status, o := single(params, "status")
	if o != nil {
		return q, o
	}
	includes := values(params, "_include")
	if len(includes) == 0 {
		return q, badRequest("mandatory parameter _include=Slot:schedule is missing")
	}
	seen := false
	for _, v := range includes {
		if v != "Slot:schedule" {
			return q, invalidParameter("_include=%q is not supported: only Slot:schedule", v)
		}
		if seen {
			return q, badRequest("parameter _include=Slot:schedule is repeated")
		}
		seen = true
	}
	for _, v := range values(params, "_include:recurse") {
		switch v {
		case "Schedule:actor:Practitioner":
			q.includePractitioner = true
		case "Schedule:actor:Location":
			q.includeLocation = true
		case "Location:managingOrganization":
			// The Organization is always in the answer; asking is allowed.
		default:
			return q, invalidParameter("_include:recurse=%q is not supported: use Schedule:actor:Practitioner, Schedule:actor:Location or Location:managingOrganization", v)
		}
	}
	for _, v := range values(params, "searchFilter") {
		sys, val, ok := strings.Cut(v, "|")
		if !ok || sys == "" || val == "" {
			return q, invalidParameter("searchFilter=%q: want system|value", v)
		}
	}
	if status != "free" {
		return q, invalidParameter("status=%q: only status=free can be searched", status)
	}
	p, from, o := parseDatePrefixed("start", startV, loc)
	if o != nil {
		return q, o
	}
	if p != "ge" {
		return q, invalidParameter("start=%q: the start of the range takes the prefix ge", startV)
	}
	p, to, o := parseDatePrefixed("end", endV, loc)
	if o != nil {
		return q, o
	}
	if p != "le" {
		return q, invalidParameter("end=%q: the end of the range takes the prefix le", endV)
	}
	if to.t.Before(from.t) {
		return q, invalidParameter("end %q is before start %q", endV, startV)
	}
	if to.t.After(from.t.AddDate(0, 0, maxSlotRange)) {
		return q, invalidParameter("the range %s to %s is longer than %d days", startV, endV, maxSlotRange)
	}
	q.from, q.before = from.t, to.upper()
	return q, nil
}

// parseAppointmentsQuery reads the start=ge<date>&start=le<date> pair of a
// patient's appointments search into [from, before). Anything else (one
// start or three, a prefix twice, another prefix, a time part, a range that
// reaches into the past before today) is 422 INVALID_PARAMETER: the range
// it defines is not valid.
func parseAppointmentsQuery(params []queryParam, loc *time.Location, now time.Time) (from, before time.Time, o *gpconnect.Refusal) {
	vs := values(params, "start")
	if len(vs) != 2 {
		return from, before, invalidParameter("parameter start is sent %d times: send it twice, start=ge<date>&start=le<date> (e.g. start=ge%s&start=le%s)",
			len(vs), now.In(loc).Format(time.DateOnly), now.In(loc).AddDate(0, 0, 7).Format(time.DateOnly))
	}
	var ge, le *time.Time
	for _, v := range vs {
		if len(v) < 2 || (v[:2] != "ge" && v[:2] != "le") {
			return from, before, invalidParameter("start=%q: the prefix must be ge or le", v)
		}
		prefix, rest := v[:2], v[2:]
		d, err := time.ParseInLocation(time.DateOnly, rest, loc)
		if err != nil || len(rest) != len(time.DateOnly) {
			return from, before, invalidParameter("start=%q: %q is not a date yyyy-mm-dd (day, month and year, and no time)", v, rest)
		}
		bound := &ge
		if prefix == "le" {
			bound = &le
		}
		if *bound != nil {
			return from, before, invalidParameter("start=%s is sent twice: send one start=ge<date> and one start=le<date>", prefix)
		}
		*bound = &d
	}
	y, m, day := now.In(loc).Date()
	today := time.Date(y, m, day, 0, 0, 0, 0, loc)
	if ge.Before(today) {
		return from, before, invalidParameter("start=ge%s is in the past: appointments can be searched from today (%s) onwards, not before",
			ge.Format(time.DateOnly), today.Format(time.DateOnly))
	}
	if le.Before(*ge) {
		return from, before, invalidParameter("start=le%s is before start=ge%s", le.Format(time.DateOnly), ge.Format(time.DateOnly))
	}
	return *ge, le.AddDate(0, 0, 1), nil
}
