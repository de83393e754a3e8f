package gpconnect

import (
	"net/http"
	"strings"
	"testing"
)

const (
	goodTrace = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
	goodFrom  = "200000000359"
	goodTo    = "918999198993"
)

func goodHeaders() http.Header {
	h := http.Header{}
	h.Set(HeaderTraceID, goodTrace)
	h.Set(HeaderFrom, goodFrom)
	h.Set(HeaderTo, goodTo)
	h.Set(HeaderInteractionID, ReadMetadata)
	return h
}

func TestParseSspHeaders(t *testing.T) {
	for _, tc := range []struct {
		name       string
		edit       func(http.Header)
		wantHeader string
		wantReason string
	}{
		{"valid", func(http.Header) {}, "", ""},
		{"valid upper-case uuid", func(h http.Header) { h.Set(HeaderTraceID, strings.ToUpper(goodTrace)) }, "", ""},
		{"valid non-canonical literal keys", func(h http.Header) {
			v := h.Get(HeaderInteractionID)
			h.Del(HeaderInteractionID)
			h["Ssp-InteractionId"] = []string{v}
		}, "", ""},
		{"valid other Spine URN", func(h http.Header) { h.Set(HeaderInteractionID, "urn:nhs:names:services:other:x") }, "", ""},
		{"trace missing", func(h http.Header) { h.Del(HeaderTraceID) }, HeaderTraceID, "missing"},
		{"trace not uuid", func(h http.Header) { h.Set(HeaderTraceID, "abc") }, HeaderTraceID, "UUID"},
		{"trace braces", func(h http.Header) { h.Set(HeaderTraceID, "{"+goodTrace+"}") }, HeaderTraceID, "UUID"},
		{"trace hyphenless", func(h http.Header) { h.Set(HeaderTraceID, strings.ReplaceAll(goodTrace, "-", "")) }, HeaderTraceID, "UUID"},
		{"trace twice", func(h http.Header) { h.Add(HeaderTraceID, goodTrace) }, HeaderTraceID, "once"},
		{"trace twice in two spellings", func(h http.Header) { h["Ssp-TraceID"] = []string{goodTrace} }, HeaderTraceID, "once"},
		{"from missing", func(h http.Header) { h.Del(HeaderFrom) }, HeaderFrom, "missing"},
		{"from short", func(h http.Header) { h.Set(HeaderFrom, "12345") }, HeaderFrom, `12-digit ASID, got "12345"`},
		{"from letters", func(h http.Header) { h.Set(HeaderFrom, "20000000035X") }, HeaderFrom, "12-digit"},
		{"from space", func(h http.Header) { h["Ssp-From"] = []string{" 200000000359"} }, HeaderFrom, "12-digit"},
		{"to missing", func(h http.Header) { h.Del(HeaderTo) }, HeaderTo, "missing"},
		{"to long", func(h http.Header) { h.Set(HeaderTo, "9189991989930") }, HeaderTo, "provider's 12-digit"},
		{"to twice", func(h http.Header) { h.Add(HeaderTo, goodTo) }, HeaderTo, "once"},
		{"interaction missing", func(h http.Header) { h.Del(HeaderInteractionID) }, HeaderInteractionID, "missing"},
		{"interaction empty", func(h http.Header) { h.Set(HeaderInteractionID, "") }, HeaderInteractionID, "URN"},
		{"interaction not urn", func(h http.Header) { h.Set(HeaderInteractionID, "fhir:rest:read:metadata-1") }, HeaderInteractionID, "URN"},
		{"interaction prefix only", func(h http.Header) { h.Set(HeaderInteractionID, "urn:nhs:names:services:") }, HeaderInteractionID, "URN"},
		{"interaction space", func(h http.Header) { h.Set(HeaderInteractionID, ReadMetadata+" x") }, HeaderInteractionID, "spaces"},
		{"first problem wins", func(h http.Header) { h.Del(HeaderTo); h.Del(HeaderTraceID) }, HeaderTraceID, "missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := goodHeaders()
			tc.edit(h)
			got, err := ParseSspHeaders(h)
			if tc.wantHeader == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if got.From != goodFrom || got.To != goodTo || got.InteractionID == "" || got.TraceID == "" {
					t.Fatalf("parsed %+v", got)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %+v", got)
			}
			if err.Header != tc.wantHeader || !strings.Contains(err.Reason, tc.wantReason) {
				t.Errorf("got %s / %q; want %s containing %q", err.Header, err.Reason, tc.wantHeader, tc.wantReason)
			}
			if got != (SspHeaders{}) {
				t.Errorf("returned partial headers %+v with an error", got)
			}
			if !strings.Contains(err.Error(), tc.wantHeader) {
				t.Errorf("Error() %q does not name the header", err.Error())
			}
		})
	}
}

func FuzzParseSspHeaders(f *testing.F) {
	f.Add(goodTrace, goodFrom, goodTo, ReadMetadata)
	f.Add("", "12345", "x", "urn:nhs:names:services:")
	f.Add(strings.ToUpper(goodTrace), "000000000000", "999999999999", "urn:nhs:names:services:a")
	f.Fuzz(func(t *testing.T, trace, from, to, interaction string) {
		h := http.Header{}
		h["Ssp-Traceid"] = []string{trace}
		h["Ssp-From"] = []string{from}
		h["ssp-to"] = []string{to}
		h["SSP-INTERACTIONID"] = []string{interaction}
		got, err := ParseSspHeaders(h)
		if err != nil {
			if err.Header == "" || err.Reason == "" {
				t.Fatalf("error without header or reason: %+v", err)
			}
			return
		}
		if got.TraceID != trace || got.From != from || got.To != to || got.InteractionID != interaction {
			t.Fatalf("parsed %+v from %q %q %q %q", got, trace, from, to, interaction)
		}
		if !isUUID(got.TraceID) || len(got.From) != 12 || !allDigits(got.From) || len(got.To) != 12 || !allDigits(got.To) ||
			!strings.HasPrefix(got.InteractionID, interactionURNPrefix) {
			t.Fatalf("accepted malformed headers %+v", got)
		}
		again, err := ParseSspHeaders(http.Header{
			HeaderTraceID: {got.TraceID}, HeaderFrom: {got.From}, HeaderTo: {got.To}, HeaderInteractionID: {got.InteractionID},
		})
		if err != nil || again != got {
			t.Fatalf("re-parse gave %+v, %v; want %+v", again, err, got)
		}
	})
}
