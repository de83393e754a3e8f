package demonstrator

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"

	"sspemu/gpconnect"
)

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   bool
	}{
		{nil, false},
		{[]string{"gzip"}, true},
		{[]string{"GZIP"}, true},
		{[]string{"deflate, gzip;q=0.5"}, true},
		{[]string{"br", "x-gzip"}, true},
		{[]string{"*"}, true},
		{[]string{"gzip;q=0"}, false},
		{[]string{"gzip; q=0.000"}, false},
		{[]string{"identity"}, false},
		{[]string{"deflate, br"}, false},
		{[]string{"gzipped"}, false},
	} {
		if got := acceptsGzip(tc.values); got != tc.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tc.values, got, tc.want)
		}
	}
}

// TestGzip checks that an answer asked for with Accept-Encoding: gzip is
// the same answer compressed, errors included, and that an answer without
// a body (Prefer: return=minimal) stays empty.
func TestGzip(t *testing.T) {
	h := newTestDemonstrator(t).Handler()
	for _, c := range []call{
		{method: "GET", path: testRoot + "/metadata", interaction: gpconnect.ReadMetadata},
		{method: "GET", path: testRoot + "/Patient/99", interaction: gpconnect.ReadPatient},
	} {
		plain := do(t, h, c)
		c.header = map[string]string{"Accept-Encoding": "gzip"}
		w := do(t, h, c)
		if w.Code != plain.Code || w.Header().Get("Content-Encoding") != "gzip" || w.Header().Get("Content-Length") != "" ||
			w.Header().Get("Vary") != "Accept-Encoding" || w.Header().Get("Content-Type") != plain.Header().Get("Content-Type") {
			t.Fatalf("%s: %d %v", c.path, w.Code, w.Header())
		}
		zr, err := gzip.NewReader(w.Body)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if c.path == testRoot+"/metadata" && !bytes.Equal(b, plain.Body.Bytes()) {
			t.Errorf("%s: the gzipped answer differs:\n%s\n%s", c.path, b, plain.Body)
		}
		if plain.Code != 200 && outcomeCode(t, b) != gpconnect.CodePatientNotFound {
			t.Errorf("%s: not PATIENT_NOT_FOUND: %s", c.path, b)
		}
	}
	slot, loc := freeSlot(t, h, 0)
	w := do(t, h, call{method: "POST", path: testRoot + "/Appointment", interaction: gpconnect.CreateAppointment,
		body: bookingBody(slot, "Patient/2", loc), header: map[string]string{"Accept-Encoding": "gzip", "Prefer": "return=minimal"}})
	if w.Code != 201 || w.Body.Len() != 0 || w.Header().Get("Content-Encoding") != "" {
		t.Errorf("minimal booking: %d %v %q", w.Code, w.Header(), w.Body)
	}
}
