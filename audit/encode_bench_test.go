package audit

import (
	"encoding/json"
	"testing"
	"time"
)

// BenchmarkEncode measures what Append and AppendTransaction do on the
// caller's side (JSON encoding of the record: json.Marshal as it was, the
// hand-written encoders as it is) and what the writer does per line
// (framing with seq and prev, SHA-256), without the disk.
func BenchmarkEncode(b *testing.B) {
	rec := sampleRecord(1)
	tx := benchTransaction()
	b.Run("record/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("transaction/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(tx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("record/append", func(b *testing.B) {
		buf := make([]byte, 0, 1024)
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = appendRecord(buf[:0], rec)
		}
	})
	b.Run("transaction/append", func(b *testing.B) {
		buf := make([]byte, 0, 1024)
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = appendTransaction(buf[:0], tx)
		}
	})
	body, err := json.Marshal(rec)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("record/line", func(b *testing.B) {
		var prev [32]byte
		buf := make([]byte, 0, 4096)
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		seq := uint64(0)
		for b.Loop() {
			seq++
			buf, prev = appendLine(buf[:0], seq, &prev, body)
		}
	})
}

// benchTransaction is a typical transaction record: a forwarded GP
// Connect read that took a couple of milliseconds.
func benchTransaction() *Transaction {
	return &Transaction{
		Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), TraceID: "5b6d0f5e-8a4c-4d0a-9a8b-3a1d0c2e4f60",
		Status: 200, BytesIn: 0, BytesOut: 245, UpstreamSeconds: 0.000812, TotalSeconds: 0.00231,
		Decision: "forwarded", From: "200000000359", To: "918999198993",
		Interaction: "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1",
	}
}
