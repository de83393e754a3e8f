package pds

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"sspemu/gpconnect"
)

const requestID = "60E0B220-8136-4CA5-AE46-1D97EF59D068"

// practicePatients stands in for the practices' stores (the Source the
// practices will give): patients registered at A20047 and B82617.
func practicePatients() []Patient {
	return []Patient{
		{NHSNumber: "9690937286", Family: "SKELLY", Given: []string{"Horace"}, Prefix: []string{"Mr"}, Gender: "male", BirthDate: "1952-03-14",
			Address: &Address{Lines: []string{"Horace Street", "Leeds"}, PostalCode: "LS1 1AA"}, PracticeODS: "A20047",
			Telecom: []Telecom{{System: "phone", Value: "01632960100", Use: "home"}, {System: "email", Value: "Horace.Skelly@example.com", Use: "home"}}},
		{NHSNumber: "9690937294", Family: "MEAKIN", Given: []string{"Julie", "Anne"}, Gender: "female", BirthDate: "1978-07-02",
			Address: &Address{PostalCode: "LS1 1AB"}, PracticeODS: "A20047"},
		{NHSNumber: "9690937308", Family: "SMITH", Given: []string{"Jane"}, Gender: "female", BirthDate: "1990-11-23",
			Address: &Address{PostalCode: "LS6 2AL"}, PracticeODS: "B82617"},
		{NHSNumber: "9690937316", Family: "SMYTHE", Given: []string{"Jayne"}, Gender: "female", BirthDate: "1990-11-23",
			Address: &Address{PostalCode: "LS6 2AX"}, PracticeODS: "B82617"},
		{NHSNumber: "9690937324", Family: "THOMAS", Given: []string{"Adam"}, Gender: "male", BirthDate: "2001-05-09", PracticeODS: "B82617"},
	}
}

