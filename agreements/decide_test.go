package agreements

import (
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"sspemu/gpconnect"
)

const (
	provider2ASID = "918999198994"
	provider2Root = "https://gp2.example/B82001/STU3/1/gpconnect"
	consumer2ASID = "200000000360"
)

// decideConfig is the default registry plus a second provider (foundations
// and the structured record, an agreement with the consumer for the
// capability statement only) and a second consumer (structured record
// only, under two dated agreements).
func decideConfig() Config {
	c := defaultConfig()
	c.Systems = append(c.Systems,
		SystemConfig{
			ASID: provider2ASID, Name: "Second practice", ODS: "B82001", PartyKey: "B82001-0000003",
			FQDN: "gp2.example", Endpoint: provider2Root, CPAID: "S20001A000003",
			Receives: []string{"foundations", "structured"},
		},
		SystemConfig{
			ASID: consumer2ASID, Name: "Kiosk", ODS: "Y54321", FQDN: "kiosk.example",
			Sends: []string{"structured"},
		},
	)
	c.Agreements = append(c.Agreements,
		AgreementConfig{From: consumerASID, To: provider2ASID, Interactions: []string{gpconnect.ReadMetadata}},
		AgreementConfig{From: consumer2ASID, To: provider2ASID, Interactions: []string{"structured"},
			NotBefore: "2025-01-01", NotAfter: "2026-01-01"},
		AgreementConfig{From: consumer2ASID, To: provider2ASID, Interactions: []string{"structured"},
			NotBefore: "2027-01-01T00:00:00Z"},
	)
	return c
}

var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// okRequest is a request the decideConfig table allows.
func okRequest() Request {
	return Request{
		From:          consumerASID,
		To:            providerASID,
		InteractionID: gpconnect.ReadPatient,
		Target:        providerRoot + "/Patient/1",
		CertNames:     []string{"consumer.sspemu.localhost"},
		Now:           testNow,
	}
}

