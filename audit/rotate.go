// rotate.go moves a chain on to its next file, keeps the head file
// and closes the chain's files.

package audit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

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
