package agreements

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"sspemu/gpconnect"
)

const (
	consumerASID = "200000000359"
	providerASID = "918999198993"
	providerRoot = "https://localhost:9443/A20047/STU3/1/gpconnect"
)

func mustBuild(t testing.TB, c Config) *Table {
	t.Helper()
	tab, err := c.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return tab
}

func TestBuildDefault(t *testing.T) {
	tab := mustBuild(t, defaultConfig())

	var want []string
	for _, in := range gpconnect.Interactions() {
		if in.Group != gpconnect.GroupStructured {
			want = append(want, in.ID)
		}
	}
	c, ok := tab.System(consumerASID)
	if !ok {
		t.Fatal("consumer not registered")
	}
	if !slices.Equal(c.Sends, want) || len(c.Receives) != 0 {
		t.Errorf("consumer sends %v receives %v, want sends %v", c.Sends, c.Receives, want)
	}
	p, ok := tab.System(providerASID)
	if !ok {
		t.Fatal("provider not registered")
	}
	if !slices.Equal(p.Receives, want) || p.Endpoint != providerRoot || p.CPAID != "S20001A000002" || p.PartyKey != "A20047-0000002" {
		t.Errorf("provider = %+v", p)
	}
	if got := tab.Endpoints(); !slices.Equal(got, []string{providerRoot}) {
		t.Errorf("Endpoints = %v", got)
	}
	if got := tab.Systems(); len(got) != 2 || got[0].ASID != consumerASID || got[1].ASID != providerASID {
		t.Errorf("Systems = %+v", got)
	}
	ags := tab.Agreements()
	if len(ags) != 1 || !slices.Equal(ags[0].Interactions, want) || !ags[0].NotBefore.IsZero() || !ags[0].NotAfter.IsZero() {
		t.Errorf("Agreements = %+v", ags)
	}
	if _, ok := tab.System("000000000000"); ok {
		t.Error("unregistered ASID found")
	}
}

// TestTableImmutable checks that what the accessors return are copies: a
// caller changing them cannot change the decisions.
func TestTableImmutable(t *testing.T) {
	tab := mustBuild(t, defaultConfig())
	s, _ := tab.System(consumerASID)
	s.Sends[0] = "changed"
	tab.Systems()[0].Sends[1] = "changed"
	tab.Endpoints()[0] = "https://evil.example"
	tab.Agreements()[0].Interactions[0] = "changed"

	again, _ := tab.System(consumerASID)
	if again.Sends[0] != gpconnect.ReadMetadata || again.Sends[1] != gpconnect.ReadPatient {
		t.Errorf("sends changed through a returned copy: %v", again.Sends[:2])
	}
	if tab.Endpoints()[0] != providerRoot {
		t.Error("endpoints changed through a returned copy")
	}
	if tab.Agreements()[0].Interactions[0] != gpconnect.ReadMetadata {
		t.Error("agreement changed through a returned copy")
	}
}

func TestEndpointsSortedAndUnique(t *testing.T) {
	c := defaultConfig()
	c.Systems = append(c.Systems,
		SystemConfig{ASID: "100000000001", Name: "b", ODS: "B1", PartyKey: "B1-1", Endpoint: "https://b.example/B1/STU3/1/gpconnect", CPAID: "X", Receives: []string{"foundations"}},
		SystemConfig{ASID: "100000000002", Name: "a", ODS: "B1", PartyKey: "B1-2", Endpoint: "https://a.example/B1/STU3/1/gpconnect", CPAID: "Y", Receives: []string{"structured"}},
		SystemConfig{ASID: "100000000003", Name: "a again", ODS: "B1", PartyKey: "B1-3", Endpoint: "https://a.example/B1/STU3/1/gpconnect", CPAID: "Z", Receives: []string{"foundations"}},
	)
	got := mustBuild(t, c).Endpoints()
	want := []string{"https://a.example/B1/STU3/1/gpconnect", "https://b.example/B1/STU3/1/gpconnect", providerRoot}
	if !slices.Equal(got, want) {
		t.Errorf("Endpoints = %v\nwant %v", got, want)
	}
}

