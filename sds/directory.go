// Package sds is the Spine Directory Service built from the registry in
// force: the SDS FHIR API (/Endpoint, /Device) and the LDAP directory of
// the GP Connect 1.2.7 specification. Both answer from one set of directory
// entries made from the registry, with the matching rules of the real SDS
// schema, so a FHIR lookup, an LDAP lookup and the SSP's checks can never
// disagree.
package sds

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"

	"sspemu/agreements"
	"sspemu/gpconnect"
	"sspemu/spinecall"
)

// The directory's tree: every service record sits one level below
// ou=Services,o=nhs, named by its uniqueIdentifier, as on the Spine.
const (
	// BaseDN is the search base GP Connect 1.2.7 tells consumers to use.
	BaseDN      = "ou=services, o=nhs"
	rootDN      = "o=nhs"
	servicesDN  = "ou=Services,o=nhs"
	classMHS    = "nhsMhs"
	classAS     = "nhsAs"
	gpcServices = "urn:nhs:names:services:gpconnect"
)

// Attribute is one attribute of an entry, its name spelt as in the SDS
// schema.
type Attribute struct {
	Name   string
	Values []string
}

// Entry is one directory entry; its attributes keep their order so answers
// read the same every time.
type Entry struct {
	DN         string
	Attributes []Attribute
}

// Values returns the values of the attribute named name, compared without
// case as LDAP attribute names are.
func (e Entry) Values(name string) []string {
	for _, a := range e.Attributes {
		if strings.EqualFold(a.Name, name) {
			return a.Values
		}
	}
	return nil
}

