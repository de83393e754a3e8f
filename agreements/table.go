package agreements

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"sspemu/gpconnect"
)

// System is one registered system after Build: what SDS would hold for its
// ASID. Sends and Receives are expanded to full interaction URNs in
// catalogue order. The JSON names are the configuration's keys, so the
// admin API shows the registry in the words a user wrote it in.
type System struct {
	ASID        string   `json:"asid"`
	Name        string   `json:"name"`
	ODS         string   `json:"ods"`
	PartyKey    string   `json:"party_key,omitempty"`
	FQDN        string   `json:"fqdn,omitempty"`
	Endpoint    string   `json:"endpoint,omitempty"`
	CPAID       string   `json:"cpa_id,omitempty"`
	SupplierODS string   `json:"supplier_ods,omitempty"`
	Sends       []string `json:"sends,omitempty"`
	Receives    []string `json:"receives,omitempty"`
}

// Agreement is one data-sharing agreement after Build, with its
// interactions expanded to URNs. A zero NotBefore or NotAfter means the
// agreement is open on that side.
type Agreement struct {
	From         string    `json:"from"`
	To           string    `json:"to"`
	Interactions []string  `json:"interactions"`
	NotBefore    time.Time `json:"not_before,omitzero"`
	NotAfter     time.Time `json:"not_after,omitzero"`
}

// Table is the validated, indexed registry. It is immutable after Build, so
// one Table may serve every request concurrently and a reload swaps the
// whole Table.
type Table struct {
	systems    []System // config order
	byASID     map[string]*entry
	agreements []Agreement
	windows    map[agreementKey][]window
	endpoints  []string
	catalogue  map[string]gpconnect.Interaction
}

type entry struct {
	sys      System
	pos      int // index in Config.Systems
	sends    map[string]struct{}
	receives map[string]struct{}
}

type agreementKey struct{ from, to, interaction string }

// window is the period one agreement is in force; zero times are open.
type window struct{ notBefore, notAfter time.Time }

func (w window) covers(now time.Time) bool {
	return (w.notBefore.IsZero() || !now.Before(w.notBefore)) &&
		(w.notAfter.IsZero() || now.Before(w.notAfter))
}

