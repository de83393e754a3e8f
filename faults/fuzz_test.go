package faults

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"sspemu/gpconnect"
)

// FuzzParseRule feeds POST /api/faults bodies to the parser. A body is
// refused with an error or gives a rule that validates, reads back the same
// after a JSON round trip, can be added to a set and matched without panic.
func FuzzParseRule(f *testing.F) {
	for _, seed := range []string{
		`{"name":"ssp-502","at":"ssp","status":502}`,
		`{"name":"practice-500","match":{"interaction":"appointments","method":"POST","path":"^/Appointment$"},"at":"provider","status":500,"code":"INTERNAL_SERVER_ERROR","times":2}`,
		`{"name":"slow","at":"provider","delay":{"uniform":{"min":"200ms","max":"2s"}},"probability":0.25}`,
		`{"name":"tail","at":"ssp","delay":{"lognormal":{"median":"300ms","sigma":0.5}}}`,
		`{"name":"drop","match":{"nhs_number":"9690937286","from":"200000000359","to":"918999198993"},"at":"ssp","reset":true}`,
		`{"name":"fot","at":"ssp","status":403,"code":"FOT_CHECK_FAILED_MESSAGESENDER_<from>_MESSAGERECEIVER_<to>"}`,
		`{"name":"x","at":"ssp","status":502,"probabilty":0.5}`,
		`{"name":"x","at":"ssp","delay":{"fixed":"2s"},"status":502}`,
		`{"name":"x","match":{"path":"(("},"at":"ssp","reset":true}`,
		`{"name":"x","at":"ssp","status":400,"code":"<<>>__<a"}`,
		`{"name":"x","at":"ssp","delay":{"lognormal":{"median":"1s","sigma":1e308}}}`,
		`{"name":"x","at":"ssp","status":502,"times":-9223372036854775808}`,
		`[]`, `null`, `{}`, `{"name":"x"}{}`, "\xff",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRule(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error message")
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("parsed rule does not validate: %v", err)
		}
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseRule(out)
		if err != nil {
			t.Fatalf("%s does not read back: %v", out, err)
		}
		if !reflect.DeepEqual(r, again) {
			t.Fatalf("round trip changed the rule:\n%+v\n%+v", r, again)
		}
		set, err := NewSet(Config{Header: true}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		added, err := set.Add(r)
		if err != nil {
			t.Fatalf("parsed rule refused by Add: %v", err)
		}
		if added.Status != 0 && added.Code == "" {
			t.Fatalf("a status rule without a code: %+v", added)
		}
		v := View{Interaction: gpconnect.CreateAppointment, From: "200000000359", To: "918999198993", Method: "POST",
			Path: "/Appointment", Body: []byte(appointmentJSON)}
		for _, at := range []At{AtSSP, AtProvider} {
			for _, header := range []string{"", r.Name} {
				d, err := set.Match(at, v, header)
				if err != nil {
					t.Fatal(err)
				}
				if d != nil && (d.Delay < 0 || d.Delay > MaxDelay) {
					t.Fatalf("delay %s out of bounds", d.Delay)
				}
				if d != nil && d.Status != nil {
					_ = d.Status.Refusal(TokenValues{}).Outcome().Marshal(gpconnect.FormatXML)
				}
			}
		}
	})
}

// FuzzNHSNumbers feeds request bodies, the untrusted part of a View, to the
// NHS number reader: it must never panic, and what it finds it finds again.
func FuzzNHSNumbers(f *testing.F) {
	for _, seed := range []string{registerJSON, registerXML, structuredJSON, appointmentJSON, requestedRecord,
		`{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"1"}`, `<a><system value="https://fhir.nhs.uk/Id/nhs-number"/><value value="1"/></a>`,
		`[[[[`, `<<<`, `{"a":{"b":[1,"x",{"system":"y"}]}}`, ""} {
		f.Add([]byte(seed), "identifier=https://fhir.nhs.uk/Id/nhs-number%7C9690937286")
	}
	f.Fuzz(func(t *testing.T, body []byte, query string) {
		v := View{Body: body, Query: query, RequestedRecord: body}
		a, b := v.NHSNumbers(), v.NHSNumbers()
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("two reads differ: %q, %q", a, b)
		}
		seen := map[string]bool{}
		for _, n := range a {
			if n == "" || seen[n] {
				t.Fatalf("empty or repeated number in %q", a)
			}
			seen[n] = true
		}
	})
}

// FuzzClockSetting feeds PUT /api/clock bodies: refused with a message, or
// applied within the clock's bounds.
func FuzzClockSetting(f *testing.F) {
	for _, seed := range []string{`{"now":"2026-07-01T09:00:00+01:00"}`, `{"offset":"72h"}`, `{"offset":"-2562047h"}`,
		`{"now":"9999-12-31T23:59:59Z"}`, `{}`, `{"now":"x","offset":"y"}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := NewClock(func() time.Time { return time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC) })
		var s ClockSetting
		if err := decodeStrict(data, &s, clockFields); err != nil {
			return
		}
		if err := s.Apply(c); err != nil {
			if c.State().Mode != ModeReal {
				t.Fatalf("a refused setting changed the clock: %v", err)
			}
			return
		}
		if now := c.Now(); now.Before(minClock) || !now.Before(maxClock) {
			t.Fatalf("clock at %s", now)
		}
	})
}
