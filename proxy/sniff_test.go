package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"

	"sspemu/audit"
	"sspemu/gpconnect"
)

func gz(t testing.TB, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

const (
	ooJSON = `{"resourceType":"OperationOutcome","meta":{"profile":["https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-OperationOutcome-1"]},` +
		`"issue":[{"severity":"error","code":"invalid","details":{"coding":[{"system":"https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1",` +
		`"code":"INVALID_RESOURCE","display":"Invalid validation of resource"}]},"diagnostics":"x"},` +
		`{"severity":"error","code":"conflict","details":{"coding":[{"code":"DUPLICATE_REJECTED"}]}}]}`
	ooXML = `<?xml version="1.0" encoding="UTF-8"?><OperationOutcome xmlns="http://hl7.org/fhir"><meta><profile value="x"/></meta>` +
		`<issue><severity value="error"/><code value="not-found"/><details><coding><system value="https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1"/>` +
		`<code value="PATIENT_NOT_FOUND"/><display value="Patient not found"/></coding></details></issue>` +
		`<issue><severity value="error"/><code value="invalid"/><details><coding><code value="SECOND"/></coding></details></issue></OperationOutcome>`
	bundleJSON = `{"resourceType":"Bundle","type":"searchset","entry":[` +
		`{"fullUrl":"a","resource":{"resourceType":"Slot","id":"1"},"search":{"mode":"match"}},` +
		`{"resource":{"resourceType":"Slot","id":"2"}},{"resource":{"resourceType":"Schedule","id":"3"},"search":{"mode":"include"}}]}`
	bundleXML = `<Bundle xmlns="http://hl7.org/fhir"><type value="searchset"/><entry><fullUrl value="a"/><resource><Patient><id value="1"/>` +
		`<identifier><value value="9690937286"/></identifier></Patient></resource></entry></Bundle>`
)

// TestSniffAnswer reads the provider answers the transaction record
// describes: an OperationOutcome's code in JSON and XML, plain and gzip,
// and a searchset's entries; anything cut short, not FHIR, or of another
// kind gives nothing rather than a guess.
func TestSniffAnswer(t *testing.T) {
	big := `{"resourceType":"Bundle","type":"searchset","entry":[` + strings.Repeat(`{"resource":{"resourceType":"Slot"}},`, 3000) + `{}]}`
	many := `{"resourceType":"Bundle","type":"searchset","entry":[`
	for i := range 30 {
		many += fmt.Sprintf(`{"resource":{"resourceType":"T%02d"}},`, i)
	}
	many += `{}]}`
	manyTypes := map[string]int{"other": 11} // T20 to T29 and the entry without a resource
	for i := range 20 {
		manyTypes[fmt.Sprintf("T%02d", i)] = 1
	}
	for _, tc := range []struct {
		name, body, ct, enc string
		truncated           bool
		want                sniffed
	}{
		{"json outcome", ooJSON, "application/fhir+json;charset=utf-8", "", false, sniffed{code: "INVALID_RESOURCE", issueCode: "invalid"}},
		{"xml outcome", ooXML, "application/fhir+xml", "", false, sniffed{code: "PATIENT_NOT_FOUND", issueCode: "not-found"}},
		{"xml outcome without a content type", "\n  " + ooXML, "", "", false, sniffed{code: "PATIENT_NOT_FOUND", issueCode: "not-found"}},
		{"gzip json outcome", gz(t, ooJSON), "application/fhir+json", "gzip", false, sniffed{code: "INVALID_RESOURCE", issueCode: "invalid"}},
		{"gzip xml outcome", gz(t, ooXML), "application/fhir+xml", "gzip", false, sniffed{code: "PATIENT_NOT_FOUND", issueCode: "not-found"}},
		{"gzip cut short", gz(t, ooJSON)[:40], "application/fhir+json", "gzip", true, sniffed{}},
		{"gzip that is not", ooJSON, "application/fhir+json", "gzip", false, sniffed{}},
		{"outcome without details", `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing"}]}`, "application/json", "", false, sniffed{issueCode: "processing"}},
		{"json searchset", bundleJSON, "application/fhir+json", "", false, sniffed{counted: true, entries: 3, types: map[string]int{"Slot": 2, "Schedule": 1}}},
		{"empty searchset", `{"resourceType":"Bundle","type":"searchset","total":0}`, "application/fhir+json", "", false, sniffed{counted: true}},
		{"xml searchset", bundleXML, "application/fhir+xml", "", false, sniffed{counted: true, entries: 1, types: map[string]int{"Patient": 1}}},
		{"gzip searchset", gz(t, bundleJSON), "application/fhir+json", "gzip", false, sniffed{counted: true, entries: 3, types: map[string]int{"Slot": 2, "Schedule": 1}}},
		{"searchset copy cut short", bundleJSON[:len(bundleJSON)-1], "application/fhir+json", "", true, sniffed{}},
		{"searchset inflating past the bound", gz(t, big), "application/fhir+json", "gzip", false, sniffed{}},
		{"types bounded", many, "application/fhir+json", "", false, sniffed{counted: true, entries: 31, types: manyTypes}},
		{"a collection is not counted", `{"resourceType":"Bundle","type":"collection","entry":[{}]}`, "application/fhir+json", "", false, sniffed{}},
		{"html error page", "<html><body>502 Bad Gateway</body></html>", "text/html", "", false, sniffed{}},
		{"not json", "Internal Server Error", "text/plain", "", false, sniffed{}},
		{"wrong types", `{"resourceType":"OperationOutcome","issue":[{"code":5}]}`, "application/fhir+json", "", false, sniffed{}},
		{"empty", "", "", "", false, sniffed{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := sniffAnswer([]byte(tc.body), tc.truncated, tc.ct, tc.enc)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("sniffAnswer = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// FuzzSniffAnswer feeds arbitrary provider bytes to the sniff: it must
// return (never panic, never loop) and keep what it reports bounded.
func FuzzSniffAnswer(f *testing.F) {
	for _, s := range []string{ooJSON, ooXML, bundleJSON, bundleXML, gz(f, ooJSON), gz(f, bundleXML), "", "<", "{", "\x1f\x8b"} {
		f.Add([]byte(s), false, "application/fhir+json", "")
		f.Add([]byte(s), true, "application/fhir+xml", "gzip")
	}
	f.Fuzz(func(t *testing.T, body []byte, truncated bool, ct, enc string) {
		got := sniffAnswer(body, truncated, ct, enc)
		if len(got.code) > 64 || len(got.issueCode) > 64 || len(got.types) > 21 {
			t.Fatalf("unbounded: %+v", got)
		}
		if !got.counted && (got.entries != 0 || got.types != nil) {
			t.Fatalf("entries without a count: %+v", got)
		}
		if truncated && got.counted {
			t.Fatalf("a cut copy was counted: %+v", got)
		}
	})
}

// TestTransactionFacts sends requests through a running SSP to a provider
// that answers an error (gzip, streamed in pieces), an XML error and
// searchsets, and checks the consumer gets the bytes unchanged and as
// they come, and that each transaction record names its audit record and
// carries the answer's facts.
func TestTransactionFacts(t *testing.T) {
	gzOutcome := gz(t, ooJSON)
	big := `{"resourceType":"Bundle","type":"searchset","entry":[` + strings.Repeat(`{"resource":{"resourceType":"Slot"}},`, 3000) + `{}]}`
	first, release := make(chan struct{}), make(chan struct{})
	p := startProvider(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/Appointment"):
			w.Header().Set("Content-Type", "application/fhir+json;charset=utf-8")
			w.Header().Set("Content-Encoding", "gzip")
			w.WriteHeader(http.StatusConflict)
			half := len(gzOutcome) / 2
			w.Write([]byte(gzOutcome[:half]))
			w.(http.Flusher).Flush()
			close(first)
			<-release
			w.Write([]byte(gzOutcome[half:]))
		case strings.HasPrefix(r.URL.Path, "/A20047/STU3/1/gpconnect/Patient/"):
			w.Header().Set("Content-Type", "application/fhir+xml;charset=utf-8")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(ooXML))
		case strings.HasSuffix(r.URL.Path, "/Slot"):
			w.Header().Set("Content-Type", "application/fhir+json;charset=utf-8")
			w.Write([]byte(big))
		default:
			w.Header().Set("Content-Type", "application/fhir+json;charset=utf-8")
			w.Write([]byte(bundleJSON))
		}
	}))
	s := startSSP(t, testConfig(), registry(p.root))
	c := consumerClient(t)
	send := func(id, method, rel, body string) (string, *http.Response) {
		t.Helper()
		in := mustLookup(t, id)
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, s.base+"/"+p.root+rel, rd)
		req.Header = validHeaders(in, p.root)
		if body != "" {
			req.Header.Set("Content-Type", gpconnect.MIMEJSON)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return req.Header.Get("Ssp-TraceID"), resp
	}

	book, resp := send(gpconnect.CreateAppointment, "POST", "/Appointment", `{"resourceType":"Appointment"}`)
	half := make([]byte, len(gzOutcome)/2)
	if _, err := io.ReadFull(resp.Body, half); err != nil || string(half) != gzOutcome[:len(half)] {
		t.Fatalf("the first piece of the error was not streamed before the provider finished: %v", err)
	}
	<-first
	close(release)
	rest, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 409 || string(half)+string(rest) != gzOutcome || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("answer changed on the way: %d %q", resp.StatusCode, resp.Header)
	}
	notFound, resp := send(gpconnect.ReadPatient, "GET", "/Patient/7", "")
	if b := readBody(t, resp); resp.StatusCode != 404 || b != ooXML {
		t.Fatalf("XML error changed: %d %q", resp.StatusCode, b)
	}
	found, resp := send(gpconnect.SearchPatient, "GET", "/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C9690937286", "")
	if b := readBody(t, resp); b != bundleJSON {
		t.Fatalf("searchset changed: %q", b)
	}
	slots, resp := send(gpconnect.SearchSlot, "GET", "/Slot?start=ge2025-01-06&end=le2025-01-13&status=free&_include=Slot:schedule", "")
	if b := readBody(t, resp); b != big {
		t.Fatalf("large searchset changed: %d bytes", len(b))
	}
	read, resp := send(gpconnect.ReadMetadata, "GET", "/metadata", "")
	readBody(t, resp)

	seqs := auditSeqs(t, s)
	three := func(n int) *int { return &n }
	for _, tc := range []struct {
		name, trace string
		want        audit.Transaction
	}{
		{"gzip conflict", book, audit.Transaction{Status: 409, RespContentType: "application/fhir+json;charset=utf-8", RespContentEncoding: "gzip",
			ProviderCode: "INVALID_RESOURCE", ProviderIssueCode: "invalid"}},
		{"xml not found", notFound, audit.Transaction{Status: 404, RespContentType: "application/fhir+xml;charset=utf-8",
			ProviderCode: "PATIENT_NOT_FOUND", ProviderIssueCode: "not-found"}},
		{"searchset", found, audit.Transaction{Status: 200, RespContentType: "application/fhir+json;charset=utf-8",
			Entries: three(3), EntryTypes: map[string]int{"Slot": 2, "Schedule": 1}}},
		{"searchset too large to count", slots, audit.Transaction{Status: 200, RespContentType: "application/fhir+json;charset=utf-8"}},
		{"a read is not sniffed", read, audit.Transaction{Status: 200, RespContentType: "application/fhir+json;charset=utf-8"}},
	} {
		tx := waitTransaction(t, s, tc.trace)
		got := audit.Transaction{Status: tx.Status, RespContentType: tx.RespContentType, RespContentEncoding: tx.RespContentEncoding,
			ProviderCode: tx.ProviderCode, ProviderIssueCode: tx.ProviderIssueCode, Entries: tx.Entries, EntryTypes: tx.EntryTypes}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: transaction facts %+v, want %+v", tc.name, got, tc.want)
		}
		if tx.AuditSeq == 0 || tx.AuditSeq != seqs[tc.trace] {
			t.Errorf("%s: audit_seq %d, the audit record of %s is seq %d", tc.name, tx.AuditSeq, tc.trace, seqs[tc.trace])
		}
	}
}