func TestDecide(t *testing.T) {
	tab := mustBuild(t, decideConfig())
	const (
		senderToken   = "ASID_CHECK_FAILED_MESSAGESENDER_200000000359"
		receiverToken = "PARTYKEY_INTERACTION_CHECK_FAILED_MESSAGERECEIVER_"
	)
	tests := []struct {
		name     string
		change   func(r *Request)
		rule     gpconnect.Rule
		status   int
		token    string
		endpoint string
		reason   string
	}{
		{"allowed", func(r *Request) {}, "", 0, "", providerRoot, ""},
		{"allowed by a DNS SAN among others", func(r *Request) { r.CertNames = []string{"other.example", "consumer.sspemu.localhost"} },
			"", 0, "", providerRoot, ""},
		{"allowed, certificate name in another case", func(r *Request) { r.CertNames = []string{"Consumer.SSPEMU.localhost"} },
			"", 0, "", providerRoot, ""},

		{"cert-asid: Ssp-From not registered", func(r *Request) { r.From = "111111111111" },
			RuleCertASID, http.StatusForbidden, "ASID_CHECK_FAILED_MESSAGESENDER_111111111111", providerRoot,
			"Ssp-From 111111111111 is not a registered ASID"},
		{"cert-asid: certificate of another host", func(r *Request) { r.CertNames = []string{"consumer.example"} },
			RuleCertASID, http.StatusForbidden, senderToken, providerRoot,
			"the client certificate names consumer.example (CN and DNS SANs) but ASID 200000000359 is registered with FQDN consumer.sspemu.localhost: send Ssp-From of the system this certificate belongs to, or register its FQDN"},
		{"cert-asid: certificate of another registered system", func(r *Request) { r.CertNames = []string{"kiosk.example"} },
			RuleCertASID, http.StatusForbidden, senderToken, providerRoot, "names kiosk.example"},
		{"cert-asid: no names", func(r *Request) { r.CertNames = nil },
			RuleCertASID, http.StatusForbidden, senderToken, providerRoot, "carries no host name"},
		{"cert-asid: trailing dot is not the FQDN", func(r *Request) { r.CertNames = []string{"consumer.sspemu.localhost."} },
			RuleCertASID, http.StatusForbidden, senderToken, providerRoot, ""},
		{"cert-asid: wildcard is not matched", func(r *Request) { r.CertNames = []string{"*.sspemu.localhost"} },
			RuleCertASID, http.StatusForbidden, senderToken, providerRoot, ""},
		{"cert-asid: Kelvin sign is not k", func(r *Request) {
			r.From, r.To, r.InteractionID, r.Target = consumer2ASID, provider2ASID, gpconnect.GetStructuredRecord, provider2Root+"/Patient/$gpc.getstructuredrecord"
			r.CertNames = []string{"\u212aiosk.example"}
		}, RuleCertASID, http.StatusForbidden, "ASID_CHECK_FAILED_MESSAGESENDER_" + consumer2ASID, provider2Root, ""},

		{"sender: not accredited to send", func(r *Request) {
			r.To, r.InteractionID, r.Target = provider2ASID, gpconnect.GetStructuredRecord, provider2Root+"/Patient/$gpc.getstructuredrecord"
		}, RuleSender, http.StatusForbidden, senderToken, provider2Root,
			"ASID 200000000359 (Example consumer) is not accredited to send " + gpconnect.GetStructuredRecord + " (get the structured record): add it to the sends of system 200000000359"},
		{"sender: unknown interaction", func(r *Request) { r.InteractionID = "urn:nhs:names:services:gpconnect:fhir:rest:read:patient-9" },
			RuleSender, http.StatusForbidden, senderToken, providerRoot, "is not a GP Connect 1.2.7 interaction"},
		{"sender: group name is not an interaction ID", func(r *Request) { r.InteractionID = "foundations" },
			RuleSender, http.StatusForbidden, senderToken, providerRoot, ""},

		{"receiver: Ssp-To not registered", func(r *Request) { r.To = "999999999999" },
			RuleReceiver, http.StatusForbidden, receiverToken + "999999999999", "", "Ssp-To 999999999999 is not a registered ASID"},
		{"receiver: not accredited to receive", func(r *Request) {
			r.To, r.InteractionID, r.Target = provider2ASID, gpconnect.SearchSlot, provider2Root+"/Slot"
		}, RuleReceiver, http.StatusForbidden, receiverToken + provider2ASID, provider2Root,
			"ASID 918999198994 (Second practice) is not accredited to receive " + gpconnect.SearchSlot},
		{"receiver: a consumer is no receiver", func(r *Request) { r.To = consumer2ASID },
			RuleReceiver, http.StatusForbidden, receiverToken + consumer2ASID, "", ""},

		{"endpoint: another provider's root", func(r *Request) { r.Target = provider2Root + "/Patient/1" },
			RuleEndpoint, http.StatusBadRequest,
			"ENDPOINT_" + providerRoot + "_CPAID_S20001A000002_VARIES_FROM_TARGETURL_" + provider2Root + "/Patient/1", providerRoot,
			"does not start with the endpoint registered for ASID 918999198993, " + providerRoot},

		{"agreement: none for the interaction", func(r *Request) { r.To, r.Target = provider2ASID, provider2Root+"/Patient/1" },
			RuleAgreement, http.StatusForbidden, "FOT_CHECK_FAILED_MESSAGESENDER_200000000359_MESSAGERECEIVER_918999198994", provider2Root,
			"no data-sharing agreement from 200000000359 to 918999198994 covers " + gpconnect.ReadPatient + " (read a patient); add it under registry.agreements"},
		{"agreement: pair agreed for another interaction only", func(r *Request) {
			r.To, r.InteractionID, r.Target = provider2ASID, gpconnect.ReadMetadata, provider2Root+"/metadata"
		}, "", 0, "", provider2Root, ""},

		// Rule order: the first failing rule wins.
		{"order: cert-asid before everything", func(r *Request) {
			r.CertNames, r.InteractionID, r.To, r.Target = []string{"x.example"}, "bad", "bad", "bad"
		}, RuleCertASID, http.StatusForbidden, senderToken, "", ""},
		{"order: sender before receiver, endpoint and agreement", func(r *Request) {
			r.InteractionID, r.To, r.Target = gpconnect.GetStructuredRecord, "999999999999", "https://elsewhere.example"
		}, RuleSender, http.StatusForbidden, senderToken, "", ""},
		{"order: sender before agreement", func(r *Request) {
			r.To, r.InteractionID, r.Target = provider2ASID, gpconnect.GetStructuredRecord, provider2Root+"/Patient/$gpc.getstructuredrecord"
		}, RuleSender, http.StatusForbidden, senderToken, provider2Root, ""},
		{"order: receiver before endpoint and agreement", func(r *Request) {
			r.To, r.InteractionID, r.Target = provider2ASID, gpconnect.SearchSlot, "https://elsewhere.example/Slot"
		}, RuleReceiver, http.StatusForbidden, receiverToken + provider2ASID, provider2Root, ""},
		{"order: endpoint before agreement", func(r *Request) { r.To, r.Target = provider2ASID, providerRoot+"/Patient/1" },
			RuleEndpoint, http.StatusBadRequest,
			"ENDPOINT_" + provider2Root + "_CPAID_S20001A000003_VARIES_FROM_TARGETURL_" + providerRoot + "/Patient/1", provider2Root, ""},
	}
	// Under live fidelity an unknown interaction ID is 415 (the live SSP's
	// answer); every other decision is the same.
	liveStatus := map[string]int{
		"sender: unknown interaction":                 http.StatusUnsupportedMediaType,
		"sender: group name is not an interaction ID": http.StatusUnsupportedMediaType,
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := okRequest()
			tt.change(&r)
			for _, f := range []Fidelity{FidelitySpec, FidelityLive} {
				d := tab.Decide(r, f)
				status := tt.status
				if live, ok := liveStatus[tt.name]; ok && f == FidelityLive {
					status = live
				}
				if d.Rule != tt.rule || d.Status != status || d.Token != tt.token || d.Endpoint != tt.endpoint {
					t.Errorf("%s: Decide = %+v\nwant rule %q status %d token %q endpoint %q", f, d, tt.rule, status, tt.token, tt.endpoint)
				}
				if d.Allowed() != (tt.rule == "") {
					t.Errorf("%s: Allowed() = %v for rule %q", f, d.Allowed(), d.Rule)
				}
				if d.Allowed() && d.Reason != "" {
					t.Errorf("%s: allowed with reason %q", f, d.Reason)
				}
				if !d.Allowed() && d.Reason == "" {
					t.Errorf("%s: refused without a reason", f)
				}
				if !strings.Contains(d.Reason, tt.reason) {
					t.Errorf("%s: reason\n  %s\ndoes not contain\n  %s", f, d.Reason, tt.reason)
				}
			}
		})
	}
}

