package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/viper"

	"sspemu/agreements"
	"sspemu/gpconnect"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEmbeddedConfigIsValid(t *testing.T) {
	cfg, err := loadConfig(viper.New(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.validate(); err != nil {
		t.Fatalf("the embedded config.yaml is not valid: %v", err)
	}
	if cfg.SSP.Listen != "localhost:8443" || cfg.Admin.Listen != "localhost:9090" || cfg.Demonstrator.Listen != "localhost:9443" {
		t.Errorf("default listeners differ from design.md: %+v", cfg)
	}
	if cfg.SSP.UpstreamTimeout != 30*time.Second || cfg.SSP.TLS.MinVersion != "1.2" {
		t.Errorf("defaults differ from design.md: %+v", cfg.SSP)
	}
	if cfg.Audit.Sync != "interval" || cfg.Audit.SyncInterval != 100*time.Millisecond {
		t.Errorf("audit defaults differ from design.md (sync interval, sync_interval 100ms): %+v", cfg.Audit)
	}
	if want := filepath.Join(".sspemu", "pki", "ssp-server.pem"); cfg.SSP.TLS.Cert != want {
		t.Errorf("empty cert not resolved to the dev PKI: %q", cfg.SSP.TLS.Cert)
	}
}

// TestPrecedence checks file < SSPEMU_* environment < flags.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, "c.yaml", "ssp:\n  listen: localhost:1001\n  fidelity: live\nadmin:\n  listen: localhost:2001\n")
	t.Setenv("SSPEMU_SSP_LISTEN", "localhost:1002")
	t.Setenv("SSPEMU_SSP_UPSTREAM_TIMEOUT", "7s")
	cmd := newServeCmd(&bytes.Buffer{}, &bytes.Buffer{})
	if err := cmd.Flags().Parse([]string{"--admin-listen", "localhost:2003", "--jwt", "log"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(viper.New(), file, cmd.Flags())
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]string{
		"file only (ssp.fidelity)":         {cfg.SSP.Fidelity, "live"},
		"env over file (ssp.listen)":       {cfg.SSP.Listen, "localhost:1002"},
		"flag over file (admin.listen)":    {cfg.Admin.Listen, "localhost:2003"},
		"flag over default (ssp.jwt)":      {cfg.SSP.JWT, "log"},
		"env over default (timeout)":       {cfg.SSP.UpstreamTimeout.String(), "7s"},
		"default kept (interaction_route)": {cfg.SSP.InteractionRoute, "enforce"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s: got %q, want %q", name, c[0], c[1])
		}
	}
	t.Setenv("SSPEMU_ADMIN_LISTEN", "localhost:2002")
	cfg, err = loadConfig(viper.New(), file, cmd.Flags())
	if err != nil || cfg.Admin.Listen != "localhost:2003" {
		t.Errorf("flag must beat env: %q %v", cfg.Admin.Listen, err)
	}
}

func TestUnknownKeysAreNamed(t *testing.T) {
	file := writeFile(t, "c.yaml", "ssp:\n  lisen: localhost:1\n  tls:\n    min_verison: \"1.3\"\nauditt:\n  sync: none\n")
	_, err := loadConfig(viper.New(), file, nil)
	if err == nil {
		t.Fatal("unknown keys accepted")
	}
	for _, k := range []string{`"ssp.lisen"`, `"ssp.tls.min_verison"`, `"auditt.sync"`} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("error does not name %s: %v", k, err)
		}
	}
}

func TestCheckConfigReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, "c.yaml", `state_dir: `+dir+`
ssp:
  upstream_timout: 5s
  listen: "localhost:99999"
  fidelity: loose
  tls:
    min_version: "1.1"
    cert: /nonexistent/server.pem
admin:
  listen: nothere
audit:
  sync: sometimes
registry:
  systems:
    - asid: "12345"
      name: Short ASID
      ods: Y12345
      party_key: Y12345-1
      fqdn: consumer.example
      sends: [foundations, nonsense]
  agreements:
    - from: "12345"
      to: "999999999999"
      interactions: [foundations]
`)
	var out bytes.Buffer
	root := newRootCmd(&out, &out)
	root.SetArgs([]string{"check-config", "--config", file})
	if err := root.Execute(); !errors.Is(err, errReported) {
		t.Fatalf("check-config returned %v, want the problems reported (exit 1)\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{`unknown key "ssp.upstream_timout"`, "ssp.listen", "ssp.fidelity", "ssp.tls.min_version", "admin.listen", "audit.sync",
		`"12345"`, "nonsense", "999999999999", "/nonexistent/server.pem"} {
		if !strings.Contains(text, want) {
			t.Errorf("check-config output does not name %s:\n%s", want, text)
		}
	}
	// The dev PKI is made on first start: its files are not problems yet.
	for _, noise := range []string{"ssp.client_cert", "ssp.provider_ca", "ssp.tls.client_ca"} {
		if strings.Contains(text, noise) {
			t.Errorf("check-config reports %s, a dev PKI file the first start will make:\n%s", noise, text)
		}
	}
}

func TestCheckConfigDefaultIsOK(t *testing.T) {
	t.Chdir(t.TempDir())
	var out bytes.Buffer
	root := newRootCmd(&out, &out)
	root.SetArgs([]string{"check-config"})
	if err := root.Execute(); err != nil || !strings.Contains(out.String(), "configuration OK") {
		t.Fatalf("%v\n%s", err, out.String())
	}
}

// TestTokenPrintsOnlyAValidToken runs `sspemu token` and checks the output
// is one token that passes every JWT rule for the interaction, with the
// registry's defaults.
func TestTokenPrintsOnlyAValidToken(t *testing.T) {
	for _, id := range []string{gpconnect.ReadMetadata, gpconnect.CreateAppointment, "fhir:rest:read:patient-1"} {
		var out bytes.Buffer
		root := newRootCmd(&out, &out)
		root.SetArgs([]string{"token", "--interaction", id})
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		tok := strings.TrimSuffix(out.String(), "\n")
		if strings.ContainsAny(tok, " \n") || !strings.HasSuffix(tok, ".") {
			t.Fatalf("output is not one unsigned token: %q", out.String())
		}
		if !strings.HasPrefix(id, "urn:") {
			id = gpconnect.URNPrefix + id
		}
		in, _ := gpconnect.Lookup(id)
		parsed, cerr := gpconnect.JWTPolicy{}.CheckAuthorization("Bearer "+tok, in, time.Now())
		if cerr != nil {
			t.Fatalf("%s: the printed token fails %s: %s", id, cerr.Claim, cerr.Reason)
		}
		if parsed.Claims.Audience != "https://localhost:9443/A20047/STU3/1/gpconnect" || parsed.Claims.Summary().ODSCode != "Y12345" {
			t.Errorf("defaults not from the registry: %+v", parsed.Claims.Summary())
		}
	}
}

