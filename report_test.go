package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"sspemu/audit"
	"sspemu/gpconnect"
	"sspemu/report"
)

// reportCall sends one request through the SSP as the default consumer:
// hdr sets headers (a value of "-" leaves the header out) over the usual
// ones; it returns the trace ID and the status.
func (f *faultStack) reportCall(method, rel, interaction, trace string, hdr map[string]string, token string) int {
	f.t.Helper()
	in, _ := gpconnect.Lookup(interaction)
	req, err := http.NewRequest(method, "https://"+f.c.ssp+"/"+f.root+rel, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if token == "" {
		token = gpconnect.DefaultTokenSpec(in, f.root, time.Now()).Encode()
	}
	base := map[string]string{
		"Ssp-TraceID": trace, "Ssp-From": "200000000359", "Ssp-To": f.asid, "Ssp-InteractionID": interaction,
		"Authorization": "Bearer " + token, "Accept": gpconnect.MIMEJSON,
	}
	for k, v := range hdr {
		base[k] = v
	}
	for k, v := range base {
		if v != "-" {
			req.Header.Set(k, v)
		}
	}
	resp, err := f.c.http.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, rel, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	f.transaction(trace) // the transaction record is queued after the answer
	return resp.StatusCode
}

// TestReportFromRealSession runs a consumer session through the real SSP
// over mutual TLS (good calls, a content-type pair, _format without Accept,
// an expired JWT, a wrong Ssp-InteractionID, a provider 403 from a fault
// rule, a reused trace ID) and checks what `sspemu report` makes of the
// SSP's audit in JSON, HTML and JUnit (the JUnit checked by xmllint
// against the Jenkins JUnit schema); then edits one record and checks the
// report refuses, naming it.
func TestReportFromRealSession(t *testing.T) {
	f := startFaultStack(t)
	ok := map[string]string{}
	call := func(name string, want int, method, rel, ia string, hdr map[string]string, token string) {
		t.Helper()
		trace := uuid.NewString()
		if got := f.reportCall(method, rel, ia, trace, hdr, token); got != want {
			t.Fatalf("%s: status %d, want %d", name, got, want)
		}
		ok[name] = trace
	}
	call("good", 200, "GET", "/metadata", gpconnect.ReadMetadata, nil, "")
	call("xml-in-json-out", 200, "GET", "/metadata", gpconnect.ReadMetadata, map[string]string{"Content-Type": gpconnect.MIMEXML}, "")
	call("format-no-accept", 200, "GET", "/metadata?_format=application/fhir%2Bjson", gpconnect.ReadMetadata, map[string]string{"Accept": "-"}, "")
	call("gzip", 200, "GET", "/metadata", gpconnect.ReadMetadata, map[string]string{"Accept-Encoding": "gzip"}, "")
	in, _ := gpconnect.Lookup(gpconnect.ReadMetadata)
	call("expired-jwt", 400, "GET", "/metadata", gpconnect.ReadMetadata, nil,
		gpconnect.DefaultTokenSpec(in, f.root, time.Now().Add(-2*time.Hour)).Encode())
	call("wrong-interaction", 400, "GET", "/metadata", gpconnect.ReadPatient, nil, "")
	f.addRule(`{"name":"consent","match":{"interaction":"` + gpconnect.SearchOrganization + `"},"at":"provider","status":403,"code":"NO_PATIENT_CONSENT"}`)
	call("consent-403", 403, "GET", "/Organization?identifier=https://fhir.nhs.uk/Id/ods-organization-code%7CA20047", gpconnect.SearchOrganization, nil, "")

	dir := f.st.store.Dir()
	// JSON: the results and the calls that show them.
	files, rep, res := runReport(t, dir, "report")
	traces := func(r report.Result, counter bool) string {
		var s []string
		for _, e := range r.Evidence {
			if e.Counter == counter {
				s = append(s, e.TraceID+" "+strings.Join(e.Checked, " | "))
			}
		}
		return strings.Join(s, "\n")
	}
	for _, tc := range []struct {
		id, result string
		shows      []string // trace names among the exemplars
		against    []string // trace names among the counter-evidence
		checked    []string // text in the exemplars' checks
	}{
		{"GPC-SPN-TST-03", report.Met, []string{"good"}, nil, []string{"TLS 1.2", "client certificate"}},
		{"GPC-SPN-TST-04", report.Met, []string{"good"}, nil, []string{"TLS_ECDHE_"}},
		{"GPC-SPN-TST-05", report.Met, []string{"xml-in-json-out"}, nil, []string{`Content-Type "application/fhir+xml"`}},
		{"GPC-SPN-TST-06", report.Met, []string{"format-no-accept"}, nil, []string{"Accept (absent)"}},
		{"GPC-SPN-TST-07", report.Met, []string{"consent-403"}, nil, []string{"fault rule consent"}},
		{"GPC-SPN-TST-08", report.Met, []string{"good"}, nil, nil},
		{"GPC-SPN-TST-09", report.Met, nil, nil, nil},
		{"GPC-SPN-TST-10", report.NotMet, nil, []string{"expired-jwt"}, nil},
		{"GPC-SPN-TST-12", report.NotExercised, nil, nil, nil},
		{"GPC-SPN-TST-13", report.NotMet, nil, []string{"wrong-interaction"}, nil},
		{"GPC-SPN-TST-01", report.NotExercised, nil, nil, nil}, // no SDS lookup in this session: report_spine_test.go has them
		{"GPC-FOU-CAP-01/1", report.Met, []string{"good"}, nil, nil},
		// read-patient was sent once, on the wrong path: attempted, never answered with success.
		{"GPC-FOU-RPA-01/1", report.NotMet, nil, []string{"wrong-interaction"}, nil},
		{"GPC-AMUS-BPA-1/1", report.NotExercised, nil, nil, nil},
	} {
		r, found := res[tc.id]
		if !found {
			t.Fatalf("%s missing from the report", tc.id)
		}
		if r.Result != tc.result {
			t.Errorf("%s: %s (%s), want %s\n%s", tc.id, r.Result, r.Why, tc.result, traces(r, true))
			continue
		}
		for _, name := range tc.shows {
			if !strings.Contains(traces(r, false), ok[name]) {
				t.Errorf("%s: the %s call (%s) is not among its evidence:\n%s", tc.id, name, ok[name], traces(r, false))
			}
		}
		for _, name := range tc.against {
			if !strings.Contains(traces(r, true), ok[name]) {
				t.Errorf("%s: the %s call (%s) is not named against it:\n%s", tc.id, name, ok[name], traces(r, true))
			}
		}
		for _, c := range tc.checked {
			if !strings.Contains(traces(r, false), c) {
				t.Errorf("%s: evidence does not show %q:\n%s", tc.id, c, traces(r, false))
			}
		}
	}
	if !strings.Contains(traces(res["GPC-SPN-TST-10"], true), "iat failed") && !strings.Contains(traces(res["GPC-SPN-TST-10"], true), "exp failed") {
		t.Errorf("TST-10: the expired token's claim verdicts are not shown:\n%s", traces(res["GPC-SPN-TST-10"], true))
	}
	if rep.Consumer != "200000000359" || rep.SpecVersion != "1.2.7" || rep.Config.Source != "embedded default" || len(rep.Config.SHA256) != 64 ||
		len(rep.Range.Anchor) != 64 || rep.Range.Records != 7 || len(rep.CannotProve) == 0 {
		t.Errorf("report header: %+v %+v", rep.Config, rep.Range)
	}

	// HTML: one page, no external assets.
	h, err := os.ReadFile(files["html"])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<!DOCTYPE html>", "GPC-SPN-TST-03", ok["good"], "GPC-SSP04-05", "What a local emulator cannot prove", rep.Range.Anchor, "@media print"} {
		if !strings.Contains(string(h), want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "<link", "src=", "http://", "@import"} {
		if strings.Contains(string(h), bad) {
			t.Errorf("HTML has %q: it must stand alone", bad)
		}
	}

	// JUnit: valid for a JUnit consumer (xmllint against the Jenkins
	// schema), a failure for not met and a skip for not exercised.
	j := checkJUnit(t, files["junit"])
	for _, want := range []string{`<testsuite name="Spine Integration"`, `<testsuite name="Foundations"`, `<testsuite name="Appointment Management"`,
		`name="GPC-SPN-TST-13: Use Spine headers"`, `<failure message=`, `<skipped message="not exercised`} {
		if !strings.Contains(j, want) {
			t.Errorf("JUnit lacks %q", want)
		}
	}

	// Tampered: edit one record of the audit; the report names it.
	t.Run("tampered", func(t *testing.T) {
		tdir := t.TempDir()
		af, err := audit.ChainFiles(dir, audit.AuditChain)
		if err != nil || len(af) == 0 {
			t.Fatal(af, err)
		}
		for _, src := range append(af, filepath.Join(dir, "audit.head")) {
			data, err := os.ReadFile(src)
			if errors.Is(err, os.ErrNotExist) && filepath.Ext(src) == ".head" {
				continue // the live store had not written its head yet
			}
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Base(src) == filepath.Base(af[0]) {
				data = []byte(strings.Replace(string(data), `"status":400`, `"status":200`, 1))
			}
			if err := os.WriteFile(filepath.Join(tdir, filepath.Base(src)), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		_, err = run(t, "report", "--audit", tdir, "--format", "json")
		if !errors.Is(err, report.ErrTampered) || !strings.Contains(err.Error(), "edited") || !strings.Contains(err.Error(), "(seq ") {
			t.Fatalf("tampered audit: %v, want a refusal naming the edited record", err)
		}
	})
}

// runReport runs `sspemu report` over the audit in dir for the default
// consumer in each of formats (all three when none is named), into files
// named name.<format> (in REPORT_OUT_DIR when set, to look at them: the
// README excerpt), and returns the files, the JSON report and its results
// by test ID.
func runReport(t *testing.T, dir, name string, formats ...string) (map[string]string, report.Report, map[string]report.Result) {
	t.Helper()
	if len(formats) == 0 {
		formats = report.Formats
	}
	if !slices.Contains(formats, "json") {
		formats = append(formats, "json")
	}
	out := t.TempDir()
	if d := os.Getenv("REPORT_OUT_DIR"); d != "" {
		out = d
	}
	files := map[string]string{}
	for _, format := range formats {
		files[format] = filepath.Join(out, name+"."+format)
		if _, err := run(t, "report", "--audit", dir, "--from", "200000000359", "--format", format, "--out", files[format]); err != nil {
			t.Fatalf("report --format %s: %v", format, err)
		}
	}
	b, err := os.ReadFile(files["json"])
	if err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("JSON report: %v", err)
	}
	res := map[string]report.Result{}
	for _, r := range rep.Results {
		res[r.ID] = r
	}
	return files, rep, res
}

// checkJUnit holds a JUnit file to the Jenkins JUnit schema with xmllint,
// a real consumer of JUnit, and returns its text.
func checkJUnit(t *testing.T, file string) string {
	t.Helper()
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		t.Fatal("xmllint is needed to check the JUnit file: apt-get install libxml2-utils")
	}
	if o, err := exec.Command(xmllint, "--noout", "--schema", filepath.Join("report", "testdata", "junit.xsd"), file).CombinedOutput(); err != nil {
		t.Fatalf("xmllint --schema: %v\n%s", err, o)
	}
	j, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(j)
}

// TestReportFlags: malformed flags are named in the error.
func TestReportFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--audit", dir, "--format", "pdf"}, `--format "pdf": want one of html, json, junit`},
		{[]string{"--audit", dir, "--from", "12"}, `--from "12": an ASID is exactly 12 digits`},
		{[]string{"--audit", dir, "--since", "yesterday"}, `--since "yesterday": want RFC 3339`},
		{[]string{"--audit", dir, "--until", "2025-13-01"}, `--until "2025-13-01"`},
		{[]string{"--audit", dir, "--since", "2025-03-02", "--until", "2025-03-01"}, "--until 2025-03-01 is before --since 2025-03-02"},
		{[]string{"--audit", filepath.Join(dir, "none")}, "not a directory holding the audit"},
		{[]string{"--audit", dir}, "holds no audit-*.jsonl files"},
		{[]string{"--audit", dir, "--config", filepath.Join(dir, "missing.yaml")}, "--config " + filepath.Join(dir, "missing.yaml") + " cannot be read"},
		{[]string{"--audit", dir, "extra"}, `unknown command "extra"`},
	} {
		_, err := run(t, append([]string{"report"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("report %v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
