package audit

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"sspemu/gpconnect"
)

func cut8(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}

// TestNewRecordJudgedValues: what the party judged (headers, target,
// client identity, token) goes into the record as it is, unbounded, with
// the decision.
func TestNewRecordJudgedValues(t *testing.T) {
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	in, _ := gpconnect.Lookup(gpconnect.ReadMetadata)
	tok, cerr := gpconnect.ParseAuthorization("Bearer " + gpconnect.DefaultTokenSpec(in, "https://provider.example/A20047", now).Encode())
	if cerr != nil {
		t.Fatal(cerr)
	}
	r := httptest.NewRequest(http.MethodGet, "/https://provider.example/A20047/metadata", nil)
	r.Header.Set(gpconnect.HeaderFrom, "sent-from-ignored")
	rec := NewRecord(r, Decided{
		Start:   now,
		Headers: gpconnect.SspHeaders{TraceID: "trace-0123456789", From: "200000000359", To: "918999198993", InteractionID: in.ID},
		Target:  "https://provider.example/A20047/metadata", ClientSubject: "CN=consumer.sspemu.localhost", ClientFingerprint: "ab",
		Token: tok, Bound: cut8,
		Decision: gpconnect.DecisionRefused, Rule: gpconnect.RuleSender, Status: 403, SSPToken: "TOKEN", Reason: "why", Fault: "f1",
	})
	want := Record{
		Time: now, TraceID: "trace-0123456789", From: "200000000359", To: "918999198993", Interaction: in.ID,
		Method: "GET", Target: "https://provider.example/A20047/metadata",
		ClientSubject: "CN=consumer.sspemu.localhost", ClientFingerprint: "ab",
		Decision: gpconnect.DecisionRefused, Rule: gpconnect.RuleSender, Status: 403, Token: "TOKEN", Reason: "why", Fault: "f1",
	}
	got := *rec
	if got.JWT == nil || got.JWT.Issuer == "" {
		t.Fatalf("no jwt in the record: %+v", got.JWT)
	}
	s := tok.Claims.Summary()
	if len(s.Issuer) > 8 && got.JWT.Issuer != s.Issuer[:8] {
		t.Errorf("jwt issuer %q, want %q bounded", got.JWT.Issuer, s.Issuer)
	}
	got.JWT = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("record\n%+v\nwant\n%+v", got, want)
	}
}

// TestNewRecordFromRequestAsSent: a request refused before its headers,
// target or certificate were judged is still recorded from what it sent,
// bounded, and without a jwt when no token was decoded.
func TestNewRecordFromRequestAsSent(t *testing.T) {
	r := httptest.NewRequest("PROPFIND-A-LONG-METHOD", "/not-a-target-at-all", nil)
	r.Header.Set(gpconnect.HeaderTraceID, "0123456789abcdef")
	r.Header.Set(gpconnect.HeaderFrom, "200000000359")
	r.Header.Set(gpconnect.HeaderTo, "918999198993")
	r.Header.Set(gpconnect.HeaderInteractionID, "urn:nhs:names")
	r.Header.Set("Authorization", "Bearer x.y.z")
	leaf := &x509.Certificate{Raw: []byte("a certificate's DER"), Subject: pkix.Name{CommonName: "consumer.example"}}
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
	rec := NewRecord(r, Decided{Bound: cut8, Decision: gpconnect.DecisionRefused, Rule: gpconnect.RuleMethod, Status: 405})
	sum := sha256.Sum256(leaf.Raw)
	for name, c := range map[string][2]string{
		"trace":       {rec.TraceID, "01234567"},
		"from":        {rec.From, "20000000"},
		"to":          {rec.To, "91899919"},
		"interaction": {rec.Interaction, "urn:nhs:"},
		"method":      {rec.Method, "PROPFIND"},
		"target":      {rec.Target, "/not-a-t"},
		"subject":     {rec.ClientSubject, "CN=consu"},
		"fingerprint": {rec.ClientFingerprint, hex.EncodeToString(sum[:])},
	} {
		if c[0] != c[1] {
			t.Errorf("%s %q, want %q", name, c[0], c[1])
		}
	}
	if rec.JWT != nil {
		t.Errorf("jwt %+v recorded though no token was decoded", rec.JWT)
	}
	if rec.Decision != gpconnect.DecisionRefused || rec.Rule != gpconnect.RuleMethod || rec.Status != 405 {
		t.Errorf("decision %+v", rec)
	}
	line, err := encodeRecord(nil, rec)
	if err != nil || !strings.Contains(string(line), `"decision":"refused","rule":"method"`) {
		t.Errorf("encoded %s, %v", line, err)
	}
}
