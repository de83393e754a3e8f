// chain.go holds one hash chain's state: what the writer, the syncer and
// a recovery share, and how the chain starts refusing records.

package audit

import (
	"errors"
	"log/slog"
	"sync"
	"time"
)

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
