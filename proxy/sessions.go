package proxy

import (
	"crypto/rand"
	"crypto/tls"
	"sync"
)

// sessionStoreSize is how many TLS sessions the consumer listener keeps
// for resumption. crypto/tls issues a new session on every handshake,
// resumed ones included, so the store is always full once this many
// handshakes have happened: about 2.3 KiB each (the session's secret and
// the client's certificate chain), 2.3 MiB in all. A consumer whose session
// has been pushed out makes a full handshake, as after a restart.
const sessionStoreSize = 1024

// sessionStore keeps the consumers' TLS sessions in the SSP and hands each
// consumer a random 32-byte handle as its session ticket, where crypto/tls
// by default sends the whole session, encrypted, as the ticket. That
// default ticket carries the client's certificate chain, about 2 KiB, so
// every resuming consumer's ClientHello did too: crypto/tls then kept a
// handshake buffer of 8 KiB and the decrypted ticket, 2 KiB more, for the
// life of each connection (about 25 KiB of heap per idle consumer
// connection; 17-19 KiB with the handle). nginx's ssl_session_cache keeps
// sessions on the server the same way.
//
// Security: a handle is 256 random bits, so it cannot be guessed, and it
// names state that never leaves the process, so no ticket key can leak or
// needs rotating. crypto/tls still decides whether to resume (session age,
// version, suite, the client certificate's expiry) and still calls
// VerifyConnection, the CRL check, on every resumed handshake. Sessions
// are kept and parsed as crypto/tls requires (SessionState.Bytes and
// ParseSessionState), so nothing is shared between connections.
type sessionStore struct {
	mu    sync.Mutex
	byID  map[string][]byte
	order []string // handles in the order they were made, a ring once full
	next  int      // the oldest handle once the ring is full
}

func newSessionStore(size int) *sessionStore {
	return &sessionStore{byID: make(map[string][]byte, size), order: make([]string, 0, size)}
}

// wire makes cfg keep its sessions in s.
func (s *sessionStore) wire(cfg *tls.Config) {
	cfg.WrapSession = s.wrap
	cfg.UnwrapSession = s.unwrap
}

// wrap stores a session and returns its handle, the consumer's ticket.
func (s *sessionStore) wrap(_ tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	state, err := ss.Bytes()
	if err != nil {
		return nil, err
	}
	id := make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.order) < cap(s.order) {
		s.order = append(s.order, string(id))
	} else {
		delete(s.byID, s.order[s.next])
		s.order[s.next] = string(id)
		s.next = (s.next + 1) % len(s.order)
	}
	s.byID[string(id)] = state
	return id, nil
}

// unwrap returns the session of a handle; an unknown handle (pushed out,
// from before a restart, or made up) is ignored, and the consumer makes a
// full handshake.
func (s *sessionStore) unwrap(id []byte, _ tls.ConnectionState) (*tls.SessionState, error) {
	s.mu.Lock()
	state, ok := s.byID[string(id)]
	s.mu.Unlock()
	if !ok {
		return nil, nil
	}
	ss, err := tls.ParseSessionState(state)
	if err != nil {
		return nil, nil // written by wrap, so it parses; were it not to, a full handshake
	}
	return ss, nil
}
