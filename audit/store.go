package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
)

// ErrClosed is returned by Append and AppendTransaction after Close.
var ErrClosed = errors.New("audit: store closed")

// ErrChainBroken marks an Open that found the existing chain damaged (a
// malformed or edited last record, or fewer records than the head file
// vouches for). The store refuses to write on top of it so the evidence is
// kept; run Verify and move the directory aside to start a new chain.
var ErrChainBroken = errors.New("audit chain broken")

// Observer receives measurements of the writer; the caller adapts it to
// Prometheus. Fsync may be called from two goroutines at once (one per
// chain).
type Observer interface {
	// Fsync reports one fsync of a chain file and how many records it
	// made durable.
	Fsync(seconds float64, records int)
}

// Options tunes Open.
type Options struct {
	Sync               string        // interval (default) | batch | always | none
	SyncInterval       time.Duration // sync interval only: the longest a written record waits for its fsync; 0 means DefaultSyncInterval
	MaxFileBytes       int64         // 0 means DefaultMaxFileBytes
	Observer           Observer
	RecentTransactions int // in-memory ring for Transactions; 0 means DefaultRecentTransactions
	// Logger receives a line when a chain stops being writable and when it
	// recovers (with the path and the OS error, which callers never see);
	// nil discards them.
	Logger *slog.Logger

	// openFile opens the chain's files; nil means os.OpenFile. Tests put a
	// file that fails on demand in its place.
	openFile openFunc
	// retryMin and retryMax bound the back-off between recovery attempts;
	// zero means defaultRetryMin and defaultRetryMax.
	retryMin, retryMax time.Duration
	// after stands for time.After in the background syncer (sync
	// interval), so tests decide when a due fsync happens; nil means
	// time.After.
	after func(time.Duration) <-chan time.Time
}

// maxBatch bounds one group commit so a flood cannot grow a batch without
// end.
const maxBatch = 4096

// Store writes the audit and transaction chains of one directory. It is
// safe for concurrent use.
type Store struct {
	dir    string
	lock   io.Closer
	audit  *chain
	tx     *chain
	recent *ring

	mu     sync.RWMutex // held shared while submitting, exclusively by Close
	closed bool
}

// Open opens (creating) dir and continues both chains where they end.
//
// For each chain it takes the newest file with a record, reads its last
// record and continues seq and hash from it. A torn last line (bytes after
// the last newline, left by a crash during a write whose Append had not yet
// returned) is cut off so the chain continues from the last whole record;
// the cut bytes are kept beside the file as <file>.torn for inspection.
// Open fails with ErrChainBroken when the last record is malformed or does
// not match its own hash, or when the head file vouches for a record the
// files no longer hold: writing on would bury the damage.
func Open(dir string, opt Options) (*Store, error) {
	if err := checkSync(opt.Sync); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := checkSyncInterval(opt.SyncInterval); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	mode := opt.Sync
	if mode == "" {
		mode = SyncInterval
	}
	interval := opt.SyncInterval
	if interval == 0 {
		interval = DefaultSyncInterval
	}
	maxBytes := opt.MaxFileBytes
	switch {
	case maxBytes == 0:
		maxBytes = DefaultMaxFileBytes
	case maxBytes < 0:
		return nil, fmt.Errorf("audit: max file bytes %d: must be 0 or positive", maxBytes)
	}
	recent := opt.RecentTransactions
	switch {
	case recent == 0:
		recent = DefaultRecentTransactions
	case recent < 0:
		return nil, fmt.Errorf("audit: recent transactions %d: must be 0 or positive", recent)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: create directory %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, lock: lock}
	co := chainOptions{mode: mode, maxBytes: maxBytes, obs: opt.Observer, open: opt.openFile, log: opt.Logger,
		retryMin: opt.retryMin, retryMax: opt.retryMax, after: opt.after}
	if mode == SyncInterval {
		co.interval = interval
	}
	s.audit, err = openChain(dir, AuditChain, co)
	if err != nil {
		_ = lock.Close()
		return nil, err
	}
	s.tx, err = openChain(dir, TransactionChain, co)
	if err != nil {
		s.audit.closeFiles()
		_ = lock.Close()
		return nil, err
	}
	if mode == SyncBatch {
		// Nobody waits on a transaction record (QueueTransaction): fsync
		// the chain at most every transactionSyncEvery, not per batch.
		s.tx.lazy = transactionSyncEvery
	}
	s.recent = newRing(recent, s.tx.seq+1)
	s.tx.onDurable = s.recent.add
	s.tx.onRollback = s.recent.rollback
	for _, c := range []*chain{s.audit, s.tx} {
		if c.interval > 0 {
			go c.syncLoop()
		}
		go c.run()
	}

	if mode == SyncNone {
		notice := fmt.Sprintf(`{"time":%q,"notice":"audit.sync is none: records are written without fsync and may be lost in a crash; for benchmarks only"}`,
			time.Now().UTC().Format(time.RFC3339Nano))
		for _, c := range []*chain{s.audit, s.tx} {
			p := newPending()
			p.body = append(p.body, notice...)
			if _, err := s.submit(context.Background(), c, p); err != nil {
				_ = s.Close()
				return nil, err
			}
		}
	}
	return s, nil
}

