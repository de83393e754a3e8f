package gpconnect

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const fixedID = "5f1b7a52-0d6e-4c4b-9a51-2f1f0d8e6c3a"

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run go test -run %s -update to create it): %v", t.Name(), err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

// checkXML decodes the whole document, failing on anything not well formed.
func checkXML(t *testing.T, b []byte) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("XML not well formed: %v\n%s", err, b)
		}
	}
}

func TestSSPOutcomeGolden(t *testing.T) {
	tokens := map[int]string{
		400: "ENDPOINT_https://provider.example/A20047/STU3/1/gpconnect_CPAID_S20001A000002_VARIES_FROM_TARGETURL_https://provider.example/A20047/STU3/1/gpconnect/fhir/Patient/2?a=1&b=2",
		403: "ASID_CHECK_FAILED_MESSAGESENDER_200000000359",
		405: "",
		415: "Unsupported_Media_Type",
		502: "ERROR_COMMUNICATING_TO_ENDPOINT_URL_https://localhost:9443/A20047/STU3/1/gpconnect/metadata",
		504: "TIMEOUT_COMMUNICATING_TO_ENDPOINT_URL_https://localhost:9443/A20047/STU3/1/gpconnect/metadata",
	}
	for status, token := range tokens {
		o := SSPOutcome(status, token)
		o.ID = fixedID
		for _, f := range []Format{FormatJSON, FormatXML} {
			t.Run(fmt.Sprintf("%d_%s", status, f), func(t *testing.T) {
				b := o.Marshal(f)
				golden(t, fmt.Sprintf("ssp_%d.%s", status, f), b)
				if f == FormatXML {
					checkXML(t, b)
					return
				}
				var v struct {
					ResourceType string `json:"resourceType"`
					ID           string `json:"id"`
					Meta         any    `json:"meta"`
					Issue        []struct {
						Severity, Code, Diagnostics string
						Details                     struct {
							Coding []struct{ System, Code, Display string }
						}
					}
				}
				if err := json.Unmarshal(b, &v); err != nil {
					t.Fatal(err)
				}
				if v.ResourceType != "OperationOutcome" || v.ID != fixedID || v.Meta != nil || len(v.Issue) != 1 {
					t.Fatalf("wrong envelope: %+v", v)
				}
				is := v.Issue[0]
				if is.Details.Coding[0].Code != fmt.Sprint(status) {
					t.Errorf("coding code %q, want %d", is.Details.Coding[0].Code, status)
				}
				if status != 405 && (is.Diagnostics != token || is.Details.Coding[0].Display != token) {
					t.Errorf("display %q, diagnostics %q, want both %q", is.Details.Coding[0].Display, is.Diagnostics, token)
				}
			})
		}
	}
}

func TestSSPOutcomeIssueCodes(t *testing.T) {
	for _, tc := range []struct {
		status           int
		issue, sev, syst string
	}{
		{400, "invalid", "error", SSPCodingSystem},
		{403, "forbidden", "error", SSPCodingSystem},
		{405, "not-supported", "fatal", SpineCodingSystem},
		{415, "not-supported", "error", SSPCodingSystem},
		{502, "transient", "error", SSPCodingSystem},
		{504, "transient", "error", SSPCodingSystem},
	} {
		o := SSPOutcome(tc.status, "X")
		if o.IssueCode != tc.issue || o.Severity != tc.sev || o.System != tc.syst || o.Profile != "" {
			t.Errorf("SSPOutcome(%d) = %+v, want issue %s severity %s system %s", tc.status, o, tc.issue, tc.sev, tc.syst)
		}
	}
}

