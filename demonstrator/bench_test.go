package demonstrator

import (
	"net/http/httptest"
	"testing"

	"sspemu/gpconnect"
)

// BenchmarkSlotSearch is the bench's slots scenario in process: a week's
// free-slot search at A20047 with _include=Slot:schedule, through the
// whole edge (checks, JWT, store, encoding), without TLS or audit.
func BenchmarkSlotSearch(b *testing.B) {
	for _, format := range []string{"json", "xml"} {
		b.Run(format, func(b *testing.B) {
			h := newTestDemonstrator(b).Handler()
			c := call{method: "GET", path: testRoot + "/Slot?start=ge2025-03-11&end=le2025-03-18&status=free&_include=Slot:schedule",
				interaction: gpconnect.SearchSlot, header: map[string]string{"Accept": "application/fhir+" + format}}
			r := c.request(b)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					if w.Code != 200 {
						b.Fatalf("%d %s", w.Code, w.Body)
					}
				}
			})
		})
	}
}
