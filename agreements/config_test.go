package agreements

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// defaultConfig is the registry of design.md's configuration contract,
// written out in Go so tests do not depend on a file for the common case.
func defaultConfig() Config {
	return Config{
		Systems: []SystemConfig{
			{
				ASID: "200000000359", Name: "Example consumer", ODS: "Y12345",
				PartyKey: "Y12345-0000001", FQDN: "consumer.sspemu.localhost",
				Sends: []string{"foundations", "appointments"},
			},
			{
				ASID: "918999198993", Name: "GP Connect demonstrator", ODS: "A20047",
				PartyKey: "A20047-0000002", FQDN: "localhost",
				Endpoint: "https://localhost:9443/A20047/STU3/1/gpconnect",
				CPAID:    "S20001A000002",
				Receives: []string{"foundations", "appointments"},
			},
		},
		Agreements: []AgreementConfig{
			{From: "200000000359", To: "918999198993", Interactions: []string{"foundations", "appointments"}},
		},
	}
}

// TestDefaultRegistry reads design.md's registry both ways the CLI does:
// as a registry file, and as the registry: section of design.md's config
// (ParseSection, the rest of the file left to viper). Both must give the
// same Config, and it must build.
func TestDefaultRegistry(t *testing.T) {
	for _, tt := range []struct {
		file string
		load func([]byte) (Config, error)
	}{
		{"default-registry.yaml", func(b []byte) (Config, error) { return parse("default-registry.yaml", b) }},
		{"design-config.yaml", func(b []byte) (Config, error) { return ParseSection("design-config.yaml", b) }},
	} {
		data, err := os.ReadFile(filepath.Join("testdata", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		c, err := tt.load(data)
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		if !reflect.DeepEqual(c, defaultConfig()) {
			t.Fatalf("%s: registry = %+v\nwant %+v", tt.file, c, defaultConfig())
		}
		if _, err := c.Build(); err != nil {
			t.Fatalf("%s: the registry does not build: %v", tt.file, err)
		}
	}
}

func TestParseSectionErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{
		{
			name: "unknown key in a system",
			text: "ssp:\n  listen: x\nregistry:\n  systems:\n    - asid: \"200000000359\"\n      fdqn: c.example\n",
			want: []string{`config file c.yaml: registry: line 6: unknown key "fdqn" in system 1 (asid "200000000359")`, "known keys: asid, name"},
		},
		{
			name: "unknown key in the section",
			text: "registry:\n  system: []\n",
			want: []string{`line 2: unknown key "system" in registry (known keys: systems, agreements)`},
		},
		{
			name: "section not a mapping",
			text: "registry: [a]\n",
			want: []string{"line 1: registry must be a mapping with systems: and agreements:, not a list"},
		},
		{
			name: "wrong type in an agreement",
			text: "registry:\n  agreements:\n    - from: \"1\"\n      to: \"2\"\n      interactions: foundations\n",
			want: []string{`line 5: interactions in agreement 1 (1 -> 2) must be a list, e.g. [foundations], not a single value`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSection("c.yaml", []byte(tt.text))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseSectionAbsent(t *testing.T) {
	c, err := ParseSection("c.yaml", []byte("ssp:\n  listen: x\n"))
	if err != nil || c.Systems != nil || c.Agreements != nil {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestLoadFileScalarsStayText(t *testing.T) {
	// Unquoted ASIDs and dates are what users write; they must arrive as
	// the text written, not as numbers or timestamps.
	path := writeFile(t, `
systems:
  - asid: 200000000359
    name: c
    ods: Y12345
    fqdn: c.example
    sends: [foundations]
agreements:
  - from: 200000000359
    to: 918999198993
    interactions: [foundations]
    not_before: 2025-01-01
    not_after: 2026-01-01T00:00:00Z
`)
	c, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Systems[0].ASID; got != "200000000359" {
		t.Errorf("asid = %q", got)
	}
	a := c.Agreements[0]
	if a.From != "200000000359" || a.NotBefore != "2025-01-01" || a.NotAfter != "2026-01-01T00:00:00Z" {
		t.Errorf("agreement = %+v", a)
	}
}

// TestLoadFileAnchors checks that anchors, aliases and merge keys work as
// YAML says, and that an unknown key inside a merged mapping is still caught.
func TestLoadFileAnchors(t *testing.T) {
	c, err := LoadFile(writeFile(t, `
x-consumer: &consumer
  ods: Y12345
  sends: [foundations]
systems:
  - &first
    <<: *consumer
    asid: "200000000359"
    name: one
    fqdn: one.example
  - *first
`))
	if err == nil || !strings.Contains(err.Error(), `unknown key "x-consumer" at the top level`) {
		t.Fatalf("err = %v", err)
	}
	c, err = LoadFile(writeFile(t, `
systems:
  - &first
    <<: {ods: Y12345, sends: [foundations]}
    asid: "200000000359"
    name: one
    fqdn: one.example
  - *first
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Systems) != 2 || c.Systems[1].ODS != "Y12345" || c.Systems[1].ASID != "200000000359" || len(c.Systems[0].Sends) != 1 {
		t.Errorf("systems = %+v", c.Systems)
	}
	_, err = LoadFile(writeFile(t, `
systems:
  - <<: {odss: Y12345}
    asid: "200000000359"
`))
	if err == nil || !strings.Contains(err.Error(), `line 3: unknown key "odss" in system 1`) {
		t.Fatalf("err = %v", err)
	}
}

// TestLoadFileMergeBomb checks that merges of merges, each naming the
// previous mapping many times, are checked in time linear in the file: a
// registry file is read at start and on reload, so it must not stall them.
func TestLoadFileMergeBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("systems:\n  - &m0 {asid: \"200000000359\"}\n")
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&b, "  - &m%d {<<: [", i)
		for j := 0; j < 20; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*m%d", i-1)
		}
		b.WriteString("]}\n")
	}
	start := time.Now()
	_, _ = LoadFile(writeFile(t, b.String()))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("LoadFile took %v", d)
	}
}

func TestLoadFileEmpty(t *testing.T) {
	for _, text := range []string{"", "# nothing yet\n", "---\n"} {
		c, err := LoadFile(writeFile(t, text))
		if err != nil {
			t.Errorf("%q: %v", text, err)
		}
		if len(c.Systems)+len(c.Agreements) != 0 {
			t.Errorf("%q: %+v", text, c)
		}
	}
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string // substrings, all must appear
	}{
		{
			name: "unknown key in a system",
			text: "systems:\n  - asid: \"200000000359\"\n    fdqn: c.example\n",
			want: []string{`line 3: unknown key "fdqn" in system 1`, "known keys: asid, name"},
		},
		{
			name: "unknown key in an agreement",
			text: "agreements:\n  - from: a\n    to: b\n  - from: a\n    until: 2025-01-01\n",
			want: []string{`line 5: unknown key "until" in agreement 2`, "not_after"},
		},
		{
			name: "unknown top-level key",
			text: "systems: []\nagreement: []\n",
			want: []string{`line 2: unknown key "agreement" at the top level`},
		},
		{
			name: "whole config section pasted",
			text: "registry:\n  systems: []\n",
			want: []string{`line 1: unknown key "registry"`, "without registry:"},
		},
		{
			name: "every unknown key at once",
			text: "colour: red\nsystems:\n  - asid: x\n    port: 1\n",
			want: []string{`line 1: unknown key "colour"`, `line 4: unknown key "port" in system 1`},
		},
		{
			name: "systems not a list",
			text: "systems:\n  asid: x\n",
			want: []string{"line 2: systems must be a list, not a mapping"},
		},
		{
			name: "system not a mapping",
			text: "systems:\n  - 200000000359\n",
			want: []string{"line 2: system 1 must be a mapping of keys, not a single value"},
		},
		{
			name: "top level not a mapping",
			text: "- a\n- b\n",
			want: []string{"line 1: the top level must be a mapping"},
		},
		{
			name: "wrong type",
			text: "systems:\n  - asid: \"1\"\n    sends: {a: b}\n",
			want: []string{`line 3: sends in system 1 (asid "1") must be a list, e.g. [foundations], not a mapping`},
		},
		{
			name: "wrong type of text",
			text: "systems:\n  - asid: \"1\"\n  - asid: \"2\"\n    name: [a, b]\n",
			want: []string{`line 4: name in system 2 (asid "2") must be text, not a list`},
		},
		{
			name: "wrong type in a flow list",
			text: "systems: [{asid: \"1\"}, {asid: \"2\", name: [a]}]\n",
			want: []string{`line 1: a value in the registry must be text, not a list`},
		},
		{
			name: "every problem at once, each once",
			text: "systems:\n  - &s {asid: \"1\", port: 1}\n  - *s\n  - asid: \"3\"\n    sends: x\n",
			want: []string{`line 2: unknown key "port" in system 1 (asid "1")`, `line 5: sends in system 3 (asid "3") must be a list`},
		},
		{
			name: "duplicate key",
			text: "systems:\n  - asid: \"1\"\n    asid: \"2\"\n",
			want: []string{`"asid" already defined`},
		},
		{
			name: "two documents",
			text: "systems: []\n---\nagreements: []\n",
			want: []string{"more than one YAML document"},
		},
		{
			name: "not YAML",
			text: "systems: [\n",
			want: []string{"registry file"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.text)
			_, err := LoadFile(path)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error does not name the file: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadFileMissing(t *testing.T) {
	_, err := LoadFile(filepath.Join(t.TempDir(), "absent.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want a not-exist error", err)
	}
}

func TestLoadFileTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(path, bytes.Repeat([]byte("#\n"), maxFileSize/2+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(path); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v", err)
	}
}

// FuzzParse feeds arbitrary bytes to the registry file parser and, when
// they parse, to Build: neither may panic, and a parsed file that builds
// must give a table whose systems can be looked up.
func FuzzParse(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join("testdata", "default-registry.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte("systems:\n  - asid: 200000000359\n    fdqn: x\n"))
	f.Add([]byte("agreements:\n  - {from: a, to: b, interactions: [structured], not_before: 2025-01-01}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("systems: [{asid: \"1\", name: [a]}, 7]\nagreements: {from: a}\n"))
	f.Add([]byte("registry:\n  systems:\n    - {asid: \"1\", sends: x}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The configuration's registry: section takes the same decoder and
		// the same error wording; it too must never panic.
		_, _ = ParseSection("fuzz.yaml", data)
		c, err := parse("fuzz.yaml", data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error")
			}
			return
		}
		tab, err := c.Build()
		if err != nil {
			return
		}
		for _, s := range tab.Systems() {
			if _, ok := tab.System(s.ASID); !ok {
				t.Fatalf("system %q built but not found", s.ASID)
			}
		}
	})
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "registry.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadFileSupplierODS(t *testing.T) {
	c, err := LoadFile(writeFile(t, "systems:\n  - asid: \"200000000359\"\n    supplier_ods: Y90001\n"))
	if err != nil || c.Systems[0].SupplierODS != "Y90001" {
		t.Fatalf("%+v %v", c, err)
	}
}
