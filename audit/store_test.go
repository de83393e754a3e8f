package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingObserver sums what the writer reports.
type countingObserver struct {
	fsyncs  atomic.Int64
	records atomic.Int64
}

func (o *countingObserver) Fsync(_ float64, records int) {
	o.fsyncs.Add(1)
	o.records.Add(int64(records))
}

func openStore(t testing.TB, dir string, opt Options) *Store {
	t.Helper()
	s, err := Open(dir, opt)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func sampleRecord(i int) *Record {
	return &Record{
		Time:              time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(i) * time.Millisecond),
		TraceID:           fmt.Sprintf("trace-%04d", i),
		From:              "200000000359",
		To:                "918999198993",
		Interaction:       "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1",
		Method:            "GET",
		Target:            "https://localhost:9443/A20047/STU3/1/gpconnect/metadata",
		ClientSubject:     "CN=consumer.sspemu.localhost",
		ClientFingerprint: strings.Repeat("ab", 32),
		JWT: &JWT{Issuer: "https://consumer.example", Subject: "1111111111", SDSUserID: "1111111111",
			RoleProfileID: "2222222222", ODSCode: "Y12345", Device: "Example/1.0"},
		Decision: "forwarded",
		Rule:     "forward",
		Status:   200,
		Reason:   "all checks passed",
	}
}

func appendN(t testing.TB, s *Store, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := s.Append(context.Background(), sampleRecord(i)); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

func verifyDir(t testing.TB, dir, chain string) Report {
	t.Helper()
	files, err := ChainFiles(dir, chain)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(files...)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func wantIntact(t testing.TB, rep Report, records int) {
	t.Helper()
	if rep.First != nil || rep.TornTail != nil {
		t.Fatalf("want an intact chain, got first=%v torn=%v", rep.First, rep.TornTail)
	}
	if rep.Records != records || rep.LastSeq != uint64(records) {
		t.Fatalf("records=%d last seq=%d, want %d", rep.Records, rep.LastSeq, records)
	}
}

func TestAppendConcurrentSyncModes(t *testing.T) {
	const writers, each = 16, 40
	for _, mode := range []string{SyncInterval, SyncBatch, SyncAlways, SyncNone} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			obs := &countingObserver{}
			s := openStore(t, dir, Options{Sync: mode, Observer: obs})
			seqs := make(chan uint64, writers*each)
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := range each {
						seq, err := s.Append(context.Background(), sampleRecord(w*each+i))
						if err != nil {
							t.Errorf("Append: %v", err)
							return
						}
						seqs <- seq
					}
				})
			}
			wg.Wait()
			close(seqs)
			first := uint64(1)
			if mode == SyncNone {
				first = 2 // seq 1 is the notice that sync is off
			}
			var got []uint64
			for seq := range seqs {
				got = append(got, seq)
			}
			slices.Sort(got)
			for i, seq := range got {
				if seq != first+uint64(i) {
					t.Fatalf("seqs not contiguous: position %d has %d, want %d", i, seq, first+uint64(i))
				}
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			rep := verifyDir(t, dir, AuditChain)
			wantIntact(t, rep, writers*each+int(first)-1)
			switch mode {
			case SyncNone:
				if obs.fsyncs.Load() != 0 || rep.Anchored {
					t.Errorf("sync none: fsyncs=%d anchored=%v, want 0 and false", obs.fsyncs.Load(), rep.Anchored)
				}
			case SyncAlways:
				if obs.fsyncs.Load() != writers*each || obs.records.Load() != writers*each {
					t.Errorf("sync always: %d fsyncs for %d records, want one each", obs.fsyncs.Load(), obs.records.Load())
				}
			case SyncBatch, SyncInterval:
				// Under interval every record is counted by the syncer's
				// fsyncs or Close's.
				if obs.records.Load() != writers*each || obs.fsyncs.Load() > writers*each {
					t.Errorf("sync batch: %d fsyncs for %d records", obs.fsyncs.Load(), obs.records.Load())
				}
			}
			if mode != SyncNone && !rep.Anchored {
				t.Errorf("want the head file to anchor the chain")
			}
		})
	}
}

func TestSyncNoneSaysSoInTheLog(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{Sync: SyncNone})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, chain := range []string{AuditChain, TransactionChain} {
		data, err := os.ReadFile(filepath.Join(dir, chainFileName(chain, 1)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte(`"notice":"audit.sync is none`)) {
			t.Errorf("%s chain does not start with the sync notice: %s", chain, data)
		}
	}
}