func TestProviderOutcomeGolden(t *testing.T) {
	for _, code := range slices.Sorted(maps.Keys(providerCodes)) {
		status := ProviderStatus(code)
		if status == 0 {
			t.Fatalf("no status for %s", code)
		}
		o := ProviderOutcome(status, code, "diagnostics for "+code+` with <, & and "quotes"`)
		o.ID = fixedID
		if o.Profile != OutcomeProfile || o.System != ProviderCodingSystem || o.Display == "" || o.Display == code {
			t.Errorf("ProviderOutcome(%s) = %+v", code, o)
		}
		for _, f := range []Format{FormatJSON, FormatXML} {
			t.Run(code+"_"+f.String(), func(t *testing.T) {
				b := o.Marshal(f)
				golden(t, "provider_"+code+"."+f.String(), b)
				if f == FormatXML {
					checkXML(t, b)
				} else if !json.Valid(b) {
					t.Fatalf("invalid JSON:\n%s", b)
				}
			})
		}
	}
}

func TestProviderOutcomeTable(t *testing.T) {
	for _, tc := range []struct {
		code, issue string
		status      int
	}{
		{CodeBadRequest, "invalid", 400},
		{CodeInvalidNHSNumber, "value", 400},
		{CodeAccessDenied, "forbidden", 403},
		{CodePatientNotFound, "not-found", 404},
		{CodeDuplicateRejected, "duplicate", 409},
		{CodeInvalidResource, "invalid", 422},
		{CodeInternalServerError, "exception", 500},
		{CodeNotImplemented, "not-supported", 501},
		{CodeUnsupportedMediaType, "not-supported", 415},
	} {
		if o := ProviderOutcome(tc.status, tc.code, ""); o.IssueCode != tc.issue {
			t.Errorf("%s: issue %q, want %q", tc.code, o.IssueCode, tc.issue)
		}
		if s := ProviderStatus(tc.code); s != tc.status {
			t.Errorf("%s: status %d, want %d", tc.code, s, tc.status)
		}
	}
	if o := ProviderOutcome(404, "SOMETHING_NEW", "x"); o.IssueCode != "not-found" || o.Display != "SOMETHING_NEW" {
		t.Errorf("unknown code: %+v", o)
	}
}

func TestMarshalMakesIDs(t *testing.T) {
	o := SSPOutcome(403, "X")
	a, b := o.Marshal(FormatJSON), o.Marshal(FormatJSON)
	if bytes.Equal(a, b) {
		t.Fatal("two bodies with empty ID share an id")
	}
	var v struct{ ID string }
	if err := json.Unmarshal(a, &v); err != nil || len(v.ID) != 36 || !isUUID(v.ID) {
		t.Fatalf("id %q is not a UUID (%v)", v.ID, err)
	}
}

func TestMarshalXMLEscapesHostileText(t *testing.T) {
	o := ProviderOutcome(400, CodeBadRequest, "a\"b<c>&d'\x00\x1b\n\tz\xff")
	o.ID = fixedID
	b := o.Marshal(FormatXML)
	checkXML(t, b)
	var doc struct {
		Issue struct {
			Diagnostics struct {
				Value string `xml:"value,attr"`
			} `xml:"diagnostics"`
		} `xml:"issue"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.Issue.Diagnostics.Value, "a\"b<c>&d'") {
		t.Errorf("diagnostics came back as %q", doc.Issue.Diagnostics.Value)
	}
	if j := o.Marshal(FormatJSON); !json.Valid(j) {
		t.Errorf("invalid JSON:\n%s", j)
	}
}

func TestWriteOutcome(t *testing.T) {
	for _, f := range []Format{FormatJSON, FormatXML} {
		rec := httptest.NewRecorder()
		o := ProviderOutcome(422, CodeInvalidResource, "x")
		o.ID = fixedID
		WriteOutcome(rec, f, http.StatusUnprocessableEntity, o)
		res := rec.Result()
		if res.StatusCode != 422 {
			t.Errorf("status %d", res.StatusCode)
		}
		if got := res.Header.Get("Content-Type"); got != f.ContentType() {
			t.Errorf("Content-Type %q", got)
		}
		if got := res.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("Cache-Control %q", got)
		}
		if !bytes.Equal(rec.Body.Bytes(), o.Marshal(f)) {
			t.Errorf("body differs from Marshal")
		}
	}
}
