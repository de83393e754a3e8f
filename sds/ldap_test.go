package sds

import (
	"context"
	"crypto/tls"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"sspemu/gpconnect"
)

// serveLDAP runs the directory on a free loopback port; LDAPS when tlsCfg
// is set.
func serveLDAP(t *testing.T, reg *registry, tlsCfg *tls.Config) *LDAPServer {
	t.Helper()
	l, err := New(Options{Registry: reg.load}).ServeLDAP("127.0.0.1:0", tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := l.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return l
}

// dial connects with go-ldap; the connection closes before the server
// stops (cleanups run last first).
func dial(t *testing.T, url string, opts ...ldap.DialOpt) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTimeout(30 * time.Second)
	t.Cleanup(func() { c.Close() })
	return c
}

func search(c *ldap.Conn, base string, scope int, filter string, attrs ...string) (*ldap.SearchResult, error) {
	return c.Search(ldap.NewSearchRequest(base, scope, ldap.NeverDerefAliases, 0, 0, false, filter, attrs, nil))
}

func resultCode(err error) uint16 {
	var le *ldap.Error
	if errors.As(err, &le) {
		return le.ResultCode
	}
	return 0xffff
}

// TestLDAPTwoStepLookup is the GP Connect 1.2.7 lookup as its examples
// write it (names in any case, spaces in the base; go-ldap's filter
// compiler takes no spaces between items, ldapsearch's does), then the
// consumer's own ASID.
func TestLDAPTwoStepLookup(t *testing.T) {
	l := serveLDAP(t, newRegistry(t, testConfig()), nil)
	c := dial(t, "ldap://"+l.Addr())
	if err := c.UnauthenticatedBind(""); err != nil {
		t.Fatalf("anonymous bind: %v", err)
	}
	res, err := search(c, BaseDN, ldap.ScopeWholeSubtree,
		"(&(nhsidcode=A20047)(objectClass=nhsMhs)(nhsMhsSvcIA="+gpconnect.SearchSlot+"))", "nhsMhsEndPoint", "nhsMhsPartyKey")
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("MHS lookup: %v %v", res, err)
	}
	mhs := res.Entries[0]
	if mhs.GetAttributeValue("nhsMhsEndPoint") != providerRoot || mhs.GetAttributeValue("nhsMhsPartyKey") != providerKey || len(mhs.Attributes) != 2 {
		t.Fatalf("MHS entry %s: %v", mhs.DN, mhs.Attributes)
	}
	if mhs.DN != "uniqueIdentifier="+MHSID(providerKey, gpconnect.SearchSlot)+",ou=Services,o=nhs" {
		t.Errorf("MHS DN %s", mhs.DN)
	}
	res, err = search(c, BaseDN, ldap.ScopeWholeSubtree,
		"(&(nhsIDCode=A20047)(objectClass=nhsAS)(nhsMHSPartyKey="+mhs.GetAttributeValue("nhsMhsPartyKey")+"))", "uniqueIdentifier")
	if err != nil || len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("uniqueIdentifier") != providerASID {
		t.Fatalf("AS lookup: %v %v", res, err)
	}
	res, err = search(c, BaseDN, ldap.ScopeWholeSubtree,
		"(&(nhsIDCode=Y12345)(objectClass=nhsAs)(nhsAsSvcIA="+gpconnect.CreateAppointment+")(nhsMhsManufacturerOrg=Y90001))", "uniqueIdentifier")
	if err != nil || len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("uniqueIdentifier") != consumerASID {
		t.Fatalf("own ASID: %v %v", res, err)
	}
}

// TestLDAPAgreesWithFHIR checks that every interaction's FHIR Endpoint and
// LDAP nhsMhs answers are the same records.
func TestLDAPAgreesWithFHIR(t *testing.T) {
	reg := newRegistry(t, secondPractice(testConfig()))
	svc := New(Options{Registry: reg.load})
	l := serveLDAP(t, reg, nil)
	c := dial(t, "ldap://"+l.Addr())
	for _, ods := range []string{providerODS, "B82617", "Y12345"} {
		for _, in := range gpconnect.Interactions() {
			a := get(t, svc.Handler(), "GET", endpointPath(q("organization", org(ods), "identifier", interaction(in.ID))), nil)
			var fhir []string
			for _, e := range entries(a) {
				r := resourceOf(e)
				fhir = append(fhir, r["address"].(string)+" "+identifierValue(r, SystemPartyKey))
			}
			res, err := search(c, BaseDN, ldap.ScopeWholeSubtree, "(&(nhsIDCode="+ods+")(objectClass=nhsMhs)(nhsMhsSvcIA="+in.ID+"))")
			if err != nil {
				t.Fatal(err)
			}
			var dir []string
			for _, e := range res.Entries {
				dir = append(dir, e.GetAttributeValue("nhsMHSEndPoint")+" "+e.GetAttributeValue("nhsMHSPartyKey"))
			}
			if !slices.Equal(fhir, dir) {
				t.Errorf("%s %s: FHIR %v, LDAP %v", ods, in.ID, fhir, dir)
			}
		}
	}
}

