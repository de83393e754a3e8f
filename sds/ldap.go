package sds

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/hashicorp/go-hclog"
	"github.com/jimlambrt/gldap"

	"sspemu/spinecall"
)

// LDAP result codes (RFC 4511 §4.1.9) this directory answers with.
const (
	resultSuccess                 = gldap.ResultSuccess
	resultProtocolError           = gldap.ResultProtocolError
	resultSizeLimitExceeded       = gldap.ResultSizeLimitExceeded
	resultNoSuchObject            = gldap.ResultNoSuchObject
	resultInvalidDNSyntax         = gldap.ResultInvalidDNSyntax
	resultInvalidCredentials      = gldap.ResultInvalidCredentials
	resultInsufficientAccessRight = gldap.ResultInsufficientAccessRights
	resultUnwillingToPerform      = gldap.ResultUnwillingToPerform
)

// searchResult is the answer to one LDAP search before it goes on the wire.
type searchResult struct {
	entries   []Entry
	code      int
	matchedDN string
	diag      string
}

// node is an entry with its parsed DN, for base and scope resolution.
type node struct {
	entry Entry
	dn    *ldap.DN
	depth int // 0 o=nhs, 1 ou=Services, 2 a service record
}

// tree lists the directory's entries with their parsed DNs, parents first.
func (d *Directory) tree() []node {
	nodes := make([]node, 0, 2+len(d.records))
	add := func(e Entry, depth int) {
		dn, err := ldap.ParseDN(e.DN)
		if err != nil {
			return // only registry values with DN syntax in them; never for ASIDs and MHS IDs
		}
		nodes = append(nodes, node{e, dn, depth})
	}
	add(d.root, 0)
	add(d.services, 1)
	for _, e := range d.records {
		add(e, 2)
	}
	return nodes
}

// rootDSE is the entry with the empty DN that tells a client what the
// server holds; its attributes are operational, returned when asked for.
func rootDSE() Entry {
	return Entry{DN: "", Attributes: []Attribute{
		{"objectClass", []string{"top"}},
		{"namingContexts", []string{rootDN}},
		{"supportedLDAPVersion", []string{"3"}},
		{"vendorName", []string{"sspemu"}},
	}}
}

// ldapSearch resolves the base and scope and applies the filter, giving
// the result codes a directory gives: invalidDNSyntax for a base that is
// not a DN, noSuchObject (with the deepest existing ancestor as matchedDN)
// for a base outside the tree, protocolError for an unknown scope.
func (d *Directory) ldapSearch(base string, scope int, f Filter) searchResult {
	if strings.TrimSpace(base) == "" {
		if scope != int(gldap.BaseObject) {
			return searchResult{code: resultNoSuchObject, diag: "the root DSE holds nothing below it: search below " + BaseDN}
		}
		var out []Entry
		if e := rootDSE(); f.Match(e) == True {
			out = append(out, e)
		}
		return searchResult{entries: out, code: resultSuccess}
	}
	want, err := ldap.ParseDN(base)
	if err != nil {
		return searchResult{code: resultInvalidDNSyntax, diag: fmt.Sprintf("invalid DN %q: %v", base, err)}
	}
	nodes := d.tree()
	target := -1
	matched := ""
	for i, n := range nodes {
		if n.dn.EqualFold(want) {
			target = i
			break
		}
		if n.dn.AncestorOfFold(want) {
			matched = n.entry.DN
		}
	}
	if target < 0 {
		return searchResult{code: resultNoSuchObject, matchedDN: matched,
			diag: fmt.Sprintf("no entry %s: the services are below %s", base, servicesDN)}
	}
	t := nodes[target]
	var candidates []Entry
	for _, n := range nodes {
		self := n.dn.EqualFold(t.dn)
		below := t.dn.AncestorOfFold(n.dn)
		switch scope {
		case int(gldap.BaseObject):
			if self {
				candidates = append(candidates, n.entry)
			}
		case int(gldap.SingleLevel):
			if below && n.depth == t.depth+1 {
				candidates = append(candidates, n.entry)
			}
		case int(gldap.WholeSubtree):
			if self || below {
				candidates = append(candidates, n.entry)
			}
		case 3: // subordinateSubtree (children), draft-sermersheim-ldap-subordinate-scope
			if below {
				candidates = append(candidates, n.entry)
			}
		default:
			return searchResult{code: resultProtocolError, diag: fmt.Sprintf("unknown search scope %d", scope)}
		}
	}
	var out []Entry
	for _, e := range candidates {
		if f.Match(e) == True {
			out = append(out, e)
		}
	}
	return searchResult{entries: out, code: resultSuccess}
}

