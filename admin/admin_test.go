package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"sspemu/agreements"
	"sspemu/audit"
	"sspemu/demonstrator"
	"sspemu/gpconnect"
)

func testAdmin(t *testing.T, withDemo bool) (*httptest.Server, *audit.Store) {
	t.Helper()
	store, err := audit.Open(t.TempDir(), audit.Options{Sync: audit.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	table, err := agreements.Config{Systems: []agreements.SystemConfig{{ASID: "200000000359", Name: "C", ODS: "Y12345",
		PartyKey: "Y12345-1", FQDN: "c.example", Sends: []string{"foundations"}}}}.Build()
	if err != nil {
		t.Fatal(err)
	}
	opt := Options{Registry: func() *agreements.Table { return table }, Audit: store, Metrics: NewMetrics("test").Handler()}
	if withDemo {
		if opt.Demonstrator, err = demonstrator.New(demonstrator.Options{ASID: "918999198993", ODS: "A20047"}); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(New(opt).Handler())
	t.Cleanup(srv.Close)
	return srv, store
}

func get(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

func TestAdminEndpoints(t *testing.T) {
	srv, store := testAdmin(t, true)
	ctx := context.Background()
	base := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	for i, d := range []gpconnect.Decision{"forwarded", "refused", "forwarded"} {
		tr := &audit.Transaction{Time: base.Add(time.Duration(i) * time.Minute),
			TraceID: "t" + string(rune('0'+i)), Decision: d, From: "200000000359", Status: 200}
		if d == "refused" {
			tr.Status, tr.Rule, tr.Reason = 403, "receiver", "Ssp-To 918999198999 is not a registered ASID"
		}
		if _, err := store.AppendTransaction(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	// A trace ID as macOS uuidgen writes it, upper case.
	if _, err := store.AppendTransaction(ctx, &audit.Transaction{Time: base.Add(3 * time.Minute),
		TraceID: "6BA7B810-9DAD-11D1-80B4-00C04FD430C8", Decision: "forwarded", Status: 200}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path string
		status       int
		contains     string
	}{
		{"GET", "/healthz", 200, `"ok"`},
		{"GET", "/readyz", 200, `"ready"`},
		{"GET", "/api/registry", 200, `"200000000359"`},
		{"GET", "/api/transactions?outcome=refused", 200, `"t1"`},
		{"GET", "/api/transactions?outcome=refused", 200, `"reason": "Ssp-To 918999198999 is not a registered ASID"`},
		{"GET", "/api/transactions?outcome=answered", 200, `[]`},
		{"GET", "/api/transactions?outcome=refsued", 400, `outcome \"refsued\" is not one of forwarded, refused, answered, error, aborted`},
		{"GET", "/api/transactions?trace_id=6ba7b810-9dad-11d1-80b4-00c04fd430c8", 200, `"6BA7B810-9DAD-11D1-80B4-00C04FD430C8"`},
		{"GET", "/api/transactions?trace_id=T2", 200, `"t2"`},
		{"GET", "/api/transactions?trace_id=t2", 200, `"t2"`},
		{"GET", "/api/transactions?since=2026-11-24T09:01:30Z", 200, `"t2"`},
		{"GET", "/api/transactions?since=yesterday", 400, "RFC 3339"},
		{"GET", "/api/transactions?limit=-1", 400, "positive"},
		{"GET", "/metrics", 200, "ssp_build_info"},
		{"POST", "/api/demonstrator/reset", 200, "reset"},
		{"POST", "/api/demonstrator/reset?practice=A20047", 200, `"A20047"`},
		{"POST", "/api/demonstrator/reset?practice=B99999", 400, `\"B99999\" (served: A20047)`},
		{"POST", "/api/demonstrator/reset?practice=A20047&practice=A20047", 400, "once"},
		{"GET", "/api/demonstrator/reset", 405, ""},
	}
	for _, tt := range tests {
		code, body := get(t, tt.method, srv.URL+tt.path)
		if code != tt.status || !strings.Contains(body, tt.contains) {
			t.Errorf("%s %s: %d %s", tt.method, tt.path, code, body)
		}
	}
	_, body := get(t, "GET", srv.URL+"/api/transactions?limit=2")
	var ts []audit.Transaction
	if err := json.Unmarshal([]byte(body), &ts); err != nil || len(ts) != 2 || ts[1].TraceID != "t2" {
		t.Errorf("limit=2, newest first: %v %s", err, body)
	}
	store.Close()
	if code, body := get(t, "GET", srv.URL+"/readyz"); code != 503 || !strings.Contains(body, "audit") {
		t.Errorf("readyz with a closed audit log: %d %s", code, body)
	}
}

func TestResetWithoutDemonstrator(t *testing.T) {
	srv, _ := testAdmin(t, false)
	if code, body := get(t, "POST", srv.URL+"/api/demonstrator/reset"); code != 404 || !strings.Contains(body, "demonstrator.enabled") {
		t.Errorf("%d %s", code, body)
	}
}