func TestTokenFlagsSetClaims(t *testing.T) {
	var out bytes.Buffer
	root := newRootCmd(&out, &out)
	root.SetArgs([]string{"token", "--interaction", gpconnect.ReadPatient, "--aud", "https://other/X1/STU3/1/gpconnect",
		"--ods", "B1", "--sds-user-id", "UNK", "--scope", "patient/*.write", "--iat", "1700000000", "--lifetime", "600s"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	tok, cerr := gpconnect.ParseAuthorization("Bearer " + strings.TrimSpace(out.String()))
	if cerr != nil {
		t.Fatal(cerr)
	}
	c := tok.Claims
	if c.Audience != "https://other/X1/STU3/1/gpconnect" || c.RequestedScope != "patient/*.write" || c.IssuedAt != 1700000000 || c.ExpiresAt != 1700000600 {
		t.Errorf("claims not set by flags: %+v", c)
	}
	if s := c.Summary(); s.ODSCode != "B1" || s.SDSUserID != "UNK" {
		t.Errorf("summary %+v", s)
	}
	root = newRootCmd(&out, &out)
	root.SetArgs([]string{"token", "--interaction", "nope"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("an unknown interaction must be named: %v", err)
	}
}

// TestCheckConfigRefusesBadDesignatedError: a designated error patient
// whose status does not go with its code, whose code is no GP Connect
// provider code, or whose on names no interaction is refused, naming the
// practice, the patient and the problem; a good one passes.
func TestCheckConfigRefusesBadDesignatedError(t *testing.T) {
	practice := func(errs string) string {
		return `state_dir: ` + t.TempDir() + `
demonstrator:
  practices:
    - ods: B82617
      asid: "918999199177"
      name: Test Surgery
      seed:
        practitioners:
          - {sds_user_id: G44444446, family: OKONJO}
        locations:
          - {name: Main}
        schedules:
          - {practitioner: 1, location: 1, minutes: 15, service_type: GP}
        patients:
` + errs
	}
	bad := practice(`          - {nhs_number: "9690937618", family: A, gender: female, birth_date: "1971-02-01", error: {status: 404, code: NO_PATIENT_CONSENT}}
          - {nhs_number: "9690937626", family: B, gender: male, birth_date: "1971-02-02", error: {status: 500, code: NOT_A_CODE}}
          - {nhs_number: "9690937634", family: C, gender: male, birth_date: "1971-02-03", error: {status: 403, code: ACCESS_DENIED, on: [booking]}}
`)
	var out bytes.Buffer
	root := newRootCmd(&out, &out)
	root.SetArgs([]string{"check-config", "--config", writeFile(t, "bad.yaml", bad)})
	if err := root.Execute(); !errors.Is(err, errReported) {
		t.Fatalf("check-config returned %v, want the problems reported (exit 1)\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"(B82617): seed: patient 1 (9690937618): error status 404 does not go with code NO_PATIENT_CONSENT, which GP Connect answers with 403",
		`patient 2 (9690937626): error code "NOT_A_CODE" is not a GP Connect provider error code`,
		`patient 3 (9690937634): error on: unknown interaction or group "booking"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("check-config output does not say %q:\n%s", want, text)
		}
	}

	good := practice(`          - {nhs_number: "9690937618", family: A, gender: female, birth_date: "1971-02-01", error: {status: 403, code: NO_PATIENT_CONSENT}}
          - {nhs_number: "9690937634", family: C, gender: male, birth_date: "1971-02-03", error: {status: 403, code: ACCESS_DENIED, on: [urn:nhs:names:services:gpconnect:fhir:rest:create:appointment-1]}}
`)
	out.Reset()
	root = newRootCmd(&out, &out)
	root.SetArgs([]string{"check-config", "--config", writeFile(t, "good.yaml", good)})
	_ = root.Execute()
	if strings.Contains(out.String(), "seed: patient") {
		t.Errorf("check-config refuses good designated errors:\n%s", out.String())
	}
}

// TestRegistrySectionStrict checks that the registry: section of a config
// file is read by the registry's own decoder: an unknown key is named with
// its line and system, once, and a list the file leaves out keeps the
// default's, as viper's merge did.
func TestRegistrySectionStrict(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, "c.yaml", "state_dir: "+dir+`
registry:
  systems:
    - asid: "200000000359"
      name: C
      fdqn: c.example
`)
	_, err := loadConfig(viper.New(), file, nil)
	want := `config file ` + file + `: registry: line 6: unknown key "fdqn" in system 1 (asid "200000000359")`
	if err == nil || !strings.Contains(err.Error(), want) || strings.Count(err.Error(), "fdqn") != 1 {
		t.Fatalf("err = %v\nwant it to name, once: %s", err, want)
	}

	file = writeFile(t, "d.yaml", "state_dir: "+dir+`
registry:
  systems:
    - {asid: "200000000359", name: C, ods: Y12345, fqdn: c.example, sends: [foundations]}
`)
	c, err := loadConfig(viper.New(), file, nil)
	if err != nil {
		t.Fatal(err)
	}
	def, err := loadConfig(viper.New(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Registry.Systems) != 1 || c.Registry.Systems[0].Name != "C" {
		t.Errorf("systems = %+v, want the file's one", c.Registry.Systems)
	}
	if !slices.EqualFunc(c.Registry.Agreements, def.Registry.Agreements, func(a, b agreements.AgreementConfig) bool {
		return a.From == b.From && a.To == b.To && slices.Equal(a.Interactions, b.Interactions)
	}) || len(def.Registry.Agreements) == 0 {
		t.Errorf("agreements = %+v, want the defaults %+v", c.Registry.Agreements, def.Registry.Agreements)
	}
}