func newService() *Service {
	return New(Options{
		Source: SourceFunc(practicePatients), Practice: "A20047",
		Now: func() time.Time { return time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC) },
	})
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func call(t *testing.T, h http.Handler, method, target string, headers map[string]string) answer {
	t.Helper()
	req := httptest.NewRequest(method, "https://localhost:7443"+target, nil)
	req.Header.Set("X-Request-ID", requestID)
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	a := answer{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	if err := json.Unmarshal(rec.Body.Bytes(), &a.body); err != nil {
		t.Fatalf("%s %s: not JSON (%d): %s", method, target, rec.Code, rec.Body)
	}
	if rec.Header().Get("Content-Type") != mimeFHIRJSON {
		t.Errorf("Content-Type %q", rec.Header().Get("Content-Type"))
	}
	return a
}

func read(t *testing.T, h http.Handler, nhs string) answer {
	return call(t, h, "GET", BasePath+"/Patient/"+nhs, nil)
}

func practiceOf(p map[string]any) string {
	gps, _ := p["generalPractitioner"].([]any)
	if len(gps) == 0 {
		return ""
	}
	id := gps[0].(map[string]any)["identifier"].(map[string]any)
	if id["system"] != SystemODS {
		return "wrong system " + id["system"].(string)
	}
	return id["value"].(string)
}

func security(p map[string]any) string {
	return p["meta"].(map[string]any)["security"].([]any)[0].(map[string]any)["code"].(string)
}

func spineCode(a answer) string {
	is := a.body["issue"].([]any)[0].(map[string]any)
	return is["details"].(map[string]any)["coding"].([]any)[0].(map[string]any)["code"].(string)
}

func diagnostics(a answer) string {
	d, _ := a.body["issue"].([]any)[0].(map[string]any)["diagnostics"].(string)
	return d
}

func TestValidNHSNumber(t *testing.T) {
	for _, n := range []string{"9690937286", "9000000009", TestDeceased, TestSensitive, TestSuperseded, TestSuperseding, TestNotFound} {
		if !gpconnect.ValidNHSNumber(n) {
			t.Errorf("%s is valid", n)
		}
	}
	for _, n := range []string{"9000000000", "9990000011", "969093728", "96909372860", "969093728a", "", "0000000001"} {
		if gpconnect.ValidNHSNumber(n) {
			t.Errorf("%s is not valid", n)
		}
	}
	for _, p := range testPatients("A20047") {
		if !gpconnect.ValidNHSNumber(p.NHSNumber) {
			t.Errorf("test patient %s", p.NHSNumber)
		}
	}
}

func TestRead(t *testing.T) {
	h := newService().Handler()
	a := call(t, h, "GET", BasePath+"/Patient/9690937286", map[string]string{"X-Correlation-ID": "c-1"})
	if a.status != 200 || a.body["id"] != "9690937286" || practiceOf(a.body) != "A20047" || security(a.body) != "U" ||
		a.header.Get("ETag") != `W/"1"` || a.header.Get("X-Request-ID") != requestID || a.header.Get("X-Correlation-ID") != "c-1" {
		t.Fatalf("%d %v\n%s", a.status, a.header, a.raw)
	}
	id := a.body["identifier"].([]any)[0].(map[string]any)
	if id["system"] != SystemNHSNumber || id["value"] != "9690937286" {
		t.Errorf("identifier %v", id)
	}
	if name := a.body["name"].([]any)[0].(map[string]any); name["family"] != "SKELLY" || name["use"] != "usual" {
		t.Errorf("name %v", name)
	}
}

func TestTestPatients(t *testing.T) {
	h := newService().Handler()

	a := read(t, h, TestDeceased)
	if a.status != 200 || a.body["deceasedDateTime"] != "2024-11-03T09:12:00+00:00" || practiceOf(a.body) != "A20047" || !strings.Contains(a.raw, "DeathNotificationStatus") {
		t.Errorf("deceased: %s", a.raw)
	}

	a = read(t, h, TestSensitive)
	if a.status != 200 || security(a.body) != "R" || a.body["address"] != nil || a.body["telecom"] != nil || a.body["generalPractitioner"] != nil {
		t.Errorf("sensitive: %s", a.raw)
	}

	a = read(t, h, TestSuperseded)
	if a.status != 200 || a.body["id"] != TestSuperseding || practiceOf(a.body) != "A20047" {
		t.Errorf("superseded: %s", a.raw)
	}

	a = read(t, h, TestNotFound)
	if a.status != 404 || spineCode(a) != "RESOURCE_NOT_FOUND" {
		t.Errorf("not found: %s", a.raw)
	}
	if a = read(t, h, "9111231130"); a.status != 404 {
		t.Errorf("any valid unknown number: %d", a.status)
	}
	a = read(t, h, "9000000000")
	if a.status != 400 || spineCode(a) != "INVALID_RESOURCE_ID" {
		t.Errorf("invalid NHS number: %s", a.raw)
	}

	// A practice's patient wins over a test patient with the same number.
	clash := New(Options{Practice: "A20047", Source: SourceFunc(func() []Patient {
		return []Patient{{NHSNumber: TestDeceased, Family: "LIVING", BirthDate: "1950-01-01", PracticeODS: "B82617"}}
	})}).Handler()
	if a = read(t, clash, TestDeceased); a.body["deceasedDateTime"] != nil || practiceOf(a.body) != "B82617" {
		t.Errorf("clash: %s", a.raw)
	}
}

// TestSourceIsLive checks that PDS asks its source on every request: a
// patient registered at a practice is on PDS at once.
func TestSourceIsLive(t *testing.T) {
	patients := practicePatients()
	s := New(Options{Practice: "A20047"})
	h := s.Handler()
	if a := read(t, h, "9690937286"); a.status != 404 {
		t.Fatalf("no source yet: %d", a.status)
	}
	s.SetSource(SourceFunc(func() []Patient { return patients }))
	if a := read(t, h, "9690937286"); a.status != 200 {
		t.Fatalf("after SetSource: %d", a.status)
	}
	patients = append(patients, Patient{NHSNumber: "9690937332", Family: "NOWAK", BirthDate: "1987-09-17", PracticeODS: "A20047"})
	if a := read(t, h, "9690937332"); a.status != 200 || practiceOf(a.body) != "A20047" {
		t.Fatalf("a newly registered patient: %s", a.raw)
	}
}

func TestHeadersAndPaths(t *testing.T) {
	h := newService().Handler()
	path := BasePath + "/Patient/9690937286"
	tests := []struct {
		name    string
		method  string
		path    string
		headers map[string]string
		status  int
		code    string
		diag    string
	}{
		{"no X-Request-ID", "GET", path, map[string]string{"X-Request-ID": ""}, 400, "MISSING_VALUE", "Invalid request with error - X-Request-ID header must be supplied to access this resource"},
		{"X-Request-ID not a UUID", "GET", path, map[string]string{"X-Request-ID": "1234"}, 400, "INVALID_VALUE", "Invalid value - '1234' in header 'X-Request-ID'"},
		{"Authorization not Bearer", "GET", path, map[string]string{"Authorization": "Basic eDp5"}, 401, "ACCESS_DENIED", "Missing access token"},
		{"Bearer without a token", "GET", path, map[string]string{"Authorization": "Bearer "}, 401, "ACCESS_DENIED", "Missing access token"},
		{"a bearer token", "GET", path, map[string]string{"Authorization": "Bearer g1112R_ccQ1Ebbb4gtHBP1aaaNM"}, 200, "", ""},
		{"POST", "POST", BasePath + "/Patient", nil, 405, "UNSUPPORTED_SERVICE", "sspemu's PDS retrieves and searches patients only (GET); POST is not supported"},
		{"PATCH", "PATCH", path, nil, 405, "UNSUPPORTED_SERVICE", "sspemu's PDS retrieves and searches patients only (GET); PATCH is not supported"},
		{"no NHS number", "GET", BasePath + "/Patient/", nil, 400, "UNSUPPORTED_SERVICE", "Missing NHS number"},
		{"unknown path", "GET", BasePath + "/RelatedPerson", nil, 404, "RESOURCE_NOT_FOUND", ""},
		{"below a patient", "GET", path + "/RelatedPerson", nil, 404, "RESOURCE_NOT_FOUND", ""},
		{"prefix only", "GET", BasePath + "/Patients", nil, 404, "RESOURCE_NOT_FOUND", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, h, tt.method, tt.path, tt.headers)
			if a.status != tt.status {
				t.Fatalf("%d: %s", a.status, a.raw)
			}
			if tt.code == "" {
				return
			}
			if spineCode(a) != tt.code || (tt.diag != "" && diagnostics(a) != tt.diag) {
				t.Errorf("%s %q", spineCode(a), diagnostics(a))
			}
			if tt.status == 405 && a.header.Get("Allow") != "GET" {
				t.Errorf("Allow %q", a.header.Get("Allow"))
			}
		})
	}
}

