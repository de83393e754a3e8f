// open.go finds where a chain ends when the store opens: the newest file
// with a record, a torn tail cut off, the head file checked.

package audit

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

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
