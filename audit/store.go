package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
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

// pending is one record on its way to disk. Pendings are recycled through
// pendingPool, with their body buffer and done channel, because allocating
// the three per request was a good part of the audit path's garbage.
type pending struct {
	body []byte       // a JSON object without seq, prev and hash
	tx   *Transaction // kept in memory once written (points at txv); nil for audit records
	txv  Transaction  // the storage of tx, so a transaction needs no allocation of its own
	seq  uint64       // set by the writer before done
	// queued marks a record nobody waits for (QueueTransaction): the
	// writer releases it instead of answering on done.
	queued bool
	done   chan error // buffered, and empty whenever the pending is in the pool
}

// pendingPool holds released pendings for reuse.
var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan error, 1)} }}

// maxPooledBody bounds the body buffer a released pending keeps, so one
// huge record does not pin its memory in the pool.
const maxPooledBody = 64 << 10

// newPending returns an empty pending from the pool.
func newPending() *pending { return pendingPool.Get().(*pending) }

// release returns p to the pool. Its owner calls it once p is answered (or
// was never handed to the writer); nobody may touch p afterwards. The
// transaction copy is cleared so the pool keeps no caller strings alive.
func (p *pending) release() {
	if cap(p.body) > maxPooledBody {
		p.body = nil
	}
	p.body = p.body[:0]
	p.tx, p.txv, p.seq, p.queued = nil, Transaction{}, 0, false
	pendingPool.Put(p)
}

// chain is one hash chain and its writer goroutine. Fields below "writer
// owned" are touched only by run after Open.
type chain struct {
	name     string
	dir      string
	mode     string
	maxBytes int64
	obs      Observer
	open     openFunc
	log      *slog.Logger
	reqs     chan *pending
	done     chan struct{}
	// commitMu is held for every change to the chain's writer-owned state:
	// by the writer around each batch and each outage, sync or finish step,
	// and by a caller that commits its own record while the writer is idle
	// (submit's fast path), which saves the two goroutine handoffs that
	// were most of an idle SSP's latency (bench/RESULTS.md).
	commitMu sync.Mutex
	// wake makes the writer look again at the chain: a fast-path commit
	// that failed has begun an outage whose retries the writer runs.
	wake chan struct{}

	onDurable func([]*pending)
	// onRollback, when set, hears that records after seq were taken back
	// out of the chain by a recovery (the ring forgets them).
	onRollback func(seq uint64)

	// lazy, when set, lets the chain's fsync wait up to this long after a
	// batch (the transaction chain under batch: nobody waits on it). The
	// head file then moves only after a real fsync, so it never vouches for
	// records a power cut could take.
	lazy time.Duration

	// interval, when set (sync interval), hands every fsync to the
	// background syncer (syncLoop): the writer only writes, and tells the
	// syncer so through kick. See syncer.go for the fields they share.
	interval time.Duration
	after    func(time.Duration) <-chan time.Time
	kick     chan struct{} // buffered 1: something was written since the syncer last looked
	stopSync chan struct{} // closed by the writer when it stops
	syncDone chan struct{} // closed by the syncer when it has stopped
	// syncFailed carries a background fsync failure to the writer, which
	// alone runs the outage; the chain refuses records from the moment
	// the syncer records the error.
	syncFailed chan error
	// syncMu is held by the syncer for a whole fsync and head update, and
	// by the writer while it replaces the file (rotate), rolls the chain
	// back (recover) or closes it: the syncer never fsyncs a file being
	// closed nor vouches for records a recovery is taking out.
	syncMu sync.Mutex
	// wmu guards written and unsynced, which the writer publishes after
	// each batch and the syncer takes before each fsync.
	wmu      sync.Mutex
	written  mark // the end of the chain as written, not yet known durable
	unsynced int  // records written since the syncer last took them

	// writer owned
	dirty    bool // records written since the last fsync (lazy chains)
	lastSync time.Time
	f        chainFile
	headF    chainFile
	index    int
	file     string // chainFileName(name, index)
	headBuf  []byte // the head file's content, reused
	size     int64
	seq      uint64
	prev     [32]byte
	buf      []byte
	closeErr error
	// durable is the end of the chain as it last stood whole and durable,
	// at a batch boundary: where a recovery rolls back to.
	// Under sync interval the syncer moves it, holding syncMu.
	durable mark
	outage  outage

	errMu sync.Mutex
	err   error
}