// auditSeqs maps each trace ID in the SSP's audit chain to its record's
// seq.
func auditSeqs(t *testing.T, s *ssp) map[string]uint64 {
	t.Helper()
	files, err := audit.ChainFiles(s.dir, audit.AuditChain)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var l struct {
				Seq     uint64 `json:"seq"`
				TraceID string `json:"trace_id"`
			}
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				out[l.TraceID] = l.Seq
			}
		}
		f.Close()
	}
	return out
}

// BenchmarkSniffAnswer measures what the transaction record costs a
// provider's error (an OperationOutcome, plain and gzip) and a search
// answer (a searchset of 40 slots with their schedule, about 10 KB). It
// runs after the answer is written; a read, the common case, is not
// sniffed at all.
func BenchmarkSniffAnswer(b *testing.B) {
	slots := `{"resourceType":"Bundle","type":"searchset","entry":[`
	for i := range 40 {
		slots += fmt.Sprintf(`{"fullUrl":"https://localhost/A20047/STU3/1/gpconnect/Slot/%d","resource":{"resourceType":"Slot","id":"%d",`+
			`"meta":{"profile":["https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-Slot-1"]},"schedule":{"reference":"Schedule/1"},`+
			`"status":"free","start":"2025-01-06T09:00:00+00:00","end":"2025-01-06T09:10:00+00:00"},"search":{"mode":"match"}},`, i, i)
	}
	slots += `{"resource":{"resourceType":"Schedule","id":"1"},"search":{"mode":"include"}}]}`
	for _, bc := range []struct{ name, body, enc string }{
		{"outcome", ooJSON, ""},
		{"outcome-gzip", gz(b, ooJSON), "gzip"},
		{"outcome-xml", ooXML, ""},
		{"searchset-10KB", slots, ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.body)))
			for b.Loop() {
				sniffAnswer([]byte(bc.body), false, "", bc.enc)
			}
		})
	}
}

