package audit

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestLargeBatchChunksAndRotates commits batches far larger than
// writeChunk into files that must rotate in the middle of them, so lines
// are handed to the file in chunks and a rotation follows a chunk. Each
// record must get the next seq, every file must stay within MaxFileBytes,
// the chain and its head must verify, and a reopened store must continue
// it.
func TestLargeBatchChunksAndRotates(t *testing.T) {
	for _, mode := range []string{SyncBatch, SyncAlways, SyncNone} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			const maxBytes = 3*writeChunk + 1000
			obs := &countingObserver{}
			c, err := openChain(dir, AuditChain, chainOptions{mode: mode, maxBytes: maxBytes, obs: obs})
			if err != nil {
				t.Fatal(err)
			}
			var seq uint64
			total := 0
			for batch := range 3 {
				ps := make([]*pending, 400)
				for i := range ps {
					r := sampleRecord(i)
					r.TraceID = fmt.Sprintf("b%d-%d", batch, i)
					r.Reason = strings.Repeat("x", 1000+(i*37)%3000)
					p := newPending()
					if p.body, err = encodeRecord(p.body, r); err != nil {
						t.Fatal(err)
					}
					ps[i] = p
				}
				if mode == SyncAlways {
					for i := range ps {
						c.commit(ps[i : i+1])
					}
				} else {
					c.commit(ps)
				}
				for _, p := range ps {
					if err := <-p.done; err != nil {
						t.Fatal(err)
					}
					seq++
					if p.seq != seq {
						t.Fatalf("record got seq %d, want %d", p.seq, seq)
					}
					total++
					p.release()
				}
			}
			if err := c.finish(); err != nil && err != ErrClosed {
				t.Fatal(err)
			}

			files, err := ChainFiles(dir, AuditChain)
			if err != nil {
				t.Fatal(err)
			}
			if len(files) < 3 {
				t.Fatalf("%d files: the test wants rotations inside batches", len(files))
			}
			for _, f := range files {
				st, err := os.Stat(f)
				if err != nil {
					t.Fatal(err)
				}
				if st.Size() > maxBytes {
					t.Errorf("%s is %d bytes, over MaxFileBytes %d", f, st.Size(), maxBytes)
				}
			}
			rep, err := Verify(files...)
			if err != nil || rep.First != nil || rep.Records != total || rep.LastSeq != uint64(total) {
				t.Fatalf("chain after large batches: %+v %v, want %d records", rep, err, total)
			}
			if mode != SyncNone && !rep.Anchored {
				t.Errorf("head does not vouch for the chain: %+v", rep)
			}
			if mode != SyncNone && obs.records.Load() != int64(total) {
				t.Errorf("fsyncs covered %d records, want %d", obs.records.Load(), total)
			}
			s := openStore(t, dir, Options{Sync: mode, MaxFileBytes: maxBytes})
			want := uint64(total + 1)
			if mode == SyncNone {
				want++ // after Open's notice
			}
			if got, err := s.Append(t.Context(), sampleRecord(1)); err != nil || got != want {
				t.Fatalf("append after reopen: seq %d %v, want %d", got, err, want)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
