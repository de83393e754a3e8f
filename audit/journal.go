package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// SpineChain is the chain of the Spine services journal: the consumer's
// calls to SDS (FHIR and LDAP) and PDS, which the SSP never sees but
// assurance asks about (GPC-SPN-TST-01/02: "retrieve the ASID", "retrieve
// the endpoint"). It lives in the audit directory beside the audit and
// transaction chains (spine-000001.jsonl, spine.head), in the same
// hash-chained format, so Verify checks it like them and `sspemu report`
// reads it with the audit it belongs to.
const SpineChain = "spine"

// Journal writes the Spine services journal. Each entry is a JSON object
// with a non-zero "time" member (readers skip the notice lines recovery
// writes, which have none). It is safe for concurrent use.
type Journal struct {
	c *chain

	mu     sync.RWMutex // held shared while submitting, exclusively by Close
	closed bool
}

// OpenJournal opens (creating) the journal chain in the store's directory,
// under the store's lock on it, tuned by opt as Open is (sync mode, file
// size, logger; Observer and RecentTransactions are not used). Close it
// before the store.
func (s *Store) OpenJournal(opt Options) (*Journal, error) {
	co, err := chainOpts(opt)
	if err != nil {
		return nil, err
	}
	c, err := openChain(s.dir, SpineChain, co)
	if err != nil {
		return nil, err
	}
	if co.mode == SyncBatch {
		// Nobody waits on a journal entry: fsync at most every
		// transactionSyncEvery, as the transaction chain does.
		c.lazy = transactionSyncEvery
	}
	if c.interval > 0 {
		go c.syncLoop()
	}
	go c.run()
	return &Journal{c: c}, nil
}

// chainOpts is Open's reading of opt for one more chain.
func chainOpts(opt Options) (chainOptions, error) {
	if err := checkSync(opt.Sync); err != nil {
		return chainOptions{}, fmt.Errorf("audit: %w", err)
	}
	if err := checkSyncInterval(opt.SyncInterval); err != nil {
		return chainOptions{}, fmt.Errorf("audit: %w", err)
	}
	co := chainOptions{mode: opt.Sync, maxBytes: opt.MaxFileBytes, open: opt.openFile, log: opt.Logger,
		retryMin: opt.retryMin, retryMax: opt.retryMax, after: opt.after}
	if co.mode == "" {
		co.mode = SyncInterval
	}
	switch {
	case co.maxBytes == 0:
		co.maxBytes = DefaultMaxFileBytes
	case co.maxBytes < 0:
		return chainOptions{}, fmt.Errorf("audit: max file bytes %d: must be 0 or positive", co.maxBytes)
	}
	if co.mode == SyncInterval {
		co.interval = opt.SyncInterval
		if co.interval == 0 {
			co.interval = DefaultSyncInterval
		}
	}
	return co, nil
}

// Queue hands entry (any value that encodes to a JSON object with a
// "time" member) to the journal's writer without waiting
// for the write, like QueueTransaction: the call it describes is already
// answered. It blocks only while the writer's queue is full.
func (j *Journal) Queue(entry any) error {
	b, err := json.Marshal(entry)
	if err != nil {
		return fmt.Errorf("audit: journal entry: %w", err)
	}
	if len(b) < 2 || b[0] != '{' || !bytes.Contains(b, []byte(`"time":`)) {
		return errors.New("audit: journal entry: not a JSON object with a time")
	}
	p := newPending()
	p.body = append(p.body, b...)
	p.queued = true
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		p.release()
		return ErrClosed
	}
	if err := j.c.failed(); err != nil {
		p.release()
		return err
	}
	j.c.reqs <- p
	return nil
}

// Writable reports why entries cannot be written, or nil.
func (j *Journal) Writable() error {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return ErrClosed
	}
	return j.c.failed()
}

// Close writes out queued entries and fsyncs the chain and its head.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	close(j.c.reqs)
	j.mu.Unlock()
	<-j.c.done
	return j.c.closeErr
}