// FuzzScanSearchset holds the searchset scanner to encoding/json: whatever
// decodeJSON counts, scanSearchset counts the same, and whatever both
// accept they count alike. (The scanner may count a searchset whose other
// members encoding/json would refuse: a provider's malformed answer.)
func FuzzScanSearchset(f *testing.F) {
	for _, s := range []string{bundleJSON, ooJSON, `{"resourceType":"Bundle","type":"searchset"}`,
		`{"resourceType":"Bundle","type":"searchset","entry":null}`, `{"resourceType":"Bundle","type":"searchset","entry":[null,{"resource":null}]}`,
		`{"RESOURCETYPE":"Bundle","Type":"searchset","entry":[{"resource":{"resourceType":"Sl\u006ft"}}],"entry":[]}`,
		`{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"\xff"}}]}`,
		`{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"A"}}],"entry":[{}]}`,
		` {"resourceType" : "Bundle" , "type":"searchset","x":[1,{"a":"]"}],"entry":[ {"resource":{"id":"1","resourceType":"Slot"}} ]} `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		want, werr := decodeJSON(body)
		got, err := sniffJSON(body)
		if werr == nil && want.counted && (err != nil || !reflect.DeepEqual(got, want)) {
			t.Fatalf("sniffJSON %+v (%v), encoding/json %+v", got, err, want)
		}
		if fast, ok := scanSearchset(body); ok && (!fast.counted || werr == nil && !reflect.DeepEqual(fast, want)) {
			t.Fatalf("scanner %+v, encoding/json %+v (%v)", fast, want, werr)
		}
	})
}
