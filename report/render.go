package report

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html/template"
	"io"
	"strings"
)

// Formats are the output formats of Write.
var Formats = []string{"html", "json", "junit"}

// Write renders rep in format (html, json or junit).
func Write(w io.Writer, rep *Report, format string) error {
	switch format {
	case "html":
		return page.Execute(w, rep)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case "junit":
		return writeJUnit(w, rep)
	}
	return fmt.Errorf("--format %q: want one of %s", format, strings.Join(Formats, ", "))
}

// The JUnit XML shape read by Jenkins, GitLab and the Ant schema: a
// testsuite per group, a testcase per test ID, <failure> for not met,
// <skipped> for not exercised.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Hostname   string          `xml:"hostname,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  string          `xml:"system-out"`
	SystemErr  string          `xml:"system-err"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

func writeJUnit(w io.Writer, rep *Report) error {
	out := junitSuites{Name: "sspemu consumer assurance (GP Connect " + rep.SpecVersion + ")"}
	idx := map[string]int{}
	for _, r := range rep.Results {
		i, ok := idx[r.Group]
		if !ok {
			i = len(out.Suites)
			idx[r.Group] = i
			out.Suites = append(out.Suites, junitSuite{
				Name: r.Group, Time: "0", Timestamp: rep.Generated.Format("2006-01-02T15:04:05"), Hostname: "sspemu",
				Properties: []junitProperty{
					{"sspemu_version", rep.Sspemu}, {"spec_version", rep.SpecVersion},
					{"consumer_asid", rep.Consumer}, {"config_sha256", rep.Config.SHA256}, {"config_source", rep.Config.Source},
					{"audit_anchor", rep.Range.Anchor},
				},
			})
		}
		s := &out.Suites[i]
		c := junitCase{Name: r.ID + ": " + r.Title, Classname: "sspemu." + strings.ReplaceAll(r.Group, " ", ""), Time: "0"}
		var b strings.Builder
		fmt.Fprintf(&b, "SCAL: %s\n%s\n", scal(r.SCAL), r.Why)
		for _, e := range r.Evidence {
			role := "shows it"
			if e.Counter {
				role = "against it"
			}
			fmt.Fprintf(&b, "- seq %d, trace %s, %s (%s):\n", e.Seq, e.TraceID, e.Time.Format("2006-01-02T15:04:05.000Z"), role)
			for _, ch := range e.Checked {
				fmt.Fprintf(&b, "    %s\n", ch)
			}
		}
		if r.CannotProve != "" {
			fmt.Fprintf(&b, "Cannot be shown locally: %s\n", r.CannotProve)
		}
		if r.Note != "" {
			fmt.Fprintf(&b, "Note: %s\n", r.Note)
		}
		switch r.Result {
		case NotMet:
			c.Failure = &junitMessage{Message: r.Why, Type: "not met", Text: b.String()}
			s.Failures++
			out.Failures++
		case NotExercised:
			c.Skipped = &junitMessage{Message: "not exercised: " + r.Why}
			c.SystemOut = b.String()
			s.Skipped++
			out.Skipped++
		default:
			c.SystemOut = b.String()
		}
		s.Tests++
		out.Tests++
		s.Cases = append(s.Cases, c)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func scal(ids []string) string {
	if len(ids) == 0 {
		return "—"
	}
	return strings.Join(ids, ", ")
}

// page is one self-contained, print-friendly HTML page: no scripts, no
// external styles, fonts or images.
var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"scal": scal,
	"ts":   func(t interface{ Format(string) string }) string { return t.Format("2006-01-02 15:04:05.000Z") },
	"cls":  func(s string) string { return strings.ReplaceAll(s, " ", "-") },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>sspemu consumer assurance evidence: ASID {{.Consumer}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#111}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #999}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #bbb;padding:.3em .5em;vertical-align:top;text-align:left}
th{background:#eee}code{font-size:.9em;word-break:break-all}
.met{background:#dff0d8}.not-met{background:#f2dede}.not-exercised{background:#f5f5f5}
ul.ev{margin:.3em 0;padding-left:1.2em}.counter{color:#a00}.small{font-size:.9em;color:#444}
@media print{body{margin:0;font-size:11px}h2{page-break-after:avoid}tr{page-break-inside:avoid}th{background:none}}
</style>
</head>
<body>
<h1>Consumer assurance evidence: ASID {{.Consumer}}</h1>
<table>
<tr><th>sspemu version</th><td>{{.Sspemu}}</td></tr>
<tr><th>GP Connect specification</th><td>{{.SpecVersion}}</td></tr>
<tr><th>Configuration</th><td>SHA-256 <code>{{.Config.SHA256}}</code> ({{.Config.Source}})</td></tr>
<tr><th>Audit range</th><td>{{if .Range.Since}}since {{ts .Range.Since}} {{end}}{{if .Range.Until}}until {{ts .Range.Until}} {{end}}— {{.Range.Records}} record(s), seq {{.Range.FirstSeq}}..{{.Range.LastSeq}}{{if .Range.FirstTime}}, {{ts .Range.FirstTime}} to {{ts .Range.LastTime}}{{end}}</td></tr>
<tr><th>Chain anchor</th><td>hash of the last record covered: <code>{{.Range.Anchor}}</code><br><span class="small">whole chain: seq {{.Range.ChainLastSeq}}, head <code>{{.Range.ChainHead}}</code>, {{if .Range.ChainAnchored}}vouched for by the head file{{else}}no head file vouched for its end{{end}}; verified intact when this report was made</span></td></tr>
<tr><th>Generated</th><td>{{ts .Generated}}</td></tr>
<tr><th>Summary</th><td>{{.Summary.Met}} met, {{.Summary.NotMet}} not met, {{.Summary.NotExercised}} not exercised</td></tr>
</table>
{{range .Notes}}<p class="small">Note: {{.}}</p>{{end}}
{{$group := ""}}{{range .Results}}{{if ne .Group $group}}{{if ne $group ""}}</table>{{end}}{{$group = .Group}}
<h2>{{.Group}}</h2>
<table>
<tr><th>Test ID</th><th>SCAL</th><th>Result</th><th>What the audit shows</th></tr>{{end}}
<tr class="{{cls .Result}}"><td><b>{{.ID}}</b><br>{{.Title}}</td><td>{{scal .SCAL}}</td><td><b>{{.Result}}</b></td><td>{{.Why}}
{{if .Evidence}}<ul class="ev">{{range .Evidence}}<li{{if .Counter}} class="counter"{{end}}>{{if .Counter}}against: {{end}}seq {{.Seq}}, trace <code>{{.TraceID}}</code>, {{ts .Time}}<br><span class="small">{{range $i, $c := .Checked}}{{if $i}}<br>{{end}}{{$c}}{{end}}</span></li>{{end}}</ul>{{end}}
{{if .CannotProve}}<div class="small">Cannot be shown locally: {{.CannotProve}}</div>{{end}}{{if .Note}}<div class="small">Note: {{.Note}}</div>{{end}}</td></tr>{{end}}
</table>
<h2>What a local emulator cannot prove</h2>
<ul>{{range .CannotProve}}<li>{{.}}</li>{{end}}</ul>
<p class="small">Test IDs and SCAL IDs: nhsconnect/gpc-consumer-support consumer_tests (spine_integration.feature, foundations.feature) and the gpconnect-provider-testing wiki (Appointments). "—" where the sources give no SCAL ID.</p>
</body>
</html>
`))
