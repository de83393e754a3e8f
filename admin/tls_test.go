package admin

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"sspemu/agreements"
	"sspemu/audit"
	"sspemu/gpconnect"
	"sspemu/proxy"
)

// TestTransactionsListTLSRefusals merges refused handshakes into
// /api/transactions, newest first, under the same filters and limit.
func TestTransactionsListTLSRefusals(t *testing.T) {
	store, err := audit.Open(t.TempDir(), audit.Options{Sync: audit.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	base := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	for i, d := range []gpconnect.Decision{"forwarded", "refused", "forwarded"} {
		// Transactions at 0, 2 and 4 minutes.
		if _, err := store.AppendTransaction(context.Background(), &audit.Transaction{Time: base.Add(time.Duration(2*i) * time.Minute),
			TraceID: "t" + string(rune('0'+i)), Decision: d, From: "200000000359", Status: 200}); err != nil {
			t.Fatal(err)
		}
	}
	// Refusals at 1 and 5 minutes, newest first as the console keeps them.
	refusals := []proxy.Handshake{
		{Time: base.Add(5 * time.Minute), Client: "127.0.0.1:50001", Reason: proxy.HandshakeNoCertificate, Detail: "tls: client didn't provide a certificate"},
		{Time: base.Add(1 * time.Minute), Client: "127.0.0.1:50002", Reason: proxy.HandshakeUnknownCA},
	}
	table, err := agreements.Config{}.Build()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Options{
		Registry:    func() *agreements.Table { return table },
		Audit:       store,
		TLSRefusals: func() []proxy.Handshake { return refusals },
	}).Handler())
	t.Cleanup(srv.Close)

	tests := []struct {
		query string
		want  []string // trace IDs, or tls:<reason>
	}{
		{"", []string{"tls:no-certificate", "t2", "t1", "tls:unknown-ca", "t0"}},
		{"?outcome=tls", []string{"tls:no-certificate", "tls:unknown-ca"}},
		{"?outcome=refused", []string{"t1"}},
		{"?from=200000000359", []string{"t2", "t1", "t0"}},
		{"?trace_id=t1", []string{"t1"}},
		{"?limit=2", []string{"tls:no-certificate", "t2"}},
		{"?outcome=tls&limit=1", []string{"tls:no-certificate"}},
		{"?since=2026-11-24T09:01:30Z", []string{"tls:no-certificate", "t2", "t1"}},
		{"?rule=tls", []string{"tls:no-certificate", "t2", "t1", "tls:unknown-ca", "t0"}},
	}
	for _, tt := range tests {
		code, body := get(t, "GET", srv.URL+"/api/transactions"+tt.query)
		var items []map[string]any
		if err := json.Unmarshal([]byte(body), &items); code != 200 || err != nil {
			t.Fatalf("%s: %d %v %s", tt.query, code, err, body)
		}
		var got []string
		for _, it := range items {
			if it["decision"] == OutcomeTLS {
				got = append(got, "tls:"+it["reason"].(string))
				if it["rule"] != "tls" || it["client"] == "" {
					t.Errorf("%s: TLS refusal without rule or client: %v", tt.query, it)
				}
				continue
			}
			got = append(got, it["trace_id"].(string))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("/api/transactions%s = %v, want %v", tt.query, got, tt.want)
		}
	}
	if _, body := get(t, "GET", srv.URL+"/api/transactions?outcome=forwarded&limit=5"); body == "null\n" {
		t.Error("an empty answer is null, want []")
	}
	if _, body := get(t, "GET", srv.URL+"/api/transactions?outcome=answered"); body != "[]\n" {
		t.Errorf("no match: %q, want []", body)
	}
}