func (c *chain) failed() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

// fail makes the chain refuse records and, at the first failure, starts
// the outage. Only the writer calls it (the outage is the writer's); the
// syncer uses setErr and tells the writer through syncFailed.
func (c *chain) fail(err error) {
	if c.setErr(err) && !errors.Is(err, ErrClosed) {
		c.outage.begin(c, err)
	}
}

// setErr records err as the reason the chain refuses records, unless one
// is already recorded; it reports whether err was the first.
func (c *chain) setErr(err error) bool {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	if c.err != nil {
		return false
	}
	c.err = err
	return true
}

// fileName is the base name of the chain's current file.
func (c *chain) fileName() string { return c.file }

// setIndex makes file number index the current one. The name is kept
// because the writer needs it for every head update, and formatting it each
// time was a good part of the writer's garbage.
func (c *chain) setIndex(index int) {
	c.index, c.file = index, chainFileName(c.name, index)
}

// chainOptions are what openChain takes from Options.
type chainOptions struct {
	mode               string
	maxBytes           int64
	obs                Observer
	open               openFunc
	log                *slog.Logger
	retryMin, retryMax time.Duration
	interval           time.Duration // sync interval only
	after              func(time.Duration) <-chan time.Time
}

// openChain finds where the chain ends, repairs a torn tail and opens the
// newest file for appending.
func openChain(dir, name string, o chainOptions) (*chain, error) {
	mode := o.mode
	c := &chain{
		name: name, dir: dir, mode: mode, maxBytes: o.maxBytes, obs: o.obs, open: o.open, log: o.log,
		reqs:     make(chan *pending, maxBatch),
		done:     make(chan struct{}),
		wake:     make(chan struct{}, 1),
		interval: o.interval, after: o.after,
		kick: make(chan struct{}, 1), stopSync: make(chan struct{}), syncDone: make(chan struct{}),
		syncFailed: make(chan error, 1),
	}
	if c.open == nil {
		c.open = osOpen
	}
	if c.after == nil {
		c.after = time.After
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.outage.min, c.outage.max = o.retryMin, o.retryMax
	hp := headPath(dir, name)
	h, err := readHead(hp)
	if errors.Is(err, errMalformed) {
		return nil, fmt.Errorf("%w: %w", ErrChainBroken, err)
	}
	if err != nil {
		return nil, err
	}
	files, err := ChainFiles(dir, name)
	if err != nil {
		return nil, err
	}
	var headHash *[32]byte // hash of record h.Seq when found in the scanned file
	if len(files) == 0 {
		c.setIndex(1)
	} else {
		_, index, _ := parseChainFileName(filepath.Base(files[len(files)-1]))
		c.setIndex(index)
		if err := cutTornTail(files[len(files)-1]); err != nil {
			return nil, err
		}
		for i := len(files) - 1; i >= 0; i-- {
			var want uint64
			if h != nil && h.File == filepath.Base(files[i]) {
				want = h.Seq
			}
			last, wantHash, ok, err := lastRecord(files[i], want)
			if err != nil {
				return nil, err
			}
			if wantHash != nil {
				headHash = wantHash
			}
			if ok {
				c.seq, c.prev = last.Seq, last.Hash
				break
			}
		}
	}
	if h != nil {
		if h.Seq > c.seq {
			return nil, fmt.Errorf("%w: %s chain in %s ends at seq %d but %s vouches for seq %d: records were removed; run verify and move the directory aside",
				ErrChainBroken, name, dir, c.seq, hp, h.Seq)
		}
		if headHash != nil && hexString(*headHash) != h.Hash {
			return nil, fmt.Errorf("%w: %s chain in %s: record seq %d differs from the one %s vouches for: the chain was rewritten",
				ErrChainBroken, name, dir, h.Seq, hp)
		}
	}

	path := filepath.Join(dir, c.fileName())
	c.f, err = c.open(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	st, err := c.f.Stat()
	if err != nil {
		c.closeFiles()
		return nil, fmt.Errorf("audit: stat %s: %w", path, err)
	}
	c.size = st.Size()
	if mode != SyncNone {
		c.headF, err = c.open(hp, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			c.closeFiles()
			return nil, fmt.Errorf("audit: open head %s: %w", hp, err)
		}
		if err := c.writeHead(true); err != nil {
			c.closeFiles()
			return nil, err
		}
	}
	if err := syncDir(dir); err != nil {
		c.closeFiles()
		return nil, err
	}
	c.durable = c.here()
	c.written = c.durable
	return c, nil
}

// cutTornTail removes bytes after the last newline of path, keeping them in
// path+".torn". Such bytes are a write a crash interrupted; its Append never
// returned, so no acknowledged record is lost.
func cutTornTail(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("audit: read %s: %w", path, err)
	}
	keep := bytes.LastIndexByte(data, '\n') + 1
	if keep == len(data) {
		return nil
	}
	tp := path + ".torn"
	tf, err := os.OpenFile(tp, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit: keep torn tail of %s: %w", path, err)
	}
	_, err = tf.Write(append(data[keep:len(data):len(data)], '\n'))
	if err == nil {
		err = tf.Sync()
	}
	if cerr := tf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("audit: keep torn tail of %s in %s: %w", path, tp, err)
	}
	if err := os.Truncate(path, int64(keep)); err != nil {
		return fmt.Errorf("audit: cut torn tail of %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("audit: open %s: %w", path, err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("audit: sync %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// lastRecord returns the last record of path (ok false when the file has
// none) and, when want is not zero, the hash of record want if the file
// holds it. It reads backwards only as far as it must.
func lastRecord(path string, want uint64) (last entry, wantHash *[32]byte, ok bool, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return entry{}, nil, false, fmt.Errorf("audit: read %s: %w", path, err)
	}
	data = data[:bytes.LastIndexByte(data, '\n')+1]
	lineNo := bytes.Count(data, []byte("\n"))
	for end := len(data) - 1; end >= 0; lineNo-- {
		start := bytes.LastIndexByte(data[:end], '\n') + 1
		e, perr := parseLine(data[start:end])
		if perr != nil {
			return entry{}, nil, false, fmt.Errorf("%w: %s line %d: %w", ErrChainBroken, path, lineNo, perr)
		}
		if e.Hash != e.Sum {
			return entry{}, nil, false, fmt.Errorf("%w: %s line %d (seq %d): content does not match its hash: the record was edited", ErrChainBroken, path, lineNo, e.Seq)
		}
		if !ok {
			last, ok = e, true
		}
		if want == 0 || e.Seq < want {
			break
		}
		if e.Seq == want {
			wantHash = &e.Hash
			break
		}
		end = start - 1
	}
	return last, wantHash, ok, nil
}

// run is the writer: it takes every record waiting, writes them, fsyncs
// once (group commit) and only then releases the callers.
func (c *chain) run() {
	defer close(c.done)
	batch := make([]*pending, 0, 64)
	var timer *time.Timer
	var tick <-chan time.Time
	for {
		// submit's fast path may have written, rotated or begun an outage.
		c.commitMu.Lock()
		dirty, due := c.dirty, c.outage.due()
		c.commitMu.Unlock()
		if dirty && timer == nil {
			timer = time.NewTimer(c.lazy)
			tick = timer.C
		}
		var p *pending
		var ok bool
		select {
		case p, ok = <-c.reqs:
		case <-tick:
			timer, tick = nil, nil
			c.commitMu.Lock()
			c.syncDirty()
			c.commitMu.Unlock()
			continue
		case <-c.wake:
			continue
		case <-due:
			c.commitMu.Lock()
			c.syncMu.Lock()
			c.tryRecover()
			c.syncMu.Unlock()
			c.commitMu.Unlock()
			continue
		case err := <-c.syncFailed:
			c.commitMu.Lock()
			c.beginSyncOutage(err)
			c.commitMu.Unlock()
			continue
		}
		if !ok {
			break
		}
		batch = append(batch[:0], p)
	drain:
		for len(batch) < maxBatch {
			select {
			case q, ok := <-c.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, q)
			default:
				break drain
			}
		}
		c.commitMu.Lock()
		if c.mode == SyncAlways {
			for i := range batch {
				c.commit(batch[i : i+1])
			}
		} else {
			c.commit(batch)
		}
		c.commitMu.Unlock()
		clear(batch)
	}
	if timer != nil {
		timer.Stop()
	}
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	c.stopSyncer()
	c.outage.stop()
	c.closeErr = c.finish()
}

// syncDirty makes a lazy chain's written records durable and moves the
// head to them.
func (c *chain) syncDirty() {
	if !c.dirty || c.failed() != nil {
		return
	}
	if err := c.syncFile(c.f, 0); err != nil {
		c.fail(err)
		return
	}
	if err := c.writeHead(false); err != nil {
		c.fail(err)
		return
	}
	c.durable = c.here()
}

// syncFile fsyncs f and clears the chain's dirty mark; n > 0 reports the
// fsync to the observer as covering n records.
func (c *chain) syncFile(f chainFile, n int) error {
	start := time.Now()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("audit: fsync: %w", err) // an *os.PathError: it names the file
	}
	c.dirty, c.lastSync = false, time.Now()
	if c.obs != nil && n > 0 {
		c.obs.Fsync(time.Since(start).Seconds(), n)
	}
	return nil
}

