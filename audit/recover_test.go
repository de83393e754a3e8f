package audit

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The faults a faultFS injects.
const (
	faultNone  = iota
	faultWrite // a write puts half its bytes down, then fails with ENOSPC, as a disk filling up does
	faultSync  // writes succeed, fsync fails with EIO, as a failing device does
	faultOpen  // creating a new file fails with ENOSPC (a rotation on a full disk)
	faultAll   // every write, fsync, truncate and open fails: the disk is still unusable
)

// faultFS opens real files and makes them fail on demand. It stands for
// the disk under the store: only the chain named in chain is affected.
type faultFS struct {
	chain    string
	mode     atomic.Int32
	attempts atomic.Int64 // opens of the chain's files while faultAll: recovery attempts
}

func (fs *faultFS) open(name string, flag int, perm os.FileMode) (chainFile, error) {
	mine := strings.HasPrefix(filepath.Base(name), fs.chain)
	if mine {
		switch fs.mode.Load() {
		case faultAll:
			fs.attempts.Add(1)
			return nil, &os.PathError{Op: "open", Path: name, Err: syscall.ENOSPC}
		case faultOpen:
			if flag&os.O_EXCL != 0 {
				return nil, &os.PathError{Op: "open", Path: name, Err: syscall.ENOSPC}
			}
		}
	}
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	if !mine {
		return f, nil
	}
	return &faultFile{File: f, fs: fs}, nil
}

type faultFile struct {
	*os.File
	fs *faultFS
}

func (f *faultFile) Write(b []byte) (int, error) {
	switch f.fs.mode.Load() {
	case faultWrite:
		n, _ := f.File.Write(b[:len(b)/2])
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	case faultAll:
		return 0, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return f.File.Write(b)
}

func (f *faultFile) Sync() error {
	switch f.fs.mode.Load() {
	case faultSync, faultAll:
		return &os.PathError{Op: "fsync", Path: f.Name(), Err: syscall.EIO}
	}
	return f.File.Sync()
}

func (f *faultFile) Truncate(size int64) error {
	if f.fs.mode.Load() == faultAll {
		return &os.PathError{Op: "truncate", Path: f.Name(), Err: syscall.EIO}
	}
	return f.File.Truncate(size)
}

// logBuffer is a concurrency-safe slog sink for the store's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) count(substr string) int { return strings.Count(b.String(), substr) }

// waitWritable waits for the store to recover by itself; a store that
// never does fails the test.
func waitWritable(t *testing.T, s *Store, chain string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for s.Writable() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the %s chain did not recover: %v", chain, s.Writable())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// traces lists the trace_id of every line of a chain, "" for a notice.
func traces(t *testing.T, dir, chain string) []string {
	t.Helper()
	files, err := ChainFiles(dir, chain)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		for _, line := range readLines(t, f) {
			var r struct {
				TraceID string `json:"trace_id"`
				Notice  string `json:"notice"`
			}
			if err := json.Unmarshal(line, &r); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if r.Notice != "" && r.TraceID != "" {
				t.Fatalf("a line is both a notice and a record: %s", line)
			}
			out = append(out, r.TraceID)
		}
	}
	return out
}

// TestRecoversAfterWriteAndFsyncFailures makes the audit chain's disk fail
// in the ways a full or failing disk does, and checks each time that the
// store refuses (fail closed) while it fails, keeps refusing without
// touching the disk on every call, recovers by itself once the disk works,
// says so in the log once each way, and leaves one intact chain in which
// the refused records never appear and a notice marks the gap.
func TestRecoversAfterWriteAndFsyncFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault int32
		max   int64  // audit.max_file_bytes: small makes the failing batch rotate
		sync  string // default batch
	}{
		{"partial write, disk full", faultWrite, 0, ""},
		{"fsync fails", faultSync, 0, ""},
		{"new file cannot be created at rotation", faultOpen, 1500, ""},
		{"fsync fails in a batch that rotated", faultSync, 1500, ""},
		// Under interval an idle writer lets Append write its own record
		// (submit's fast path): the outage it begins must still recover.
		{"partial write, disk full, sync interval", faultWrite, 0, SyncInterval},
		{"new file cannot be created at rotation, sync interval", faultOpen, 1500, SyncInterval},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fs := &faultFS{chain: AuditChain}
			logs := &logBuffer{}
			mode := cmp.Or(tc.sync, SyncBatch)
			s := openStore(t, dir, Options{Sync: mode, openFile: fs.open, MaxFileBytes: tc.max, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			appendN(t, s, 0, 3)

			fs.mode.Store(tc.fault)
			var refused []string
			for i := 3; i < 10 && refused == nil; i++ {
				// With rotation the fault bites only when a file fills.
				if _, err := s.Append(context.Background(), sampleRecord(i)); err != nil {
					refused = append(refused, fmt.Sprintf("trace-%04d", i))
				} else if tc.max == 0 {
					t.Fatalf("Append %d succeeded on a failing disk", i)
				}
			}
			if refused == nil {
				t.Fatal("no Append failed on a failing disk")
			}
			if s.Writable() == nil {
				t.Fatal("Writable is nil right after a failure")
			}
			if _, err := s.Append(context.Background(), sampleRecord(50)); err == nil {
				t.Fatal("Append succeeded while the disk still fails")
			}
			refused = append(refused, "trace-0050")
			fs.mode.Store(faultNone)
			waitWritable(t, s, AuditChain)
			seq, err := s.Append(context.Background(), sampleRecord(99))
			if err != nil {
				t.Fatalf("Append after recovery: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close after recovery: %v", err)
			}
			rep := verifyDir(t, dir, AuditChain)
			if rep.First != nil || rep.TornTail != nil || !rep.Anchored || rep.LastSeq != seq {
				t.Fatalf("chain after recovery: first=%v torn=%v anchored=%v last=%d, want intact, anchored, ending at %d",
					rep.First, rep.TornTail, rep.Anchored, rep.LastSeq, seq)
			}
			got := traces(t, dir, AuditChain)
			if got[len(got)-2] != "" || got[len(got)-1] != "trace-0099" {
				t.Errorf("chain ends %q, want a notice then trace-0099", got[max(0, len(got)-3):])
			}
			for _, tr := range refused {
				if slices.Contains(got, tr) {
					t.Errorf("refused record %s is in the chain: %q", tr, got)
				}
			}
			if n := logs.count("audit log not writable"); n != 1 {
				t.Errorf("%d failure lines in the log, want 1:\n%s", n, logs)
			}
			if n := logs.count("audit log writable again"); n != 1 {
				t.Errorf("%d recovery lines in the log, want 1:\n%s", n, logs)
			}
			// A reopened store continues the same chain.
			s2 := openStore(t, dir, Options{})
			if seq2, err := s2.Append(context.Background(), sampleRecord(100)); err != nil || seq2 != seq+1 {
				t.Fatalf("reopened store appended seq %d (%v), want %d", seq2, err, seq+1)
			}
		})
	}
}

