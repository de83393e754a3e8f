package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// chainFile is what a chain writes through; *os.File is one. It is an
// interface so tests can make writes and fsyncs fail on demand, as a full
// disk or a failing device would, and prove the recovery.
type chainFile interface {
	io.Writer
	io.WriterAt
	Sync() error
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
	Close() error
	Name() string
}

// openFunc opens a chain's file like os.OpenFile.
type openFunc func(name string, flag int, perm os.FileMode) (chainFile, error)

func osOpen(name string, flag int, perm os.FileMode) (chainFile, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return f, nil
}

// The back-off between recovery attempts: doubling from defaultRetryMin up
// to defaultRetryMax, so a disk that frees up is noticed within a couple of
// seconds and a dead one costs little.
const (
	defaultRetryMin = 50 * time.Millisecond
	defaultRetryMax = 2 * time.Second
)

// mark is a place in a chain: the end of file number index at size bytes,
// whose last record is seq with hash prev.
type mark struct {
	index int
	size  int64
	seq   uint64
	prev  [32]byte
}

// here is where the chain's writer stands now.
func (c *chain) here() mark {
	return mark{index: c.index, size: c.size, seq: c.seq, prev: c.prev}
}

// outage is the writer's account of one spell of failure: since when, why,
// and when to try again. Only the writer goroutine touches it.
type outage struct {
	min, max time.Duration
	since    time.Time
	cause    error
	attempts int
	lastMsg  string
	backoff  time.Duration
	timer    *time.Timer
}

// begin starts an outage: the log says so once, with the cause (paths and
// OS errors belong here, never in an answer to a consumer).
func (o *outage) begin(c *chain, err error) {
	if o.min <= 0 {
		o.min = defaultRetryMin
	}
	if o.max < o.min {
		o.max = max(defaultRetryMax, o.min)
	}
	o.since, o.cause, o.attempts, o.backoff, o.lastMsg = time.Now(), err, 0, o.min, ""
	o.arm()
	c.log.Error("audit log not writable: requests are refused (fail closed) until it is; retrying",
		"chain", c.name, "dir", c.dir, "err", err)
}

func (o *outage) arm() {
	if o.timer == nil {
		o.timer = time.NewTimer(o.backoff)
		return
	}
	o.timer.Reset(o.backoff)
}

// due fires when the next attempt is due; nil (never) outside an outage.
func (o *outage) due() <-chan time.Time {
	if o.timer == nil || o.cause == nil {
		return nil
	}
	return o.timer.C
}

func (o *outage) stop() {
	if o.timer != nil {
		o.timer.Stop()
	}
}

// tryRecover makes one recovery attempt and, when it fails, schedules the
// next with a longer back-off.
func (c *chain) tryRecover() {
	err := c.failed()
	if err == nil || errors.Is(err, ErrClosed) {
		return
	}
	o := &c.outage
	o.attempts++
	if rerr := c.recover(); rerr != nil {
		// Writable (and /readyz) give the newest cause; the log gets each
		// new cause once, not every attempt.
		c.errMu.Lock()
		c.err = rerr
		c.errMu.Unlock()
		if msg := rerr.Error(); msg != o.lastMsg {
			o.lastMsg = msg
			c.log.Warn("audit log still not writable", "chain", c.name, "dir", c.dir, "attempt", o.attempts, "err", rerr)
		}
		o.backoff = min(2*o.backoff, o.max)
		o.arm()
		return
	}
	c.errMu.Lock()
	c.err = nil
	c.errMu.Unlock()
	c.log.Info("audit log writable again: requests are accepted",
		"chain", c.name, "dir", c.dir, "down", time.Since(o.since).Round(time.Millisecond).String(),
		"attempts", o.attempts, "seq", c.seq)
	o.cause = nil
}

