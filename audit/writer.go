// writer.go is the chain's writer goroutine: it takes every record
// waiting, writes them and fsyncs once for all of them (group commit).

package audit

import (
	"fmt"
	"sync"
	"time"
)

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