func TestReopenContinuesChain(t *testing.T) {
	dir := t.TempDir()
	for round := range 3 {
		s := openStore(t, dir, Options{})
		appendN(t, s, round*5, 5)
		if _, err := s.AppendTransaction(context.Background(), &Transaction{TraceID: "t", Status: 200}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	wantIntact(t, verifyDir(t, dir, AuditChain), 15)
	wantIntact(t, verifyDir(t, dir, TransactionChain), 3)
}

func TestRotationContinuesChain(t *testing.T) {
	dir := t.TempDir()
	const maxBytes = 4096
	s := openStore(t, dir, Options{MaxFileBytes: maxBytes})
	appendN(t, s, 0, 40)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, Options{MaxFileBytes: maxBytes})
	appendN(t, s, 40, 20)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := ChainFiles(dir, AuditChain)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("want at least 5 files after 60 records of about 800 bytes in 4 KiB files, got %d", len(files))
	}
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > maxBytes {
			t.Errorf("%s is %d bytes, over the %d limit", f, st.Size(), maxBytes)
		}
	}
	rep := verifyDir(t, dir, AuditChain)
	wantIntact(t, rep, 60)
	if rep.Files != len(files) || !rep.Anchored {
		t.Errorf("files=%d anchored=%v, want %d and true", rep.Files, rep.Anchored, len(files))
	}
	// A later file verified alone is a valid partial chain.
	part, err := Verify(files[2:]...)
	if err != nil || part.First != nil || part.FirstSeq <= 1 || part.LastSeq != 60 {
		t.Errorf("partial verify: %+v, %v", part, err)
	}
}

func TestRecordLineContent(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	r := sampleRecord(7)
	r.Time = time.Date(2025, 6, 1, 12, 0, 0, 0, time.FixedZone("BST", 3600))
	seq, err := s.Append(context.Background(), r)
	if err != nil || seq != 1 {
		t.Fatalf("Append = %d, %v", seq, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "audit-000001.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("line is not JSON: %v\n%s", err, data)
	}
	want := map[string]any{
		"seq": 1.0, "prev": strings.Repeat("0", 64), "time": "2025-06-01T11:00:00Z",
		"trace_id": "trace-0007", "from": "200000000359", "to": "918999198993",
		"method": "GET", "client_subject": "CN=consumer.sspemu.localhost", "decision": "forwarded",
		"rule": "forward", "status": 200.0, "token": "", "reason": "all checks passed",
		"jwt": map[string]any{"iss": "https://consumer.example", "sub": "1111111111", "sds_user_id": "1111111111",
			"role_profile_id": "2222222222", "ods": "Y12345", "device": "Example/1.0"},
	}
	for k, v := range want {
		gv, _ := json.Marshal(got[k])
		wv, _ := json.Marshal(v)
		if !bytes.Equal(gv, wv) {
			t.Errorf("field %q = %s, want %s", k, gv, wv)
		}
	}
	if !strings.HasPrefix(string(data), `{"seq":1,"prev":"`) {
		t.Errorf("line does not start with seq and prev: %s", data)
	}
	for _, k := range []string{"target", "interaction", "client_fingerprint", "hash"} {
		if _, ok := got[k]; !ok {
			t.Errorf("field %q missing", k)
		}
	}
}

func TestOpenCutsTornTail(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	appendN(t, s, 0, 3)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit-000001.jsonl")
	torn := []byte(`{"seq":4,"prev":"0000`)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(torn); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	rep := verifyDir(t, dir, AuditChain)
	if rep.First != nil || rep.TornTail == nil || rep.TornTail.Line != 4 {
		t.Fatalf("before reopen: want a torn tail at line 4 and no break, got first=%v torn=%v", rep.First, rep.TornTail)
	}

	s = openStore(t, dir, Options{})
	appendN(t, s, 3, 2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wantIntact(t, verifyDir(t, dir, AuditChain), 5)
	kept, err := os.ReadFile(path + ".torn")
	if err != nil || !bytes.HasPrefix(kept, torn) {
		t.Errorf("torn bytes not kept beside the file: %q, %v", kept, err)
	}
}

func TestOpenRefusesBrokenChain(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"records cut from the end", func(t *testing.T, path string) {
			lines := readLines(t, path)
			writeLines(t, path, lines[:len(lines)-2])
		}},
		{"last record edited", func(t *testing.T, path string) {
			lines := readLines(t, path)
			lines[len(lines)-1] = bytes.Replace(lines[len(lines)-1], []byte("trace-0004"), []byte("trace-9999"), 1)
			writeLines(t, path, lines)
		}},
		{"last line garbage", func(t *testing.T, path string) {
			lines := readLines(t, path)
			lines[len(lines)-1] = []byte("not json\n")
			writeLines(t, path, lines)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir, Options{})
			appendN(t, s, 0, 5)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			tt.damage(t, filepath.Join(dir, "audit-000001.jsonl"))
			s, err := Open(dir, Options{})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded on a damaged chain")
			}
			if !errors.Is(err, ErrChainBroken) {
				t.Errorf("Open error %v, want ErrChainBroken", err)
			}
		})
	}
}