func TestDecideFidelity(t *testing.T) {
	tab := mustBuild(t, decideConfig())
	unknown := okRequest()
	unknown.InteractionID = "urn:nhs:names:services:gpconnect:fhir:rest:read:patient-9"
	notSent := okRequest()
	notSent.To, notSent.InteractionID, notSent.Target = provider2ASID, gpconnect.GetStructuredRecord, provider2Root+"/Patient/$gpc.getstructuredrecord"

	tests := []struct {
		name string
		r    Request
		f    Fidelity
		want int
	}{
		{"unknown interaction, spec", unknown, FidelitySpec, http.StatusForbidden},
		{"unknown interaction, live", unknown, FidelityLive, http.StatusUnsupportedMediaType},
		{"unknown interaction, unset fidelity is spec", unknown, "", http.StatusForbidden},
		{"known but not sent, spec", notSent, FidelitySpec, http.StatusForbidden},
		{"known but not sent, live", notSent, FidelityLive, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tab.Decide(tt.r, tt.f)
			if d.Rule != RuleSender || d.Status != tt.want || d.Token != "ASID_CHECK_FAILED_MESSAGESENDER_"+consumerASID {
				t.Errorf("Decide = %+v, want sender %d", d, tt.want)
			}
		})
	}
}

func TestParseFidelity(t *testing.T) {
	for _, s := range []string{"spec", "live"} {
		if f, err := ParseFidelity(s); err != nil || string(f) != s {
			t.Errorf("ParseFidelity(%q) = %q, %v", s, f, err)
		}
	}
	for _, s := range []string{"", "Live", "strict"} {
		if _, err := ParseFidelity(s); err == nil || !strings.Contains(err.Error(), `"`+s+`"`) {
			t.Errorf("ParseFidelity(%q) err = %v", s, err)
		}
	}
}

// TestDecideAgreementDates checks not_before <= now < not_after on the
// second consumer's two agreements: 2025-01-01 to 2026-01-01, and from
// 2027-01-01 with no end.
func TestDecideAgreementDates(t *testing.T) {
	tab := mustBuild(t, decideConfig())
	tests := []struct {
		now     time.Time
		allowed bool
	}{
		{time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC), false},
		{time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{time.Date(2025, 1, 1, 1, 0, 0, 0, time.FixedZone("CET", 3600)), true}, // the same instant
		{time.Date(2025, 12, 31, 23, 59, 59, 999999999, time.UTC), true},
		{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), false},
		{time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{time.Time{}, false},
	}
	for _, tt := range tests {
		r := Request{
			From: consumer2ASID, To: provider2ASID, InteractionID: gpconnect.GetStructuredRecord,
			Target: provider2Root + "/Patient/$gpc.getstructuredrecord", CertNames: []string{"kiosk.example"}, Now: tt.now,
		}
		d := tab.Decide(r, FidelitySpec)
		if d.Allowed() != tt.allowed {
			t.Errorf("at %v: %+v, want allowed %v", tt.now, d, tt.allowed)
			continue
		}
		if tt.allowed {
			continue
		}
		if d.Rule != RuleAgreement || d.Status != http.StatusForbidden || d.Token != "FOT_CHECK_FAILED_MESSAGESENDER_200000000360_MESSAGERECEIVER_918999198994" {
			t.Errorf("at %v: %+v", tt.now, d)
		}
		for _, w := range []string{
			"from 2025-01-01T00:00:00Z until 2026-01-01T00:00:00Z",
			"from 2027-01-01T00:00:00Z until no end",
			"is not in force at " + tt.now.UTC().Format(time.RFC3339),
		} {
			if !strings.Contains(d.Reason, w) {
				t.Errorf("at %v: reason %q does not contain %q", tt.now, d.Reason, w)
			}
		}
	}
}

