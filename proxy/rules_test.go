package proxy

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sspemu/agreements"
	"sspemu/audit"
	"sspemu/certs"
	"sspemu/gpconnect"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const fixedTrace = "5a0d9b58-6a4b-4a5e-9a3c-0f3c6b1d2e4f"

// rulesRegistry is the default registry plus a second consumer (whose FQDN
// is not the test certificate's) and a second provider with no agreement.
func rulesRegistry(root, port string) agreements.Config {
	reg := registry(root)
	reg.Systems = append(reg.Systems,
		agreements.SystemConfig{ASID: "200000000360", Name: "Other consumer", ODS: "Y54321", PartyKey: "Y54321-0000003",
			FQDN: "other.sspemu.localhost", Sends: []string{"foundations"}},
		agreements.SystemConfig{ASID: "918999198994", Name: "Other practice", ODS: "B86041", PartyKey: "B86041-0000004",
			FQDN: "localhost", Endpoint: "https://localhost:" + port + "/B86041/STU3/1/gpconnect", CPAID: "S20001A000004",
			Receives: []string{"foundations"}},
	)
	return reg
}

type ruleCase struct {
	name    string
	method  string
	path    string // after the provider's host:port, e.g. /A20047/STU3/1/gpconnect/metadata
	target  string // whole target instead of https://localhost:PORT + path
	in      string // interaction for the token and Ssp-InteractionID
	headers func(h http.Header, root string)
	config  func(c *Config)
	status  int
}

func ruleCases() []ruleCase {
	return []ruleCase{
		{name: "method", method: "DELETE", path: "/A20047/STU3/1/gpconnect/Appointment/1", in: gpconnect.CancelAppointment, status: 405},
		{name: "method-connect", method: "CONNECT", target: "localhost:PORT", in: gpconnect.ReadMetadata, status: 405},
		{name: "target", method: "GET", target: "https://user@localhost:PORT/A20047/STU3/1/gpconnect/metadata", in: gpconnect.ReadMetadata, status: 400},
		{name: "ssp-headers", method: "GET", path: "/A20047/STU3/1/gpconnect/metadata", in: gpconnect.ReadMetadata,
			headers: func(h http.Header, root string) { h.Del("Ssp-From") }, status: 400},
		{name: "cert-asid", method: "GET", path: "/A20047/STU3/1/gpconnect/metadata", in: gpconnect.ReadMetadata,
			headers: func(h http.Header, root string) { h.Set("Ssp-From", "200000000360") }, status: 403},
		{name: "sender", method: "POST", path: "/A20047/STU3/1/gpconnect/Patient/$gpc.getstructuredrecord", in: gpconnect.GetStructuredRecord, status: 403},
		{name: "sender-unknown-interaction", method: "GET", path: "/A20047/STU3/1/gpconnect/metadata", in: gpconnect.ReadMetadata,
			headers: func(h http.Header, root string) {
				h.Set("Ssp-InteractionID", gpconnect.URNPrefix+"fhir:rest:read:nothing-1")
			}, status: 403},
		{name: "sender-unknown-interaction-live", method: "GET", path: "/A20047/STU3/1/gpconnect/metadata", in: gpconnect.ReadMetadata,
			headers: func(h http.Header, root string) {
				h.Set("Ssp-InteractionID", gpconnect.URNPrefix+"fhir:rest:read:nothing-1")
			},
			config: func(c *Config) { c.Fidelity = "live" }, status: 415},
		{name: "receiver", method: "GET", path: "/A20047/STU3/1/gpconnect/metadata", in: gpconnect.ReadMetadata,
			headers: func(h http.Header, root string) { h.Set("Ssp-To", consumerASID) }, status: 403},
		{name: "endpoint", method: "GET", target: "https://127.0.0.1:PORT/A20047/STU3/1/gpconnect/metadata", in: gpconnect.ReadMetadata, status: 400},
		{name: "agreement", method: "GET", path: "/B86041/STU3/1/gpconnect/metadata", in: gpconnect.ReadMetadata,
			headers: func(h http.Header, root string) { h.Set("Ssp-To", "918999198994") }, status: 403},
		{name: "jwt", method: "GET", path: "/A20047/STU3/1/gpconnect/Patient/2", in: gpconnect.ReadPatient,
			headers: func(h http.Header, root string) {
				spec := gpconnect.DefaultTokenSpec(mustLookupID(gpconnect.ReadPatient), root, time.Now())
				spec.ReasonForRequest = "secondaryuses"
				h.Set("Authorization", "Bearer "+spec.Encode())
			}, status: 400},
		{name: "jwt-aud", method: "GET", path: "/A20047/STU3/1/gpconnect/metadata", in: gpconnect.ReadMetadata,
			headers: func(h http.Header, root string) {
				spec := gpconnect.DefaultTokenSpec(mustLookupID(gpconnect.ReadMetadata), "https://127.0.0.1/A20047/STU3/1/gpconnect", time.Now())
				h.Set("Authorization", "Bearer "+spec.Encode())
			}, status: 400},
		{name: "interaction-route", method: "GET", path: "/A20047/STU3/1/gpconnect/Patient/2", in: gpconnect.ReadMetadata, status: 400},
	}
}

