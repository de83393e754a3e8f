package audit

import (
	"fmt"
	"time"
)

// The background syncer of sync interval. The writer goroutine writes each
// batch to the file and answers its callers at once (the records are in the
// kernel's page cache: a killed process loses none of them); the syncer
// fsyncs what was written at most one interval later, off the request path,
// and only then moves the head file, so the head never vouches for a record
// a power cut could take. One fsync covers everything written since the
// last; when nothing was written there is none.

// syncLoop is the syncer goroutine of one chain. It runs from Open until the
// writer stops it (stopSyncer).
func (c *chain) syncLoop() {
	defer close(c.syncDone)
	last := time.Now() // the previous fsync began; Open left the chain durable
	for {
		select {
		case <-c.kick:
		case <-c.stopSync:
			return
		}
		// Something was written. Wait until an interval has passed since
		// the previous fsync began, so that under load there is one fsync
		// per interval and a record waits at most the interval; after a
		// quiet spell the fsync follows at once.
		if wait := c.interval - time.Since(last); wait > 0 {
			select {
			case <-c.after(wait):
			case <-c.stopSync:
				return // the writer's finish fsyncs what is left
			}
		}
		last = time.Now()
		c.syncWritten()
	}
}

// syncWritten fsyncs the chain's file and moves the head and the recovery
// mark to the records it made durable. A failure makes the chain refuse
// records at once (fail closed) and hands the outage to the writer, which
// recovers as after a failed write.
func (c *chain) syncWritten() {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	if c.failed() != nil {
		return // the recovery rolls back to durable and starts over
	}
	c.wmu.Lock()
	m, n := c.written, c.unsynced
	c.unsynced = 0
	c.drainKick()
	c.wmu.Unlock()
	if n == 0 {
		return // the rotation or a recovery made them durable already
	}
	// m lies in c.f or in a file before it, which rotate fsynced before
	// closing: after this fsync every record up to m is durable.
	start := time.Now()
	err := c.f.Sync()
	if err != nil {
		err = fmt.Errorf("audit: fsync: %w", err) // an *os.PathError: it names the file
	} else {
		if c.obs != nil {
			c.obs.Fsync(time.Since(start).Seconds(), n)
		}
		err = c.writeHeadAt(m)
	}
	if err != nil {
		if c.setErr(err) {
			select {
			case c.syncFailed <- err:
			default:
			}
		}
		return
	}
	c.advanceDurable(m)
}

// publishWritten tells the syncer that n more records were written, up to
// where the writer now stands.
// The kick is sent and taken back under wmu, so a kick waits exactly when
// records were written since the syncer last took them: the syncer never
// starts an interval for nothing.
func (c *chain) publishWritten(n int) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.written = c.here()
	c.unsynced += n
	select {
	case c.kick <- struct{}{}:
	default: // a kick is already waiting
	}
}

// drainKick takes back a waiting kick; the caller holds wmu and has taken
// (or dropped) the unsynced records it announced.
func (c *chain) drainKick() {
	select {
	case <-c.kick:
	default:
	}
}

// takeUnsynced returns and clears the count of records written since the
// syncer last took it.
func (c *chain) takeUnsynced() int {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	n := c.unsynced
	c.unsynced = 0
	c.drainKick()
	return n
}

// advanceDurable moves the recovery mark forward to m; a mark the chain
// has passed already is kept. The caller holds syncMu (or is the writer
// with the syncer stopped).
func (c *chain) advanceDurable(m mark) {
	if m.seq > c.durable.seq {
		c.durable = m
	}
}

// writeHeadAt records m, durable, in the head file (not fsynced, as after
// a batch: the head may lag the chain, never lead it).
func (c *chain) writeHeadAt(m mark) error {
	c.headBuf = appendHead(c.headBuf[:0], chainFileName(c.name, m.index), m.seq, &m.prev)
	if _, err := c.headF.WriteAt(c.headBuf, 0); err != nil {
		return fmt.Errorf("audit: write head %s: %w", headPath(c.dir, c.name), err)
	}
	return nil
}

// beginSyncOutage starts, in the writer, the outage a background fsync
// failure opened.
func (c *chain) beginSyncOutage(err error) {
	if c.outage.cause == nil {
		c.outage.begin(c, err)
	}
}

// stopSyncer stops the syncer and waits for it, so the writer's finish has
// the files to itself; a failure the syncer reported last is begun as an
// outage so finish can try to recover from it.
func (c *chain) stopSyncer() {
	if c.interval == 0 {
		return
	}
	close(c.stopSync)
	<-c.syncDone
	select {
	case err := <-c.syncFailed:
		c.beginSyncOutage(err)
	default:
	}
}
