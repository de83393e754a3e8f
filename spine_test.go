package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"sspemu/certs"
	"sspemu/demonstrator/demotest"
	"sspemu/gpconnect"
	"sspemu/pds"
	"sspemu/sds"
)

// spineConfig writes a config with every listener on a free loopback port,
// the embedded registry (its demonstrator endpoint on demoPort when the
// demonstrator runs), and extra merged in at the top level.
func spineConfig(t *testing.T, demoPort int, extra map[string]any) string {
	t.Helper()
	var def map[string]any
	if err := yaml.Unmarshal(defaultConfig, &def); err != nil {
		t.Fatal(err)
	}
	reg := def["registry"].(map[string]any)
	demo := map[string]any{"enabled": false}
	if demoPort != 0 {
		demo = map[string]any{"enabled": true, "listen": "localhost:" + strconv.Itoa(demoPort)}
		for _, s := range reg["systems"].([]any) {
			if sys := s.(map[string]any); sys["endpoint"] != nil {
				sys["endpoint"] = "https://localhost:" + strconv.Itoa(demoPort) + "/" + sys["ods"].(string) + "/STU3/1/gpconnect"
			}
		}
	}
	cfg := map[string]any{
		"state_dir":    filepath.Join(t.TempDir(), "state"),
		"ssp":          map[string]any{"listen": "127.0.0.1:0"},
		"admin":        map[string]any{"listen": "127.0.0.1:0"},
		"audit":        map[string]any{"sync": "none"},
		"demonstrator": demo,
		"spine": map[string]any{"listen": "127.0.0.1:0",
			"ldap": map[string]any{"listen": "127.0.0.1:0", "ldaps_listen": "127.0.0.1:0"}},
		"registry": reg,
	}
	for k, v := range extra {
		cfg[k] = v
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "cfg.yaml")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// spineClient trusts the dev CA and presents no certificate, as a consumer
// calling the public APIs.
func spineClient(t *testing.T, cfg Config) *http.Client {
	t.Helper()
	pool, err := certs.LoadCertPool(filepath.Join(cfg.PKIDir(), certs.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}, Timeout: 30 * time.Second}
}

// getJSON sends a GET with headers and decodes the JSON answer.
func getJSON(t *testing.T, c *http.Client, u string, headers map[string]string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("GET %s: %d, not JSON: %s", u, resp.StatusCode, raw)
	}
	return resp.StatusCode, m
}

func pdsHeaders() map[string]string { return map[string]string{"X-Request-ID": uuid.NewString()} }

func sdsHeaders() map[string]string {
	return map[string]string{"apikey": "test", "X-Correlation-ID": uuid.NewString()}
}

func total(m map[string]any) int { n, _ := m["total"].(float64); return int(n) }