// recover puts the chain back where it last stood whole and durable (the
// batch that failed never enters it: its callers were told so) and proves
// writing works by appending a notice of the gap, fsynced, with the head
// file following. Until all of that succeeds the chain stays failed.
//
// It rolls back by the files themselves, not by trusting the failed
// descriptor: files begun after the mark are removed, the mark's file is
// reopened and cut to the mark's size, and its last record must then be
// the one the mark names. After a failed fsync the kernel may have dropped
// the pages it could not write, so bytes written after the last good fsync
// are never kept, even if they read back fine.
func (c *chain) recover() error {
	// A disk that has only the failed batch's bytes to give back would let
	// the small gap notice through and fail again at the next batch, over
	// and over: first prove there is room for a good many records.
	if err := c.probe(); err != nil {
		return err
	}
	m := c.durable
	// Under sync interval, records after m were written and answered
	// before their fsync failed: the notice names them, as they are taken
	// out with the rest.
	var lostFrom, lostTo uint64
	if c.interval > 0 {
		c.wmu.Lock()
		answered := c.written.seq // the end of the last batch answered as written
		c.wmu.Unlock()
		if answered > m.seq {
			lostFrom, lostTo = m.seq+1, answered
		}
	}
	if c.f != nil {
		_ = c.f.Close()
		c.f = nil
	}
	if c.headF != nil {
		_ = c.headF.Close()
		c.headF = nil
	}
	files, err := ChainFiles(c.dir, c.name)
	if err != nil {
		return err
	}
	for _, f := range files {
		if _, index, _ := parseChainFileName(filepath.Base(f)); index > m.index {
			if err := os.Remove(f); err != nil {
				return fmt.Errorf("audit: remove %s, begun after the last durable record: %w", f, err)
			}
		}
	}
	c.setIndex(m.index)
	path := filepath.Join(c.dir, c.fileName())
	f, err := c.open(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit: reopen %s: %w", path, err)
	}
	c.f = f
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("audit: stat %s: %w", path, err)
	}
	if st.Size() < m.size {
		return fmt.Errorf("%w: %s holds %d bytes, fewer than the %d already durable: records were removed",
			ErrChainBroken, path, st.Size(), m.size)
	}
	if err := f.Truncate(m.size); err != nil {
		return fmt.Errorf("audit: cut %s back to its last durable record: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("audit: fsync %s: %w", path, err)
	}
	if m.size > 0 {
		last, _, ok, err := lastRecord(path, 0)
		if err != nil {
			return err
		}
		if !ok || last.Seq != m.seq || last.Hash != m.prev {
			return fmt.Errorf("%w: %s does not end with record seq %d, the last one made durable", ErrChainBroken, path, m.seq)
		}
	}
	if err := syncDir(c.dir); err != nil {
		return err
	}
	c.size, c.seq, c.prev, c.dirty = m.size, m.seq, m.prev, false
	if c.onRollback != nil {
		c.onRollback(m.seq)
	}
	if c.mode != SyncNone {
		hp := headPath(c.dir, c.name)
		if c.headF, err = c.open(hp, os.O_CREATE|os.O_RDWR, 0o600); err != nil {
			return fmt.Errorf("audit: open head %s: %w", hp, err)
		}
	}

	p := newPending()
	defer p.release()
	p.body = appendGapNotice(p.body, c.outage.since, time.Now(), lostFrom, lostTo)
	err = c.write([]*pending{p})
	if err == nil && (c.dirty || c.interval > 0) {
		err = c.syncFile(c.f, 0) // a lazy chain, or the syncer, does not wait here
	}
	if err == nil {
		err = c.writeHead(true)
	}
	if err != nil {
		return err
	}
	c.durable = c.here()
	if c.interval > 0 {
		// The syncer (waiting on syncMu) must not vouch for the marks
		// of records just taken out.
		c.wmu.Lock()
		c.written, c.unsynced = c.durable, 0
		c.drainKick()
		c.wmu.Unlock()
	}
	if c.onDurable != nil {
		c.onDurable([]*pending{p})
	}
	return nil
}

// probeBytes is how much a recovery must be able to write and fsync
// before it trusts the disk again: a few hundred records.
const probeBytes = 256 << 10

// probe writes, fsyncs and removes probeBytes in a scratch file beside the
// chain (<chain>.probe, which no reader of the chain looks at).
func (c *chain) probe() error {
	path := filepath.Join(c.dir, c.name+".probe")
	f, err := c.open(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("audit: probe %s: %w", path, err)
	}
	_, err = f.Write(make([]byte, probeBytes))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(path); err == nil && rerr != nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("audit: probe: %w", err)
	}
	return nil
}

// appendGapNotice is the record that closes a gap: readers of the chain
// learn that requests were refused in that time and have no record, and
// verify sees one chain running through. Under sync interval a failed
// fsync also takes out records written (and their requests answered)
// before it: lostFrom..lostTo, when not zero, names their sequence numbers,
// which the chain then gives again from the notice on.
func appendGapNotice(dst []byte, from, to time.Time, lostFrom, lostTo uint64) []byte {
	notice := "audit records could not be written from outage_from until this record: every request in that time " +
		"was refused (fail closed) and has no record here; the operational log says why"
	if lostFrom != 0 {
		notice += "; records not_durable_from to not_durable_to were written before a failed fsync and could not be " +
			"made durable, so they are taken out (their requests had gone ahead)"
	}
	b, _ := json.Marshal(struct {
		Time     time.Time `json:"time"`
		Notice   string    `json:"notice"`
		From     time.Time `json:"outage_from"`
		LostFrom uint64    `json:"not_durable_from,omitempty"`
		LostTo   uint64    `json:"not_durable_to,omitempty"`
	}{
		Time: to.UTC(), Notice: notice, From: from.UTC(), LostFrom: lostFrom, LostTo: lostTo,
	})
	return append(dst, b...)
}
