package pds

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
)

// FuzzSearch feeds raw query strings to the demographic search: every
// answer is a JSON Bundle or OperationOutcome, 200 or 400, scores in (0, 1].
func FuzzSearch(f *testing.F) {
	for _, s := range []string{
		"family=Smith&given=Jane&birthdate=eq1990-11-23&_fuzzy-match=true",
		"family=Sm%2A&birthdate=ge1990-01-01&birthdate=le1990-12-31&address-postalcode=LS6%2A&_max-results=1",
		"family=Adam&given=Thomas&birthdate=2001-05-09&_fuzzy-match=true&general-practitioner=A20047&death-date=le2020-01-01",
		"x=%zz&&=&family", "given=**&family=a*b*c&birthdate=1999-99-99",
	} {
		f.Add(s)
	}
	h := newService().Handler()
	f.Fuzz(func(t *testing.T, raw string) {
		req := httptest.NewRequest("GET", "https://localhost:7443"+BasePath+"/Patient", nil)
		req.URL.RawQuery = raw
		req.Header.Set("X-Request-ID", requestID)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 && rec.Code != 400 {
			t.Fatalf("status %d for %q", rec.Code, raw)
		}
		var body struct {
			ResourceType string
			Entry        []struct{ Search struct{ Score float64 } }
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("not JSON for %q: %s", raw, rec.Body)
		}
		for _, e := range body.Entry {
			if e.Search.Score <= 0 || e.Search.Score > 1 {
				t.Fatalf("score %v for %q", e.Search.Score, raw)
			}
		}
	})
}