// commit writes ps as one unit and answers each caller; a queued record,
// which has no caller waiting, is released instead.
func (c *chain) commit(ps []*pending) {
	err := c.failed()
	if err == nil {
		err = c.write(ps)
		if err != nil {
			c.fail(err)
		}
	}
	if err == nil {
		if c.interval > 0 {
			// Written, not yet fsynced: the syncer makes them durable
			// and moves the head.
			c.publishWritten(len(ps))
		} else if c.dirty {
			// A lazy chain's records are written, not yet fsynced: the
			// head waits for syncDirty.
		} else if herr := c.writeHead(false); herr != nil {
			// The records are durable, but the anchor cannot follow
			// them: the batch is answered as failed and the recovery
			// takes it back out, so the chain and its head agree again.
			c.fail(herr)
			err = herr
		} else {
			c.durable = c.here()
		}
		if err == nil && c.onDurable != nil {
			c.onDurable(ps)
		}
	}
	for _, p := range ps {
		if p.queued {
			p.release()
		} else {
			p.done <- err
		}
	}
}

// write appends ps to the chain, rotating when a file would outgrow
// maxBytes, and fsyncs per the mode.
func (c *chain) write(ps []*pending) error {
	buf := c.buf[:0]
	n := 0
	for _, p := range ps {
		start := len(buf)
		var sum [32]byte
		buf, sum = appendLine(buf, c.seq+1, &c.prev, p.body)
		if c.size+int64(len(buf)) > c.maxBytes && c.size+int64(start) > 0 {
			if err := c.flush(buf[:start], n); err != nil {
				return err
			}
			if err := c.rotate(); err != nil {
				return err
			}
			buf = append(buf[:0], buf[start:]...)
			n = 0
		}
		c.seq++
		c.prev = sum
		p.seq = c.seq
		n++
		if len(buf) >= writeChunk {
			// Written now, made durable with the rest of the batch below.
			if err := c.writeFile(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	err := c.flush(buf, n)
	if cap(buf) <= 1<<20 {
		c.buf = buf
	}
	return err
}

// writeChunk is the size at which write hands a batch's lines to the file
// before the batch ends. A full batch of maxBatch records is megabytes; a
// buffer that large was dropped after every batch and grown again, which
// made a saturated transaction queue allocate about 1.6 KB per record. The
// fsync still follows the whole batch, so no caller is answered earlier.
const writeChunk = 256 << 10

// flush writes b and then fsyncs the n records written since the last
// fsync, unless the mode is none.
func (c *chain) flush(b []byte, n int) error {
	if err := c.writeFile(b); err != nil {
		return err
	}
	if c.mode == SyncNone || c.interval > 0 || n == 0 {
		return nil // sync interval: the syncer fsyncs
	}
	if c.lazy > 0 && time.Since(c.lastSync) < c.lazy {
		c.dirty = true
		return nil
	}
	return c.syncFile(c.f, n)
}

// writeFile appends b to the current file and counts its size.
func (c *chain) writeFile(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	w, err := c.f.Write(b)
	c.size += int64(w)
	if err != nil {
		return fmt.Errorf("audit: %w", err) // an *os.PathError: it names the file
	}
	return nil
}

// rotate closes the current file and starts the next; the chain continues
// because the next record's prev is the last record of this file.
func (c *chain) rotate() error {
	if c.interval > 0 {
		// The syncer must not fsync the file being closed; it waits here
		// until the new file is in place.
		c.syncMu.Lock()
		defer c.syncMu.Unlock()
	}
	if c.dirty || c.interval > 0 {
		if err := c.syncFile(c.f, 0); err != nil {
			return err
		}
	}
	if c.interval > 0 {
		// The old file is whole and durable: a recovery need not roll
		// back past its end.
		c.advanceDurable(c.here())
	}
	if err := c.f.Close(); err != nil {
		return fmt.Errorf("audit: close %s: %w", filepath.Join(c.dir, c.fileName()), err)
	}
	c.setIndex(c.index + 1)
	path := filepath.Join(c.dir, c.fileName())
	f, err := c.open(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.f = nil
		return fmt.Errorf("audit: create %s: %w", path, err)
	}
	c.f, c.size = f, 0
	if c.mode == SyncNone {
		return nil
	}
	return syncDir(c.dir)
}

// writeHead records the last durable record in the head file; with sync it
// also fsyncs it. It is skipped under sync none, where records themselves
// may vanish in a crash and the anchor would then accuse the log falsely.
func (c *chain) writeHead(sync bool) error {
	if c.mode == SyncNone {
		return nil
	}
	c.headBuf = appendHead(c.headBuf[:0], c.fileName(), c.seq, &c.prev)
	if _, err := c.headF.WriteAt(c.headBuf, 0); err != nil {
		return fmt.Errorf("audit: write head %s: %w", headPath(c.dir, c.name), err)
	}
	if sync {
		if err := c.headF.Sync(); err != nil {
			return fmt.Errorf("audit: fsync head %s: %w", headPath(c.dir, c.name), err)
		}
	}
	return nil
}

// finish runs once the queue is closed and empty: it makes everything
// durable and closes the files. A chain still failed gets one last
// recovery attempt, so it is left whole on disk when writing works.
func (c *chain) finish() error {
	var errs []error
	if c.failed() != nil {
		c.tryRecover()
	}
	if err := c.failed(); err != nil {
		errs = append(errs, err)
	} else {
		if c.mode != SyncNone {
			if err := c.syncFile(c.f, c.takeUnsynced()); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) == 0 {
			if err := c.writeHead(true); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if c.f != nil {
		if err := c.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("audit: close %s: %w", filepath.Join(c.dir, c.fileName()), err))
		}
	}
	if c.headF != nil {
		if err := c.headF.Close(); err != nil {
			errs = append(errs, fmt.Errorf("audit: close head of %s: %w", c.name, err))
		}
	}
	c.fail(ErrClosed)
	return errors.Join(errs...)
}

// closeFiles releases files of a chain whose writer never started.
func (c *chain) closeFiles() {
	if c.f != nil {
		_ = c.f.Close()
	}
	if c.headF != nil {
		_ = c.headF.Close()
	}
}