// TestSpineListeners starts the whole Spine as serve does and calls each
// service over its real listener.
func TestSpineListeners(t *testing.T) {
	st, cfg := startTestStack(t, spineConfig(t, 0, nil))
	c := spineClient(t, cfg)
	base := "https://" + st.addrs["spine"]

	code, m := getJSON(t, c, base+sds.BasePath+"/Endpoint?organization="+url.QueryEscape(sds.SystemODS+"|A20047")+
		"&identifier="+url.QueryEscape(sds.SystemInteraction+"|"+gpconnect.ReadMetadata), sdsHeaders())
	if code != 200 || total(m) != 1 {
		t.Fatalf("SDS /Endpoint: %d %v", code, m)
	}
	code, m = getJSON(t, c, base+sds.BasePath+"/Endpoint", nil)
	if code != 401 {
		t.Errorf("SDS without apikey: %d %v", code, m)
	}
	code, m = getJSON(t, c, base+pds.BasePath+"/Patient/"+pds.TestSuperseded, pdsHeaders())
	if code != 200 || m["id"] != pds.TestSuperseding || !strings.Contains(fmt.Sprint(m["generalPractitioner"]), "A20047") {
		t.Fatalf("PDS: %d %v", code, m)
	}
	if code, m = getJSON(t, c, base+"/other", nil); code != 404 || m["resourceType"] != "OperationOutcome" {
		t.Errorf("unknown path: %d %v", code, m)
	}

	filter := "(&(nhsIDCode=A20047)(objectClass=nhsAs))"
	lc, err := ldap.DialURL("ldap://" + st.addrs["ldap"])
	if err != nil {
		t.Fatal(err)
	}
	res, err := lc.Search(ldap.NewSearchRequest(sds.BaseDN, ldap.ScopeWholeSubtree, 0, 0, 0, false, filter, []string{"uniqueIdentifier"}, nil))
	lc.Close()
	if err != nil || len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("uniqueIdentifier") != crashTo {
		t.Fatalf("LDAP: %v %v", res, err)
	}

	ldaps := func() error {
		cert, err := certs.LoadKeyPair(filepath.Join(cfg.PKIDir(), certs.ConsumerFile), filepath.Join(cfg.PKIDir(), certs.ConsumerKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		pool, _ := certs.LoadCertPool(filepath.Join(cfg.PKIDir(), certs.CAFile))
		lc, err := ldap.DialURL("ldaps://"+st.addrs["ldaps"], ldap.DialWithTLSConfig(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
		if err != nil {
			return err
		}
		defer lc.Close()
		lc.SetTimeout(20 * time.Second)
		res, err := lc.Search(ldap.NewSearchRequest(sds.BaseDN, ldap.ScopeWholeSubtree, 0, 0, 0, false, filter, []string{"uniqueIdentifier"}, nil))
		if err == nil && len(res.Entries) != 1 {
			return fmt.Errorf("%d entries", len(res.Entries))
		}
		return err
	}
	if err := ldaps(); err != nil {
		t.Fatalf("LDAPS with the consumer certificate: %v", err)
	}
	// A revoked certificate is refused from the next handshake (the CRL of
	// ssp.tls.crl, as at the SSP).
	if err := certs.Revoke(cfg.PKIDir(), filepath.Join(cfg.PKIDir(), certs.ConsumerFile)); err != nil {
		t.Fatal(err)
	}
	if err := ldaps(); err == nil {
		t.Error("LDAPS answered a revoked certificate")
	}

	// The admin API shows the registry with the configuration's key names.
	resp, err := http.Get("http://" + st.addrs["admin"] + "/api/registry")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, key := range []string{`"asid"`, `"party_key"`, `"cpa_id"`, `"supplier_ods"`, `"receives"`, `"from"`, `"interactions"`} {
		if !bytes.Contains(raw, []byte(key)) {
			t.Errorf("/api/registry lacks %s: %s", key, raw)
		}
	}
	if bytes.Contains(raw, []byte(`"PartyKey"`)) || bytes.Contains(raw, []byte(`"NotBefore"`)) {
		t.Errorf("/api/registry shows Go field names: %s", raw)
	}
}

// TestSpineFollowsReload edits the registry file of a running stack: SDS
// answers from the new registry over FHIR and LDAP as soon as the reload
// lands.
func TestSpineFollowsReload(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "registry.yaml")
	if err := os.WriteFile(reg, []byte(testRegistry+testAgreement), 0o600); err != nil {
		t.Fatal(err)
	}
	file := spineConfig(t, 0, map[string]any{"registry_file": reg})
	st, cfg := startTestStack(t, file)
	rl := &reloader{st: st, file: file, interval: 10 * time.Millisecond, result: st.reloadResult}
	rl.prime(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rl.run(ctx)

	c := spineClient(t, cfg)
	endpoint := "https://" + st.addrs["spine"] + sds.BasePath + "/Endpoint?organization=" + url.QueryEscape(sds.SystemODS+"|B82617") +
		"&identifier=" + url.QueryEscape(sds.SystemInteraction+"|"+gpconnect.ReadMetadata)
	lc, err := ldap.DialURL("ldap://" + st.addrs["ldap"])
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	ldapCount := func() int {
		res, err := lc.Search(ldap.NewSearchRequest(sds.BaseDN, ldap.ScopeWholeSubtree, 0, 0, 0, false,
			"(&(nhsIDCode=B82617)(objectClass=nhsMhs)(nhsMhsSvcIA="+gpconnect.ReadMetadata+"))", nil, nil))
		if err != nil {
			t.Fatal(err)
		}
		return len(res.Entries)
	}
	if _, m := getJSON(t, c, endpoint, sdsHeaders()); total(m) != 0 || ldapCount() != 0 {
		t.Fatalf("before the edit: %v", m)
	}
	second := `  - asid: "918999198994"
    name: Second practice
    ods: B82617
    party_key: B82617-0000001
    fqdn: localhost
    endpoint: https://localhost:9443/B82617/STU3/1/gpconnect
    cpa_id: S20001A000003
    receives: [foundations]
`
	writeAtomic(t, reg, strings.Replace(testRegistry, "agreements:\n", second+"agreements:\n", 1)+testAgreement)
	waitFor(t, "SDS FHIR to answer from the new registry", func() bool {
		_, m := getJSON(t, c, endpoint, sdsHeaders())
		return total(m) == 1
	})
	if n := ldapCount(); n != 1 {
		t.Errorf("LDAP after the reload: %d entries", n)
	}
}

// TestJourneyPDSToPractice is a consumer's whole journey at each practice:
// find the patient on PDS, look the practice up on SDS (FHIR, and LDAP for
// one step), then find the patient and book through the SSP with nothing
// but the NHS number known in advance. PDS knows the practices' patients
// from their stores, as serve wires it.
func TestJourneyPDSToPractice(t *testing.T) {
	file := spineConfig(t, freeLoopbackPort(t), nil)
	st, cfg := startTestStack(t, file)
	for _, nhs := range []string{"9690937286", "9690937413"} { // A20047's and B82617's first patients
		t.Run(nhs, func(t *testing.T) { journeyPDSToPractice(t, st, cfg, nhs) })
	}
}

func journeyPDSToPractice(t *testing.T, st *stack, cfg Config, nhs string) {
	c := spineClient(t, cfg)
	pdsBase := "https://" + st.addrs["spine"] + pds.BasePath

	// 1. PDS: read the record, then trace it again by demographics.
	code, patient := getJSON(t, c, pdsBase+"/Patient/"+nhs, pdsHeaders())
	if code != 200 {
		t.Fatalf("PDS read: %d %v", code, patient)
	}
	name := patient["name"].([]any)[0].(map[string]any)
	q := url.Values{"family": {name["family"].(string)}, "given": {name["given"].([]any)[0].(string)},
		"birthdate": {"eq" + patient["birthDate"].(string)}}
	code, bundle := getJSON(t, c, pdsBase+"/Patient?"+q.Encode(), pdsHeaders())
	if code != 200 || total(bundle) != 1 {
		t.Fatalf("PDS search %s: %d %v", q.Encode(), code, bundle)
	}
	ods := patient["generalPractitioner"].([]any)[0].(map[string]any)["identifier"].(map[string]any)["value"].(string)

	// 2. SDS: the consumer's own ASID by its supplier, then the practice.
	ctx := context.Background()
	sdsBase := "https://" + st.addrs["spine"] + sds.BasePath
	code, own := getJSON(t, c, sdsBase+"/Device?organization="+url.QueryEscape(sds.SystemODS+"|Y12345")+
		"&identifier="+url.QueryEscape(sds.SystemInteraction+"|"+gpconnect.SearchPatient)+
		"&manufacturing-organization="+url.QueryEscape(sds.SystemODS+"|Y90001"), sdsHeaders())
	if code != 200 || total(own) != 1 {
		t.Fatalf("own ASID: %d %v", code, own)
	}
	from := fhirIdentifier(own["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any), sds.SystemASID)
	lookup := func(interaction string) lookupResult {
		t.Helper()
		r, err := lookupFHIR(ctx, cfg, sdsBase, ods, interaction)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	find := lookup(gpconnect.SearchPatient)
	viaLDAP, err := lookupLDAP(cfg, "ldap", "ldap://"+st.addrs["ldap"], ods, gpconnect.SearchPatient)
	if err != nil || viaLDAP != find {
		t.Fatalf("LDAP lookup %+v (%v), FHIR %+v", viaLDAP, err, find)
	}

	// 3. Through the SSP, with what SDS returned.
	consumer := consumerClient(t, cfg.PKIDir())
	ssp := "https://" + st.addrs["ssp"] + "/"
	call := func(method string, r lookupResult, interaction, path, body string) (int, map[string]any) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, ssp+r.Endpoint+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		in, _ := gpconnect.Lookup(interaction)
		req.Header.Set("Ssp-TraceID", uuid.NewString())
		req.Header.Set("Ssp-From", from)
		req.Header.Set("Ssp-To", r.ASID)
		req.Header.Set("Ssp-InteractionID", interaction)
		req.Header.Set("Authorization", "Bearer "+gpconnect.DefaultTokenSpec(in, r.Endpoint, time.Now()).Encode())
		req.Header.Set("Accept", gpconnect.MIMEJSON)
		if body != "" {
			req.Header.Set("Content-Type", gpconnect.MIMEJSON)
		}
		resp, err := consumer.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		raw, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %s", method, path, resp.StatusCode, raw)
		}
		return resp.StatusCode, m
	}
	code, found := call("GET", find, gpconnect.SearchPatient, "/Patient?identifier="+url.QueryEscape("https://fhir.nhs.uk/Id/nhs-number|"+nhs), "")
	pats := demotest.Resources(found, "Patient")
	if code != 200 || len(pats) != 1 {
		t.Fatalf("find the patient at the practice: %d %v", code, found)
	}
	patientRef := "Patient/" + pats[0]["id"].(string)

	slots := lookup(gpconnect.SearchSlot)
	now := time.Now()
	code, free := call("GET", slots, gpconnect.SearchSlot, fmt.Sprintf("/Slot?start=ge%s&end=le%s&status=free&_include=Slot:schedule&_include:recurse=Schedule:actor:Location",
		now.Format("2006-01-02"), now.AddDate(0, 0, 13).Format("2006-01-02")), "")
	list := demotest.Resources(free, "Slot")
	if code != 200 || len(list) == 0 {
		t.Fatalf("free slots: %d %v", code, free)
	}
	book := lookup(gpconnect.CreateAppointment)
	code, appt := call("POST", book, gpconnect.CreateAppointment, "/Appointment", demotest.JSON(demotest.Booking(list[0], patientRef, demotest.SlotLocation(free, list[0]), time.Now())))
	if code != 201 || appt["status"] != "booked" {
		t.Fatalf("book: %d %v", code, appt)
	}
}

// TestLookupCommand runs `sspemu lookup` against a running stack, over the
// FHIR API, LDAP and LDAPS, in every output format.
func TestLookupCommand(t *testing.T) {
	file := spineConfig(t, 0, nil)
	st, cfg := startTestStack(t, file)
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		cmd := newRootCmd(&out, &errOut)
		cmd.SetArgs(append([]string{"lookup", "--config", file}, args...))
		err := cmd.ExecuteContext(context.Background())
		return out.String(), err
	}
	endpoint := "https://localhost:9443/A20047/STU3/1/gpconnect"
	fhirServer := "https://" + st.addrs["spine"] + sds.BasePath
	for _, tt := range []struct{ via, server string }{
		{"fhir", fhirServer}, {"ldap", "ldap://" + st.addrs["ldap"]}, {"ldaps", "ldaps://" + st.addrs["ldaps"]},
	} {
		t.Run(tt.via, func(t *testing.T) {
			out, err := run("--ods", "A20047", "--interaction", gpconnect.SearchSlot, "--via", tt.via, "--server", tt.server)
			want := "endpoint   " + endpoint + "\nparty key  A20047-0000002\nASID       918999198993   (send as Ssp-To)\n" +
				"SSP URL    https://" + cfg.SSP.Listen + "/" + endpoint + "/<request>\n"
			if err != nil || out != want {
				t.Fatalf("%v\n%s\nwant\n%s", err, out, want)
			}
		})
	}
	out, err := run("--ods", "A20047", "--interaction", gpconnect.ReadMetadata, "--server", fhirServer, "--format", "env")
	if err != nil || !strings.Contains(out, "GPC_ASID='918999198993'\n") || !strings.Contains(out, "GPC_ENDPOINT='"+endpoint+"'\n") {
		t.Errorf("env: %v\n%s", err, out)
	}
	out, err = run("--ods", "A20047", "--interaction", gpconnect.ReadMetadata, "--server", fhirServer, "--format", "json")
	var r lookupResult
	if err != nil || json.Unmarshal([]byte(out), &r) != nil || r.PartyKey != "A20047-0000002" || r.Interaction != gpconnect.ReadMetadata {
		t.Errorf("json: %v\n%s", err, out)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--ods", "Y99999", "--interaction", gpconnect.ReadMetadata, "--server", fhirServer}, "SDS has no endpoint (GET /Endpoint) for ODS code Y99999"},
		{[]string{"--ods", "Y12345", "--interaction", gpconnect.ReadMetadata, "--via", "ldap", "--server", "ldap://" + st.addrs["ldap"]}, "SDS has no MHS record (nhsMhs) for ODS code Y12345"},
		{[]string{"--interaction", gpconnect.ReadMetadata}, "say --ods"},
		{[]string{"--ods", "A20047", "--interaction", gpconnect.ReadMetadata, "--via", "smoke"}, `--via "smoke"`},
		{[]string{"--ods", "A20047", "--interaction", gpconnect.ReadMetadata, "--server", fhirServer, "--format", "xml"}, `--format "xml"`},
		{[]string{"--ods", "A20047", "--interaction", gpconnect.ReadMetadata, "--server", "https://127.0.0.1:1" + sds.BasePath}, "cannot reach SDS"},
	} {
		if _, err := run(tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.args, err, tt.want)
		}
	}
}

func TestSpineConfigErrors(t *testing.T) {
	file := writeFile(t, "c.yaml", "spine:\n  listen: nowhere\n  ldap:\n    listen: \"\"\n    ldaps_listen: localhost:notaport\n")
	cfg, err := loadConfig(viper.New(), file, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.validate()
	for _, want := range []string{"spine.listen:", "spine.ldap.ldaps_listen:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate: %v, want %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "spine.ldap.listen:") {
		t.Errorf("an empty spine.ldap.listen means not served: %v", err)
	}
	off := writeFile(t, "off.yaml", "spine:\n  enabled: false\n  listen: nowhere\n")
	cfg, _ = loadConfig(viper.New(), off, nil)
	if err := cfg.validate(); err != nil && strings.Contains(err.Error(), "spine") {
		t.Errorf("spine off is not checked: %v", err)
	}
}