// TestDecideEndpointPrefix checks the byte-for-byte endpoint rule
// (ssp-behaviour §1, gpconnect issue 652) against the provider roots
// https://localhost:9443/A20047/STU3/1/gpconnect and
// https://gp2.example/B82001/STU3/1/gpconnect.
func TestDecideEndpointPrefix(t *testing.T) {
	tab := mustBuild(t, decideConfig())
	tests := []struct {
		name, to, target string
		allowed          bool
		hint             string
	}{
		{"exact root", providerASID, providerRoot, true, ""},
		{"root and a path", providerASID, providerRoot + "/Patient/1", true, ""},
		{"root and a query", providerASID, providerRoot + "?x", true, ""},
		// The rule admits a '/' after the root; whether root+"/" is a
		// valid route is the interaction-route check's business.
		{"root and a trailing slash", providerASID, providerRoot + "/", true, ""},
		{"root running on into a segment", providerASID, providerRoot + "x", false, "runs on into a longer path segment"},
		{"root and an encoded slash", providerASID, providerRoot + "%2FPatient", false, ""},
		{"root and a fragment", providerASID, providerRoot + "#x", false, ""},
		{"root cut short", providerASID, providerRoot[:len(providerRoot)-1], false, ""},
		{"host in another case", providerASID, "https://LOCALHOST:9443/A20047/STU3/1/gpconnect/metadata", false, "differs only in letter case"},
		{"ODS in another case", providerASID, "https://localhost:9443/a20047/STU3/1/gpconnect/metadata", false, "differs only in letter case"},
		{"scheme in another case", providerASID, "HTTPS://localhost:9443/A20047/STU3/1/gpconnect", false, "differs only in letter case"},
		{"IP instead of host", providerASID, "https://127.0.0.1:9443/A20047/STU3/1/gpconnect/metadata", false, ""},
		{"added :443", provider2ASID, "https://gp2.example:443/B82001/STU3/1/gpconnect/metadata", false, "adds a port :443"},
		{"other port", provider2ASID, "https://gp2.example:8443/B82001/STU3/1/gpconnect/metadata", false, ""},
		{"http instead of https", provider2ASID, "http://gp2.example/B82001/STU3/1/gpconnect/metadata", false, ""},
		{"doubled slash inside the root", provider2ASID, "https://gp2.example/B82001/STU3/1//gpconnect/metadata", false, ""},
		{"doubled slash after the host", provider2ASID, "https://gp2.example//B82001/STU3/1/gpconnect/metadata", false, ""},
		{"collapsed scheme slashes", provider2ASID, "https:/gp2.example/B82001/STU3/1/gpconnect/metadata", false, ""},
		{"fully qualified host with a dot", provider2ASID, "https://gp2.example./B82001/STU3/1/gpconnect/metadata", false, ""},
		{"root and a path, second provider", provider2ASID, provider2Root + "/metadata", true, ""},
		{"empty target", provider2ASID, "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := okRequest()
			r.To, r.Target, r.InteractionID = tt.to, tt.target, gpconnect.ReadMetadata
			d := tab.Decide(r, FidelitySpec)
			if d.Allowed() != tt.allowed {
				t.Fatalf("Decide = %+v, want allowed %v", d, tt.allowed)
			}
			if tt.allowed {
				return
			}
			root, cpa := providerRoot, "S20001A000002"
			if tt.to == provider2ASID {
				root, cpa = provider2Root, "S20001A000003"
			}
			want := "ENDPOINT_" + root + "_CPAID_" + cpa + "_VARIES_FROM_TARGETURL_" + tt.target
			if d.Rule != RuleEndpoint || d.Status != http.StatusBadRequest || d.Token != want {
				t.Errorf("Decide = %+v\nwant token %s", d, want)
			}
			if !strings.Contains(d.Reason, tt.hint) {
				t.Errorf("reason %q does not contain %q", d.Reason, tt.hint)
			}
		})
	}
}

// TestDecideZeroTable checks that a zero Table refuses everything instead
// of panicking.
func TestDecideZeroTable(t *testing.T) {
	var tab Table
	d := tab.Decide(okRequest(), FidelitySpec)
	if d.Rule != RuleCertASID {
		t.Errorf("Decide on an empty table = %+v", d)
	}
}

func TestReasonsAreHeaderSafe(t *testing.T) {
	tab := mustBuild(t, decideConfig())
	r := okRequest()
	r.From = "2000\r\nSet-Cookie: x=1"
	d := tab.Decide(r, FidelitySpec)
	if strings.ContainsAny(d.Reason, "\r\n") {
		t.Errorf("reason holds a line break: %q", d.Reason)
	}
	r = okRequest()
	r.Target = providerRoot + "x" + strings.Repeat("y", 1000) + "\xff"
	d = tab.Decide(r, FidelitySpec)
	if len(d.Reason) > 800 || !utf8.ValidString(d.Reason) {
		t.Errorf("reason not cut or not UTF-8 (%d bytes): %q", len(d.Reason), d.Reason)
	}
}

// TestDecideAllowedDoesNotAllocate holds the promise that the check on every
// request costs no garbage when it passes.
func TestDecideAllowedDoesNotAllocate(t *testing.T) {
	tab := mustBuild(t, decideConfig())
	r := okRequest()
	var d Decision
	allocs := testing.AllocsPerRun(100, func() { d = tab.Decide(r, FidelitySpec) })
	if !d.Allowed() {
		t.Fatalf("Decide = %+v", d)
	}
	if allocs != 0 {
		t.Errorf("allowed Decide allocates %v times", allocs)
	}
}

func BenchmarkDecide(b *testing.B) {
	tab := mustBuild(b, decideConfig())
	refused := okRequest()
	refused.To, refused.Target = provider2ASID, provider2Root+"/Patient/1"
	for _, bc := range []struct {
		name string
		r    Request
	}{
		{"allowed", okRequest()},
		{"refused-agreement", refused},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tab.Decide(bc.r, FidelitySpec)
			}
		})
	}
}

// FuzzDecide feeds arbitrary request values to Decide: it must never
// panic, an allowed request must really fit the registry, and a refusal
// must carry a status, a token and a reason safe for a response header.
func FuzzDecide(f *testing.F) {
	tab, err := decideConfig().Build()
	if err != nil {
		f.Fatal(err)
	}
	r := okRequest()
	f.Add(r.From, r.To, r.InteractionID, r.Target, r.CertNames[0], r.Now.Unix(), false)
	f.Add(consumer2ASID, provider2ASID, gpconnect.GetStructuredRecord, provider2Root+"/Patient/$gpc.getstructuredrecord", "KIOSK.example", int64(1767225600), true)
	f.Add("", "", "", "", "", int64(0), true)
	f.Add(consumerASID, providerASID, "foundations", providerRoot+"?\r\n", "consumer.sspemu.localhost", int64(-1), false)
	f.Fuzz(func(t *testing.T, from, to, interaction, target, certName string, now int64, live bool) {
		fid := FidelitySpec
		if live {
			fid = FidelityLive
		}
		req := Request{From: from, To: to, InteractionID: interaction, Target: target, CertNames: []string{certName}, Now: time.Unix(now, 0)}
		d := tab.Decide(req, fid)
		if d.Allowed() {
			s, ok := tab.System(from)
			if !ok || !asciiEqualFold(certName, s.FQDN) {
				t.Fatalf("allowed a certificate %q for %q", certName, from)
			}
			p, ok := tab.System(to)
			if !ok || !strings.HasPrefix(target, p.Endpoint) || d.Endpoint != p.Endpoint {
				t.Fatalf("allowed target %q for %q", target, to)
			}
			if d.Status != 0 || d.Token != "" || d.Reason != "" {
				t.Fatalf("allowed decision carries a refusal: %+v", d)
			}
			return
		}
		switch d.Status {
		case http.StatusBadRequest, http.StatusForbidden, http.StatusUnsupportedMediaType:
		default:
			t.Fatalf("refused with status %d", d.Status)
		}
		if d.Token == "" || d.Reason == "" {
			t.Fatalf("refusal without token or reason: %+v", d)
		}
		if strings.ContainsAny(d.Reason, "\r\n\x00") || !utf8.ValidString(d.Reason) {
			t.Fatalf("reason not header-safe: %q", d.Reason)
		}
	})
}
