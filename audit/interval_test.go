package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// syncCounter opens real files and counts the fsyncs of each, by base
// name: it is how the tests see what the syncer does without timing it.
type syncCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func (sc *syncCounter) open(name string, flag int, perm os.FileMode) (chainFile, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &countedFile{File: f, sc: sc}, nil
}

func (sc *syncCounter) get(base string) int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.counts[base]
}

type countedFile struct {
	*os.File
	sc *syncCounter
}

func (f *countedFile) Sync() error {
	f.sc.mu.Lock()
	if f.sc.counts == nil {
		f.sc.counts = map[string]int{}
	}
	f.sc.counts[filepath.Base(f.Name())]++
	f.sc.mu.Unlock()
	return f.File.Sync()
}

// clockSeam stands for time.After in the syncer: each wait it asks for is
// sent on waits, and it ends when the test sends on fire. A test that never
// fires keeps every fsync waiting, so what happens is the writer's alone.
type clockSeam struct {
	waits chan time.Duration
	fire  chan time.Time
}

func newClockSeam() *clockSeam {
	return &clockSeam{waits: make(chan time.Duration, 1000), fire: make(chan time.Time)}
}

func (c *clockSeam) after(d time.Duration) <-chan time.Time {
	c.waits <- d
	return c.fire
}

// nextWait returns the next wait the syncer asked for; a syncer that asks
// for none within a generous deadline fails the test.
func (c *clockSeam) nextWait(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.waits:
		return d
	case <-time.After(20 * time.Second):
		t.Fatal("the syncer never waited for its interval after a write")
		return 0
	}
}

// waitHead polls (generous deadline) until the chain's head file vouches
// for seq.
func waitHead(t *testing.T, dir, chain string, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		h, err := readHead(headPath(dir, chain))
		if err == nil && h != nil && h.Seq == seq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %s head never reached seq %d: %+v %v", chain, seq, h, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func headSeq(t *testing.T, dir, chain string) uint64 {
	t.Helper()
	h, err := readHead(headPath(dir, chain))
	if err != nil {
		t.Fatal(err)
	}
	if h == nil {
		return 0
	}
	return h.Seq
}

const firstAuditFile = "audit-000001.jsonl"

// TestIntervalIsTheDefault: Options{} and Config{} mean sync interval at
// 100ms.
func TestIntervalIsTheDefault(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	if s.audit.mode != SyncInterval || s.audit.interval != DefaultSyncInterval || s.tx.interval != DefaultSyncInterval {
		t.Errorf("default store: mode %q, intervals %v and %v; want interval at %v", s.audit.mode, s.audit.interval, s.tx.interval, DefaultSyncInterval)
	}
	if DefaultSyncInterval != 100*time.Millisecond {
		t.Errorf("DefaultSyncInterval = %v, want 100ms (design.md)", DefaultSyncInterval)
	}
}

// TestIntervalWritesBeforeReturning: the record is in the file, for any
// reader, the moment Append returns, though no fsync has happened yet (the
// syncer's clock never fires here).
func TestIntervalWritesBeforeReturning(t *testing.T) {
	dir := t.TempDir()
	sc, clock := &syncCounter{}, newClockSeam()
	s := openStore(t, dir, Options{Sync: SyncInterval, SyncInterval: time.Minute, openFile: sc.open, after: clock.after})
	for i := range 3 {
		seq, err := s.Append(context.Background(), sampleRecord(i))
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, firstAuditFile))
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
		var got struct {
			Seq     uint64 `json:"seq"`
			TraceID string `json:"trace_id"`
		}
		if err := json.Unmarshal(lines[len(lines)-1], &got); err != nil {
			t.Fatalf("last line of the file after Append %d: %v", i, err)
		}
		if got.Seq != seq || got.TraceID != fmt.Sprintf("trace-%04d", i) || len(lines) != i+1 {
			t.Fatalf("after Append %d returned seq %d the file ends with %+v (%d lines)", i, seq, got, len(lines))
		}
	}
	if n := sc.get(firstAuditFile); n != 0 {
		t.Errorf("%d fsyncs of the audit file before the interval came, want 0 (off the request path)", n)
	}
	if seq := headSeq(t, dir, AuditChain); seq != 0 {
		t.Errorf("the head vouches for seq %d before any fsync", seq)
	}
}

