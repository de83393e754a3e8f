package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sspemu/gpconnect"
)

// step is one admin call of a scripted session and the status it must get.
type step struct {
	method, path, body string
	status             int
}

// TestAPISession drives the admin API over real HTTP through a whole
// session and compares the transcript with testdata/api.golden.
func TestAPISession(t *testing.T) {
	real := &fakeReal{t: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)}
	clock := NewClock(real.now)
	set := newSet(t, Options{}, Rule{Name: "from-config", At: AtSSP, Status: 502, Match: Match{Interaction: "appointments"}})
	srv := httptest.NewServer(NewAPI(set, clock))
	t.Cleanup(srv.Close)

	steps := []step{
		{"GET", "/api/faults", "", 200},
		{"POST", "/api/faults", `{"name":"practice-500","at":"provider","status":500,"times":2}`, 201},
		{"POST", "/api/faults", `{"name":"slow","match":{"interaction":"urn:nhs:names:services:gpconnect:fhir:rest:search:slot-1"},"at":"provider","delay":{"fixed":"2s"}}`, 201},
		{"POST", "/api/faults", `{"name":"quarter","at":"ssp","status":403,"code":"FOT_CHECK_FAILED_MESSAGESENDER_<from>_MESSAGERECEIVER_<to>","probability":0.25}`, 201},
		{"POST", "/api/faults", `{"name":"slow","at":"ssp","reset":true}`, 409},
		{"POST", "/api/faults", `{"name":"slow-slots","at":"provider","delay":{"uniform":{"min":"2s","max":"1s"}},"probability":1.5}`, 400},
		{"POST", "/api/faults", `{"name":"x","at":"ssp","status":"502"}`, 400},
		{"POST", "/api/faults", `{"name":"x","at":"ssp","status":502,"probabilty":0.5}`, 400},
		{"POST", "/api/faults", `{"name":"x","at":"ssp","status":502}{}`, 400},
		{"POST", "/api/faults", `{"name":"x",`, 400},
		{"POST", "/api/faults", ``, 400},
		{"GET", "/api/faults", "", 200},
		{"GET", "/api/faults/slow", "", 200},
		{"GET", "/api/faults/nope", "", 404},
		{"DELETE", "/api/faults/nope", "", 404},
		{"DELETE", "/api/faults/slow", "", 200},
		{"DELETE", "/api/faults", "", 200},
		{"GET", "/api/faults", "", 200},
		{"PATCH", "/api/faults", "", 405},

		{"GET", "/api/clock", "", 200},
		{"PUT", "/api/clock", `{"now":"2026-07-01T09:00:00+01:00"}`, 200},
		{"PUT", "/api/clock", `{"offset":"72h"}`, 200},
		{"PUT", "/api/clock", `{"offset":"-30m"}`, 200},
		{"PUT", "/api/clock", `{"now":"2026-07-01T09:00:00+01:00","offset":"72h"}`, 400},
		{"PUT", "/api/clock", `{}`, 400},
		{"PUT", "/api/clock", `{"now":"1 July 2026"}`, 400},
		{"PUT", "/api/clock", `{"offset":"3 days"}`, 400},
		{"PUT", "/api/clock", `{"now":"1800-01-01T00:00:00Z"}`, 400},
		{"PUT", "/api/clock", `{"when":"now"}`, 400},
		{"DELETE", "/api/clock", "", 200},
	}
	var transcript bytes.Buffer
	for _, s := range steps {
		req, err := http.NewRequestWithContext(t.Context(), s.method, srv.URL+s.path, strings.NewReader(s.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != s.status {
			t.Errorf("%s %s %s: %d, want %d\n%s", s.method, s.path, s.body, resp.StatusCode, s.status, body)
		}
		if resp.StatusCode != 405 && resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: Content-Type %q", s.method, s.path, resp.Header.Get("Content-Type"))
		}
		fmt.Fprintf(&transcript, "%s %s %s\n=> %d", s.method, s.path, s.body, resp.StatusCode)
		if loc := resp.Header.Get("Location"); loc != "" {
			fmt.Fprintf(&transcript, " Location: %s", loc)
		}
		fmt.Fprintf(&transcript, "\n%s\n", body)
	}
	golden(t, "api.golden", transcript.Bytes())

	// The clock and the set are what the API says.
	if set.HeaderEnabled() || len(set.List()) != 0 || clock.State().Mode != ModeReal {
		t.Errorf("after the session: %d rules, clock %+v", len(set.List()), clock.State())
	}
}

// TestAPIRuleActs: a rule added through the API acts at once, and its count
// shows in the listing.
func TestAPIRuleActs(t *testing.T) {
	set := newSet(t, Options{})
	srv := httptest.NewServer(NewAPI(set, NewClock(nil)))
	t.Cleanup(srv.Close)
	resp, err := srv.Client().Post(srv.URL+"/api/faults", "application/json", strings.NewReader(`{"name":"fail-twice","at":"provider","status":500,"times":2}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for range 3 {
		if _, err := set.Match(AtProvider, View{Interaction: gpconnect.ReadMetadata}, ""); err != nil {
			t.Fatal(err)
		}
	}
	resp, err = srv.Client().Get(srv.URL + "/api/faults/fail-twice")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l struct {
		Acted     int64 `json:"acted"`
		Remaining int64 `json:"remaining"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		t.Fatal(err)
	}
	if l.Acted != 2 || l.Remaining != 0 {
		t.Errorf("listed %+v, want acted 2, remaining 0", l)
	}
}

func TestAPINotRunning(t *testing.T) {
	srv := httptest.NewServer(NewAPI(nil, nil))
	t.Cleanup(srv.Close)
	for _, path := range []string{"/api/faults", "/api/clock"} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 || !strings.Contains(string(body), "not running") {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
}

func TestAPIBodyLimit(t *testing.T) {
	srv := httptest.NewServer(NewAPI(newSet(t, Options{}), nil))
	t.Cleanup(srv.Close)
	big := `{"name":"` + strings.Repeat("a", maxRuleBody) + `"}`
	resp, err := srv.Client().Post(srv.URL+"/api/faults", "application/json", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "larger than 65536 bytes") {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./faults -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("differs from %s (rerun with -update if the change is intended)\n--- got\n%s", path, got)
	}
}