func search(t *testing.T, h http.Handler, query string) answer {
	t.Helper()
	return call(t, h, "GET", BasePath+"/Patient?"+query, nil)
}

type hit struct {
	nhs   string
	score float64
}

func hits(a answer) []hit {
	var out []hit
	es, _ := a.body["entry"].([]any)
	for _, e := range es {
		m := e.(map[string]any)
		out = append(out, hit{m["resource"].(map[string]any)["id"].(string), m["search"].(map[string]any)["score"].(float64)})
	}
	return out
}

func TestSearch(t *testing.T) {
	h := newService().Handler()
	v := func(kv ...string) string {
		u := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			u.Add(kv[i], kv[i+1])
		}
		return u.Encode()
	}
	tests := []struct {
		name  string
		query string
		want  []hit
	}{
		{"family and birth date", v("family", "Skelly", "birthdate", "eq1952-03-14"), []hit{{"9690937286", 1}}},
		{"birth date without eq", v("family", "SKELLY", "birthdate", "1952-03-14"), []hit{{"9690937286", 1}}},
		{"every criterion", v("family", "skelly", "given", "horace", "gender", "male", "birthdate", "eq1952-03-14", "address-postalcode", "ls11aa",
			"general-practitioner", "a20047", "email", "horace.skelly@example.com", "phone", "01632960100"), []hit{{"9690937286", 1}}},
		{"date range", v("family", "Skelly", "birthdate", "ge1952-01-01", "birthdate", "le1952-12-31"), []hit{{"9690937286", 1}}},
		{"date range missing", v("family", "Skelly", "birthdate", "ge1953-01-01"), nil},
		{"wildcard family", v("family", "Sm*", "birthdate", "1990-11-23"), []hit{{"9690937308", 0.75}, {"9690937316", 0.75}}},
		{"wildcard postcode", v("family", "Smith", "birthdate", "1990-11-23", "address-postcode", "LS6*"), []hit{{"9690937308", 0.9}}},
		{"second given name", v("family", "Meakin", "given", "Julie", "given", "Anne", "birthdate", "1978-07-02"), []hit{{"9690937294", 1}}},
		{"wrong second given name", v("family", "Meakin", "given", "Julie", "given", "Mary", "birthdate", "1978-07-02"), nil},
		{"non-fuzzy: no sound-alikes", v("family", "Smith", "given", "Jane", "birthdate", "1990-11-23"), []hit{{"9690937308", 1}}},
		{"fuzzy: sound-alikes", v("family", "Smith", "given", "Jane", "birthdate", "1990-11-23", "_fuzzy-match", "true"), []hit{{"9690937308", 1}, {"9690937316", 0.6667}}},
		{"fuzzy: transposed names", v("family", "Adam", "given", "Thomas", "birthdate", "2001-05-09", "_fuzzy-match", "true"), []hit{{"9690937324", 0.6667}}},
		{"fuzzy: a different practice lowers the score", v("family", "Smith", "given", "Jane", "birthdate", "1990-11-23", "general-practitioner", "A20047", "_fuzzy-match", "true"), []hit{{"9690937308", 0.8571}, {"9690937316", 0.5714}}},
		{"exact match only", v("family", "Smith", "given", "Jane", "birthdate", "1990-11-23", "_fuzzy-match", "true", "_exact-match", "true"), []hit{{"9690937308", 1}}},
		{"wrong gender", v("family", "Skelly", "gender", "female", "birthdate", "1952-03-14"), nil},
		{"wrong phone", v("family", "Skelly", "phone", "01632960999", "birthdate", "1952-03-14"), nil},
		{"deceased by death date", v("family", "Holloway", "birthdate", "1931-04-02", "death-date", "ge2024-01-01"), []hit{{TestDeceased, 1}}},
		{"the living have no death date", v("family", "Skelly", "birthdate", "1952-03-14", "death-date", "le2030-01-01"), nil},
		{"restricted patients are found", v("family", "Ashdown", "birthdate", "1989-06-16"), []hit{{TestSensitive, 1}}},
		{"but not by postcode", v("family", "Ashdown", "birthdate", "1989-06-16", "address-postalcode", "LS2 9ZZ"), nil},
		{"nor by practice", v("family", "Ashdown", "birthdate", "1989-06-16", "general-practitioner", "A20047"), nil},
		{"a superseded record is not found, its replacement is", v("family", "Fairbairn", "birthdate", "1975-09-30"), []hit{{TestSuperseding, 1}}},
		{"no match", v("family", "Nobody", "birthdate", "1975-09-30"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := search(t, h, tt.query)
			if a.status != 200 || a.body["resourceType"] != "Bundle" || a.body["type"] != "searchset" || a.body["total"] != float64(len(tt.want)) {
				t.Fatalf("%d: %s", a.status, a.raw)
			}
			got := hits(a)
			if len(got) != len(tt.want) {
				t.Fatalf("hits %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("hits %v, want %v", got, tt.want)
					break
				}
			}
			if es, _ := a.body["entry"].([]any); len(es) > 0 {
				e := es[0].(map[string]any)
				if e["fullUrl"] != "https://localhost:7443"+BasePath+"/Patient/"+got[0].nhs {
					t.Errorf("fullUrl %v", e["fullUrl"])
				}
			}
		})
	}
	a := search(t, h, v("family", "Ashdown", "birthdate", "1989-06-16"))
	if p := a.body["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any); security(p) != "R" || p["address"] != nil || p["generalPractitioner"] != nil {
		t.Errorf("a restricted patient in a search: %v", p)
	}
}