// TestIntervalFsyncsWithinTheInterval: after a write the syncer waits no
// longer than the interval, then one fsync covers every record written
// meanwhile and the head follows; with nothing written it does nothing.
func TestIntervalFsyncsWithinTheInterval(t *testing.T) {
	dir := t.TempDir()
	sc, clock, obs := &syncCounter{}, newClockSeam(), &countingObserver{}
	const interval = time.Minute // long, so the syncer always has to wait on the seam
	s := openStore(t, dir, Options{Sync: SyncInterval, SyncInterval: interval, openFile: sc.open, after: clock.after, Observer: obs})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 5 {
				if _, err := s.Append(context.Background(), sampleRecord(w*5+i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if d := clock.nextWait(t); d <= 0 || d > interval {
		t.Fatalf("the syncer waits %v after a write, want more than 0 and at most the interval %v", d, interval)
	}
	if n := sc.get(firstAuditFile); n != 0 {
		t.Fatalf("%d fsyncs before the interval ended", n)
	}
	clock.fire <- time.Now()
	waitHead(t, dir, AuditChain, 20)
	if n := sc.get(firstAuditFile); n != 1 {
		t.Errorf("%d fsyncs of the audit file for one interval's records, want 1", n)
	}
	if f, r := obs.fsyncs.Load(), obs.records.Load(); f != 1 || r != 20 {
		t.Errorf("observer: %d fsyncs for %d records, want 1 for 20", f, r)
	}

	// Idle: no write, no wait, no fsync. The syncer's own step, run
	// here, finds nothing to do as well.
	s.audit.syncWritten()
	if n := sc.get(firstAuditFile); n != 1 {
		t.Errorf("an idle chain was fsynced: %d fsyncs, want still 1", n)
	}
	select {
	case d := <-clock.waits:
		t.Errorf("the syncer waited %v with nothing written", d)
	default:
	}

	// The next write starts the next interval, and so on.
	appendN(t, s, 20, 1)
	clock.nextWait(t)
	clock.fire <- time.Now()
	waitHead(t, dir, AuditChain, 21)
	if n := sc.get(firstAuditFile); n != 2 {
		t.Errorf("%d fsyncs after the second interval, want 2", n)
	}
}

// TestIntervalNoFsyncWhenIdle runs the real clock with a 1ms interval:
// once what was written is durable, an idle store does not fsync again,
// however many intervals pass. The wait below is an observation window,
// not a synchronisation: a syncer that fsyncs on a ticker would show here
// with about a hundred fsyncs, a correct one never does.
func TestIntervalNoFsyncWhenIdle(t *testing.T) {
	dir := t.TempDir()
	sc := &syncCounter{}
	s := openStore(t, dir, Options{Sync: SyncInterval, SyncInterval: time.Millisecond, openFile: sc.open})
	appendN(t, s, 0, 3)
	waitHead(t, dir, AuditChain, 3)
	before := sc.get(firstAuditFile)
	if before == 0 {
		t.Fatal("the head vouches for seq 3 but the file was never fsynced")
	}
	time.Sleep(100 * time.Millisecond)
	if n := sc.get(firstAuditFile); n != before {
		t.Errorf("%d fsyncs of an idle chain, want none", n-before)
	}
	if n := sc.get("transactions-000001.jsonl"); n != 0 {
		t.Errorf("the transaction chain, never written, was fsynced %d times", n)
	}
}

// TestIntervalCloseFsyncsPending: records still waiting for their interval
// are fsynced by Close, and the head then vouches for the last of them.
func TestIntervalCloseFsyncsPending(t *testing.T) {
	dir := t.TempDir()
	sc, clock, obs := &syncCounter{}, newClockSeam(), &countingObserver{}
	s, err := Open(dir, Options{Sync: SyncInterval, SyncInterval: time.Minute, openFile: sc.open, after: clock.after, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 0, 5)
	if n := sc.get(firstAuditFile); n != 0 {
		t.Fatalf("%d fsyncs before Close, want 0 (the interval never came)", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := sc.get(firstAuditFile); n != 1 {
		t.Errorf("Close fsynced the audit file %d times, want 1", n)
	}
	if f, r := obs.fsyncs.Load(), obs.records.Load(); f != 1 || r != 5 {
		t.Errorf("observer: %d fsyncs for %d records, want 1 for 5", f, r)
	}
	rep := verifyDir(t, dir, AuditChain)
	wantIntact(t, rep, 5)
	if !rep.Anchored || headSeq(t, dir, AuditChain) != 5 {
		t.Errorf("after Close the head vouches for seq %d (anchored %v), want 5", headSeq(t, dir, AuditChain), rep.Anchored)
	}
}

// TestIntervalFsyncFailureFailsClosedAndRecovers: a background fsync that
// fails makes the store refuse records at once (fail closed) until the
// writer has recovered as after a failed write: the records written since
// the last good fsync cannot be known durable and are taken out, a notice
// names them and the gap, the chain verifies and the head anchors it.
func TestIntervalFsyncFailureFailsClosedAndRecovers(t *testing.T) {
	dir := t.TempDir()
	fs, clock, logs := &faultFS{chain: AuditChain}, newClockSeam(), &logBuffer{}
	s := openStore(t, dir, Options{Sync: SyncInterval, SyncInterval: time.Minute, openFile: fs.open, after: clock.after,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	appendN(t, s, 0, 3)
	clock.nextWait(t)
	clock.fire <- time.Now()
	waitHead(t, dir, AuditChain, 3)

	fs.mode.Store(faultSync)
	appendN(t, s, 3, 3) // written: Append does not wait for the fsync
	if err := s.Writable(); err != nil {
		t.Fatalf("writable before the fsync: %v", err)
	}
	clock.nextWait(t)
	clock.fire <- time.Now()
	deadline := time.Now().Add(20 * time.Second)
	for s.Writable() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the failed background fsync was never noticed")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := s.Append(context.Background(), sampleRecord(50)); err == nil {
		t.Fatal("Append succeeded after a failed fsync, before recovery")
	}
	if seq := headSeq(t, dir, AuditChain); seq != 3 {
		t.Errorf("the head vouches for seq %d after the failed fsync, want 3 (the last durable)", seq)
	}

	fs.mode.Store(faultNone)
	waitWritable(t, s, AuditChain)
	seq, err := s.Append(context.Background(), sampleRecord(99))
	if err != nil {
		t.Fatalf("Append after recovery: %v", err)
	}
	if seq != 5 {
		t.Errorf("first record after recovery has seq %d, want 5 (3 durable, then the notice)", seq)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close after recovery: %v", err)
	}
	rep := verifyDir(t, dir, AuditChain)
	wantIntact(t, rep, 5)
	if !rep.Anchored {
		t.Error("the head does not anchor the recovered chain")
	}
	want := []string{"trace-0000", "trace-0001", "trace-0002", "", "trace-0099"}
	if got := traces(t, dir, AuditChain); !slices.Equal(got, want) {
		t.Errorf("chain holds %q, want %q", got, want)
	}
	lines := readLines(t, filepath.Join(dir, firstAuditFile))
	var notice struct {
		Notice string `json:"notice"`
		From   uint64 `json:"not_durable_from"`
		To     uint64 `json:"not_durable_to"`
	}
	if err := json.Unmarshal(lines[3], &notice); err != nil {
		t.Fatal(err)
	}
	if notice.From != 4 || notice.To != 6 || notice.Notice == "" {
		t.Errorf("gap notice %+v, want it to name seqs 4 to 6 as not durable", notice)
	}
	if n := logs.count("audit log not writable"); n != 1 {
		t.Errorf("%d failure lines in the log, want 1:\n%s", n, logs)
	}
	if n := logs.count("audit log writable again"); n != 1 {
		t.Errorf("%d recovery lines in the log, want 1:\n%s", n, logs)
	}
}

// TestIntervalRotatesUnderLoad: concurrent writers, small files and a
// real 1ms interval, so the syncer and the writer's rotations meet; the
// chain is whole and anchored after Close, and again after a reopen.
func TestIntervalRotatesUnderLoad(t *testing.T) {
	dir := t.TempDir()
	var fsyncs atomic.Int64
	obs := &countingObserver{}
	s := openStore(t, dir, Options{Sync: SyncInterval, SyncInterval: time.Millisecond, MaxFileBytes: 4096, Observer: obs})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 40 {
				if _, err := s.Append(context.Background(), sampleRecord(w*40+i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fsyncs.Store(obs.fsyncs.Load())
	rep := verifyDir(t, dir, AuditChain)
	wantIntact(t, rep, 320)
	if !rep.Anchored || rep.Files < 5 {
		t.Errorf("anchored %v over %d files, want anchored over at least 5", rep.Anchored, rep.Files)
	}
	if obs.records.Load() != 320 {
		t.Errorf("fsyncs accounted for %d records, want 320", obs.records.Load())
	}
	s = openStore(t, dir, Options{MaxFileBytes: 4096})
	appendN(t, s, 320, 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wantIntact(t, verifyDir(t, dir, AuditChain), 321)
}