func TestLDAPBaseScopeAndResultCodes(t *testing.T) {
	l := serveLDAP(t, newRegistry(t, testConfig()), nil)
	c := dial(t, "ldap://"+l.Addr())
	records := 15 + 2 // the demonstrator's MHS records and two AS records
	tests := []struct {
		name    string
		base    string
		scope   int
		filter  string
		entries int
		code    uint16
		matched string
	}{
		{"subtree of the base", BaseDN, ldap.ScopeWholeSubtree, "(objectClass=*)", 1 + records, 0, ""},
		{"one level below the base", "OU=Services,O=NHS", ldap.ScopeSingleLevel, "(objectClass=*)", records, 0, ""},
		{"the base itself", BaseDN, ldap.ScopeBaseObject, "(objectClass=*)", 1, 0, ""},
		{"children of the base", BaseDN, 3, "(objectClass=nhsAs)", 2, 0, ""},
		{"the whole tree", "o=nhs", ldap.ScopeWholeSubtree, "(objectClass=*)", 2 + records, 0, ""},
		{"one AS record", "uniqueIdentifier=918999198993,ou=services,o=nhs", ldap.ScopeBaseObject, "(objectClass=*)", 1, 0, ""},
		{"a record has no children", "uniqueIdentifier=918999198993,ou=services,o=nhs", ldap.ScopeSingleLevel, "(objectClass=*)", 0, 0, ""},
		{"an unknown record", "uniqueIdentifier=1,ou=services,o=nhs", ldap.ScopeBaseObject, "(objectClass=*)", 0, 32, "ou=Services,o=nhs"},
		{"below a record", "cn=x,uniqueIdentifier=918999198993,ou=services,o=nhs", ldap.ScopeBaseObject, "(objectClass=*)", 0, 32, "uniqueIdentifier=918999198993,ou=Services,o=nhs"},
		{"outside the tree", "dc=example,dc=com", ldap.ScopeWholeSubtree, "(objectClass=*)", 0, 32, ""},
		{"not a DN", "services", ldap.ScopeWholeSubtree, "(objectClass=*)", 0, 34, ""},
		{"root DSE", "", ldap.ScopeBaseObject, "(objectClass=*)", 1, 0, ""},
		{"nothing below the root DSE", "", ldap.ScopeWholeSubtree, "(objectClass=*)", 0, 32, ""},
		{"an unknown attribute matches nothing", BaseDN, ldap.ScopeWholeSubtree, "(nhsNoSuch=1)", 0, 0, ""},
		{"a present filter", BaseDN, ldap.ScopeWholeSubtree, "(nhsMhsManufacturerOrg=*)", 2, 0, ""},
		{"a substring filter on a caseExact attribute", BaseDN, ldap.ScopeWholeSubtree, "(nhsIDCode=A2*)", 0, 0, ""},
		{"not", BaseDN, ldap.ScopeSingleLevel, "(!(objectClass=nhsMhs))", 2, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := search(c, tt.base, tt.scope, tt.filter)
			if code := resultCode(err); (err == nil && tt.code != 0) || (err != nil && code != tt.code) {
				t.Fatalf("err %v, want result code %d", err, tt.code)
			}
			if err != nil {
				if le := err.(*ldap.Error); le.MatchedDN != tt.matched {
					t.Errorf("matchedDN %q, want %q", le.MatchedDN, tt.matched)
				}
				return
			}
			if len(res.Entries) != tt.entries {
				t.Errorf("%d entries, want %d", len(res.Entries), tt.entries)
			}
		})
	}
}

