package pds

import (
	"cmp"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"sspemu/spinecall"
)

// The search parameters of GET /Patient (the PDS specification's list).
func searchParams() []string {
	return []string{
		"_fuzzy-match", "_exact-match", "_history", "_max-results",
		"family", "given", "gender", "birthdate", "death-date",
		"address-postcode", "address-postalcode", "general-practitioner", "email", "phone",
	}
}

// maxResults is the healthcare worker access mode's limit and default:
// GP Connect consumers search as a logged-in clinician.
const maxResults = 50

// searchQuery is a validated demographic search.
type searchQuery struct {
	family, gender, postcode, gp, email, phone string
	given                                      []string
	birth, death                               []dateBound
	fuzzy, exact                               bool
	max                                        int
}

// dateBound is one birthdate or death-date value: eq, ge or le a date.
type dateBound struct{ op, date string }

var datePattern = regexp.MustCompile(`^(eq|ge|le)?(\d{4}-\d{2}-\d{2})$`)

func (b dateBound) holds(date string) bool {
	if len(date) > 10 {
		date = date[:10] // a dateTime: its date
	}
	switch b.op {
	case "ge":
		return date >= b.date
	case "le":
		return date <= b.date
	}
	return date == b.date
}

// param is one name=value pair in the order sent.
type param struct{ name, value string }

func splitQuery(raw string) ([]param, error) {
	var out []param
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		name, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("Invalid request with error - query parameter %q is not URL-encoded properly", k)
		}
		out = append(out, param{name, value})
	}
	return out, nil
}

