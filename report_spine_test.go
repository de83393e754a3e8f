package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"sspemu/audit"
	"sspemu/certs"
	"sspemu/gpconnect"
	"sspemu/pds"
	"sspemu/report"
	"sspemu/sds"
)

// ldapsearchCmd runs the real OpenLDAP client against the stack's SDS,
// with the dev PKI (and, over LDAPS, the consumer's certificate) in its
// environment, and returns the values of attr in its LDIF answer.
func ldapsearchCmd(t *testing.T, pki, url, filter, attr string) []string {
	t.Helper()
	bin, err := exec.LookPath("ldapsearch")
	if err != nil {
		t.Fatal("ldapsearch is needed (Debian ldap-utils; .ci/run installs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-x", "-LLL", "-o", "ldif-wrap=no", "-o", "nettimeout=20", "-H", url, "-b", sds.BaseDN, filter, attr)
	cmd.Env = append(os.Environ(), "LDAPCONF=/dev/null", "LDAPRC=/dev/null", "LDAPTLS_REQCERT=demand",
		"LDAPTLS_CACERT="+filepath.Join(pki, certs.CAFile),
		"LDAPTLS_CERT="+filepath.Join(pki, certs.ConsumerFile), "LDAPTLS_KEY="+filepath.Join(pki, certs.ConsumerKeyFile))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ldapsearch %s %s: %v\n%s", url, filter, err, out)
	}
	var vals []string
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, attr+": "); ok {
			vals = append(vals, v)
		}
	}
	return vals
}

