package faults

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sspemu/certs"
	"sspemu/gpconnect"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// pkiDir holds one dev PKI for the whole run, made on first use: RSA key
// generation under -race is too slow to repeat per test.
var (
	pkiRoot string
	pkiOnce = sync.OnceValues(func() (string, error) {
		dir := filepath.Join(pkiRoot, "pki")
		return dir, certs.Init(dir, false, certs.Options{})
	})
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "sspemu-faults-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	pkiRoot = tmp
	return m.Run()
}

func pki(t *testing.T) string {
	t.Helper()
	dir, err := pkiOnce()
	if err != nil {
		t.Fatalf("dev PKI: %v", err)
	}
	return dir
}

// practice is a stand-in for the caller: a mutual-TLS server with the dev
// PKI (as the demonstrator has) that matches the set at at, acts with Act
// and otherwise answers 200. It renders statuses and the unknown-rule 400
// the way the integration plan says the SSP and the practices will.
type practice struct {
	*httptest.Server
	client *http.Client
	// acted receives what Act returned, for each request a rule acted on.
	acted chan error
	// matched is told when a request has matched, before Act waits.
	matched chan struct{}
}

func startPractice(t *testing.T, set *Set, at At) *practice {
	t.Helper()
	dir := pki(t)
	p := &practice{acted: make(chan error, 16), matched: make(chan struct{}, 16)}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, _ := gpconnect.NegotiateResponse(r.URL.RawQuery, r.Header.Get("Accept"), r.Header.Get("Content-Type"))
		v := View{
			Interaction: r.Header.Get("Ssp-InteractionID"),
			From:        r.Header.Get("Ssp-From"),
			To:          r.Header.Get("Ssp-To"),
			Method:      r.Method,
			Path:        strings.TrimPrefix(r.URL.Path, "/A20047/STU3/1/gpconnect"),
			Query:       r.URL.RawQuery,
		}
		if set.NeedsBody(at) {
			v.Body, _ = PeekBody(r, MaxPeek)
		}
		d, err := set.Match(at, v, r.Header.Get(Header))
		var unknown *UnknownRuleError
		if errors.As(err, &unknown) {
			gpconnect.WriteOutcome(w, f, http.StatusBadRequest, gpconnect.ProviderOutcome(http.StatusBadRequest, gpconnect.CodeBadRequest, err.Error()))
			return
		}
		if d != nil {
			p.matched <- struct{}{}
			w.Header().Set("Sspemu-Fault-Rule", d.Fault())
		}
		tv := TokenValues{From: v.From, To: v.To, Target: "https://" + r.Host + r.URL.RequestURI(),
			Endpoint: "https://" + r.Host + "/A20047/STU3/1/gpconnect", CPAID: "S20001A000002"}
		done, err := Act(r.Context(), w, d, func(s Status) {
			w.Header().Set("Sspemu-Reason", s.Reason())
			s.Refusal(tv).Write(w, f)
		})
		if d != nil {
			p.acted <- err
		}
		if done {
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", f.ContentType())
		fmt.Fprintf(w, `{"resourceType":"CapabilityStatement","echo":%q}`, body)
	})
	ts := httptest.NewUnstartedServer(h)
	cert, err := certs.LoadKeyPair(filepath.Join(dir, certs.ProviderFile), filepath.Join(dir, certs.ProviderKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := certs.LoadCertPool(filepath.Join(dir, certs.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	client, err := certs.LoadKeyPair(filepath.Join(dir, certs.SSPClientFile), filepath.Join(dir, certs.SSPClientKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{client}, MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	p.Server, p.client = ts, &http.Client{Transport: tr}
	return p
}

func (p *practice) request(t *testing.T, ctx context.Context, method, path, accept, header string, body string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, p.URL+"/A20047/STU3/1/gpconnect"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Ssp-InteractionID", gpconnect.ReadMetadata)
	req.Header.Set("Ssp-From", "200000000359")
	req.Header.Set("Ssp-To", "918999198993")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if header != "" {
		req.Header.Set(Header, header)
	}
	return p.client.Do(req)
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// outcomeJSON is what the tests read of an OperationOutcome.
type outcomeJSON struct {
	ResourceType string `json:"resourceType"`
	Meta         *struct {
		Profile []string `json:"profile"`
	} `json:"meta"`
	Issue []struct {
		Severity string `json:"severity"`
		Code     string `json:"code"`
		Details  struct {
			Coding []struct{ System, Code, Display string } `json:"coding"`
		} `json:"details"`
		Diagnostics string `json:"diagnostics"`
	} `json:"issue"`
}

func TestWireStatusAtSSP(t *testing.T) {
	set := newSet(t, Options{}, Rule{Name: "ssp-502", At: AtSSP, Status: 502, Match: Match{Interaction: "foundations"}})
	p := startPractice(t, set, AtSSP)

	resp, err := p.request(t, t.Context(), "GET", "/metadata", gpconnect.MIMEJSON, "", "")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != 502 || resp.Header.Get("Content-Type") != "application/fhir+json;charset=utf-8" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %v\n%s", resp.StatusCode, resp.Header, body)
	}
	var o outcomeJSON
	if err := json.Unmarshal([]byte(body), &o); err != nil {
		t.Fatal(err)
	}
	token := "ERROR_COMMUNICATING_TO_ENDPOINT_URL_" + p.URL + "/A20047/STU3/1/gpconnect/metadata"
	is := o.Issue[0]
	if o.ResourceType != "OperationOutcome" || o.Meta != nil || is.Code != "transient" || is.Severity != "error" ||
		is.Details.Coding[0].System != gpconnect.SSPCodingSystem || is.Details.Coding[0].Code != "502" ||
		is.Details.Coding[0].Display != token || is.Diagnostics != token {
		t.Errorf("not the SSP's 502 body:\n%s", body)
	}
	if got := resp.Header.Get("Sspemu-Reason"); got != `fault rule "ssp-502" made the SSP answer 502 ERROR_COMMUNICATING_TO_ENDPOINT_URL (sspemu fault injection, not a real failure)` {
		t.Errorf("reason %q", got)
	}

	// The same in XML, as negotiated.
	resp, err = p.request(t, t.Context(), "GET", "/metadata", gpconnect.MIMEXML, "", "")
	if err != nil {
		t.Fatal(err)
	}
	body = readAll(t, resp)
	var x struct {
		XMLName xml.Name
		Issue   struct {
			Details struct {
				Coding struct {
					Code struct {
						Value string `xml:"value,attr"`
					} `xml:"code"`
					Display struct {
						Value string `xml:"value,attr"`
					} `xml:"display"`
				} `xml:"coding"`
			} `xml:"details"`
		} `xml:"issue"`
	}
	if err := xml.Unmarshal([]byte(body), &x); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if resp.StatusCode != 502 || x.XMLName.Local != "OperationOutcome" || x.XMLName.Space != "http://hl7.org/fhir" ||
		x.Issue.Details.Coding.Code.Value != "502" || x.Issue.Details.Coding.Display.Value != token {
		t.Errorf("XML 502:\n%s", body)
	}
}

func TestWireStatusAtProvider(t *testing.T) {
	set := newSet(t, Options{}, Rule{Name: "practice-404", At: AtProvider, Status: 404, Code: "PATIENT_NOT_FOUND", Match: Match{Path: "^/Patient/"}})
	p := startPractice(t, set, AtProvider)

	resp, err := p.request(t, t.Context(), "GET", "/Patient/2?_format=json", "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	var o outcomeJSON
	if err := json.Unmarshal([]byte(body), &o); err != nil {
		t.Fatal(err)
	}
	is := o.Issue[0]
	if resp.StatusCode != 404 || o.Meta == nil || o.Meta.Profile[0] != gpconnect.OutcomeProfile || is.Code != "not-found" ||
		is.Details.Coding[0].System != gpconnect.ProviderCodingSystem || is.Details.Coding[0].Code != "PATIENT_NOT_FOUND" ||
		is.Details.Coding[0].Display != "Patient not found" || !strings.Contains(is.Diagnostics, `"practice-404"`) {
		t.Errorf("not a GP Connect 404:\n%s", body)
	}
	// A request the rule does not match goes through.
	resp, err = p.request(t, t.Context(), "GET", "/metadata", "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != 200 || !strings.Contains(body, "CapabilityStatement") {
		t.Errorf("unmatched request: %d %s", resp.StatusCode, body)
	}
}

func TestWireDelay(t *testing.T) {
	const delay = 300 * time.Millisecond
	set := newSet(t, Options{}, Rule{Name: "slow", At: AtProvider, Delay: &Delay{Fixed: delay.String()}})
	p := startPractice(t, set, AtProvider)
	start := time.Now()
	resp, err := p.request(t, t.Context(), "POST", "/Patient/$gpc.registerpatient", "", "", registerJSON)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	// A lower bound only: a busy machine may be slower, never faster.
	if took := time.Since(start); took < delay {
		t.Errorf("answered after %s, before the %s delay", took, delay)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Sspemu-Fault-Rule") != "slow" || !strings.Contains(body, "registerPatient") {
		t.Errorf("after the delay the request must go on whole: %d %s", resp.StatusCode, body)
	}
	if err := <-p.acted; err != nil {
		t.Errorf("Act: %v", err)
	}
}

// TestWireDelayClientGone: a consumer that gives up during a delay ends the
// wait; the practice does not answer into the void.
func TestWireDelayClientGone(t *testing.T) {
	set := newSet(t, Options{}, Rule{Name: "stuck", At: AtProvider, Delay: &Delay{Fixed: "9m"}})
	p := startPractice(t, set, AtProvider)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		resp, err := p.request(t, ctx, "GET", "/metadata", "", "", "")
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-p.matched
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("client: %v", err)
	}
	if err := <-p.acted; !errors.Is(err, context.Canceled) {
		t.Errorf("Act after the client left: %v, want context.Canceled", err)
	}
}

func TestWireReset(t *testing.T) {
	set := newSet(t, Options{}, Rule{Name: "drop", At: AtProvider, Reset: true, Times: ptr(1)})
	p := startPractice(t, set, AtProvider)
	resp, err := p.request(t, t.Context(), "GET", "/metadata", "", "", "")
	if err == nil {
		body := readAll(t, resp)
		t.Fatalf("reset answered %d %s", resp.StatusCode, body)
	}
	if runtime.GOOS == "linux" && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("client saw %v, want a connection reset", err)
	}
	if err := <-p.acted; err != nil {
		t.Errorf("Reset: %v", err)
	}
	// times: 1, so the next call (on a new connection) is answered.
	resp, err = p.request(t, t.Context(), "GET", "/metadata", "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if readAll(t, resp); resp.StatusCode != 200 {
		t.Errorf("second call: %d", resp.StatusCode)
	}
}

func TestWireHeader(t *testing.T) {
	set, err := NewSet(Config{Header: true, Rules: []Rule{
		{Name: "consent", At: AtProvider, Status: 403, Code: "NO_PATIENT_CONSENT", Probability: ptr(0.0)},
	}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := startPractice(t, set, AtProvider)
	resp, err := p.request(t, t.Context(), "GET", "/metadata", "", "consent", "")
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != 403 || !strings.Contains(body, "NO_PATIENT_CONSENT") {
		t.Errorf("named rule: %d %s", resp.StatusCode, body)
	}
	resp, err = p.request(t, t.Context(), "GET", "/metadata", "", "no-such-rule", "")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != 400 || !strings.Contains(body, `the Sspemu-Fault header names fault rule \"no-such-rule\", which is not loaded`) {
		t.Errorf("unknown rule: %d %s", resp.StatusCode, body)
	}
	// Without the header the rule (probability 0) never acts.
	resp, err = p.request(t, t.Context(), "GET", "/metadata", "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if readAll(t, resp); resp.StatusCode != 200 {
		t.Errorf("no header: %d", resp.StatusCode)
	}
}

// TestWireNHSNumberFromBody: a rule on an NHS number finds it in a POSTed
// body, and the body still reaches the handler whole.
func TestWireNHSNumberFromBody(t *testing.T) {
	set := newSet(t, Options{}, Rule{Name: "jane", At: AtProvider, Status: 409, Match: Match{NHSNumber: "9000000009"}})
	p := startPractice(t, set, AtProvider)
	resp, err := p.request(t, t.Context(), "POST", "/Patient/$gpc.registerpatient", "", "", registerXML)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != 409 || !strings.Contains(body, "DUPLICATE_REJECTED") {
		t.Errorf("register Jane: %d %s", resp.StatusCode, body)
	}
	other := strings.Replace(registerJSON, "9000000009", "9690937286", 1)
	resp, err = p.request(t, t.Context(), "POST", "/Patient/$gpc.registerpatient", "", "", other)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != 200 || !strings.Contains(body, "9690937286") {
		t.Errorf("another patient: %d %s", resp.StatusCode, body)
	}
}

func TestSleep(t *testing.T) {
	if err := Sleep(t.Context(), 0); err != nil {
		t.Errorf("zero: %v", err)
	}
	if err := Sleep(t.Context(), time.Millisecond); err != nil {
		t.Errorf("short: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := Sleep(ctx, MaxDelay); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	ctx, cancel = context.WithCancel(t.Context())
	go cancel()
	if err := Sleep(ctx, MaxDelay); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled while sleeping: %v", err)
	}
}

func TestResetWithoutConnection(t *testing.T) {
	if err := Reset(httptest.NewRecorder()); !errors.Is(err, ErrCannotReset) {
		t.Errorf("recorder: %v", err)
	}
	done, err := Act(t.Context(), httptest.NewRecorder(), &Decision{Reset: true, Rules: []string{"x"}}, nil)
	if !done || !errors.Is(err, ErrCannotReset) {
		t.Errorf("Act: %v %v", done, err)
	}
	if done, err := Act(t.Context(), httptest.NewRecorder(), nil, nil); done || err != nil {
		t.Errorf("nil decision: %v %v", done, err)
	}
	if done, err := Act(t.Context(), httptest.NewRecorder(), &Decision{Delay: time.Millisecond}, nil); done || err != nil {
		t.Errorf("delay alone: %v %v", done, err)
	}
}