// Append writes r to the audit chain and returns its sequence number once
// it is in the file, and durable per the sync mode: under interval (the
// default) written (a killed process cannot lose it) and fsynced within the
// sync interval by the background syncer; under batch and always fsynced
// before Append returns. An error means the record is not in the log and
// the request must be refused (fail closed). ctx only bounds the wait to hand
// the record to the writer; once handed over, Append waits for the write so
// its answer is always true.
func (s *Store) Append(ctx context.Context, r *Record) (uint64, error) {
	if r == nil {
		return 0, errors.New("audit: append: nil record")
	}
	p := newPending()
	body, err := encodeRecord(p.body, r)
	p.body = body
	if err != nil {
		p.release()
		return 0, err
	}
	return s.submit(ctx, s.audit, p)
}

// encodeRecord appends the body of r's line to dst: r with the time set
// (now when zero) and in UTC, encoded as json.Marshal encodes it. The copy
// it changes stays on the stack; only a record appendRecord cannot encode
// goes through json.Marshal, which then gives the bytes or the error it
// always gave.
func encodeRecord(dst []byte, r *Record) ([]byte, error) {
	rec := *r
	if rec.Time.IsZero() {
		rec.Time = time.Now()
	}
	rec.Time = rec.Time.UTC()
	if b, ok := appendRecord(dst, &rec); ok {
		return b, nil
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return dst, fmt.Errorf("audit: encode record of trace %q: %w", r.TraceID, err)
	}
	return append(dst, b...), nil
}

// AppendTransaction writes t to the transaction chain and keeps it in
// memory for Transactions; it is durable when it returns under sync
// always; under batch the chain fsyncs within transactionSyncEvery (see
// QueueTransaction), under interval within the sync interval. t.Seq is
// ignored.
func (s *Store) AppendTransaction(ctx context.Context, t *Transaction) (uint64, error) {
	p, err := encodeTransaction(t)
	if err != nil {
		return 0, err
	}
	return s.submit(ctx, s.tx, p)
}

// encodeTransaction turns t into a pending record: a copy with the time
// set and in UTC, kept in the pending itself for the in-memory ring, and
// encoded once as json.Marshal encodes it. Only a transaction
// appendTransaction cannot encode goes through json.Marshal, which then
// gives the bytes or the error it always gave.
func encodeTransaction(t *Transaction) (*pending, error) {
	if t == nil {
		return nil, errors.New("audit: transaction: nil transaction")
	}
	p := newPending()
	p.txv = *t
	tr := &p.txv
	tr.Seq = 0
	if tr.Time.IsZero() {
		tr.Time = time.Now()
	}
	tr.Time = tr.Time.UTC()
	p.tx = tr
	body, ok := appendTransaction(p.body, tr)
	if !ok {
		b, err := json.Marshal(tr)
		if err != nil {
			p.release()
			return nil, fmt.Errorf("audit: encode transaction of trace %q: %w", t.TraceID, err)
		}
		body = append(body, b...)
	}
	p.body = body
	return p, nil
}

