package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"sspemu/audit"
)

// Hostile strings a consumer controls and the audit keeps: a refusal's
// reason quotes what was sent, and header values are recorded as sent.
const (
	hostileReason = `Ssp-TraceID "<script>alert('reason')</script>" is not a UUID`
	hostileAccept = `application/fhir+json"><script>alert("accept")</script><img src=x onerror=alert(1)>`
	hostileTrace  = `</code><script>alert('trace')</script>`
)

// hostileReport is a report evaluated over calls carrying hostile
// strings, with at least one result of each kind.
func hostileReport(t *testing.T) *Report {
	t.Helper()
	refusal := rc(refused("ssp-headers", 400), func(r *audit.Record) {
		r.Reason, r.TraceID, r.Accept = hostileReason, hostileTrace, ptr(hostileAccept)
	})
	failedJWT := rc(refused("jwt", 400), func(r *audit.Record) {
		r.TraceID = "t-jwt"
		r.Claims = []audit.ClaimVerdict{{Claim: "exp", Verdict: "failed", Reason: "<b>expired</b> & gone"}}
	})
	good := rc()
	good.seq = 3
	rep := &Report{
		Generated: t0, Sspemu: "v0.0.0-test", SpecVersion: SpecVersion,
		Config:   Config{SHA256: strings.Repeat("ab", 32), Source: `/etc/<script>x</script>.yaml`},
		Consumer: asidA, CannotProve: CannotProve(),
		Notes: []string{"a note with <script>alert('note')</script>"},
	}
	ft, lt := t0, t0
	rep.Range = Range{Since: &ft, FirstSeq: 1, LastSeq: 3, Records: 3, FirstTime: &ft, LastTime: &lt, Anchor: strings.Repeat("cd", 32),
		ChainLastSeq: 9, ChainHead: strings.Repeat("ef", 32), ChainAnchored: true, OldRecords: 0}
	for _, tt := range Catalogue() {
		rep.add(evaluate(tt, []*call{refusal, failedJWT, good}))
	}
	if rep.Summary.Met == 0 || rep.Summary.NotMet == 0 || rep.Summary.NotExercised == 0 {
		t.Fatalf("the sample report lacks a kind of result: %+v", rep.Summary)
	}
	return rep
}

func render(t *testing.T, rep *Report, format string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, rep, format); err != nil {
		t.Fatalf("Write %s: %v", format, err)
	}
	return b.Bytes()
}

func TestHTMLSelfContainedAndEscaped(t *testing.T) {
	rep := hostileReport(t)
	page := string(render(t, rep, "html"))
	// Nothing loads from elsewhere and nothing runs. Escaped text holds no
	// "<", so every "<" opens a tag the template wrote: only these
	// elements, with no attribute but lang, charset and class; the style
	// sheet pulls nothing in.
	allowed := map[string]bool{"!doctype": true, "html": true, "head": true, "meta": true, "title": true, "style": true, "body": true,
		"h1": true, "h2": true, "table": true, "tr": true, "th": true, "td": true, "code": true, "br": true, "span": true,
		"p": true, "b": true, "ul": true, "li": true, "div": true}
	for _, tag := range regexp.MustCompile(`<[^>]*>`).FindAllString(page, -1) {
		name := strings.ToLower(strings.TrimPrefix(strings.Fields(strings.Trim(tag, "<>/"))[0], "/"))
		if !allowed[name] {
			t.Errorf("HTML has element %s", tag)
		}
		for _, attr := range regexp.MustCompile(`\s([a-zA-Z-]+)=`).FindAllStringSubmatch(tag, -1) {
			if a := attr[1]; a != "lang" && a != "charset" && a != "class" {
				t.Errorf("HTML tag %s has attribute %s", tag, a)
			}
		}
	}
	style := page[strings.Index(page, "<style>"):strings.Index(page, "</style>")]
	for _, bad := range []string{"url(", "@import", "@font-face", "//"} {
		if strings.Contains(style, bad) {
			t.Errorf("the style sheet holds %q", bad)
		}
	}
	// The hostile strings are there, escaped.
	for _, want := range []string{
		"&lt;script&gt;alert(&#39;reason&#39;)&lt;/script&gt;",
		"&lt;script&gt;alert(\\&#34;accept\\&#34;)&lt;/script&gt;",
		"&lt;/code&gt;&lt;script&gt;alert(&#39;trace&#39;)&lt;/script&gt;",
		"&lt;script&gt;alert(&#39;note&#39;)&lt;/script&gt;",
		"/etc/&lt;script&gt;x&lt;/script&gt;.yaml",
		"&lt;b&gt;expired&lt;/b&gt; &amp; gone",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML lacks the escaped %q", want)
		}
	}
	// One row per test ID, each with its result class.
	if n := strings.Count(page, `<tr class="`); n != len(rep.Results) {
		t.Errorf("%d result rows, want %d", n, len(rep.Results))
	}
	for _, r := range rep.Results {
		if !strings.Contains(page, "<b>"+r.ID+"</b>") {
			t.Errorf("no row for %s", r.ID)
		}
	}
	if !strings.Contains(page, rep.Range.Anchor) || !strings.Contains(page, "vouched for by the head file") {
		t.Error("HTML lacks the chain anchor")
	}
}

