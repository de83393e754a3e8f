package gpconnect

import (
	"net/http"
	"testing"
	"time"
)

// BenchmarkJWT measures the JWT rules on the token `sspemu token` makes,
// the SSP's most expensive check per request: parsing alone, and parsing
// with every claim rule applied (what the proxy's jwt step runs).
func BenchmarkJWT(b *testing.B) {
	in, ok := Lookup(ReadMetadata)
	if !ok {
		b.Fatal("no metadata interaction")
	}
	now := time.Now()
	authz := "Bearer " + DefaultTokenSpec(in, "https://localhost:9443/A20047/STU3/1/gpconnect", now).Encode()
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(authz)))
		for b.Loop() {
			if _, err := ParseAuthorization(authz); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parse+rules", func(b *testing.B) {
		p := JWTPolicy{Skew: 300 * time.Second}
		b.ReportAllocs()
		b.SetBytes(int64(len(authz)))
		for b.Loop() {
			if _, err := p.CheckAuthorization(authz, in, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSspHeaders measures the Ssp-* header step and the response
// format negotiation the proxy runs on every request.
func BenchmarkSspHeaders(b *testing.B) {
	h := http.Header{}
	h.Set("Ssp-TraceID", "5b6d0f5e-8a4c-4d0a-9a8b-3a1d0c2e4f60")
	h.Set("Ssp-From", "200000000359")
	h.Set("Ssp-To", "918999198993")
	h.Set("Ssp-InteractionID", ReadMetadata)
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ParseSspHeaders(h); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("negotiate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := NegotiateResponse("", MIMEJSON, ""); !ok {
				b.Fatal("not negotiated")
			}
		}
	})
}