// TestBuildOneMistake changes one thing in the default registry and checks
// that Build reports exactly one error, naming the item and the problem.
func TestBuildOneMistake(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string
	}{
		{"short asid", func(c *Config) { c.Systems[0].ASID = "20000000035"; c.Agreements = nil },
			[]string{`system "20000000035": asid "20000000035" must be exactly 12 digits`}},
		{"asid with letters", func(c *Config) { c.Systems[0].ASID = "20000000035X"; c.Agreements = nil },
			[]string{`must be exactly 12 digits`}},
		{"empty asid", func(c *Config) { c.Systems[0].ASID = ""; c.Agreements = nil },
			[]string{`system 1 (no asid): asid "" must be exactly 12 digits`}},
		{"duplicate asid", func(c *Config) { c.Systems[1].ASID = consumerASID; c.Agreements = nil },
			[]string{`system "200000000359": duplicate asid: system 1 (Example consumer) already has it`}},
		{"duplicate party key", func(c *Config) { c.Systems[1].PartyKey = "Y12345-0000001" },
			[]string{`system "918999198993": party_key "Y12345-0000001" is already used by system "200000000359"`}},
		{"no name", func(c *Config) { c.Systems[0].Name = " " },
			[]string{`system "200000000359": name is required`}},
		{"bad ODS", func(c *Config) { c.Systems[0].ODS = "Y 12345" },
			[]string{`system "200000000359": ods "Y 12345"`}},
		{"bad supplier ODS", func(c *Config) { c.Systems[0].SupplierODS = "Y9-0001" },
			[]string{`system "200000000359": supplier_ods "Y9-0001" must be an ODS code`}},
		{"unknown interaction in sends", func(c *Config) { c.Systems[0].Sends = []string{"foundations", "documents"} },
			[]string{`system "200000000359": sends: unknown interaction or group "documents"`}},
		{"unknown interaction in receives", func(c *Config) {
			c.Systems[1].Receives = []string{"urn:nhs:names:services:gpconnect:fhir:rest:read:patient-2"}
		},
			[]string{`system "918999198993": receives: unknown interaction or group "urn:nhs:names:services:gpconnect:fhir:rest:read:patient-2"`}},
		{"sender without fqdn", func(c *Config) { c.Systems[0].FQDN = "" },
			[]string{`system "200000000359": a sending system needs fqdn`}},
		{"fqdn with scheme", func(c *Config) { c.Systems[0].FQDN = "https://consumer.example" },
			[]string{`system "200000000359": fqdn "https://consumer.example" is not a host name`}},
		{"receiver without endpoint", func(c *Config) { c.Systems[1].Endpoint = "" },
			[]string{`system "918999198993": a receiving system needs endpoint`}},
		{"receiver without cpa_id", func(c *Config) { c.Systems[1].CPAID = "" },
			[]string{`system "918999198993": a receiving system needs cpa_id`}},
		{"receiver without party key", func(c *Config) { c.Systems[1].PartyKey = "" },
			[]string{`system "918999198993": a receiving system needs party_key`}},
		{"endpoint http", func(c *Config) { c.Systems[1].Endpoint = "http://localhost:9443/A20047/STU3/1/gpconnect" },
			[]string{`system "918999198993": endpoint "http://localhost:9443/A20047/STU3/1/gpconnect" must start with https://`}},
		{"endpoint upper-case scheme", func(c *Config) { c.Systems[1].Endpoint = "HTTPS://localhost:9443/A20047/STU3/1/gpconnect" },
			[]string{`must start with https://`}},
		{"endpoint trailing slash", func(c *Config) { c.Systems[1].Endpoint = providerRoot + "/" },
			[]string{`must not end with '/': register ` + providerRoot}},
		{"endpoint query", func(c *Config) { c.Systems[1].Endpoint = providerRoot + "?x=1" },
			[]string{`must not have a query`}},
		{"endpoint empty query", func(c *Config) { c.Systems[1].Endpoint = providerRoot + "?" },
			[]string{`must not have a query`}},
		{"endpoint fragment", func(c *Config) { c.Systems[1].Endpoint = providerRoot + "#top" },
			[]string{`must not have a fragment`}},
		{"endpoint user info", func(c *Config) { c.Systems[1].Endpoint = "https://user:pw@localhost:9443/A20047/STU3/1/gpconnect" },
			[]string{`must not carry user information`}},
		{"endpoint without ODS segment", func(c *Config) { c.Systems[1].Endpoint = "https://localhost:9443/STU3/1/gpconnect" },
			[]string{`must hold the system's ODS code A20047 as a path segment`}},
		{"endpoint ODS only inside a segment", func(c *Config) { c.Systems[1].Endpoint = "https://localhost:9443/xA20047/STU3/1/gpconnect" },
			[]string{`must hold the system's ODS code A20047`}},
		{"endpoint not parseable", func(c *Config) { c.Systems[1].Endpoint = "https://localhost:x443/A20047/STU3/1/gpconnect" },
			[]string{`is not a URL`}},
		{"endpoint with space", func(c *Config) { c.Systems[1].Endpoint = "https://localhost/A20047/STU3 1" },
			[]string{`must not hold spaces`}},
		{"endpoint without host", func(c *Config) { c.Systems[1].Endpoint = "https:///A20047/STU3/1/gpconnect" },
			[]string{`has no host`}},
		{"agreement from unknown system", func(c *Config) { c.Agreements[0].From = "111111111111" },
			[]string{`agreement 1 (111111111111 -> 918999198993): from "111111111111" is not a registered system`}},
		{"agreement to unknown system", func(c *Config) { c.Agreements[0].To = "111111111111" },
			[]string{`agreement 1 (200000000359 -> 111111111111): to "111111111111" is not a registered system`}},
		{"agreement unknown interaction", func(c *Config) { c.Agreements[0].Interactions = []string{"foundation"} },
			[]string{`agreement 1 (200000000359 -> 918999198993): interactions: unknown interaction or group "foundation"`}},
		{"agreement without interactions", func(c *Config) { c.Agreements[0].Interactions = nil },
			[]string{`agreement 1 (200000000359 -> 918999198993): interactions is empty`}},
		{"agreement sender without role", func(c *Config) { c.Systems[0].Sends = []string{"foundations"} },
			[]string{`agreement 1 (200000000359 -> 918999198993): from 200000000359 is a system without that role: it does not send ` + gpconnect.SearchSlot}},
		{"agreement receiver without role", func(c *Config) {
			c.Agreements[0].Interactions = []string{"structured"}
			c.Systems[0].Sends = []string{"structured"}
		},
			[]string{`agreement 1 (200000000359 -> 918999198993): to 918999198993 is a system without that role: it does not receive ` + gpconnect.GetStructuredRecord}},
		{"agreement bad not_before", func(c *Config) { c.Agreements[0].NotBefore = "01/02/2025" },
			[]string{`agreement 1 (200000000359 -> 918999198993): not_before: "01/02/2025" is neither RFC 3339`}},
		{"agreement bad not_after", func(c *Config) { c.Agreements[0].NotAfter = "2025-02-30" },
			[]string{`not_after: "2025-02-30"`}},
		{"agreement dates reversed", func(c *Config) { c.Agreements[0].NotBefore = "2025-06-01"; c.Agreements[0].NotAfter = "2025-01-01" },
			[]string{`not_before 2025-06-01 must be earlier than not_after 2025-01-01`}},
		{"agreement dates equal", func(c *Config) {
			c.Agreements[0].NotBefore = "2025-06-01"
			c.Agreements[0].NotAfter = "2025-06-01T00:00:00Z"
		}, []string{`must be earlier than not_after`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaultConfig()
			tt.change(&c)
			tab, err := c.Build()
			if err == nil {
				t.Fatal("Build accepted the mistake")
			}
			if tab != nil {
				t.Error("Build returned a table with its error")
			}
			errs := joined(err)
			if len(errs) != 1 {
				t.Fatalf("%d errors, want 1:\n%v", len(errs), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(errs[0].Error(), w) {
					t.Errorf("error\n  %v\ndoes not contain\n  %s", errs[0], w)
				}
			}
		})
	}
}