func mustLookupID(id string) gpconnect.Interaction {
	in, _ := gpconnect.Lookup(id)
	return in
}

var uuidRE = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)

// TestRuleGolden runs each rule's refusal through a real SSP and compares
// the whole answer, JSON and XML, with testdata/rules/<rule>.golden. Only the
// random parts are normalised: the provider's port and the body's id.
func TestRuleGolden(t *testing.T) {
	var dialled atomic.Int64
	p := startProvider(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { dialled.Add(1) }))
	for _, rc := range ruleCases() {
		t.Run(rc.name, func(t *testing.T) {
			cfg := testConfig()
			if rc.config != nil {
				rc.config(&cfg)
			}
			s := startSSP(t, cfg, rulesRegistry(p.root, p.port))
			in := mustLookup(t, rc.in)
			target := rc.target
			if target == "" {
				target = "https://localhost:PORT" + rc.path
			}
			target = strings.ReplaceAll(target, "PORT", p.port)
			uri := "/" + target
			if rc.method == "CONNECT" {
				uri = target
			}
			var out strings.Builder
			fmt.Fprintf(&out, "# rule: %s\n", rc.name)
			for i, accept := range []string{gpconnect.MIMEJSON, gpconnect.MIMEXML} {
				h := validHeaders(in, p.root)
				h.Set("Ssp-TraceID", fixedTrace)
				if rc.headers != nil {
					rc.headers(h, p.root)
				}
				h.Set("Accept", accept)
				if i == 0 {
					out.WriteString("\n# request\n" + describeRequest(rc.method, uri, h) + "\n")
				}
				resp := rawExchange(t, s.addr, consumerTLS(t), rc.method, uri, h, "")
				body := readBody(t, resp)
				if resp.StatusCode != rc.status {
					t.Errorf("Accept %s: status %d, want %d: %s", accept, resp.StatusCode, rc.status, body)
				}
				if resp.Header.Get(ReasonHeader) == "" {
					t.Errorf("no %s header", ReasonHeader)
				}
				fmt.Fprintf(&out, "\n# response to Accept: %s\n%s %s\n", accept, resp.Proto, resp.Status)
				for _, k := range []string{"Allow", "Cache-Control", "Content-Type", ReasonHeader} {
					if v := resp.Header.Get(k); v != "" {
						fmt.Fprintf(&out, "%s: %s\n", k, v)
					}
				}
				out.WriteString("\n" + uuidRE.ReplaceAllString(body, "<uuid>") + "\n")
			}
			got := strings.ReplaceAll(out.String(), p.port, "PORT")
			compareGolden(t, filepath.Join("testdata", "rules", rc.name+".golden"), got)
		})
	}
	if n := dialled.Load(); n != 0 {
		t.Errorf("the provider was called %d times by refused requests", n)
	}
}

func describeRequest(method, uri string, h http.Header) string {
	var lines []string
	for k := range h {
		v := h.Get(k)
		if k == "Authorization" {
			v = "Bearer <token of sspemu token for this interaction"
			if tok, err := gpconnect.ParseAuthorization(h.Get(k)); err == nil && tok.Claims.ReasonForRequest != "directcare" {
				v += ", reason_for_request " + tok.Claims.ReasonForRequest
			}
			v += ">"
		}
		lines = append(lines, k+": "+v)
	}
	slices.Sort(lines)
	return method + " " + uri + " HTTP/1.1\n" + strings.Join(lines, "\n")
}

func compareGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./proxy -run TestRuleGolden -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (go test ./proxy -run TestRuleGolden -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestRefusedTargetsNeverDialled sends every malformed or unregistered
// target of the issue to an SSP whose only provider is a trap listener:
// each is refused with 400 and no connection is ever opened.
func TestRefusedTargetsNeverDialled(t *testing.T) {
	tr := startTrap(t)
	root := "https://localhost:" + tr.port + "/A20047/STU3/1/gpconnect"
	reg := registry(root)
	// A provider registered without a port, to try an added one.
	reg.Systems = append(reg.Systems, agreements.SystemConfig{ASID: "918999198995", Name: "Portless", ODS: "C12345",
		PartyKey: "C12345-0000005", FQDN: "localhost", Endpoint: "https://localhost/C12345/STU3/1/gpconnect",
		CPAID: "S20001A000005", Receives: []string{"foundations"}})
	reg.Agreements = append(reg.Agreements, agreements.AgreementConfig{From: consumerASID, To: "918999198995", Interactions: []string{"foundations"}})
	s := startSSP(t, testConfig(), reg)
	in := mustLookup(t, gpconnect.ReadMetadata)
	host := "localhost:" + tr.port
	tests := map[string]struct {
		uri, to, rule string
	}{
		"userinfo":               {"/https://user:pw@" + host + "/A20047/STU3/1/gpconnect/metadata", providerASID, "target"},
		"userinfo to other":      {"/https://" + host + "@127.0.0.1:" + tr.port + "/A20047/STU3/1/gpconnect/metadata", providerASID, "target"},
		"IP for registered name": {"/https://127.0.0.1:" + tr.port + "/A20047/STU3/1/gpconnect/metadata", providerASID, "endpoint"},
		"added port":             {"/https://localhost:" + tr.port + "/C12345/STU3/1/gpconnect/metadata", "918999198995", "endpoint"},
		"encoded slash":          {"/https://" + host + "/A20047/STU3/1/gpconnect/..%2F..%2Fadmin", providerASID, "target"},
		"back slash":             {"/https://" + host + "/A20047/STU3/1/gpconnect\\..\\..\\admin", providerASID, "target"},
		"dot segments":           {"/https://" + host + "/A20047/STU3/1/gpconnect/../../../admin", providerASID, "target"},
		"second prefix":          {"/https://" + host + "/A20047/STU3/1/gpconnect/https://127.0.0.1:" + tr.port + "/x", providerASID, "target"},
		"unregistered host":      {"/https://127.0.0.2:" + tr.port + "/A20047/STU3/1/gpconnect/metadata", providerASID, "endpoint"},
		"different case":         {"/https://LOCALHOST:" + tr.port + "/A20047/STU3/1/gpconnect/metadata", providerASID, "endpoint"},
		"trailing-slash root":    {"/https://" + host + "/A20047/STU3/1/gpconnect/", providerASID, "interaction-route"},
		"root with a suffix":     {"/https://" + host + "/A20047/STU3/1/gpconnectX/metadata", providerASID, "endpoint"},
		"absolute form":          {"https://" + host + "/A20047/STU3/1/gpconnect/metadata", providerASID, "target"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			h := validHeaders(in, root)
			h.Set("Ssp-To", tt.to)
			resp := rawExchange(t, s.addr, consumerTLS(t), "GET", tt.uri, h, "")
			body := readBody(t, resp)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400: %s", resp.StatusCode, body)
			}
			if tt.rule == "endpoint" && !strings.Contains(body, "ENDPOINT_") {
				t.Errorf("endpoint refusal without the ENDPOINT_ token: %s", body)
			}
		})
	}
	t.Run("CONNECT", func(t *testing.T) {
		resp := rawExchange(t, s.addr, consumerTLS(t), "CONNECT", host, validHeaders(in, root), "")
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(resp.Header.Get(ReasonHeader), "prefix form") {
			t.Errorf("CONNECT: %d %q %s", resp.StatusCode, resp.Header.Get(ReasonHeader), body)
		}
	})
	t.Run("engine guard", func(t *testing.T) {
		// A request that reaches the engine without the chain's clearance
		// is refused there too.
		req := httptest.NewRequest("GET", "https://"+host+"/A20047/STU3/1/gpconnect/metadata", nil)
		rec := httptest.NewRecorder()
		s.srv.engine.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("engine forwarded an unchecked request: %d", rec.Code)
		}
	})
	if n := tr.dials.Load(); n != 0 {
		t.Fatalf("refused targets opened %d connections to the trap", n)
	}
}

func TestPreflight(t *testing.T) {
	var dialled atomic.Int64
	p := startProvider(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { dialled.Add(1) }))
	s := startSSP(t, testConfig(), registry(p.root))
	tests := map[string]string{
		"/Appointment/1":                "GET, PUT",
		"/Appointment":                  "POST",
		"/Patient/2":                    "GET",
		"/Patient/$gpc.registerpatient": "POST",
		"/Patient/2/Appointment":        "GET",
		"/Slot":                         "GET",
		"/metadata":                     "GET",
	}
	for path, want := range tests {
		h := http.Header{"Origin": {"https://app.example"}}
		resp := rawExchange(t, s.addr, consumerTLS(t), "OPTIONS", "/"+p.root+path, h, "")
		readBody(t, resp)
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Request-Method") != want || resp.Header.Get("Access-Control-Allow-Methods") != want {
			t.Errorf("OPTIONS %s: %d %q, want %q", path, resp.StatusCode, resp.Header.Get("Access-Control-Request-Method"), want)
		}
	}
	// Without Origin and without any Ssp header: still answered.
	resp := rawExchange(t, s.addr, consumerTLS(t), "OPTIONS", "/"+p.root+"/Appointment/1", http.Header{}, "")
	readBody(t, resp)
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Request-Method") != "GET, PUT" {
		t.Errorf("preflight without Origin: %d %v", resp.StatusCode, resp.Header)
	}
	if dialled.Load() != 0 {
		t.Error("a preflight reached the provider")
	}
}