// selectAttributes returns the attributes of e a search asks for: all user
// attributes for none or "*", the root DSE's operational ones for "+" or
// by name, none for "1.1". A named attribute comes back spelt as asked,
// as the GP Connect 1.2.7 examples show (nhsMhsEndPoint, nhsMhsPartyKey),
// so a client that looks attributes up by the name it sent finds them.
func selectAttributes(e Entry, requested []string, typesOnly bool) []Attribute {
	operational := e.DN == ""
	all := len(requested) == 0 || slices.Contains(requested, "*")
	plus := slices.Contains(requested, "+")
	var out []Attribute
	seen := map[string]bool{}
	put := func(name string, a Attribute) {
		key := strings.ToLower(a.Name)
		if seen[key] {
			return
		}
		seen[key] = true
		values := a.Values
		if typesOnly {
			values = nil
		}
		out = append(out, Attribute{name, values})
	}
	for _, r := range requested {
		if r == "*" || r == "+" || r == "1.1" {
			continue
		}
		for _, a := range e.Attributes {
			at, known := lookupAttribute(r)
			if strings.EqualFold(a.Name, r) || (known && at.name == a.Name) {
				put(r, a)
			}
		}
	}
	for _, a := range e.Attributes {
		isOp := operational && a.Name != "objectClass"
		if (all && !isOp) || (plus && isOp) {
			put(a.Name, a)
		}
	}
	return out
}

// LDAPServer is SDS over LDAP (or LDAPS) on one listener.
type LDAPServer struct {
	srv  *gldap.Server
	addr string
	done chan error
	log  *slog.Logger
}

// ServeLDAP serves the directory over LDAP on addr, or LDAPS when
// tlsConfig is set, and returns once the listener accepts connections.
// Binds are anonymous (a named bind is refused, there are no people in
// this directory), every write is refused with insufficientAccessRights,
// and an extended operation the server does not know gets protocolError.
//
// gldap listens on an address, not on a listener it is given, so a port 0
// is resolved first by listening and closing, as its own tests do.
func (s *Service) ServeLDAP(addr string, tlsConfig *tls.Config) (*LDAPServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	bound := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return nil, err
	}
	listener := "ldap"
	if tlsConfig != nil {
		listener = "ldaps"
	}
	srv, err := gldap.NewServer(gldap.WithLogger(hclog.NewNullLogger()))
	if err != nil {
		return nil, err
	}
	mux, err := gldap.NewMux()
	if err != nil {
		return nil, err
	}
	err = errors.Join(
		mux.Bind(s.ldapBind),
		mux.Search(s.ldapSearchOn(listener)),
		mux.Add(refuseWrite(gldap.ApplicationAddResponse)),
		mux.Modify(refuseWrite(gldap.ApplicationModifyResponse)),
		mux.Delete(refuseWrite(gldap.ApplicationDelResponse)),
		mux.DefaultRoute(unknownOperation),
		srv.Router(mux),
	)
	if err != nil {
		return nil, err
	}
	l := &LDAPServer{srv: srv, addr: bound, done: make(chan error, 1), log: s.log}
	var opts []gldap.Option
	if tlsConfig != nil {
		opts = append(opts, gldap.WithTLSConfig(s.observeHandshakes(tlsConfig)))
	}
	go func() { l.done <- srv.Run(bound, opts...) }()
	if err := l.waitListening(); err != nil {
		_ = srv.Stop()
		return nil, err
	}
	return l, nil
}