// TestRefusedRecordsNeverEnterTheChain checks the failed batch precisely:
// records whose Append returned an error are absent, every record whose
// Append succeeded is present, in order.
func TestRefusedRecordsNeverEnterTheChain(t *testing.T) {
	dir := t.TempDir()
	fs := &faultFS{chain: AuditChain}
	s := openStore(t, dir, Options{openFile: fs.open, Sync: SyncAlways})
	var want []string
	for i := range 30 {
		switch i {
		case 10:
			fs.mode.Store(faultSync)
		case 20:
			fs.mode.Store(faultNone)
			waitWritable(t, s, AuditChain)
			want = append(want, "") // the notice of the gap
		}
		if _, err := s.Append(context.Background(), sampleRecord(i)); err == nil {
			want = append(want, fmt.Sprintf("trace-%04d", i))
		} else if i < 10 || i >= 20 {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wantIntact(t, verifyDir(t, dir, AuditChain), len(want))
	if got := traces(t, dir, AuditChain); !slices.Equal(got, want) {
		t.Errorf("chain holds\n%q\nwant\n%q", got, want)
	}
}

// TestKeepsFailingWhileTheDiskStaysBroken: recovery is retried with a
// back-off, and as long as nothing can be written the store keeps refusing;
// Close then reports the failure instead of hiding it.
func TestKeepsFailingWhileTheDiskStaysBroken(t *testing.T) {
	dir := t.TempDir()
	fs := &faultFS{chain: AuditChain}
	s, err := Open(dir, Options{Sync: SyncBatch, openFile: fs.open, retryMin: time.Millisecond, retryMax: 4 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 0, 2)
	fs.mode.Store(faultAll)
	if _, err := s.Append(context.Background(), sampleRecord(2)); err == nil {
		t.Fatal("Append succeeded on a broken disk")
	}
	deadline := time.Now().Add(20 * time.Second)
	for fs.attempts.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d recovery attempts", fs.attempts.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if s.Writable() == nil {
		t.Fatal("the store says it is writable while every write fails")
	}
	if _, err := s.Append(context.Background(), sampleRecord(3)); err == nil {
		t.Fatal("Append succeeded on a broken disk after retries")
	}
	if err := s.Close(); err == nil {
		t.Fatal("Close hid a failure that never recovered")
	}
	// Nothing written after the last durable record survives: the chain
	// on disk is the two acknowledged records.
	wantIntact(t, verifyDir(t, dir, AuditChain), 2)
}

// TestTransactionChainRecovers covers the lazy chain (sync batch), whose
// records are written before their fsync and shown by Transactions at
// once: a failed fsync takes them back out, from the file and from the
// in-memory view alike, so no seq is ever shown for two records.
func TestTransactionChainRecovers(t *testing.T) {
	dir := t.TempDir()
	fs := &faultFS{chain: TransactionChain}
	s := openStore(t, dir, Options{openFile: fs.open, Sync: SyncBatch})
	for i := range 5 {
		if _, err := s.AppendTransaction(context.Background(), &Transaction{TraceID: fmt.Sprint("t", i), Decision: "forwarded"}); err != nil {
			t.Fatal(err)
		}
	}
	// Under sync batch they are fsynced within transactionSyncEvery: wait
	// for the head to vouch for them, so they are durable before the fault.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if h, err := readHead(headPath(dir, TransactionChain)); err == nil && h != nil && h.Seq == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the transactions head never reached seq 5")
		}
		time.Sleep(5 * time.Millisecond)
	}
	fs.mode.Store(faultSync)
	// Queued records are written now and fsynced later: the failure shows
	// at the fsync, after they were already visible.
	for i := 5; i < 8; i++ {
		_ = s.QueueTransaction(&Transaction{TraceID: fmt.Sprint("t", i), Decision: "forwarded"})
	}
	deadline = time.Now().Add(20 * time.Second)
	for s.Writable() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the lazy fsync failure was never noticed")
		}
		_ = s.QueueTransaction(&Transaction{TraceID: "probe", Decision: "forwarded"})
		time.Sleep(5 * time.Millisecond)
	}
	fs.mode.Store(faultNone)
	waitWritable(t, s, TransactionChain)
	seq, err := s.AppendTransaction(context.Background(), &Transaction{TraceID: "after", Decision: "forwarded"})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := s.Transactions(Filter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]string{}
	for _, tr := range ts {
		if prev, dup := seen[tr.Seq]; dup {
			t.Errorf("seq %d shown for %q and %q", tr.Seq, prev, tr.TraceID)
		}
		seen[tr.Seq] = tr.TraceID
	}
	if ts[0].TraceID != "after" || ts[0].Seq != seq {
		t.Errorf("newest transaction %+v, want %q at seq %d", ts[0], "after", seq)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rep := verifyDir(t, dir, TransactionChain)
	if rep.First != nil || rep.LastSeq != seq || !rep.Anchored {
		t.Fatalf("transactions chain: %+v", rep)
	}
	got := traces(t, dir, TransactionChain)
	if !slices.Equal(got[:5], []string{"t0", "t1", "t2", "t3", "t4"}) {
		t.Errorf("the durable records before the failure are not kept: %q", got)
	}
	if got[len(got)-2] != "" {
		t.Errorf("no notice before the first record after recovery: %q", got)
	}
}