// TestFailClosedOnWriteError points the writer at /dev/full, a real device
// whose every write fails with ENOSPC, as a full disk would: the store
// refuses records, then recovers by itself (it reopens its file by path),
// and the chain runs on intact, the refused record not in it.
func TestFailClosedOnWriteError(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	switch {
	case err != nil && runtime.GOOS == "linux":
		t.Fatalf("Linux always has /dev/full, and CI runs here: %v", err)
	case err != nil:
		t.Skipf("no /dev/full on %s (a Linux device): %v", runtime.GOOS, err)
	}
	dir := t.TempDir()
	// Sync batch: under interval the syncer also reads the file the test
	// swaps below.
	s := openStore(t, dir, Options{Sync: SyncBatch})
	appendN(t, s, 0, 2)
	// No Append is in flight, and the next one hands its record over a
	// channel, so the writer sees the swap.
	s.audit.f = full

	if seq, err := s.Append(context.Background(), sampleRecord(2)); err == nil {
		t.Fatalf("Append on a full disk returned seq %d and no error", seq)
	} else if !strings.Contains(err.Error(), "no space left") {
		t.Errorf("Append error %q does not say the disk is full", err)
	}
	waitWritable(t, s, AuditChain)
	appendN(t, s, 3, 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rep := verifyDir(t, dir, AuditChain)
	wantIntact(t, rep, 4) // 2 records, the notice of the gap, 1 record
	if got := traces(t, dir, AuditChain); !slices.Equal(got, []string{"trace-0000", "trace-0001", "", "trace-0003"}) {
		t.Errorf("chain holds %q, want the refused trace-0002 left out and a notice in its place", got)
	}
}

// TestFailClosedOnRotation blocks the next file's name with a directory, so
// creating it fails for real when the chain rotates.
func TestFailClosedOnRotation(t *testing.T) {
	dir := t.TempDir()
	// No recovery attempt within the test: it checks the refusal only.
	s := openStore(t, dir, Options{MaxFileBytes: 2048, retryMin: time.Hour})
	if err := os.Mkdir(filepath.Join(dir, "audit-000002.jsonl"), 0o700); err != nil {
		t.Fatal(err)
	}
	var failed error
	for i := range 10 {
		if _, err := s.Append(context.Background(), sampleRecord(i)); err != nil {
			failed = err
			break
		}
	}
	if failed == nil || !strings.Contains(failed.Error(), "audit-000002.jsonl") {
		t.Fatalf("want an Append error naming the file it could not create, got %v", failed)
	}
	if s.Writable() == nil {
		t.Error("Writable is nil after a failed rotation")
	}
}

func TestOpenLocksDirectory(t *testing.T) {
	dir := t.TempDir()
	openStore(t, dir, Options{})
	if s, err := Open(dir, Options{}); err == nil {
		_ = s.Close()
		t.Fatal("a second Open of the same directory succeeded")
	}
}

func TestAppendAfterClose(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), sampleRecord(0)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
	if err := s.Writable(); !errors.Is(err, ErrClosed) {
		t.Errorf("Writable after Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestAppendCanceledContext(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// The queue has room, so a canceled context may still be accepted;
	// either way the answer must be true: an error means not written.
	seq, err := s.Append(ctx, sampleRecord(0))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rep := verifyDir(t, s.Dir(), AuditChain)
	switch {
	case err == nil && (seq != 1 || rep.Records != 1):
		t.Errorf("accepted as seq %d but the log holds %d records", seq, rep.Records)
	case err != nil && rep.Records != 0:
		t.Errorf("refused (%v) but the log holds %d records", err, rep.Records)
	}
}

func TestOptionsAndConfigValidate(t *testing.T) {
	tests := []struct {
		cfg     Config
		wantErr []string
	}{
		{Config{}, nil},
		{Config{Sync: "batch", MaxFileBytes: 1 << 20}, nil},
		{Config{Sync: "always"}, nil},
		{Config{Sync: "none"}, nil},
		{Config{Sync: "interval", SyncInterval: 250 * time.Millisecond}, nil},
		{Config{Sync: "sometimes", MaxFileBytes: -1}, []string{`audit.sync "sometimes"`, "audit.max_file_bytes -1"}},
		{Config{SyncInterval: -time.Second}, []string{"audit.sync_interval -1s"}},
		{Config{SyncInterval: time.Hour}, []string{"audit.sync_interval 1h0m0s"}},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if (err != nil) != (len(tt.wantErr) > 0) {
			t.Errorf("%+v: Validate() = %v", tt.cfg, err)
			continue
		}
		for _, w := range tt.wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %q does not name %q", tt.cfg, err, w)
			}
		}
	}
	if _, err := Open(t.TempDir(), Options{Sync: "sometimes"}); err == nil {
		t.Error("Open accepted sync mode sometimes")
	}
	if _, err := Open(t.TempDir(), Options{SyncInterval: -time.Millisecond}); err == nil {
		t.Error("Open accepted a negative sync interval")
	}
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(data, []byte("\n"))[:bytes.Count(data, []byte("\n"))]
}

// writeLines writes lines back; each keeps its own newline, if any.
func writeLines(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	for i, l := range lines {
		if len(l) > 0 && l[len(l)-1] != '\n' && i < len(lines)-1 {
			lines[i] = append(l, '\n')
		}
	}
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}