// Build validates the whole registry, reporting every problem at once
// (errors.Join, each error naming its system or agreement) so a user fixes
// a registry in one pass, and returns the indexed table.
func (c Config) Build() (*Table, error) {
	t := &Table{
		byASID:    map[string]*entry{},
		windows:   map[agreementKey][]window{},
		catalogue: map[string]gpconnect.Interaction{},
	}
	for _, in := range gpconnect.Interactions() {
		t.catalogue[in.ID] = in
	}
	var errs []error
	partyKeys := map[string]string{} // party key -> label of its first system
	// expanded marks the systems whose sends and receives expanded cleanly,
	// so agreements do not repeat an error already reported for a system.
	expanded := map[string]bool{}

	for i, sc := range c.Systems {
		label := systemLabel(i, sc.ASID)
		fail := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("%s: "+format, append([]any{label}, a...)...))
		}
		s := System{
			ASID: sc.ASID, Name: sc.Name, ODS: sc.ODS, PartyKey: sc.PartyKey,
			FQDN: sc.FQDN, Endpoint: sc.Endpoint, CPAID: sc.CPAID, SupplierODS: sc.SupplierODS,
		}
		clean := true
		if !isASID(sc.ASID) {
			fail("asid %q must be exactly 12 digits", sc.ASID)
		}
		if strings.TrimSpace(sc.Name) == "" {
			fail("name is required (it labels the system in reasons and the audit log)")
		}
		if !isODS(sc.ODS) {
			fail("ods %q must be an ODS code: letters and digits, e.g. A20047", sc.ODS)
		}
		if sc.SupplierODS != "" && !isODS(sc.SupplierODS) {
			fail("supplier_ods %q must be an ODS code: letters and digits, e.g. Y90001", sc.SupplierODS)
		}
		var err error
		if s.Sends, err = gpconnect.Expand(sc.Sends); err != nil {
			fail("sends: %w", err)
			clean = false
		}
		if s.Receives, err = gpconnect.Expand(sc.Receives); err != nil {
			fail("receives: %w", err)
			clean = false
		}
		if len(sc.Sends) > 0 {
			if sc.FQDN == "" {
				fail("a sending system needs fqdn (the host name in its client certificate)")
			} else if !IsHostname(sc.FQDN) {
				fail("fqdn %q is not a host name (letters, digits, '-' and '.', no scheme or port)", sc.FQDN)
			}
		} else if sc.FQDN != "" && !IsHostname(sc.FQDN) {
			fail("fqdn %q is not a host name (letters, digits, '-' and '.', no scheme or port)", sc.FQDN)
		}
		if len(sc.Receives) > 0 {
			if sc.Endpoint == "" {
				fail("a receiving system needs endpoint (its service root, e.g. https://provider.example/%s/STU3/1/gpconnect)", orODS(sc.ODS))
			}
			if sc.CPAID == "" {
				fail("a receiving system needs cpa_id (it appears in the SSP's endpoint error)")
			}
			if sc.PartyKey == "" {
				fail("a receiving system needs party_key (its MHS party key, e.g. %s-0000001)", orODS(sc.ODS))
			}
		}
		if sc.Endpoint != "" {
			if err := checkEndpoint(sc.Endpoint, sc.ODS); err != nil {
				fail("%w", err)
			}
		}
		if sc.CPAID != "" && strings.ContainsFunc(sc.CPAID, isSpaceOrControl) {
			fail("cpa_id %q must not hold spaces or control characters", sc.CPAID)
		}
		if sc.PartyKey != "" {
			if strings.ContainsFunc(sc.PartyKey, isSpaceOrControl) {
				fail("party_key %q must not hold spaces or control characters", sc.PartyKey)
			}
			if first, dup := partyKeys[sc.PartyKey]; dup {
				fail("party_key %q is already used by %s", sc.PartyKey, first)
			} else {
				partyKeys[sc.PartyKey] = label
			}
		}
		if sc.ASID == "" {
			continue
		}
		if first, dup := t.byASID[sc.ASID]; dup {
			fail("duplicate asid: system %d (%s) already has it", first.pos+1, first.sys.Name)
			continue
		}
		e := &entry{sys: s, pos: i, sends: set(s.Sends), receives: set(s.Receives)}
		t.byASID[sc.ASID] = e
		t.systems = append(t.systems, s)
		expanded[sc.ASID] = clean
		if s.Endpoint != "" && !slices.Contains(t.endpoints, s.Endpoint) {
			t.endpoints = append(t.endpoints, s.Endpoint)
		}
	}
	slices.Sort(t.endpoints)

	for i, ac := range c.Agreements {
		label := fmt.Sprintf("agreement %d (%s -> %s)", i+1, orNone(ac.From), orNone(ac.To))
		fail := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("%s: "+format, append([]any{label}, a...)...))
		}
		ok := true
		from, fromOK := t.byASID[ac.From]
		if !fromOK {
			fail("from %q is not a registered system (add it under registry.systems)", ac.From)
			ok = false
		}
		to, toOK := t.byASID[ac.To]
		if !toOK {
			fail("to %q is not a registered system (add it under registry.systems)", ac.To)
			ok = false
		}
		ids, err := gpconnect.Expand(ac.Interactions)
		if err != nil {
			fail("interactions: %w", err)
			ok = false
		} else if len(ids) == 0 {
			fail("interactions is empty: list URNs or the groups foundations, appointments, structured")
			ok = false
		}
		var w window
		var dateErr error
		if w.notBefore, dateErr = parseDate(ac.NotBefore); dateErr != nil {
			fail("not_before: %w", dateErr)
			ok = false
		}
		if w.notAfter, dateErr = parseDate(ac.NotAfter); dateErr != nil {
			fail("not_after: %w", dateErr)
			ok = false
		}
		if !w.notBefore.IsZero() && !w.notAfter.IsZero() && !w.notBefore.Before(w.notAfter) {
			fail("not_before %s must be earlier than not_after %s", ac.NotBefore, ac.NotAfter)
			ok = false
		}
		if err == nil {
			var notSent, notReceived []string
			for _, id := range ids {
				if fromOK && expanded[ac.From] && !has(from.sends, id) {
					notSent = append(notSent, id)
				}
				if toOK && expanded[ac.To] && !has(to.receives, id) {
					notReceived = append(notReceived, id)
				}
			}
			if len(notSent) > 0 {
				fail("from %s is a system without that role: it does not send %s; add to its sends or remove from this agreement", ac.From, strings.Join(notSent, ", "))
				ok = false
			}
			if len(notReceived) > 0 {
				fail("to %s is a system without that role: it does not receive %s; add to its receives or remove from this agreement", ac.To, strings.Join(notReceived, ", "))
				ok = false
			}
		}
		if !ok {
			continue
		}
		t.agreements = append(t.agreements, Agreement{
			From: ac.From, To: ac.To, Interactions: ids,
			NotBefore: w.notBefore, NotAfter: w.notAfter,
		})
		for _, id := range ids {
			k := agreementKey{ac.From, ac.To, id}
			t.windows[k] = append(t.windows[k], w)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// System returns the registered system with this ASID; its slices are
// copies, so the Table stays immutable.
func (t *Table) System(asid string) (System, bool) {
	e, ok := t.byASID[asid]
	if !ok {
		return System{}, false
	}
	return e.sys.clone(), true
}

// Systems returns every registered system in configuration order.
func (t *Table) Systems() []System {
	out := make([]System, len(t.systems))
	for i, s := range t.systems {
		out[i] = s.clone()
	}
	return out
}

// Agreements returns every data-sharing agreement in configuration order,
// for the admin console and check-config.
func (t *Table) Agreements() []Agreement {
	out := make([]Agreement, len(t.agreements))
	for i, a := range t.agreements {
		a.Interactions = slices.Clone(a.Interactions)
		out[i] = a
	}
	return out
}

// Endpoints returns every registered provider endpoint (service root),
// sorted and without duplicates: the proxy's dial allow-list, so the SSP
// can never become an open proxy.
func (t *Table) Endpoints() []string { return slices.Clone(t.endpoints) }

func (s System) clone() System {
	s.Sends = slices.Clone(s.Sends)
	s.Receives = slices.Clone(s.Receives)
	return s
}

func set(ids []string) map[string]struct{} {
	m := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		m[id] = struct{}{}
	}
	return m
}