// transactionSyncEvery bounds how long a written transaction record may
// wait for its fsync under sync batch. The audit chain is never lazy.
const transactionSyncEvery = 200 * time.Millisecond

// QueueTransaction hands t to the transaction chain's writer without
// waiting for it to be written: the request it describes is already
// answered, and its audit record was made durable before that, so a
// transaction record has no reason to hold the connection for an fsync.
// It is written in order, chained, and fsynced within transactionSyncEvery
// under sync batch; a power cut can lose the last few transaction records
// (a killed process cannot: they are in the kernel's page cache), never an
// audit record. It blocks only while the writer's queue is full
// (back-pressure).
func (s *Store) QueueTransaction(t *Transaction) error {
	p, err := encodeTransaction(t)
	if err != nil {
		return err
	}
	p.queued = true
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		p.release()
		return ErrClosed
	}
	if err := s.tx.failed(); err != nil {
		p.release()
		return err
	}
	s.tx.reqs <- p
	return nil
}

// submit hands p to c's writer and waits for its answer. It owns p from
// the call on and releases it on every path, because once p is answered
// nobody else refers to it.
func (s *Store) submit(ctx context.Context, c *chain, p *pending) (uint64, error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		p.release()
		return 0, ErrClosed
	}
	if err := c.failed(); err != nil {
		s.mu.RUnlock()
		p.release()
		return 0, err
	}
	// The fast path: when nothing is queued and the writer is idle, under
	// sync interval or none (no fsync in a commit), the caller writes its
	// own record, in the same commit the writer would run. Under load the
	// queue is rarely empty and the writer batches as before. Only the
	// audit chain takes it: every record there is awaited (Append), so no
	// caller's earlier record can still be in the writer's hands, whereas
	// a queued transaction (QueueTransaction) could be overtaken.
	if c == s.audit && (c.interval > 0 || c.mode == SyncNone) && len(c.reqs) == 0 && c.commitMu.TryLock() {
		c.commit([]*pending{p})
		failed := c.failed() != nil
		c.commitMu.Unlock()
		if failed {
			select {
			case c.wake <- struct{}{}: // the writer runs the outage's retries
			default:
			}
		}
		s.mu.RUnlock()
		err := <-p.done // buffered: commit has answered already
		seq := p.seq
		p.release()
		if err != nil {
			return 0, err
		}
		return seq, nil
	}
	select {
	case c.reqs <- p:
	case <-ctx.Done():
		s.mu.RUnlock()
		p.release()
		return 0, fmt.Errorf("audit: %s record not written: %w", c.name, ctx.Err())
	}
	s.mu.RUnlock()
	err := <-p.done
	seq := p.seq
	p.release()
	if err != nil {
		return 0, err
	}
	return seq, nil
}

// Writable reports why records cannot be written, or nil when they can; it
// backs /readyz. After a write or fsync failure the chain refuses records
// (fail closed) until its writer has rolled the files back to the last
// durable record and proved, by writing a notice of the gap, that writing
// works again (see recover); then Writable is nil again by itself.
func (s *Store) Writable() error {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	return errors.Join(s.audit.failed(), s.tx.failed())
}

// Close writes out pending records, fsyncs the files and the head files and
// releases the directory. Appends after Close fail with ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.audit.reqs)
	close(s.tx.reqs)
	s.mu.Unlock()
	<-s.audit.done
	<-s.tx.done
	return errors.Join(s.audit.closeErr, s.tx.closeErr, s.lock.Close())
}

// Dir is the directory the store writes.
func (s *Store) Dir() string { return s.dir }