// Value returns the first value of the attribute, or "".
func (e Entry) Value(name string) string {
	if v := e.Values(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Directory is the entries made from one registry table. It is immutable,
// so one Directory serves every request of that table concurrently.
type Directory struct {
	root     Entry
	services Entry
	records  []Entry // MHS records, then AS records, in registry order
}

// NewDirectory builds the directory of table:
//   - one nhsAs (accredited system) entry per system, named by its ASID,
//     with the interactions it sends and receives (nhsAsSvcIA), its ODS
//     code as nhsIDCode and nhsAsClient, its party key and its supplier
//     (nhsMhsManufacturerOrg) when the registry has them;
//   - one nhsMhs entry per interaction a system receives, as on the Spine,
//     where an MHS record holds exactly one interaction (nhsMhsSvcIA is
//     single-valued in the SDS schema): the service root (nhsMHSEndPoint),
//     the party key, the CPA ID and the endpoint's host (nhsMhsFQDN).
//
// Consumers therefore have AS records only, and providers both, which is
// how GP Connect 1.2.7 tells them apart.
func NewDirectory(t *agreements.Table) *Directory {
	d := &Directory{
		root: Entry{DN: rootDN, Attributes: []Attribute{
			{"objectClass", []string{"top", "organization"}}, {"o", []string{"nhs"}},
		}},
		services: Entry{DN: servicesDN, Attributes: []Attribute{
			{"objectClass", []string{"top", "organizationalUnit"}}, {"ou", []string{"Services"}},
		}},
	}
	systems := t.Systems()
	for _, s := range systems {
		for _, in := range s.Receives {
			d.records = append(d.records, mhsEntry(s, in))
		}
	}
	for _, s := range systems {
		d.records = append(d.records, asEntry(s))
	}
	return d
}

// MHSID is the uniqueIdentifier of a provider's MHS record for one
// interaction: 20 hex digits like the Spine's, derived from the party key
// and the interaction so that it stays the same across restarts and
// reloads.
func MHSID(partyKey, interaction string) string {
	sum := sha256.Sum256([]byte(partyKey + "\x00" + interaction))
	return hex.EncodeToString(sum[:10])
}

func mhsEntry(s agreements.System, interaction string) Entry {
	id := MHSID(s.PartyKey, interaction)
	sn, in := splitInteraction(interaction)
	e := Entry{DN: "uniqueIdentifier=" + id + "," + servicesDN}
	e.add("objectClass", "top", classMHS)
	e.add("uniqueIdentifier", id)
	e.add("nhsIDCode", s.ODS)
	e.add("nhsMHSPartyKey", s.PartyKey)
	e.add("nhsMhsSvcIA", interaction)
	e.add("nhsMHsSN", sn)
	e.add("nhsMHsIN", in)
	e.add("nhsMHSEndPoint", s.Endpoint)
	e.add("nhsMhsFQDN", endpointHost(s))
	e.add("nhsMhsCPAId", s.CPAID)
	e.add("nhsProductName", s.Name)
	return e
}

func asEntry(s agreements.System) Entry {
	e := Entry{DN: "uniqueIdentifier=" + s.ASID + "," + servicesDN}
	e.add("objectClass", "top", classAS)
	e.add("uniqueIdentifier", s.ASID)
	e.add("nhsIDCode", s.ODS)
	e.add("nhsAsClient", s.ODS)
	e.add("nhsMHSPartyKey", s.PartyKey)
	e.add("nhsAsSvcIA", svcIA(s)...)
	e.add("nhsMhsManufacturerOrg", s.SupplierODS)
	e.add("nhsProductName", s.Name)
	return e
}

// add appends an attribute, leaving out empty values: an attribute the
// registry does not give is absent, not empty, as in a directory.
func (e *Entry) add(name string, values ...string) {
	values = slices.DeleteFunc(slices.Clone(values), func(v string) bool { return v == "" })
	if len(values) > 0 {
		e.Attributes = append(e.Attributes, Attribute{name, values})
	}
}

// svcIA lists every interaction a system sends or receives, in catalogue
// order, once each.
func svcIA(s agreements.System) []string {
	var out []string
	for _, in := range gpconnect.Interactions() {
		if slices.Contains(s.Sends, in.ID) || slices.Contains(s.Receives, in.ID) {
			out = append(out, in.ID)
		}
	}
	return out
}

// splitInteraction gives the service name (nhsMHsSN) and the interaction
// name (nhsMHsIN) of an interaction ID: for GP Connect the service is
// urn:nhs:names:services:gpconnect and the rest names the interaction; any
// other URN splits at its last colon, as the HL7 services' records do.
func splitInteraction(id string) (service, name string) {
	if rest, ok := strings.CutPrefix(id, gpcServices+":"); ok {
		return gpcServices, rest
	}
	if i := strings.LastIndexByte(id, ':'); i > 0 {
		return id[:i], id[i+1:]
	}
	return "", id
}

// endpointHost is nhsMhsFQDN: the registered FQDN, else the host of the
// service root.
func endpointHost(s agreements.System) string {
	if s.FQDN != "" {
		return s.FQDN
	}
	if u, err := url.Parse(s.Endpoint); err == nil {
		return u.Hostname()
	}
	return ""
}

// Search returns the service records (below ou=Services) that f matches,
// in directory order: the query both the FHIR API and a subtree LDAP
// search of the services run.
func (d *Directory) Search(f Filter) []Entry {
	var out []Entry
	for _, e := range d.records {
		if f.Match(e) == True {
			out = append(out, e)
		}
	}
	return out
}

// cache keeps the directory of the table in force; a reload swaps the
// table, and the next request builds the new directory, so answers change
// at once.
type cache struct {
	registry func() *agreements.Table
	last     atomic.Pointer[cached]
}

type cached struct {
	table *agreements.Table
	dir   *Directory
}

func (c *cache) directory() *Directory {
	t := c.registry()
	if l := c.last.Load(); l != nil && l.table == t {
		return l.dir
	}
	d := NewDirectory(t)
	c.last.Store(&cached{table: t, dir: d})
	return d
}

// directoryRecords is what an answer's entries say to the journal: the
// class, the uniqueIdentifier (the ASID of an nhsAs record), the ODS code,
// the party key and, for an MHS, its endpoint and interaction; at most
// spinecall.MaxFacts of them.
func directoryRecords(entries []Entry) []spinecall.DirectoryRecord {
	var out []spinecall.DirectoryRecord
	for _, e := range entries {
		if len(out) == spinecall.MaxFacts {
			break
		}
		class := ""
		for _, c := range e.Values("objectClass") {
			if strings.EqualFold(c, classAS) || strings.EqualFold(c, classMHS) {
				class = c
			}
		}
		if class == "" {
			continue // the root DSE and the containers
		}
		d := spinecall.DirectoryRecord{Class: class, ID: e.Value("uniqueIdentifier"), ODS: e.Value("nhsIDCode"),
			PartyKey: e.Value("nhsMHSPartyKey")}
		if strings.EqualFold(class, classMHS) {
			d.Endpoint, d.Interaction = e.Value("nhsMHSEndPoint"), e.Value("nhsMhsSvcIA")
		}
		out = append(out, d)
	}
	return out
}