func has(m map[string]struct{}, k string) bool {
	_, ok := m[k]
	return ok
}

func systemLabel(i int, asid string) string {
	if asid == "" {
		return fmt.Sprintf("system %d (no asid)", i+1)
	}
	return fmt.Sprintf("system %q", asid)
}

func orNone(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

func orODS(ods string) string {
	if ods == "" {
		return "<ODS>"
	}
	return ods
}

// checkEndpoint checks a service root against the rules the byte-for-byte
// endpoint check depends on: a registered root with a trailing slash or a
// query could never be matched the way providers publish it.
func checkEndpoint(raw, ods string) error {
	if strings.ContainsFunc(raw, isSpaceOrControl) {
		return fmt.Errorf("endpoint %q must not hold spaces or control characters", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("endpoint %q is not a URL: %w", raw, err)
	}
	switch {
	case !strings.HasPrefix(raw, "https://"):
		return fmt.Errorf("endpoint %q must start with https:// (the SSP reaches providers over TLS only)", raw)
	case u.User != nil:
		return fmt.Errorf("endpoint %q must not carry user information", raw)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("endpoint %q has no host", raw)
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Errorf("endpoint %q must not have a query: register the service root only", raw)
	case strings.Contains(raw, "#"):
		return fmt.Errorf("endpoint %q must not have a fragment", raw)
	case strings.HasSuffix(raw, "/"):
		return fmt.Errorf("endpoint %q must not end with '/': register %s (targets are matched byte for byte)", raw, strings.TrimRight(raw, "/"))
	}
	if ods != "" && !slices.Contains(strings.Split(u.EscapedPath(), "/"), ods) {
		return fmt.Errorf("endpoint %q must hold the system's ODS code %s as a path segment (https://<fqdn>/%s/STU3/1/gpconnect)", raw, ods, ods)
	}
	return nil
}

// parseDate reads an agreement date: RFC 3339, or YYYY-MM-DD meaning
// midnight UTC; empty means open.
func parseDate(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2025-04-01T09:00:00Z) nor YYYY-MM-DD", s)
	}
	return t, nil
}

func isASID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isODS(s string) bool {
	if s == "" || len(s) > 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// IsHostname reports whether s is a DNS host name: dot-separated labels of
// 1 to 63 letters, digits and inner hyphens, 253 bytes at most. The proxy's
// target parser uses the same rule, so a registered FQDN and a target host
// are judged alike.
func IsHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }
