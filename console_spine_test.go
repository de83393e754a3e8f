package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"sspemu/gpconnect"
	"sspemu/pds"
	"sspemu/sds"
)

// TestConsoleShowsSpineCalls makes a real SDS FHIR call, an LDAP search and
// a PDS call against the stack, and reads them back from the console's
// stream on the admin listener, each as an entry of its own kind.
func TestConsoleShowsSpineCalls(t *testing.T) {
	st, cfg := startTestStack(t, spineConfig(t, 0, nil))
	c := spineClient(t, cfg)
	base := "https://" + st.addrs["spine"]
	sdsH, pdsH := sdsHeaders(), pdsHeaders()
	if code, m := getJSON(t, c, base+sds.BasePath+"/Endpoint?organization="+url.QueryEscape(sds.SystemODS+"|A20047")+
		"&identifier="+url.QueryEscape(sds.SystemInteraction+"|"+gpconnect.ReadMetadata), sdsH); code != 200 {
		t.Fatalf("SDS: %d %v", code, m)
	}
	if code, m := getJSON(t, c, base+pds.BasePath+"/Patient/"+pds.TestSuperseded, pdsH); code != 200 {
		t.Fatalf("PDS: %d %v", code, m)
	}
	lc, err := ldap.DialURL("ldap://" + st.addrs["ldap"])
	if err != nil {
		t.Fatal(err)
	}
	_, err = lc.Search(ldap.NewSearchRequest(sds.BaseDN, ldap.ScopeWholeSubtree, 0, 0, 0, false, "(nhsIDCode=A20047)", nil, nil))
	lc.Close()
	if err != nil {
		t.Fatal(err)
	}

	resp, err := http.Get("http://" + st.addrs["admin"] + "/console/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	type row struct {
		ID      int    `json:"id"`
		Kind    string `json:"kind"`
		TraceID string `json:"trace_id"`
		Status  int    `json:"status"`
		Request string `json:"request"`
		Results *int   `json:"results"`
		Client  string `json:"client"`
		From    string `json:"from"`
	}
	got := map[string]row{}
	sc := bufio.NewScanner(resp.Body)
	for len(got) < 3 && sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var r row
		if json.Unmarshal([]byte(data), &r) == nil && r.ID > 0 {
			got[r.Kind] = r
		}
	}
	if s := got["sds"]; s.TraceID != sdsH["X-Correlation-ID"] || s.Status != 200 || s.Results == nil || *s.Results != 1 ||
		!strings.Contains(s.Request, "/Endpoint?organization=") || s.Client == "" || s.From != "" {
		t.Errorf("sds entry %+v", s)
	}
	if p := got["pds"]; p.TraceID != pdsH["X-Request-ID"] || p.Status != 200 || p.Results == nil || *p.Results != 1 ||
		!strings.HasSuffix(p.Request, "/Patient/"+pds.TestSuperseded) {
		t.Errorf("pds entry %+v", p)
	}
	if l := got["ldap"]; l.Status != 0 || l.Results == nil || *l.Results < 1 || !strings.Contains(l.Request, "(nhsIDCode=A20047)") {
		t.Errorf("ldap entry %+v", l)
	}
	// The detail puts the PDS call on the PDS lifeline.
	dr, err := http.Get("http://" + st.addrs["admin"] + "/console/api/entries/" + strings.TrimSpace(jsonInt(got["pds"].ID)))
	if err != nil {
		t.Fatal(err)
	}
	defer dr.Body.Close()
	var d struct {
		Steps []struct{ Actor, Name string } `json:"steps"`
	}
	if err := json.NewDecoder(dr.Body).Decode(&d); err != nil || len(d.Steps) != 1 || d.Steps[0].Actor != "pds" {
		t.Errorf("pds detail %+v %v", d, err)
	}
}

func jsonInt(n int) string { b, _ := json.Marshal(n); return string(b) }
