package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"sspemu/gpconnect"
)

// MaxLimit caps Filter.Limit so one query cannot ask for the whole history.
const MaxLimit = 10000

// DefaultLimit is the number of transactions returned when Filter.Limit is
// zero.
const DefaultLimit = 100

// Filter selects transactions; empty fields match everything.
type Filter struct {
	// TraceID matches without regard to case: a UUID is the same whether
	// written in lower case or, as macOS uuidgen writes it, upper case.
	TraceID     string
	From        string
	To          string
	Interaction string
	// Outcome matches Decision (one of Outcomes); "aborted" matches
	// transactions the client abandoned.
	Outcome string
	Since   time.Time // zero: no lower bound
	Limit   int       // 0: DefaultLimit; capped at MaxLimit
}

// OutcomeAborted is the Filter.Outcome of transactions the client
// abandoned.
const OutcomeAborted = "aborted"

// Outcomes are the values Filter.Outcome understands: the decisions
// (gpconnect.Decisions), and OutcomeAborted.
var Outcomes = func() []string {
	var out []string
	for _, d := range gpconnect.Decisions() {
		out = append(out, string(d))
	}
	return append(out, OutcomeAborted)
}()

func (f Filter) match(t *Transaction) bool {
	switch {
	case f.TraceID != "" && !strings.EqualFold(t.TraceID, f.TraceID),
		f.From != "" && t.From != f.From,
		f.To != "" && t.To != f.To,
		f.Interaction != "" && t.Interaction != f.Interaction,
		!f.Since.IsZero() && t.Time.Before(f.Since):
		return false
	case f.Outcome == OutcomeAborted:
		return t.ClientAborted
	case f.Outcome != "":
		return string(t.Decision) == f.Outcome
	}
	return true
}

func (f Filter) limit() int {
	switch {
	case f.Limit <= 0:
		return DefaultLimit
	case f.Limit > MaxLimit:
		return MaxLimit
	}
	return f.Limit
}

// Transactions returns the transactions matching f, newest first: first
// those kept in memory since Open, then older ones read from the files, so
// recent questions are cheap and old ones still answered. Malformed or
// unfinished lines in the files are skipped; Verify is the place to judge
// them.
func (s *Store) Transactions(f Filter) ([]Transaction, error) {
	limit := f.limit()
	out, below := s.recent.query(f, limit)
	if len(out) >= limit {
		return out, nil
	}
	files, err := ChainFiles(s.dir, TransactionChain)
	if err != nil {
		return out, err
	}
	for i := len(files) - 1; i >= 0 && len(out) < limit; i-- {
		data, err := os.ReadFile(files[i])
		if err != nil {
			return out, fmt.Errorf("audit: read %s: %w", files[i], err)
		}
		var found []Transaction
		for line := range bytes.Lines(data) {
			if line[len(line)-1] != '\n' {
				continue // being written right now
			}
			var t struct {
				Notice string `json:"notice"`
				Transaction
			}
			if json.Unmarshal(line, &t) != nil || t.Notice != "" || t.Seq == 0 || t.Seq >= below {
				continue
			}
			if f.match(&t.Transaction) {
				found = append(found, t.Transaction)
			}
		}
		for j := len(found) - 1; j >= 0 && len(out) < limit; j-- {
			out = append(out, found[j])
		}
	}
	return out, nil
}

// ring keeps the newest transactions written since Open.
type ring struct {
	mu    sync.Mutex
	items []Transaction
	start int    // index of the oldest item
	n     int    // items held
	next  uint64 // the seq after the newest durable record of the chain
}

func newRing(size int, next uint64) *ring {
	return &ring{items: make([]Transaction, size), next: next}
}

// add is called by the writer, in seq order, once records are durable.
func (r *ring) add(ps []*pending) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range ps {
		r.next = p.seq + 1
		if p.tx == nil {
			continue
		}
		t := *p.tx
		t.Seq = p.seq
		if r.n < len(r.items) {
			r.items[(r.start+r.n)%len(r.items)] = t
			r.n++
		} else {
			r.items[r.start] = t
			r.start = (r.start + 1) % len(r.items)
		}
	}
}

// rollback forgets the transactions after seq: a recovery took them back
// out of the chain, and their seqs will be given to other records.
func (r *ring) rollback(seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.n > 0 {
		i := (r.start + r.n - 1) % len(r.items)
		if r.items[i].Seq <= seq {
			break
		}
		r.items[i] = Transaction{}
		r.n--
	}
	r.next = seq + 1
}

// query returns matches newest first and the seq below which the files
// must be read to continue the answer.
func (r *ring) query(f Filter, limit int) ([]Transaction, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Transaction
	for i := r.n - 1; i >= 0 && len(out) < limit; i-- {
		t := &r.items[(r.start+i)%len(r.items)]
		if f.match(t) {
			out = append(out, *t)
		}
	}
	below := r.next
	if r.n > 0 {
		below = r.items[r.start].Seq
	}
	return out, below
}