// waitListening returns once the listener accepts a connection, or Run's
// error: gldap says nothing when it starts listening.
func (l *LDAPServer) waitListening() error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-l.done:
			l.done <- err
			if err == nil {
				err = errors.New("stopped before it served")
			}
			return err
		default:
		}
		if l.srv.Ready() {
			if c, err := net.DialTimeout("tcp", l.addr, time.Second); err == nil {
				c.Close()
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not accepting connections after 10s", l.addr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Addr is the address the directory listens on (port 0 resolved).
func (l *LDAPServer) Addr() string { return l.addr }

// Wait blocks until the server stops; nil after Shutdown.
func (l *LDAPServer) Wait() error {
	err := <-l.done
	l.done <- err
	return err
}

// stopGrace is how long Shutdown waits for open connections to end.
const stopGrace = 2 * time.Second

// Shutdown stops accepting and waits for open connections to end, for at
// most ctx or stopGrace. gldap notices a stop only between a client's
// requests, so a client that holds an idle connection (a connection pool)
// keeps it until it sends, closes or the process ends; that is logged, not
// an error, so stopping sspemu stays prompt.
func (l *LDAPServer) Shutdown(ctx context.Context) error {
	stopped := make(chan error, 1)
	go func() { stopped <- l.srv.Stop() }()
	grace := time.NewTimer(stopGrace)
	defer grace.Stop()
	select {
	case err := <-stopped:
		return err
	case <-ctx.Done():
	case <-grace.C:
	}
	l.log.Warn("sds ldap: stopped listening; idle client connections end with the process", "addr", l.addr)
	return nil
}

func (s *Service) ldapBind(w *gldap.ResponseWriter, r *gldap.Request) {
	resp := r.NewBindResponse(gldap.WithResponseCode(resultSuccess))
	m, err := r.GetSimpleBindMessage()
	switch {
	case err != nil:
		resp.SetResultCode(resultProtocolError)
	case m.UserName == "" && m.Password == "":
		// Anonymous, as GP Connect consumers bind (ldapsearch -x).
	case m.Password == "":
		resp.SetResultCode(resultUnwillingToPerform)
		resp.SetDiagnosticMessage("unauthenticated bind (DN with no password) disallowed")
	default:
		resp.SetResultCode(resultInvalidCredentials)
		resp.SetDiagnosticMessage("this directory has no people to bind as: bind anonymously")
	}
	_ = w.Write(resp)
}

// observeHandshakes returns cfg with each completed handshake reported to
// the observer as its own call (Method spinecall.Connect): the peer's
// address and client certificate. gldap tells a search only its
// connection's number, not its address or certificate, so this is the
// only place the LDAPS caller can be named.
func (s *Service) observeHandshakes(cfg *tls.Config) *tls.Config {
	if s.obs == nil || cfg.GetConfigForClient != nil {
		return cfg
	}
	out := cfg.Clone()
	out.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		start, peer := time.Now(), ""
		if hello.Conn != nil {
			peer = hello.Conn.RemoteAddr().String()
		}
		per := cfg.Clone()
		verify := cfg.VerifyConnection
		per.VerifyConnection = func(cs tls.ConnectionState) error {
			err := error(nil)
			if verify != nil {
				err = verify(cs)
			}
			c := spinecall.Call{Service: spinecall.LDAP, Time: start, Client: peer, Method: spinecall.Connect, Listener: "ldaps",
				Request: "TLS handshake", Status: int(resultSuccess), Result: "Success", Seconds: time.Since(start).Seconds()}
			if len(cs.PeerCertificates) > 0 {
				leaf := cs.PeerCertificates[0]
				sum := sha256.Sum256(leaf.Raw)
				c.ClientSubject, c.ClientIssuer, c.ClientFingerprint = leaf.Subject.String(), leaf.Issuer.String(), hex.EncodeToString(sum[:])
			}
			if err != nil {
				c.Status, c.Result = int(resultUnwillingToPerform), "refused: "+err.Error()
			}
			s.obs(c)
			return err
		}
		return per, nil
	}
	return out
}

// ldapSearchOn is the search handler of the listener named ("ldap" or
// "ldaps").
func (s *Service) ldapSearchOn(listener string) gldap.HandlerFunc {
	return func(w *gldap.ResponseWriter, r *gldap.Request) { s.ldapSearch(listener, w, r) }
}

func (s *Service) ldapSearch(listener string, w *gldap.ResponseWriter, r *gldap.Request) {
	start := time.Now()
	m, err := r.GetSearchMessage()
	done := r.NewSearchDoneResponse(gldap.WithResponseCode(resultProtocolError))
	code, sent := resultProtocolError, 0
	var answered []Entry
	if s.obs != nil {
		defer func() {
			c := spinecall.Call{Service: spinecall.LDAP, Time: start, Client: fmt.Sprintf("%s connection %d", strings.ToUpper(listener), r.ConnectionID()),
				Method: "search", Status: int(code), Result: gldap.ResultCodeMap[uint16(code)], Results: sent,
				Seconds: time.Since(start).Seconds(), Listener: listener, Directory: directoryRecords(answered)}
			if m != nil {
				c.Request = "base " + strconv.Quote(m.BaseDN) + " filter " + m.Filter
				c.Base, c.Filter = m.BaseDN, m.Filter
			}
			s.obs(c)
		}()
	}
	if err != nil {
		_ = w.Write(done)
		return
	}
	f, err := ParseFilter(m.Filter)
	if err != nil {
		done.SetDiagnosticMessage(err.Error())
		_ = w.Write(done)
		return
	}
	res := s.dir.directory().ldapSearch(m.BaseDN, int(m.Scope), f)
	for _, e := range res.entries {
		if m.SizeLimit > 0 && int64(sent) == m.SizeLimit {
			res.code = resultSizeLimitExceeded
			res.diag = ""
			break
		}
		entry := r.NewSearchResponseEntry(e.DN)
		for _, a := range selectAttributes(e, m.Attributes, m.TypesOnly) {
			entry.AddAttribute(a.Name, a.Values)
		}
		if err := w.Write(entry); err != nil {
			return
		}
		sent++
		answered = res.entries[:sent]
	}
	code = res.code
	done.SetResultCode(res.code)
	done.SetDiagnosticMessage(res.diag)
	done.SetMatchedDN(res.matchedDN)
	_ = w.Write(done)
	s.log.Debug("sds ldap search", "base", m.BaseDN, "scope", int(m.Scope), "filter", m.Filter,
		"entries", sent, "result", gldap.ResultCodeMap[uint16(res.code)])
}

// refuseWrite answers an add, modify or delete: SDS is read-only to its
// clients.
func refuseWrite(application int) gldap.HandlerFunc {
	return func(w *gldap.ResponseWriter, r *gldap.Request) {
		_ = w.Write(r.NewResponse(
			gldap.WithApplicationCode(application),
			gldap.WithResponseCode(resultInsufficientAccessRight),
			gldap.WithDiagnosticMessage("the Spine Directory Service is read-only: change registry.systems in the sspemu configuration"),
		))
	}
}

// unknownOperation answers what no route took: extended operations this
// directory does not offer (StartTLS included: the Spine serves LDAPS),
// with protocolError, as RFC 4511 §4.12 asks for an unrecognised name.
func unknownOperation(w *gldap.ResponseWriter, r *gldap.Request) {
	_ = w.Write(r.NewExtendedResponse(gldap.WithResponseCode(resultProtocolError)))
}
