package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sspemu/audit"
	"sspemu/demonstrator"
	"sspemu/faults"
	"sspemu/gpconnect"
)

// faultStack is a whole stack (SSP, practices, admin) with faults.header on,
// and a consumer calling the first practice through the SSP over mutual TLS.
type faultStack struct {
	t     *testing.T
	st    *stack
	admin string
	c     *practiceClient
	asid  string
	root  string
}

func startFaultStack(t *testing.T) *faultStack {
	t.Helper()
	demoPort := freeLoopbackPort(t)
	st, cfg := startTestStack(t, spineConfig(t, demoPort, map[string]any{"faults": map[string]any{"header": true}}))
	client := consumerClient(t, cfg.PKIDir())
	p := cfg.Demonstrator.PracticeList()[0]
	return &faultStack{
		t: t, st: st, admin: "http://" + st.addrs["admin"],
		c:    &practiceClient{t: t, http: client, ssp: st.addrs["ssp"], xsd: &xmlDocs{}, format: "json"},
		asid: p.ASID,
		root: "https://localhost:" + strconv.Itoa(demoPort) + demonstrator.ServiceRootPath(p.ODS),
	}
}

// adminCall sends body (JSON, "" for none) to the admin API.
func (f *faultStack) adminCall(method, path, body string) (int, []byte) {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.admin+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (f *faultStack) addRule(rule string) {
	f.t.Helper()
	if code, b := f.adminCall("POST", "/api/faults", rule); code != 201 {
		f.t.Fatalf("POST /api/faults %s: %d %s", rule, code, b)
	}
}

func (f *faultStack) metadata(extra map[string]string) (int, http.Header, map[string]any) {
	f.t.Helper()
	return f.c.call(f.asid, f.root, "GET", "/metadata", gpconnect.ReadMetadata, "", extra)
}

// reachedPractice reports whether the practice's own audit holds a record
// of the trace: the practice writes it before it answers, so once the
// consumer has its answer, a request that reached the practice is there.
func (f *faultStack) reachedPractice(trace string) bool {
	f.t.Helper()
	files, err := filepath.Glob(filepath.Join(f.st.demoStore.Dir(), "audit-*.jsonl"))
	if err != nil || len(files) == 0 {
		f.t.Fatalf("practice audit files: %v %v", files, err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.t.Fatal(err)
		}
		if bytes.Contains(b, []byte(`"trace_id":"`+trace+`"`)) {
			return true
		}
	}
	return false
}

// transaction waits for the SSP's transaction record of the trace (records
// are queued after the answer) and returns it.
func (f *faultStack) transaction(trace string) audit.Transaction {
	f.t.Helper()
	for range 200 {
		code, b := f.adminCall("GET", "/api/transactions?trace_id="+trace, "")
		var ts []audit.Transaction
		if code == 200 && json.Unmarshal(b, &ts) == nil && len(ts) > 0 {
			return ts[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.t.Fatalf("no transaction record for %s", trace)
	return audit.Transaction{}
}

// raw sends GET /metadata through the SSP and returns the transport's
// answer, for faults that leave no answer to decode.
func (f *faultStack) raw(trace string) (*http.Response, error) {
	f.t.Helper()
	in, _ := gpconnect.Lookup(gpconnect.ReadMetadata)
	req, err := http.NewRequest("GET", "https://"+f.c.ssp+"/"+f.root+"/metadata", nil)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Ssp-TraceID", trace)
	req.Header.Set("Ssp-From", "200000000359")
	req.Header.Set("Ssp-To", f.asid)
	req.Header.Set("Ssp-InteractionID", in.ID)
	req.Header.Set("Authorization", "Bearer "+gpconnect.DefaultTokenSpec(in, f.root, time.Now()).Encode())
	req.Header.Set("Accept", gpconnect.MIMEJSON)
	resp, err := f.c.http.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

func issue(m map[string]any) (code, diagnostics string) {
	b, _ := json.Marshal(m)
	var o struct {
		Issue []struct {
			Diagnostics string `json:"diagnostics"`
			Details     struct {
				Coding []struct {
					Code string `json:"code"`
				} `json:"coding"`
			} `json:"details"`
		} `json:"issue"`
	}
	_ = json.Unmarshal(b, &o)
	if len(o.Issue) == 0 {
		return "", ""
	}
	if len(o.Issue[0].Details.Coding) > 0 {
		code = o.Issue[0].Details.Coding[0].Code
	}
	return code, o.Issue[0].Diagnostics
}

var traceN int

func newTrace() string {
	traceN++
	return "00000000-0000-4000-8000-" + strconv.FormatInt(int64(100000000000+traceN), 10)
}

// TestFaultsThroughStack puts every action at the SSP and at a practice
// through the real stack over TLS, with the admin API, and checks the
// answer, whether the practice was reached (its own audit), the SSP's
// transaction and audit records and the metric.
func TestFaultsThroughStack(t *testing.T) {
	f := startFaultStack(t)
	clear := func() {
		t.Helper()
		if code, b := f.adminCall("DELETE", "/api/faults", ""); code != 200 {
			t.Fatalf("DELETE /api/faults: %d %s", code, b)
		}
	}

	t.Run("status at the SSP never reaches the practice", func(t *testing.T) {
		defer clear()
		f.addRule(`{"name":"ssp-502","match":{"interaction":"` + gpconnect.ReadMetadata + `"},"at":"ssp","status":502}`)
		trace := newTrace()
		code, h, body := f.metadata(map[string]string{"Ssp-TraceID": trace})
		if _, diag := issue(body); code != 502 || diag != "ERROR_COMMUNICATING_TO_ENDPOINT_URL_"+f.root+"/metadata" || h.Get(faults.Header) != "ssp-502" {
			t.Fatalf("502 at the SSP: %d %s %v", code, h.Get(faults.Header), body)
		}
		if f.reachedPractice(trace) {
			t.Error("an SSP-side fault reached the practice")
		}
		if tx := f.transaction(trace); tx.Fault != "ssp-502" || tx.Rule != "fault" || tx.Decision != "refused" || tx.Status != 502 {
			t.Errorf("transaction %+v", tx)
		}
		if !f.sspAudit(trace, `"rule":"fault"`, `"fault":"ssp-502"`) {
			t.Error("the SSP's audit record does not name the fault")
		}
		clear()
		trace = newTrace()
		if code, _, _ := f.metadata(map[string]string{"Ssp-TraceID": trace}); code != 200 || !f.reachedPractice(trace) {
			t.Errorf("without the rule: %d, reached %v", code, f.reachedPractice(trace))
		}
	})

	t.Run("status at the practice", func(t *testing.T) {
		defer clear()
		f.addRule(`{"name":"practice-500","at":"provider","status":500}`)
		trace := newTrace()
		code, h, body := f.metadata(map[string]string{"Ssp-TraceID": trace})
		if c, diag := issue(body); code != 500 || c != gpconnect.CodeInternalServerError || !strings.Contains(diag, `"practice-500"`) || h.Get(faults.Header) != "practice-500" {
			t.Fatalf("500 at the practice: %d %v", code, body)
		}
		if !f.reachedPractice(trace) {
			t.Error("the practice has no record")
		}
		if tx := f.transaction(trace); tx.Fault != "practice-500" || tx.Status != 500 || tx.Decision != "forwarded" {
			t.Errorf("transaction %+v", tx)
		}
	})

	t.Run("delays at both, then forwarded", func(t *testing.T) {
		defer clear()
		f.addRule(`{"name":"slow-ssp","at":"ssp","delay":{"fixed":"20ms"}}`)
		f.addRule(`{"name":"slow-practice","at":"provider","delay":{"uniform":{"min":"1ms","max":"20ms"}}}`)
		trace := newTrace()
		code, h, _ := f.metadata(map[string]string{"Ssp-TraceID": trace})
		if code != 200 || h.Get(faults.Header) != "slow-practice" {
			// The practice's answer header is the one the consumer sees
			// last; the SSP's transaction keeps its own.
			t.Fatalf("delayed: %d %v", code, h)
		}
		if tx := f.transaction(trace); tx.Fault != "slow-ssp" || tx.Status != 200 {
			t.Errorf("transaction %+v", tx)
		}
		if !f.reachedPractice(trace) {
			t.Error("a delay stopped the request")
		}
	})

	t.Run("times under concurrency", func(t *testing.T) {
		defer clear()
		f.addRule(`{"name":"first-two","at":"ssp","status":504,"times":2}`)
		const n = 12
		var wg sync.WaitGroup
		codes := make([]int, n)
		for i := range n {
			wg.Go(func() {
				resp, err := f.raw(newTraceSafe(i))
				if err == nil {
					codes[i] = resp.StatusCode
				}
			})
		}
		wg.Wait()
		failed := 0
		for _, c := range codes {
			switch c {
			case 504:
				failed++
			case 200:
			default:
				t.Errorf("answer %d", c)
			}
		}
		if failed != 2 {
			t.Errorf("%d of %d failed, want exactly 2: %v", failed, n, codes)
		}
	})

	t.Run("reset at the SSP", func(t *testing.T) {
		defer clear()
		f.addRule(`{"name":"drop","at":"ssp","reset":true}`)
		trace := newTrace()
		if resp, err := f.raw(trace); err == nil {
			t.Fatalf("reset at the SSP answered %d", resp.StatusCode)
		}
		if f.reachedPractice(trace) {
			t.Error("a reset at the SSP reached the practice")
		}
		if tx := f.transaction(trace); tx.Fault != "drop" || tx.Decision != "error" || tx.Rule != "fault" {
			t.Errorf("transaction %+v", tx)
		}
		if !f.sspAudit(trace, `"decision":"error"`, `"fault":"drop"`) {
			t.Error("the SSP's audit record does not name the reset")
		}
	})

	t.Run("reset at the practice is the SSP's 502", func(t *testing.T) {
		defer clear()
		f.addRule(`{"name":"practice-drop","at":"provider","reset":true}`)
		trace := newTrace()
		code, _, body := f.metadata(map[string]string{"Ssp-TraceID": trace})
		if _, diag := issue(body); code != 502 || !strings.HasPrefix(diag, "ERROR_COMMUNICATING_TO_ENDPOINT_URL_") {
			t.Fatalf("reset at the practice: %d %v", code, body)
		}
		if !f.practiceAudit(trace, `"decision":"error"`, `"rule":"fault"`, `"fault":"practice-drop"`) {
			t.Error("the practice's audit does not record the connection it dropped")
		}
	})

	t.Run("header names a rule; an unknown name is 400", func(t *testing.T) {
		defer clear()
		f.addRule(`{"name":"only-slots","match":{"interaction":"` + gpconnect.SearchSlot + `"},"at":"ssp","status":502}`)
		if code, _, _ := f.metadata(nil); code != 200 {
			t.Errorf("unmatched without the header: %d", code)
		}
		if code, _, _ := f.metadata(map[string]string{faults.Header: "only-slots"}); code != 502 {
			t.Errorf("named in the header: %d", code)
		}
		code, _, body := f.metadata(map[string]string{faults.Header: "nope"})
		if _, diag := issue(body); code != 400 || !strings.Contains(diag, `"nope"`) {
			t.Errorf("unknown name: %d %v", code, body)
		}
	})

	t.Run("probability 0 never, 1 always", func(t *testing.T) {
		defer clear()
		f.addRule(`{"name":"never","at":"ssp","status":502,"probability":0}`)
		for range 5 {
			if code, _, _ := f.metadata(nil); code != 200 {
				t.Fatalf("probability 0 acted: %d", code)
			}
		}
		f.addRule(`{"name":"always","at":"provider","status":500,"probability":1}`)
		if code, _, _ := f.metadata(nil); code != 500 {
			t.Fatalf("probability 1 did not act: %d", code)
		}
	})

	code, b := f.adminCall("GET", "/metrics", "")
	for _, want := range []string{`ssp_faults_total{at="ssp",name="ssp-502"} 1`, `ssp_faults_total{at="provider",name="practice-500"} 1`,
		`ssp_faults_total{at="ssp",name="first-two"} 2`} {
		if code != 200 || !bytes.Contains(b, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

var traceMu sync.Mutex

func newTraceSafe(int) string {
	traceMu.Lock()
	defer traceMu.Unlock()
	return newTrace()
}

// sspAudit reports whether the SSP's audit line of trace holds every want.
func (f *faultStack) sspAudit(trace string, want ...string) bool {
	f.t.Helper()
	return auditHas(f.t, f.st.store.Dir(), trace, want...)
}

// practiceAudit is sspAudit over the practices' own audit.
func (f *faultStack) practiceAudit(trace string, want ...string) bool {
	f.t.Helper()
	return auditHas(f.t, f.st.demoStore.Dir(), trace, want...)
}

func auditHas(t *testing.T, dir, trace string, want ...string) bool {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for line := range bytes.SplitSeq(b, []byte("\n")) {
			if !bytes.Contains(line, []byte(`"trace_id":"`+trace+`"`)) {
				continue
			}
			ok := true
			for _, w := range want {
				ok = ok && bytes.Contains(line, []byte(w))
			}
			if ok {
				return true
			}
		}
	}
	return false
}

// TestClockAcrossChangeovers moves the practices' business time with PUT
// /api/clock to the week of each UK changeover, reseeds the practice, and
// searches its free slots through the SSP: every slot before the change
// carries the old offset and every slot after it the new one, and the
// Bundle's lastUpdated is business time.
func TestClockAcrossChangeovers(t *testing.T) {
	f := startFaultStack(t)
	for _, c := range []struct {
		now           string
		change        string // the changeover's UK date
		before, after string
	}{
		{"2026-03-26T08:00:00Z", "2026-03-29", "+00:00", "+01:00"},
		{"2026-10-22T08:00:00+01:00", "2026-10-25", "+01:00", "+00:00"},
	} {
		if code, b := f.adminCall("PUT", "/api/clock", `{"now":"`+c.now+`"}`); code != 200 {
			t.Fatalf("PUT /api/clock: %d %s", code, b)
		}
		if code, b := f.adminCall("POST", "/api/demonstrator/reset", ""); code != 200 {
			t.Fatalf("reset: %d %s", code, b)
		}
		from := c.now[:10]
		day, err := time.Parse(time.DateOnly, from)
		if err != nil {
			t.Fatal(err)
		}
		q := "/Slot?start=ge" + from + "&end=le" + day.AddDate(0, 0, 6).Format(time.DateOnly) +
			"&status=free&_include=Slot:schedule"
		code, _, bundle := f.c.call(f.asid, f.root, "GET", q, gpconnect.SearchSlot, "", nil)
		if code != 200 {
			t.Fatalf("slot search at %s: %d %v", c.now, code, bundle)
		}
		meta, _ := bundle["meta"].(map[string]any)
		if lu, _ := meta["lastUpdated"].(string); !strings.HasPrefix(lu, from) {
			t.Errorf("Bundle lastUpdated %q is not business time %s", lu, c.now)
		}
		var early, late int
		for _, r := range entryResources(bundle) {
			if r["resourceType"] != "Slot" {
				continue
			}
			start := r["start"].(string)
			want := c.before
			// UK clocks change at 01:00 UTC; the default practice has
			// weekend surgeries, so the changeover Sunday has slots too.
			at, _ := time.Parse(time.RFC3339, start)
			if switchAt, _ := time.Parse(time.RFC3339, c.change+"T01:00:00Z"); !at.Before(switchAt) {
				want, late = c.after, late+1
			} else {
				early++
			}
			if !strings.HasSuffix(start, want) || !strings.HasSuffix(r["end"].(string), want) {
				t.Errorf("clock %s: slot %s–%s, want offset %s", c.now, start, r["end"], want)
			}
		}
		if early == 0 || late == 0 {
			t.Errorf("clock %s: %d slots before and %d after the changeover; want some of each", c.now, early, late)
		}
	}
	if code, b := f.adminCall("DELETE", "/api/clock", ""); code != 200 || !bytes.Contains(b, []byte(`"mode": "real"`)) {
		t.Errorf("DELETE /api/clock: %d %s", code, b)
	}
}