// TestBuildTenMistakes checks that Build reports every problem at once, one
// error per mistake, each naming its item.
func TestBuildTenMistakes(t *testing.T) {
	c := Config{
		Systems: []SystemConfig{
			defaultConfig().Systems[0],
			defaultConfig().Systems[1],
			{ASID: "12345", Name: "short", ODS: "X1"},                                                   // 1 bad asid
			{ASID: consumerASID, Name: "twin", ODS: "X1"},                                               // 2 duplicate asid
			{ASID: "300000000001", Name: "p", ODS: "X2", PartyKey: "A20047-0000002"},                    // 3 duplicate party key
			{ASID: "300000000002", Name: "q", ODS: "X3", FQDN: "q.example", Sends: []string{"letters"}}, // 4 unknown group
			{ASID: "300000000003", Name: "r", ODS: "X4", FQDN: "", Sends: []string{"structured"}},       // 5 no fqdn
			{ASID: "300000000004", Name: "s", ODS: "X5", PartyKey: "X5-1", CPAID: "C",
				Endpoint: "https://s.example/X5/STU3/1/gpconnect/", Receives: []string{"structured"}}, // 6 trailing slash
		},
		Agreements: []AgreementConfig{
			defaultConfig().Agreements[0],
			{From: consumerASID, To: "999999999999", Interactions: []string{"foundations"}},                  // 7 unknown system
			{From: consumerASID, To: providerASID, Interactions: []string{"structured"}},                     // 8 sender without role (and receiver)
			{From: consumerASID, To: providerASID, Interactions: []string{"foundations"}, NotBefore: "soon"}, // 9 bad date
			{From: consumerASID, To: providerASID, Interactions: []string{"appointments"},
				NotBefore: "2026-01-01", NotAfter: "2025-01-01"}, // 10 reversed dates
		},
	}
	// Mistake 8 names both sides: make the consumer's structured-sending
	// part of the mistake by keeping the provider a receiver of it.
	c.Systems[1].Receives = append(c.Systems[1].Receives, "structured")

	_, err := c.Build()
	errs := joined(err)
	want := []string{
		`system "12345": asid "12345" must be exactly 12 digits`,
		`system "200000000359": duplicate asid: system 1 (Example consumer) already has it`,
		`system "300000000001": party_key "A20047-0000002" is already used by system "918999198993"`,
		`system "300000000002": sends: unknown interaction or group "letters"`,
		`system "300000000003": a sending system needs fqdn`,
		`system "300000000004": endpoint "https://s.example/X5/STU3/1/gpconnect/" must not end with '/'`,
		`agreement 2 (200000000359 -> 999999999999): to "999999999999" is not a registered system`,
		`agreement 3 (200000000359 -> 918999198993): from 200000000359 is a system without that role: it does not send ` + gpconnect.GetStructuredRecord,
		`agreement 4 (200000000359 -> 918999198993): not_before: "soon" is neither RFC 3339`,
		`agreement 5 (200000000359 -> 918999198993): not_before 2026-01-01 must be earlier than not_after 2025-01-01`,
	}
	if len(errs) != len(want) {
		t.Fatalf("%d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		if !strings.Contains(errs[i].Error(), w) {
			t.Errorf("error %d\n  %v\ndoes not contain\n  %s", i+1, errs[i], w)
		}
	}
}

