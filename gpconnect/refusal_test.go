package gpconnect

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestRefusalOutcome pins each kind of refusal to the body it had before
// the one Refusal type existed, built by the outcome builders directly: the
// SSP's token as display and diagnostics, the provider's code with the
// reason (or Diagnostics) as diagnostics, an issue type override.
func TestRefusalOutcome(t *testing.T) {
	transient := ProviderOutcome(503, CodeInternalServerError, "the audit log is unavailable")
	transient.IssueCode = "transient"
	costly := ProviderOutcome(413, CodeBadRequest, "too big")
	costly.IssueCode = "too-costly"
	tests := []struct {
		name string
		ref  Refusal
		want Outcome
	}{
		{"ssp shape", Refusal{Rule: RuleSender, Status: 403, Shape: ShapeSSP, Token: "ASID_CHECK_FAILED_MESSAGESENDER_1", Reason: "not registered"},
			SSPOutcome(403, "ASID_CHECK_FAILED_MESSAGESENDER_1")},
		{"ssp 405", Refusal{Rule: RuleMethod, Status: 405, Shape: ShapeSSP, Token: "405: Method Not Allowed", Reason: "DELETE", Allow: "GET"},
			SSPOutcome(405, "405: Method Not Allowed")},
		{"provider shape", Refusal{Rule: RuleJWT, Status: 400, Code: CodeBadRequest, Reason: "JWT claim exp: expired"},
			ProviderOutcome(400, CodeBadRequest, "JWT claim exp: expired")},
		{"practice", *Refuse(404, CodePatientNotFound, "no patient %s", "9000000009"),
			ProviderOutcome(404, CodePatientNotFound, "no patient 9000000009")},
		{"issue type override", Refusal{Rule: RuleAudit, Status: 503, Code: CodeInternalServerError, IssueCode: "transient", Reason: "the audit log is unavailable"},
			transient},
		{"limits", Refusal{Rule: RuleLimits, Status: 413, Code: CodeBadRequest, IssueCode: "too-costly", Reason: "too big"}, costly},
		{"diagnostics apart from the reason", Refusal{Status: 400, Code: CodeBadRequest, Reason: "short", Diagnostics: "long"},
			ProviderOutcome(400, CodeBadRequest, "long")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.ref.Outcome(); got != tc.want {
				t.Errorf("Outcome() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestRefusalWriteAndResponse proves the two renderings of one refusal
// (on a ResponseWriter, and as the engine's *http.Response) send the same
// status, headers and body, in both formats.
func TestRefusalWriteAndResponse(t *testing.T) {
	uuidRE := regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	refs := []*Refusal{
		{Rule: RuleUpstream, Status: 504, Shape: ShapeSSP, Token: "ERROR_COMMUNICATING_TO_ENDPOINT_URL_https://p.example/x", Reason: "timeout"},
		{Rule: RuleMethod, Status: 405, Shape: ShapeSSP, Token: "405: Method Not Allowed", Reason: "DELETE", Allow: "GET, POST, PUT, OPTIONS"},
		{Status: 422, Code: CodeInvalidResource, Reason: "bad & <worse>"},
	}
	for _, ref := range refs {
		for _, f := range []Format{FormatJSON, FormatXML} {
			rec := httptest.NewRecorder()
			ref.Write(rec, f)
			resp := ref.Response(httptest.NewRequest(http.MethodGet, "/", nil), f)
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Code != ref.Status || resp.StatusCode != ref.Status {
				t.Errorf("%v: status %d and %d, want %d", ref, rec.Code, resp.StatusCode, ref.Status)
			}
			for _, k := range []string{"Content-Type", "Content-Length", "Cache-Control", "Allow"} {
				if rec.Header().Get(k) != resp.Header.Get(k) {
					t.Errorf("%v: %s %q written, %q in the response", ref, k, rec.Header().Get(k), resp.Header.Get(k))
				}
			}
			if rec.Header().Get("Allow") != ref.Allow || rec.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("%v: headers %v", ref, rec.Header())
			}
			if rec.Header().Get(ReasonHeader) != "" {
				t.Errorf("%v: the renderer set %s, which is the SSP's to set", ref, ReasonHeader)
			}
			a, b := uuidRE.ReplaceAll(rec.Body.Bytes(), nil), uuidRE.ReplaceAll(body, nil)
			if !bytes.Equal(a, b) || int64(len(body)) != resp.ContentLength {
				t.Errorf("%v: bodies differ:\n%s\n%s", ref, rec.Body, body)
			}
		}
	}
}

func TestRefusalError(t *testing.T) {
	var err error = &Refusal{Rule: RuleSender, Status: 403, Shape: ShapeSSP, Token: "T", Reason: "r"}
	if err.Error() != "403 T: r" {
		t.Errorf("SSP shape: %q", err)
	}
	if err = Refuse(400, CodeBadRequest, "x=%d", 1); err.Error() != "400 BAD_REQUEST: x=1" {
		t.Errorf("provider shape: %q", err)
	}
}

func TestSetReasonDropsControlBytes(t *testing.T) {
	h := http.Header{}
	SetReason(h, "a\r\nb\x7fc\td")
	if got := h.Get(ReasonHeader); got != "a  b c d" {
		t.Errorf("Sspemu-Reason %q", got)
	}
}

// TestVocabulary guards the fixed names of design.md: the audit files,
// the metrics and the console depend on the exact strings.
func TestVocabulary(t *testing.T) {
	var rules []string
	for _, r := range Rules() {
		rules = append(rules, string(r))
	}
	want := "tls limits method target ssp-headers cert-asid sender receiver endpoint agreement jwt interaction-route audit fault upstream"
	if got := strings.Join(rules, " "); got != want {
		t.Errorf("Rules() = %s\nwant      %s", got, want)
	}
	var decisions []string
	for _, d := range Decisions() {
		decisions = append(decisions, string(d))
	}
	if got := strings.Join(decisions, " "); got != "forwarded refused answered error" {
		t.Errorf("Decisions() = %s", got)
	}
	r := Rules()
	r[0] = "changed"
	if Rules()[0] != RuleTLS {
		t.Error("Rules() hands out its own slice")
	}
}