func TestSearchErrors(t *testing.T) {
	h := newService().Handler()
	tests := []struct {
		name, query, code, diag string
		status                  int
	}{
		{"no parameters", "", "UNSUPPORTED_SERVICE", "", 400},
		{"one unknown parameter", "family=Smith&birthdate=2000-01-01&colour=blue", "ADDITIONAL_PROPERTIES", "Invalid request with error - Additional properties are not allowed ('colour' was unexpected)", 400},
		{"three unknown parameters", "model=a&family=Smith&manufacturer=b&year=c", "ADDITIONAL_PROPERTIES", "Invalid request with error - Additional properties are not allowed ('model', 'manufacturer', 'year' were unexpected)", 400},
		{"bad birth date", "family=Smith&birthdate=22-10-2010", "INVALID_VALUE", "Invalid value - '22-10-2010' in field 'birthdate'", 400},
		{"impossible birth date", "family=Smith&birthdate=eq2010-02-30", "INVALID_VALUE", "Invalid value - 'eq2010-02-30' in field 'birthdate'", 400},
		{"bad death date", "family=Smith&birthdate=2010-10-22&death-date=gt2010-10-22", "INVALID_VALUE", "Invalid value - 'gt2010-10-22' in field 'death-date'", 400},
		{"bad gender", "family=Smith&birthdate=2010-10-22&gender=mal", "INVALID_VALUE", "Invalid value - 'mal' in field 'gender'", 400},
		{"bad max results", "family=Smith&birthdate=2010-10-22&_max-results=51", "INVALID_VALUE", "Invalid value - '51' in field '_max-results'", 400},
		{"bad flag", "family=Smith&birthdate=2010-10-22&_fuzzy-match=yes", "INVALID_VALUE", "Invalid value - 'yes' in field '_fuzzy-match'", 400},
		{"no birth date", "family=Smith", "MISSING_VALUE", "Missing value - 'birth_date/birth_date_range_start/birth_date_range_end'", 400},
		{"no family name", "given=Jane&birthdate=2010-10-22", "INVALID_SEARCH_DATA", "Invalid search data provided - 'No searches were performed as the search criteria did not meet the minimum requirements'", 400},
		{"fuzzy: too few", "family=Smith&birthdate=2010-10-22&_fuzzy-match=true", "INVALID_SEARCH_DATA", "Invalid search data provided - 'No searches were performed as the search criteria did not meet the minimum requirements'", 400},
		{"wildcard too early", "family=S*&birthdate=2010-10-22", "INVALID_SEARCH_DATA", "Invalid search data provided - 'a wildcard needs at least two characters before it: 'S*' in field 'family''", 400},
		{"wildcard in fuzzy", "family=Smi*&given=Jane&birthdate=2010-10-22&_fuzzy-match=true", "INVALID_SEARCH_DATA", "Invalid search data provided - 'wildcards cannot be used in a fuzzy search: 'Smi*' in field 'family''", 400},
		{"both postcodes", "family=Smith&birthdate=2010-10-22&address-postcode=LS1&address-postalcode=LS1", "INVALID_SEARCH_DATA", "Invalid search data provided - 'address-postcode and address-postalcode cannot both be given: use address-postalcode'", 400},
		{"too many matches", "family=Sm*&birthdate=1990-11-23&_max-results=1", "TOO_MANY_MATCHES", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := search(t, h, tt.query)
			if a.status != tt.status || a.body["resourceType"] != "OperationOutcome" || spineCode(a) != tt.code || diagnostics(a) != tt.diag {
				t.Fatalf("%d %s %q\n%s", a.status, spineCode(a), diagnostics(a), a.raw)
			}
		})
	}
}

func TestSoundex(t *testing.T) {
	for name, want := range map[string]string{
		"Robert": "R163", "Rupert": "R163", "Ashcraft": "A261", "Tymczak": "T522", "Pfister": "P236",
		"Smith": "S530", "Smythe": "S530", "Lee": "L000", "": "", "O'Reilly": "O640",
	} {
		if got := soundex(name); got != want {
			t.Errorf("soundex(%q) = %q, want %q", name, got, want)
		}
	}
}