// TestRecoveryRefusesAMissingDurableRecord: if records the chain made
// durable vanish while it is failed (someone cut the file), recovery must
// not write on: the store stays failed, as Open would refuse the damage.
func TestRecoveryRefusesAMissingDurableRecord(t *testing.T) {
	dir := t.TempDir()
	fs := &faultFS{chain: AuditChain}
	s := openStore(t, dir, Options{Sync: SyncBatch, openFile: fs.open, retryMin: time.Millisecond, retryMax: 2 * time.Millisecond})
	appendN(t, s, 0, 3)
	fs.mode.Store(faultAll)
	if _, err := s.Append(context.Background(), sampleRecord(3)); err == nil {
		t.Fatal("Append succeeded on a broken disk")
	}
	if err := os.Truncate(filepath.Join(dir, "audit-000001.jsonl"), 10); err != nil {
		t.Fatal(err)
	}
	before := fs.attempts.Load()
	fs.mode.Store(faultNone)
	// Let several attempts run (each now reaches the files).
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := s.Writable()
		if err == nil {
			t.Fatal("the store recovered on top of a cut chain")
		}
		if errors.Is(err, ErrChainBroken) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery attempt reached the files (%d before): %v", before, err)
		}
		time.Sleep(time.Millisecond)
	}
}