// parseSearch validates a search in the PDS sandbox's order: no parameters,
// unknown parameters, malformed values, a missing birth date, then too few
// parameters for the kind of search.
func parseSearch(raw string) (searchQuery, *outcomeIssue) {
	fail := func(is outcomeIssue) (searchQuery, *outcomeIssue) { return searchQuery{}, &is }
	ps, err := splitQuery(raw)
	if err != nil {
		return fail(invalidValue(err.Error()))
	}
	if len(ps) == 0 {
		return fail(outcomeIssue{"error", "processing", "UNSUPPORTED_SERVICE", "Unsupported Service", ""})
	}
	var unexpected []string
	values := map[string][]string{}
	for _, p := range ps {
		if !slices.Contains(searchParams(), p.name) {
			if !slices.Contains(unexpected, "'"+p.name+"'") {
				unexpected = append(unexpected, "'"+p.name+"'")
			}
			continue
		}
		values[p.name] = append(values[p.name], p.value)
	}
	if len(unexpected) > 0 {
		verb := "was"
		if len(unexpected) > 1 {
			verb = "were"
		}
		return fail(outcomeIssue{"error", "invariant", "ADDITIONAL_PROPERTIES", "Additional properties should not be included",
			fmt.Sprintf("Invalid request with error - Additional properties are not allowed (%s %s unexpected)", strings.Join(unexpected, ", "), verb)})
	}
	bad := func(v, field string) (searchQuery, *outcomeIssue) {
		return fail(invalidValue(fmt.Sprintf("Invalid value - '%s' in field '%s'", v, field)))
	}
	first := func(name string) string {
		if v := values[name]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	var q searchQuery
	for _, field := range []string{"birthdate", "death-date"} {
		if len(values[field]) > 2 {
			return bad(values[field][2], field)
		}
		for _, v := range values[field] {
			m := datePattern.FindStringSubmatch(v)
			if m == nil {
				return bad(v, field)
			}
			if _, err := time.Parse(time.DateOnly, m[2]); err != nil {
				return bad(v, field)
			}
			b := dateBound{cmp.Or(m[1], "eq"), m[2]}
			if field == "birthdate" {
				q.birth = append(q.birth, b)
			} else {
				q.death = append(q.death, b)
			}
		}
	}
	q.gender = first("gender")
	if q.gender != "" && !slices.Contains([]string{"male", "female", "other", "unknown"}, q.gender) {
		return bad(q.gender, "gender")
	}
	for _, flag := range []string{"_fuzzy-match", "_exact-match", "_history"} {
		switch v := first(flag); v {
		case "", "false":
		case "true":
			q.fuzzy = q.fuzzy || flag == "_fuzzy-match"
			q.exact = q.exact || flag == "_exact-match"
		default:
			return bad(v, flag)
		}
	}
	q.max = maxResults
	if v := first("_max-results"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxResults {
			return bad(v, "_max-results")
		}
		q.max = n
	}
	if len(values["address-postcode"]) > 0 && len(values["address-postalcode"]) > 0 {
		return fail(invalidSearchData("address-postcode and address-postalcode cannot both be given: use address-postalcode"))
	}
	q.family = first("family")
	for _, g := range values["given"] {
		q.given = append(q.given, strings.TrimSpace(g))
	}
	q.postcode = cmp.Or(first("address-postalcode"), first("address-postcode"))
	q.gp, q.email, q.phone = first("general-practitioner"), first("email"), first("phone")

	if len(q.birth) == 0 {
		return fail(missingValue("Missing value - 'birth_date/birth_date_range_start/birth_date_range_end'"))
	}
	enough := q.family != ""
	if q.fuzzy {
		given := len(q.given) > 0
		enough = (given && q.family != "") || (q.family != "" && q.gender != "" && q.postcode != "") || (given && q.gender != "" && q.postcode != "")
	}
	if !enough {
		return fail(invalidSearchData("No searches were performed as the search criteria did not meet the minimum requirements"))
	}
	wild := map[string]string{"family": q.family, "address-postalcode": q.postcode}
	if len(q.given) > 0 {
		wild["given"] = q.given[0]
	}
	for _, field := range []string{"family", "given", "address-postalcode"} {
		v := wild[field]
		if i := strings.IndexByte(v, '*'); i >= 0 && (q.fuzzy || i < 2) {
			why := "a wildcard needs at least two characters before it"
			if q.fuzzy {
				why = "wildcards cannot be used in a fuzzy search"
			}
			return fail(invalidSearchData(fmt.Sprintf("%s: '%s' in field '%s'", why, v, field)))
		}
	}
	for i, g := range q.given {
		if i > 0 && strings.Contains(g, "*") {
			return fail(invalidSearchData(fmt.Sprintf("only the first given name may hold a wildcard: '%s' in field 'given'", g)))
		}
	}
	if strings.Contains(q.email, "*") || strings.Contains(q.phone, "*") || strings.Contains(q.gp, "*") {
		return fail(invalidSearchData("wildcards are allowed in family, the first given name and the postcode only"))
	}
	return q, nil
}

// match scores one patient against the search: ok false when it does not
// match. A criterion met exactly counts whole, one met through a wildcard,
// a sound-alike (Soundex) or swapped names counts half, and in a fuzzy
// search a differing practice or date of death counts nothing without
// excluding the patient (as the specification says). The score is the
// weighted share, so 1 means every criterion matched exactly.
func (q searchQuery) match(p Patient) (score float64, ok bool) {
	var got, total float64
	add := func(weight, m float64) { got += weight * m; total += weight }

	names, ok := q.matchNames(p)
	if !ok {
		return 0, false
	}
	for _, n := range names {
		add(1, n)
	}
	if q.gender != "" {
		if normGender(p.Gender) != q.gender {
			return 0, false
		}
		add(0.5, 1)
	}
	for _, b := range q.birth {
		if !b.holds(p.BirthDate) {
			return 0, false
		}
	}
	add(1, 1)
	if len(q.death) > 0 {
		held := p.DeceasedDateTime != ""
		for _, b := range q.death {
			held = held && b.holds(p.DeceasedDateTime)
		}
		switch {
		case held:
			add(0.5, 1)
		case q.fuzzy:
			add(0.5, 0)
		default:
			return 0, false
		}
	}
	if q.postcode != "" {
		pc := ""
		if p.Address != nil {
			pc = p.Address.PostalCode
		}
		m := matchText(normPostcode(q.postcode), normPostcode(pc))
		if m == 0 {
			return 0, false
		}
		add(0.5, m)
	}
	if q.gp != "" {
		switch {
		case strings.EqualFold(q.gp, p.PracticeODS):
			add(0.5, 1)
		case q.fuzzy:
			add(0.5, 0)
		default:
			return 0, false
		}
	}
	for _, c := range []struct{ system, want string }{{"email", q.email}, {"phone", q.phone}} {
		if c.want == "" {
			continue
		}
		found := slices.ContainsFunc(p.Telecom, func(t Telecom) bool {
			return t.System == c.system && (t.Value == c.want || (c.system == "email" && strings.EqualFold(t.Value, c.want)))
		})
		if !found {
			return 0, false
		}
		add(0.5, 1)
	}
	return math.Round(got/total*10000) / 10000, true
}

// matchNames gives the match of the family name and of the given names
// (when searched), trying swapped names in a fuzzy search.
func (q searchQuery) matchNames(p Patient) ([]float64, bool) {
	direct := func(family string, given []string) ([]float64, bool) {
		var out []float64
		if q.family != "" {
			m := q.nameMatch(q.family, family)
			if m == 0 {
				return nil, false
			}
			out = append(out, m)
		}
		if len(q.given) > 0 {
			if len(given) < len(q.given) {
				return nil, false
			}
			worst := 1.0
			for i, g := range q.given {
				m := q.nameMatch(g, given[i])
				if i > 0 && q.fuzzy && !strings.EqualFold(g, given[i]) {
					m = 0 // only the first given name sounds alike
				}
				if m == 0 {
					return nil, false
				}
				worst = min(worst, m)
			}
			out = append(out, worst)
		}
		return out, true
	}
	if ms, ok := direct(p.Family, p.Given); ok {
		return ms, true
	}
	if !q.fuzzy || len(p.Given) == 0 {
		return nil, false
	}
	// Transposed: the family name searched is the patient's first given
	// name and the other way round.
	swapped := append([]string{p.Family}, p.Given[1:]...)
	ms, ok := direct(p.Given[0], swapped)
	for i := range ms {
		ms[i] = min(ms[i], 0.5)
	}
	return ms, ok
}

// nameMatch is 1 for the same name (case aside), 0.5 for a wildcard or, in
// a fuzzy search, a Soundex match, 0 otherwise.
func (q searchQuery) nameMatch(want, have string) float64 {
	if m := matchText(want, have); m > 0 || !q.fuzzy {
		return m
	}
	if s := soundex(want); s != "" && s == soundex(have) {
		return 0.5
	}
	return 0
}

// matchText is 1 when the texts are equal without case, 0.5 when the
// pattern's wildcards (*) match, 0 otherwise.
func matchText(pattern, text string) float64 {
	if strings.EqualFold(pattern, text) {
		return 1
	}
	if !strings.Contains(pattern, "*") {
		return 0
	}
	parts := strings.Split(strings.ToLower(pattern), "*")
	t := strings.ToLower(text)
	if !strings.HasPrefix(t, parts[0]) {
		return 0
	}
	t = t[len(parts[0]):]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(t, mid)
		if i < 0 {
			return 0
		}
		t = t[i+len(mid):]
	}
	if !strings.HasSuffix(t, parts[len(parts)-1]) {
		return 0
	}
	return 0.5
}