// TestReportSpineSession runs a consumer's whole journey against the real
// stack: a PDS trace of a designated error patient (its GP practice), SDS
// lookups of that practice over the FHIR API, plain LDAP and LDAPS with
// the real ldapsearch (its ASID and party key, then the MHS endpoint of
// each interaction), then GP Connect calls through the SSP with what SDS
// returned: a capability statement, a patient search answered 403
// NO_PATIENT_CONSENT by the practice, and one answered 500 in XML. The
// report then marks GPC-SPN-TST-01 and 02 met from the Spine services
// journal, shows the provider's error codes, and refuses a tampered
// journal, naming the entry.
func TestReportSpineSession(t *testing.T) {
	f := startFaultStack(t)
	cfg := f.st
	pki := filepath.Join(filepath.Dir(f.st.store.Dir()), "pki")
	spine := spineClientFor(t, pki)
	consent, failure := "9690937561", "9690937588" // the seed's designated error patients (403 NO_PATIENT_CONSENT, 500)

	// 1. PDS: trace the patient, which names the GP practice.
	code, patient := getJSON(t, spine, "https://"+cfg.addrs["spine"]+pds.BasePath+"/Patient/"+consent, pdsHeaders())
	if code != 200 {
		t.Fatalf("PDS read: %d %v", code, patient)
	}
	ods := patient["generalPractitioner"].([]any)[0].(map[string]any)["identifier"].(map[string]any)["value"].(string)

	// 2. SDS: the practice's ASID over FHIR, and again with its party key
	// over plain LDAP; the endpoint of each interaction over LDAPS.
	code, dev := getJSON(t, spine, "https://"+cfg.addrs["spine"]+sds.BasePath+"/Device?organization="+url.QueryEscape(sds.SystemODS+"|"+ods)+
		"&identifier="+url.QueryEscape(sds.SystemInteraction+"|"+gpconnect.SearchPatient), sdsHeaders())
	if code != 200 || total(dev) != 1 {
		t.Fatalf("SDS /Device: %d %v", code, dev)
	}
	asid := fhirIdentifier(dev["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any), sds.SystemASID)
	keys := ldapsearchCmd(t, pki, "ldap://"+cfg.addrs["ldap"], "(&(nhsIDCode="+ods+")(objectClass=nhsAs)(nhsAsSvcIA="+gpconnect.ReadMetadata+"))", "nhsMhsPartyKey")
	ids := ldapsearchCmd(t, pki, "ldap://"+cfg.addrs["ldap"], "(&(nhsIDCode="+ods+")(objectClass=nhsAs)(nhsAsSvcIA="+gpconnect.ReadMetadata+"))", "uniqueIdentifier")
	if len(keys) != 1 || len(ids) != 1 || ids[0] != asid {
		t.Fatalf("LDAP nhsAs: party keys %v, ASIDs %v; FHIR said %s", keys, ids, asid)
	}
	endpointOf := func(interaction string) string {
		t.Helper()
		eps := ldapsearchCmd(t, pki, "ldaps://"+cfg.addrs["ldaps"],
			"(&(nhsIDCode="+ods+") (objectClass=nhsMhs) (nhsMhsPartyKey="+keys[0]+") (nhsMhsSvcIA="+interaction+"))", "nhsMhsEndPoint")
		if len(eps) != 1 {
			t.Fatalf("LDAPS endpoint of %s: %v", interaction, eps)
		}
		return eps[0]
	}

	// 3. GP Connect through the SSP, with what SDS returned.
	traces := map[string]string{}
	send := func(name, format, interaction, rel string, want int) {
		t.Helper()
		root := endpointOf(interaction)
		c := *f.c
		c.format = format
		traces[name] = newTrace()
		if got, _, body := c.call(asid, root, "GET", rel, interaction, "", map[string]string{"Ssp-TraceID": traces[name]}); got != want {
			t.Fatalf("%s: %d, want %d: %v", name, got, want, body)
		}
		f.transaction(traces[name])
	}
	find := func(nhs string) string {
		return "/Patient?identifier=" + url.QueryEscape("https://fhir.nhs.uk/Id/nhs-number|"+nhs)
	}
	send("metadata", "json", gpconnect.ReadMetadata, "/metadata", 200)
	send("consent", "json", gpconnect.SearchPatient, find(consent), 403)
	send("failure", "xml", gpconnect.SearchPatient, find(failure), 500)
	send("found", "json", gpconnect.SearchPatient, find("9690937286"), 200)

	// The transactions carry the provider's codes and the searchset count.
	for name, want := range map[string]string{"consent": "NO_PATIENT_CONSENT", "failure": "INTERNAL_SERVER_ERROR"} {
		if tx := f.transaction(traces[name]); tx.ProviderCode != want || tx.AuditSeq == 0 || tx.RespContentType == "" {
			t.Errorf("%s: transaction %+v, want provider code %s, audit_seq and content type", name, tx, want)
		}
	}
	if tx := f.transaction(traces["found"]); tx.Entries == nil || tx.EntryTypes["Patient"] != 1 {
		t.Errorf("found: transaction %+v, want a searchset of one Patient", tx)
	}

	// The journal is written after each answer: wait for every call to be
	// in it (PDS, SDS FHIR, two LDAP searches, four LDAPS searches and
	// their handshakes).
	dir := f.st.store.Dir()
	waitJournal(t, dir, 1+1+2+4+4)

	_, rep, res := runReport(t, dir, "spine", "json")
	shows := func(id string, want ...string) {
		t.Helper()
		r := res[id]
		var all []string
		for _, e := range r.Evidence {
			all = append(all, "trace "+e.TraceID)
			all = append(all, e.Checked...)
		}
		text := strings.Join(all, "\n")
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("%s (%s: %s): evidence lacks %q:\n%s", id, r.Result, r.Why, w, text)
			}
		}
	}
	for _, id := range []string{"GPC-SPN-TST-01", "GPC-SPN-TST-02", "GPC-SPN-TST-03", "GPC-SPN-TST-07", "GPC-SPN-TST-09"} {
		if res[id].Result != report.Met {
			t.Errorf("%s: %s (%s)", id, res[id].Result, res[id].Why)
		}
	}
	shows("GPC-SPN-TST-01", "SDS FHIR GET", "returned nhsAs "+asid, "then used Ssp-To "+asid)
	shows("GPC-SPN-TST-02", "SDS LDAP search", "on ldaps", "objectClass=nhsMhs", "then used the endpoint")
	shows("GPC-SPN-TST-03", "client certificate issued by", "valid until")
	shows("GPC-SPN-TST-07", "provider OperationOutcome code NO_PATIENT_CONSENT", "trace "+traces["consent"], "Content-Encoding gzip")
	shows("GPC-SPN-TST-09", "trace "+traces["consent"])
	if rep.Range.SpineJournal == nil || *rep.Range.SpineJournal < 12 {
		t.Errorf("journal entries in range: %v", rep.Range.SpineJournal)
	}

	// The LDAPS handshakes name the consumer's certificate in the journal.
	jf, err := audit.ChainFiles(dir, audit.SpineChain)
	if err != nil || len(jf) == 0 {
		t.Fatal(jf, err)
	}
	data, _ := os.ReadFile(jf[0])
	if !regexp.MustCompile(`"method":"connect","request":"TLS handshake".*"client_subject":"[^"]*` + regexp.QuoteMeta(certs.DefaultConsumerFQDN)).Match(data) {
		t.Errorf("no LDAPS handshake naming the consumer's certificate in the journal:\n%s", data)
	}
	if o, err := run(t, "audit", "verify", dir); err != nil || !strings.Contains(o, "intact: spine-000001.jsonl") {
		t.Errorf("audit verify: %v\n%s", err, o)
	}

	// Tampered: edit one journal entry in a copy; the report names it.
	tdir := t.TempDir()
	for _, chain := range []string{audit.AuditChain, audit.TransactionChain, audit.SpineChain} {
		files, _ := audit.ChainFiles(dir, chain)
		for _, src := range append(files, filepath.Join(dir, chain+".head")) {
			b, err := os.ReadFile(src)
			if errors.Is(err, os.ErrNotExist) && filepath.Ext(src) == ".head" {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if chain == audit.SpineChain && filepath.Ext(src) == ".jsonl" {
				b = bytes.Replace(b, []byte(`"nhs_number":"`+consent), []byte(`"nhs_number":"9690937286`), 1)
			}
			if err := os.WriteFile(filepath.Join(tdir, filepath.Base(src)), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, err = run(t, "report", "--audit", tdir, "--from", "200000000359", "--format", "json", "--out", filepath.Join(tdir, "r.json"))
	if err == nil || !strings.Contains(err.Error(), "Spine services journal") || !strings.Contains(err.Error(), "(seq 1): edited") {
		t.Fatalf("report over a tampered journal: %v", err)
	}
}

// spineClientFor is spineClient for a PKI directory.
func spineClientFor(t *testing.T, pki string) *http.Client {
	t.Helper()
	var cfg Config
	cfg.StateDir = filepath.Dir(pki)
	return spineClient(t, cfg)
}

// waitJournal waits until the Spine services journal in dir holds at least
// n entries: they are queued after each answer.
func waitJournal(t *testing.T, dir string, n int) {
	t.Helper()
	for range 500 {
		files, err := audit.ChainFiles(dir, audit.SpineChain)
		if err != nil {
			t.Fatal(err)
		}
		lines := 0
		for _, f := range files {
			b, _ := os.ReadFile(f)
			lines += bytes.Count(b, []byte(`"service":`))
		}
		if lines >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the Spine services journal in %s did not reach %d entries", dir, n)
}