func TestBuildDates(t *testing.T) {
	c := defaultConfig()
	c.Agreements[0].NotBefore = "2025-04-01"
	c.Agreements[0].NotAfter = "2025-10-01T09:30:00+01:00"
	a := mustBuild(t, c).Agreements()[0]
	if want := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC); !a.NotBefore.Equal(want) {
		t.Errorf("NotBefore = %v, want %v", a.NotBefore, want)
	}
	if want := time.Date(2025, 10, 1, 8, 30, 0, 0, time.UTC); !a.NotAfter.Equal(want) {
		t.Errorf("NotAfter = %v, want %v", a.NotAfter, want)
	}
}

func TestBuildEmpty(t *testing.T) {
	tab := mustBuild(t, Config{})
	if len(tab.Systems()) != 0 || len(tab.Endpoints()) != 0 || len(tab.Agreements()) != 0 {
		t.Error("empty config gave a non-empty table")
	}
}

// joined splits an errors.Join result into its errors.
func joined(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// TestJSONUsesConfigKeys checks that the admin API's registry reads in the
// configuration's words.
func TestJSONUsesConfigKeys(t *testing.T) {
	c := defaultConfig()
	c.Systems[0].SupplierODS = "Y90001"
	c.Agreements[0].NotBefore = "2025-01-01"
	table, err := c.Build()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(map[string]any{"systems": table.Systems(), "agreements": table.Agreements()})
	if err != nil {
		t.Fatal(err)
	}
	keys := strings.Split(keysOf[SystemConfig]()+", "+keysOf[AgreementConfig](), ", ")
	for _, key := range keys[:len(keys)-1] { // the last, not_after, is open here
		if !strings.Contains(string(raw), `"`+key+`":`) {
			t.Errorf("no %q in %s", key, raw)
		}
	}
	if strings.Contains(string(raw), `"not_after"`) || strings.Contains(string(raw), `"PartyKey"`) {
		t.Errorf("an open not_after or a Go field name: %s", raw)
	}
}