func normPostcode(s string) string { return strings.ToUpper(strings.ReplaceAll(s, " ", "")) }

// soundex is the American Soundex code of a name's letters: the first
// letter and three digits.
func soundex(name string) string {
	code := func(r rune) byte {
		switch r {
		case 'B', 'F', 'P', 'V':
			return '1'
		case 'C', 'G', 'J', 'K', 'Q', 'S', 'X', 'Z':
			return '2'
		case 'D', 'T':
			return '3'
		case 'L':
			return '4'
		case 'M', 'N':
			return '5'
		case 'R':
			return '6'
		case 'H', 'W':
			return 'h'
		}
		return '0' // vowels and Y
	}
	var out []byte
	var last byte
	for _, r := range strings.ToUpper(name) {
		if r < 'A' || r > 'Z' {
			continue
		}
		c := code(r)
		if len(out) == 0 {
			out = append(out, byte(r))
			last = c
			continue
		}
		if c == 'h' {
			continue // H and W do not separate equal codes
		}
		if c != '0' && c != last {
			out = append(out, c)
		}
		last = c
		if len(out) == 4 {
			break
		}
	}
	if len(out) == 0 {
		return ""
	}
	for len(out) < 4 {
		out = append(out, '0')
	}
	return string(out)
}

// searchBundle is PDS's searchset: score per entry, best first.
type searchBundle struct {
	ResourceType string        `json:"resourceType"`
	Type         string        `json:"type"`
	Timestamp    string        `json:"timestamp"`
	Total        int           `json:"total"`
	Entry        []searchEntry `json:"entry,omitempty"`
}

type searchEntry struct {
	FullURL  string      `json:"fullUrl"`
	Search   scoreJSON   `json:"search"`
	Resource patientJSON `json:"resource"`
}

type scoreJSON struct {
	Score float64 `json:"score"`
}

// search answers GET /Patient: the matches best first, restricted patients
// without their address, telecom and practice (and left out when the
// search names a postcode or a practice), TOO_MANY_MATCHES when more match
// than _max-results.
func (s *Service) search(w http.ResponseWriter, r *http.Request) {
	q, is := parseSearch(r.URL.RawQuery)
	if is != nil {
		writeOutcome(w, http.StatusBadRequest, *is)
		return
	}
	type hit struct {
		p     Patient
		score float64
	}
	var hits []hit
	for _, p := range s.patients() {
		if p.Restricted && (q.postcode != "" || q.gp != "") {
			continue
		}
		if score, ok := q.match(p); ok && (!q.exact || score == 1) {
			hits = append(hits, hit{p, score})
		}
	}
	slices.SortStableFunc(hits, func(a, b hit) int {
		return cmp.Or(cmp.Compare(b.score, a.score), cmp.Compare(a.p.NHSNumber, b.p.NHSNumber))
	})
	s.log.Debug("pds search", "query", r.URL.RawQuery, "matches", len(hits))
	if len(hits) > q.max {
		writeOutcome(w, http.StatusOK, outcomeIssue{"information", "multiple-matches", "TOO_MANY_MATCHES", "Too Many Matches", ""})
		return
	}
	spinecall.Results(w, len(hits))
	var facts []spinecall.PatientRecord
	for _, h := range hits[:min(len(hits), spinecall.MaxFacts)] {
		facts = append(facts, patientRecord(h.p))
	}
	spinecall.Facts(w, "", nil, facts)
	b := searchBundle{ResourceType: "Bundle", Type: "searchset", Timestamp: s.now().UTC().Format(time.RFC3339), Total: len(hits)}
	for _, h := range hits {
		b.Entry = append(b.Entry, searchEntry{
			FullURL:  "https://" + r.Host + BasePath + "/Patient/" + h.p.NHSNumber,
			Search:   scoreJSON{h.score},
			Resource: resource(h.p),
		})
	}
	writeJSON(w, http.StatusOK, b)
}