func TestJSONRoundTrip(t *testing.T) {
	rep := hostileReport(t)
	b := render(t, rep, "json")
	var got Report
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("the JSON does not decode into Report: %v", err)
	}
	if !reflect.DeepEqual(&got, rep) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(rep)
		t.Fatalf("round trip differs:\n got %s\nwant %s", g, w)
	}
	// The documented top-level members, by name.
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"generated", "sspemu_version", "spec_version", "config", "consumer_asid", "range", "summary", "results", "cannot_prove", "notes"} {
		if _, ok := top[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	if bytes.Contains(b, []byte("<script>")) {
		t.Error("JSON holds a raw <script> (encoding/json escapes < and > as \\u003c)")
	}
}

func TestJUnitValidates(t *testing.T) {
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		t.Fatal("xmllint is needed to validate the JUnit XML against testdata/junit.xsd: apt-get install libxml2-utils")
	}
	rep := hostileReport(t)
	b := render(t, rep, "junit")
	path := filepath.Join(t.TempDir(), "junit.xml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(xmllint, "--noout", "--schema", filepath.Join("testdata", "junit.xsd"), path).CombinedOutput(); err != nil {
		t.Fatalf("xmllint --schema testdata/junit.xsd: %v\n%s", err, out)
	}
	if bytes.Contains(b, []byte("<script>")) {
		t.Error("JUnit holds a raw <script>")
	}
	var got junitSuites
	if err := xml.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Tests != len(rep.Results) || got.Failures != rep.Summary.NotMet || got.Skipped != rep.Summary.NotExercised {
		t.Errorf("tests %d failures %d skipped %d; want %d %d %d", got.Tests, got.Failures, got.Skipped, len(rep.Results), rep.Summary.NotMet, rep.Summary.NotExercised)
	}
	groups := []string{GroupSpine, GroupFoundations, GroupAppointments}
	if len(got.Suites) != len(groups) {
		t.Fatalf("%d suites, want %d", len(got.Suites), len(groups))
	}
	byID := map[string]Result{}
	for _, r := range rep.Results {
		byID[r.ID] = r
	}
	var text strings.Builder
	for i, s := range got.Suites {
		if s.Name != groups[i] || s.Tests != len(s.Cases) {
			t.Errorf("suite %d: %q with %d tests and %d cases", i, s.Name, s.Tests, len(s.Cases))
		}
		var failures, skipped int
		for _, c := range s.Cases {
			if c.Failure != nil {
				failures++
				if c.Failure.Text == "" || !strings.HasPrefix(c.Failure.Text, "SCAL: ") || !strings.Contains(c.Failure.Text, "- seq ") {
					t.Errorf("%s: the failure holds no SCAL IDs and evidence: %q", c.Name, c.Failure.Text)
				}
			}
			if c.Skipped != nil {
				skipped++
			}
			id, _, _ := strings.Cut(c.Name, ": ")
			r := byID[id]
			switch {
			case r.Result == NotMet && c.Failure == nil, r.Result == NotExercised && c.Skipped == nil,
				r.Result == Met && (c.Failure != nil || c.Skipped != nil):
				t.Errorf("%s is %s but its case is %+v", id, r.Result, c)
			}
			text.WriteString(c.SystemOut)
			if c.Failure != nil {
				text.WriteString(c.Failure.Text)
			}
		}
		if s.Failures != failures || s.Skipped != skipped || s.Errors != 0 {
			t.Errorf("suite %q: failures %d skipped %d errors %d; its cases have %d and %d", s.Name, s.Failures, s.Skipped, s.Errors, failures, skipped)
		}
	}
	// The hostile reason comes back intact once decoded: escaped, not lost.
	if !strings.Contains(text.String(), hostileReason) {
		t.Error("the refusal's reason is not in the JUnit text")
	}
}

func TestWriteUnknownFormat(t *testing.T) {
	err := Write(&bytes.Buffer{}, &Report{}, "pdf")
	if err == nil || !strings.Contains(err.Error(), `"pdf"`) || !strings.Contains(err.Error(), "html, json, junit") {
		t.Fatalf("err %v", err)
	}
}
