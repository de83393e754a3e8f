package report

import (
	"fmt"
	"slices"
	"strings"
)

// matching is the calls of the test's interaction whose query meets its
// conditions and whose answer is the one it expects ("" Expect: any).
func matching(t Test, calls []*call) []*call {
	return filter(calls, func(c *call) bool {
		return c.rec.Interaction == t.Interaction && queryHolds(c.rec.Target, t.QueryHas, t.QueryLacks) &&
			(t.Expect == "" || expected(t.Expect, c))
	})
}

func answered(t Test) string {
	switch t.Expect {
	case "", "ok":
		return "answered with success"
	}
	return "answered " + t.Expect
}

// checkCannotShow decides a test whose outcome only the consumer's own
// system shows (displaying data, reading it "correctly", a real PDS): it is
// never met from the audit. The calls that exercised its request side are
// shown, so the assessor can match them to the consumer's screenshots.
func checkCannotShow(t Test, calls []*call) (string, string, []*call, []*call) {
	why := "cannot be shown locally: " + t.CannotProve
	if t.Interaction == "" {
		return NotExercised, why, nil, nil
	}
	got := matching(t, calls)
	if len(got) == 0 {
		return NotExercised, fmt.Sprintf("%s; and no %s call%s was %s", why, iaName(t.Interaction), queryPhrase(t), answered(t)), nil, nil
	}
	return NotExercised, fmt.Sprintf("%s; its request side was exercised: %d %s call(s)%s %s", why, len(got), iaName(t.Interaction), queryPhrase(t), answered(t)), got, nil
}

// checkNotRecorded decides a test that hinges on a fact this audit version
// does not record (Test.Needs: the request body, the practice's flags on a
// patient). It is not exercised, never not met: the calls that would be
// judged are shown, narrowed by the facts version 3 records where the row
// names them (the error code, the searchset's entries; a call recorded
// before version 3 stays among them).
func checkNotRecorded(t Test, calls []*call) (string, string, []*call, []*call) {
	why := "not recorded by this audit version: " + t.Needs
	got := filter(matching(t, calls), func(c *call) bool {
		if len(t.Codes) > 0 {
			if k, known := errorCode(c); known && !slices.Contains(t.Codes, k) {
				return false
			}
		}
		return t.Count.allows(c)
	})
	if len(t.Codes) > 0 {
		why += "; the calls shown were answered with code " + strings.Join(t.Codes, " or ") + " (or recorded before audit record version 3, without the code)"
	}
	if t.Count != nil {
		why += "; the calls shown were answered with " + t.Count.String() + " (or recorded before audit record version 3, uncounted)"
	}
	if len(got) == 0 {
		return NotExercised, fmt.Sprintf("%s; and no %s call%s was %s", why, iaName(t.Interaction), queryPhrase(t), answered(t)), nil, nil
	}
	return NotExercised, fmt.Sprintf("%s; %d %s call(s)%s %s would be judged on it", why, len(got), iaName(t.Interaction), queryPhrase(t), answered(t)), got, nil
}

// nhsNumberOf is the NHS number a find-patient call searched for (the
// identifier parameter's value after "https://fhir.nhs.uk/Id/nhs-number|"),
// and whether the query named one at all.
func nhsNumberOf(target string) (string, bool) {
	for _, v := range queryOf(target)["identifier"] {
		if n, ok := strings.CutPrefix(v, "https://fhir.nhs.uk/Id/nhs-number|"); ok {
			return n, true
		}
	}
	return "", false
}

// validNHSNumber applies the NHS number's modulus 11 check: ten digits, the
// last the check digit of the first nine (weights 10..2; 11 − sum mod 11,
// 11 → 0, 10 → invalid).
func validNHSNumber(n string) bool {
	if len(n) != 10 {
		return false
	}
	sum := 0
	for i := range 10 {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
		if i < 9 {
			sum += int(n[i]-'0') * (10 - i)
		}
	}
	check := 11 - sum%11
	if check == 11 {
		check = 0
	}
	return check != 10 && check == int(n[9]-'0')
}

// checkFindInvalidNHS decides GPC-FOU-FPA-01/8: a find-patient call whose
// NHS number fails the modulus 11 check (read from the query the audit
// keeps), answered with an error, and not sent again unchanged. A consumer
// that validates the number itself never sends one: not exercised, and
// the Why says so.
func checkFindInvalidNHS(t Test, calls []*call) (string, string, []*call, []*call) {
	res, why, ex, co := errorThenFixed(t, calls, func(c *call) bool {
		n, ok := nhsNumberOf(c.rec.Target)
		return c.rec.Interaction == iaFindPatient && ok && !validNHSNumber(n)
	}, "a find patient call with an NHS number that fails the modulus 11 check")
	if res == NotExercised && len(ex) == 0 && len(co) == 0 {
		why += " (a consumer that checks the number itself never sends one; its own check is then what to show the assessor)"
	}
	return res, why, ex, co
}

// checkSearchCount decides a search test by its answer: a call of the
// test's interaction answered with success with the searchset the test
// needs (Test.Count), counted by audit record version 3. Successful
// searches recorded before version 3 are shown as not recorded; counted
// ones of another size show the situation was not exercised, as do
// searches that were refused (never not met: a refusal may be another
// test's provoked error).
func checkSearchCount(t Test, calls []*call) (string, string, []*call, []*call) {
	if t.Count == nil {
		return NotExercised, "the catalogue row names no searchset count (catalogue error)", nil, nil
	}
	n := *t.Count
	tried := filter(calls, func(c *call) bool {
		return c.rec.Interaction == t.Interaction && queryHolds(c.rec.Target, t.QueryHas, t.QueryLacks)
	})
	var good, other, unknown []*call
	for _, c := range filter(tried, (*call).ok) {
		k, ok := counted(c, n.Resource)
		switch {
		case !ok:
			unknown = append(unknown, c)
		case n.holds(k):
			good = append(good, c)
		default:
			other = append(other, c)
		}
	}
	name := iaName(t.Interaction)
	switch {
	case len(good) > 0:
		return Met, fmt.Sprintf("a %s call was answered with success with %s (the searchset's entries, counted by the SSP: audit record version 3)", name, n), good, nil
	case len(unknown) > 0:
		return NotExercised, fmt.Sprintf("not recorded by this audit version: the number of resources in the searchset answer (counted from audit record version 3; the answer may also have been too large to count); %d %s call(s) answered with success would be judged on it", len(unknown), name), unknown, nil
	case len(other) > 0:
		return NotExercised, fmt.Sprintf("%d %s call(s) were answered with success, but none with %s: the situation the test needs was not exercised", len(other), name, n), nil, other
	case len(tried) > 0:
		// Refused or failed searches are no violation of a search test:
		// they may be another test's provoked error (an invalid
		// identifier, a fault rule).
		return NotExercised, fmt.Sprintf("%s calls were made, but none was answered with success, so no searchset was there to judge", name), nil, tried
	}
	return NotExercised, "no " + name + " call", nil, nil
}