func TestLDAPRootDSEAndAttributeSelection(t *testing.T) {
	l := serveLDAP(t, newRegistry(t, testConfig()), nil)
	c := dial(t, "ldap://"+l.Addr())
	res, err := search(c, "", ldap.ScopeBaseObject, "(objectClass=*)", "namingContexts", "supportedLDAPVersion")
	if err != nil || res.Entries[0].GetAttributeValue("namingContexts") != "o=nhs" || res.Entries[0].GetAttributeValue("supportedLDAPVersion") != "3" {
		t.Fatalf("root DSE %v %v", res, err)
	}
	res, _ = search(c, "", ldap.ScopeBaseObject, "(objectClass=*)")
	if got := res.Entries[0].Attributes; len(got) != 1 || got[0].Name != "objectClass" {
		t.Errorf("root DSE without asking: %v (operational attributes only on request)", got)
	}
	asDN := "uniqueIdentifier=918999198993,ou=Services,o=nhs"
	res, _ = search(c, asDN, ldap.ScopeBaseObject, "(objectClass=*)", "1.1")
	if len(res.Entries[0].Attributes) != 0 {
		t.Errorf("1.1: %v", res.Entries[0].Attributes)
	}
	res, _ = search(c, asDN, ldap.ScopeBaseObject, "(objectClass=*)", "UNIQUEIDENTIFIER", "0.9.2342.19200300.100.1.44", "nhsIDCode", "noSuch")
	if got := res.Entries[0].Attributes; len(got) != 2 || got[0].Name != "UNIQUEIDENTIFIER" || got[1].Name != "nhsIDCode" {
		t.Errorf("named attributes: %v", got)
	}
	res, _ = search(c, asDN, ldap.ScopeBaseObject, "(objectClass=*)", "*")
	var names []string
	for _, a := range res.Entries[0].Attributes {
		names = append(names, a.Name)
	}
	if want := []string{"objectClass", "uniqueIdentifier", "nhsIDCode", "nhsAsClient", "nhsMHSPartyKey", "nhsAsSvcIA", "nhsMhsManufacturerOrg", "nhsProductName"}; !slices.Equal(names, want) {
		t.Errorf("all attributes %v, want %v", names, want)
	}
	res, err = c.Search(ldap.NewSearchRequest(BaseDN, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 0, 0, true, "(objectClass=nhsAs)", []string{"uniqueIdentifier"}, nil))
	if err != nil || len(res.Entries) != 2 || len(res.Entries[0].Attributes[0].Values) != 0 {
		t.Errorf("typesOnly: %v %v", res, err)
	}
	res, err = c.Search(ldap.NewSearchRequest(BaseDN, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 3, 0, false, "(objectClass=*)", nil, nil))
	if resultCode(err) != ldap.LDAPResultSizeLimitExceeded || res == nil || len(res.Entries) != 3 {
		t.Errorf("size limit 3: %v, %v", res, err)
	}
}

func TestLDAPBindsAndWrites(t *testing.T) {
	l := serveLDAP(t, newRegistry(t, testConfig()), nil)
	c := dial(t, "ldap://"+l.Addr())
	if err := c.Bind("uid=someone,ou=people,o=nhs", "secret"); resultCode(err) != ldap.LDAPResultInvalidCredentials {
		t.Errorf("named bind: %v", err)
	}
	if err := c.UnauthenticatedBind("uid=someone,ou=people,o=nhs"); resultCode(err) != ldap.LDAPResultUnwillingToPerform {
		t.Errorf("unauthenticated bind: %v", err)
	}
	if err := c.UnauthenticatedBind(""); err != nil {
		t.Errorf("anonymous bind after failures: %v", err)
	}
	dn := "uniqueIdentifier=918999198993,ou=Services,o=nhs"
	add := ldap.NewAddRequest("uniqueIdentifier=1,ou=Services,o=nhs", nil)
	add.Attribute("objectClass", []string{"nhsAs"})
	if err := c.Add(add); resultCode(err) != ldap.LDAPResultInsufficientAccessRights {
		t.Errorf("add: %v", err)
	}
	mod := ldap.NewModifyRequest(dn, nil)
	mod.Replace("nhsIDCode", []string{"B82617"})
	if err := c.Modify(mod); resultCode(err) != ldap.LDAPResultInsufficientAccessRights {
		t.Errorf("modify: %v", err)
	}
	if err := c.Del(ldap.NewDelRequest(dn, nil)); resultCode(err) != ldap.LDAPResultInsufficientAccessRights {
		t.Errorf("delete: %v", err)
	}
	if _, err := c.WhoAmI(nil); resultCode(err) != ldap.LDAPResultProtocolError {
		t.Errorf("an extended operation it does not offer: %v", err)
	}
	// The directory is unchanged and the connection still serves.
	res, err := search(c, dn, ldap.ScopeBaseObject, "(objectClass=*)", "nhsIDCode")
	if err != nil || res.Entries[0].GetAttributeValue("nhsIDCode") != providerODS {
		t.Fatalf("after the refused writes: %v %v", res, err)
	}
}

