package proxy

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"

	"sspemu/certs"
)

// ticketRecorder is a client session cache that remembers the tickets the
// server gave.
type ticketRecorder struct {
	tls.ClientSessionCache
	mu      sync.Mutex
	tickets [][]byte
}

func (r *ticketRecorder) Put(key string, cs *tls.ClientSessionState) {
	if cs != nil {
		if ticket, _, err := cs.ResumptionState(); err == nil {
			r.mu.Lock()
			r.tickets = append(r.tickets, ticket)
			r.mu.Unlock()
		}
	}
	r.ClientSessionCache.Put(key, cs)
}

// resumed makes one call on a new connection and says whether the
// handshake resumed a session.
func resumed(t *testing.T, addr string, c *tls.Config) bool {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, c)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatal(err)
	}
	return conn.ConnectionState().DidResume
}

// TestSessionResumption: a consumer resumes its session, and its ticket is
// a 32-byte handle, not the session itself; a session the SSP does not hold
// (another SSP's, as after a restart) is a full handshake, not a failure.
func TestSessionResumption(t *testing.T) {
	p := startProvider(t, http.NotFoundHandler())
	s := startSSP(t, testConfig(), registry(p.root))
	rec := &ticketRecorder{ClientSessionCache: tls.NewLRUClientSessionCache(8)}
	c := consumerTLS(t)
	c.ClientSessionCache = rec
	// The client's sessions are kept by ServerName, so with one name for
	// both SSPs below it offers the first one's session to the second.
	c.ServerName = "127.0.0.1"
	if resumed(t, s.addr, c) {
		t.Fatal("the first connection resumed a session")
	}
	if !resumed(t, s.addr, c) {
		t.Fatal("the second connection did not resume the first one's session")
	}
	rec.mu.Lock()
	for _, ticket := range rec.tickets {
		if len(ticket) != 32 {
			t.Errorf("ticket of %d bytes, want a 32-byte handle", len(ticket))
		}
	}
	rec.mu.Unlock()

	other := startSSP(t, testConfig(), registry(p.root))
	if resumed(t, other.addr, c) {
		t.Fatal("resumed a session at an SSP that never made it")
	}
}

// TestRevokedCertificateNotResumed: a consumer whose certificate is revoked
// after its handshake cannot resume its session: the CRL is checked on
// resumed handshakes too.
func TestRevokedCertificateNotResumed(t *testing.T) {
	s, dir, c := revocableSSP(t)
	c.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	if err := handshake(s.addr, c); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	if !resumed(t, s.addr, c) {
		t.Fatal("the session was not resumed before revocation")
	}
	if err := certs.Revoke(dir, filepath.Join(dir, certs.ConsumerFile)); err != nil {
		t.Fatal(err)
	}
	if err := handshake(s.addr, c); err == nil {
		t.Fatal("a revoked certificate resumed its session and completed a request")
	}
}

// TestSessionStoreEvicts: the store keeps its newest sessions only, and
// an unknown handle is ignored.
func TestSessionStoreEvicts(t *testing.T) {
	st := newSessionStore(2)
	ss := sampleSession(t)
	var ids [][]byte
	for i := range 3 {
		id, err := st.wrap(tls.ConnectionState{}, ss)
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 32 {
			t.Fatalf("handle %d of %d bytes", i, len(id))
		}
		ids = append(ids, id)
	}
	if got, err := st.unwrap(ids[0], tls.ConnectionState{}); got != nil || err != nil {
		t.Errorf("the oldest session survived: %v %v", got, err)
	}
	for _, id := range ids[1:] {
		if got, err := st.unwrap(id, tls.ConnectionState{}); got == nil || err != nil {
			t.Errorf("a kept session is lost: %v %v", got, err)
		}
	}
	if got, err := st.unwrap(make([]byte, 32), tls.ConnectionState{}); got != nil || err != nil {
		t.Errorf("an unknown handle gave %v %v", got, err)
	}
}

// sampleSession is the session of one TLS 1.2 handshake with the
// provider's certificate, as crypto/tls hands it to WrapSession.
func sampleSession(t *testing.T) *tls.SessionState {
	t.Helper()
	cert, pool := providerPKI(t)
	var got *tls.SessionState
	srv := &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: tls.VersionTLS12,
		WrapSession: func(_ tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
			got = ss
			return []byte("handle"), nil
		}}
	cli := &tls.Config{RootCAs: pool, ServerName: "localhost", ClientSessionCache: tls.NewLRUClientSessionCache(1)}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	errc := make(chan error, 1)
	go func() { errc <- tls.Server(a, srv).Handshake() }()
	if err := tls.Client(b, cli).Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if got == nil {
		t.Fatal("no session was made")
	}
	return got
}