func TestModesLogAndOff(t *testing.T) {
	got := make(chan string, 4)
	p := startProvider(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.URL.Path }))
	in := mustLookup(t, gpconnect.ReadMetadata)
	for _, mode := range []string{ModeLog, ModeOff} {
		cfg := testConfig()
		cfg.JWT, cfg.InteractionRoute = mode, mode
		s := startSSP(t, cfg, registry(p.root))
		h := validHeaders(in, p.root)
		h.Set("Authorization", "Bearer not-a-jwt")
		resp := rawExchange(t, s.addr, consumerTLS(t), "GET", "/"+p.root+"/Patient/2", h, "")
		readBody(t, resp)
		if resp.StatusCode != 200 {
			t.Errorf("mode %s: status %d, want the request forwarded", mode, resp.StatusCode)
			continue
		}
		<-got
	}
}

func TestAuditFailureRefuses(t *testing.T) {
	var dialled atomic.Int64
	p := startProvider(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { dialled.Add(1) }))
	s := startSSP(t, testConfig(), registry(p.root))
	if err := s.store.Close(); err != nil {
		t.Fatal(err)
	}
	in := mustLookup(t, gpconnect.ReadMetadata)
	resp := rawExchange(t, s.addr, consumerTLS(t), "GET", "/"+p.root+"/metadata", validHeaders(in, p.root), "")
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "OperationOutcome") {
		t.Fatalf("status %d, want 503 OperationOutcome: %s", resp.StatusCode, body)
	}
	if dialled.Load() != 0 {
		t.Fatal("a request without its audit record was forwarded")
	}
}

func TestAuditRecordsDecisions(t *testing.T) {
	p := startProvider(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	s := startSSP(t, testConfig(), registry(p.root))
	in := mustLookup(t, gpconnect.ReadMetadata)
	h := validHeaders(in, p.root)
	readBody(t, rawExchange(t, s.addr, consumerTLS(t), "GET", "/"+p.root+"/metadata", h, ""))
	bad := validHeaders(in, p.root)
	bad.Set("Ssp-To", "918999198999")
	readBody(t, rawExchange(t, s.addr, consumerTLS(t), "GET", "/"+p.root+"/metadata", bad, ""))
	early := validHeaders(in, p.root) // refused at target, before the Ssp-* headers are judged
	readBody(t, rawExchange(t, s.addr, consumerTLS(t), "GET", "/https://u@"+strings.TrimPrefix(p.root, "https://")+"/metadata", early, ""))
	s.srv.Shutdown(context.Background())
	// Transaction records are queued, not awaited: wait for them.
	ts := waitTransaction(t, s, h.Get("Ssp-TraceID"))
	if ts.Decision != "forwarded" || ts.Status != 200 {
		t.Fatalf("forwarded transaction: %+v", ts)
	}
	ts = waitTransaction(t, s, bad.Get("Ssp-TraceID"))
	if ts.Decision != "refused" || ts.Rule != "receiver" || ts.Status != 403 {
		t.Fatalf("refused transaction: %+v", ts)
	}
	data, err := os.ReadFile(filepath.Join(s.dir, "audit-000001.jsonl"))
	if err != nil {
		matches, _ := filepath.Glob(filepath.Join(s.dir, "*"))
		t.Fatalf("%v (files: %v)", err, matches)
	}
	var earlyLine string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, early.Get("Ssp-TraceID")) {
			earlyLine = line
		}
	}
	for _, want := range []string{`"rule":"target"`, `"from":"200000000359"`, `"interaction":"` + in.ID + `"`} {
		if !strings.Contains(earlyLine, want) {
			t.Errorf("record of a request refused at target lacks %s: %s", want, earlyLine)
		}
	}
	for _, want := range []string{`"decision":"forwarded"`, `"rule":"receiver"`, "PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_918999198999",
		leafOf(t, pki(certs.ConsumerFile)).Subject.String(), `"sds_user_id":"111222333444"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
}

// waitTransaction polls for the transaction record of traceID.
func waitTransaction(t *testing.T, s *ssp, traceID string) audit.Transaction {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ts, err := s.store.Transactions(audit.Filter{TraceID: traceID})
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) == 1 {
			return ts[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no transaction record for %s: %v", traceID, ts)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