// TestLDAPReload swaps the registry under an open connection: the next
// search sees the new table.
func TestLDAPReload(t *testing.T) {
	reg := newRegistry(t, testConfig())
	l := serveLDAP(t, reg, nil)
	c := dial(t, "ldap://"+l.Addr())
	filter := "(&(nhsIDCode=B82617)(objectClass=nhsMhs)(nhsMhsSvcIA=" + gpconnect.ReadMetadata + "))"
	if res, err := search(c, BaseDN, ldap.ScopeWholeSubtree, filter); err != nil || len(res.Entries) != 0 {
		t.Fatalf("before: %v %v", res, err)
	}
	reg.p.Store(build(t, secondPractice(testConfig())))
	res, err := search(c, BaseDN, ldap.ScopeWholeSubtree, filter, "nhsMHSEndPoint")
	if err != nil || len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("nhsMHSEndPoint") != "https://localhost:9443/B82617/STU3/1/gpconnect" {
		t.Fatalf("after the reload: %v %v", res, err)
	}
}

// TestLDAPS checks the TLS MA listener: TLS 1.2 only, a client certificate
// from the dev CA required.
func TestLDAPS(t *testing.T) {
	dir := pki(t)
	l := serveLDAP(t, newRegistry(t, testConfig()), ldapsConfig(t, dir))
	c := dial(t, "ldaps://"+l.Addr(), ldap.DialWithTLSConfig(consumerTLS(t, dir, true)))
	if st, ok := c.TLSConnectionState(); !ok || st.Version != tls.VersionTLS12 || len(st.PeerCertificates) == 0 {
		t.Fatalf("TLS state %v %v", ok, st.Version)
	}
	res, err := search(c, BaseDN, ldap.ScopeWholeSubtree, "(&(nhsIDCode=A20047)(objectClass=nhsAs))", "uniqueIdentifier")
	if err != nil || len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("uniqueIdentifier") != providerASID {
		t.Fatalf("search over LDAPS: %v %v", res, err)
	}

	// No client certificate: the handshake fails (TLS 1.2 reports it when
	// the client reads), so the first operation fails.
	if c, err := ldap.DialURL("ldaps://"+l.Addr(), ldap.DialWithTLSConfig(consumerTLS(t, dir, false))); err == nil {
		c.SetTimeout(10 * time.Second)
		_, err = search(c, BaseDN, ldap.ScopeWholeSubtree, "(objectClass=*)")
		c.Close()
		if err == nil {
			t.Error("a search without a client certificate was answered")
		}
	}
	// TLS 1.3 only: refused.
	only13 := consumerTLS(t, dir, true)
	only13.MinVersion = tls.VersionTLS13
	if c, err := ldap.DialURL("ldaps://"+l.Addr(), ldap.DialWithTLSConfig(only13)); err == nil {
		c.Close()
		t.Error("a TLS 1.3-only client connected")
	} else if !strings.Contains(err.Error(), "protocol version") {
		t.Logf("TLS 1.3-only client refused: %v", err)
	}
	// Plain LDAP to the LDAPS port is not answered either.
	if c, err := ldap.DialURL("ldap://" + l.Addr()); err == nil {
		c.SetTimeout(5 * time.Second)
		_, err = search(c, BaseDN, ldap.ScopeWholeSubtree, "(objectClass=*)")
		c.Close()
		if err == nil {
			t.Error("plain LDAP was answered on the LDAPS port")
		}
	}
}

// TestLDAPShutdownWithIdleClient stops the server while a client holds an
// idle connection: Shutdown returns (after its grace) and the listener is
// closed; the idle connection is left to the client or the process.
func TestLDAPShutdownWithIdleClient(t *testing.T) {
	l, err := New(Options{Registry: newRegistry(t, testConfig()).load}).ServeLDAP("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ldap.DialURL("ldap://" + l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.UnauthenticatedBind(""); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := l.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := l.Wait(); err != nil {
		t.Errorf("Run after Shutdown: %v", err)
	}
	if c2, err := ldap.DialURL("ldap://" + l.Addr()); err == nil {
		c2.Close()
		t.Error("the listener still accepts after Shutdown")
	}
}

// TestLDAPFilterTooDeep sends a well-formed filter nested deeper than the
// directory takes: protocolError, and the connection still serves.
func TestLDAPFilterTooDeep(t *testing.T) {
	l := serveLDAP(t, newRegistry(t, testConfig()), nil)
	c := dial(t, "ldap://"+l.Addr())
	deep := strings.Repeat("(!", 80) + "(objectClass=*)" + strings.Repeat(")", 80)
	if _, err := search(c, BaseDN, ldap.ScopeWholeSubtree, deep); resultCode(err) != ldap.LDAPResultProtocolError {
		t.Fatalf("80 levels: %v", err)
	}
	if res, err := search(c, BaseDN, ldap.ScopeBaseObject, "(objectClass=*)"); err != nil || len(res.Entries) != 1 {
		t.Fatalf("after: %v %v", res, err)
	}
}
