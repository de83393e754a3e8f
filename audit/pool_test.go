package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// TestPooledPendingsDoNotMix runs every way of handing a record to the
// writer at once, so pendings are recycled while others are in flight, and
// then checks that each seq Append and AppendTransaction returned names the
// line with that caller's record, that every queued transaction is in the
// ring and the file exactly once and intact, and that refused records
// (cancelled contexts) left no trace. A pending reused too early would show
// as a line with someone else's body or a ring entry with someone else's
// transaction.
func TestPooledPendingsDoNotMix(t *testing.T) {
	for _, mode := range []string{SyncBatch, SyncAlways, SyncNone} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, Options{Sync: mode})
			if err != nil {
				t.Fatal(err)
			}
			const writers, perWriter = 6, 60
			var mu sync.Mutex
			auditSeq := map[uint64]string{} // seq -> trace of the record Append made durable
			txSeq := map[uint64]string{}
			queued := map[string]bool{}
			ctxDone, cancel := context.WithCancel(context.Background())
			cancel()
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := range perWriter {
						trace := fmt.Sprintf("w%d-%d", w, i)
						r := sampleRecord(i)
						r.TraceID = trace
						// Bodies of different lengths, so a reused buffer
						// would leave a visible tail.
						r.Reason = strings.Repeat("r", (w*perWriter+i)%300)
						switch i % 4 {
						case 0:
							seq, err := s.Append(context.Background(), r)
							if err != nil {
								t.Error(err)
								return
							}
							mu.Lock()
							auditSeq[seq] = trace
							mu.Unlock()
						case 1:
							tr := sampleTransaction(i)
							tr.TraceID = trace
							tr.Interaction = r.Reason
							if err := s.QueueTransaction(tr); err != nil {
								t.Error(err)
								return
							}
							mu.Lock()
							queued[trace] = true
							mu.Unlock()
						case 2:
							tr := sampleTransaction(i)
							tr.TraceID = trace
							tr.Interaction = r.Reason
							seq, err := s.AppendTransaction(context.Background(), tr)
							if err != nil {
								t.Error(err)
								return
							}
							mu.Lock()
							txSeq[seq] = trace
							mu.Unlock()
						case 3:
							// Either refused for the cancelled context or,
							// when the queue had room, written: both are
							// answers Append may give; only a written
							// record may claim a seq.
							r.TraceID = "maybe-" + trace
							if seq, err := s.Append(ctxDone, r); err == nil {
								mu.Lock()
								auditSeq[seq] = r.TraceID
								mu.Unlock()
							}
						}
					}
				})
			}
			wg.Wait()
			ring, err := s.Transactions(Filter{Limit: MaxLimit})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			check := func(chain string, want map[uint64]string) map[string]int {
				t.Helper()
				files, err := ChainFiles(dir, chain)
				if err != nil {
					t.Fatal(err)
				}
				rep, err := Verify(files...)
				if err != nil || rep.First != nil {
					t.Fatalf("%s chain: %+v %v", chain, rep, err)
				}
				seen := map[string]int{}
				for _, f := range files {
					data, err := os.ReadFile(f)
					if err != nil {
						t.Fatal(err)
					}
					for line := range bytes.Lines(data) {
						var l struct {
							Seq         uint64 `json:"seq"`
							TraceID     string `json:"trace_id"`
							Reason      string `json:"reason"`
							Interaction string `json:"interaction"`
							Notice      string `json:"notice"`
						}
						if err := json.Unmarshal(line, &l); err != nil {
							t.Fatalf("%s: %v in %q", f, err, line)
						}
						if l.Notice != "" {
							continue
						}
						seen[l.TraceID]++
						if w, ok := want[l.Seq]; ok && w != l.TraceID {
							t.Errorf("%s seq %d holds %q, the caller was told it holds %q", chain, l.Seq, l.TraceID, w)
						}
						var w, i int
						if _, err := fmt.Sscanf(strings.TrimPrefix(l.TraceID, "maybe-"), "w%d-%d", &w, &i); err != nil {
							t.Fatalf("%s seq %d: unexpected trace %q", chain, l.Seq, l.TraceID)
						}
						text := l.Reason // where the audit record carries the marker
						if chain == TransactionChain {
							text = l.Interaction
						}
						if n := (w*perWriter + i) % 300; text != strings.Repeat("r", n) {
							t.Errorf("%s seq %d (%s): body text of %d bytes, want %d", chain, l.Seq, l.TraceID, len(text), n)
						}
					}
				}
				for seq, trace := range want {
					if seen[trace] != 1 {
						t.Errorf("%s seq %d: %q is in the files %d times", chain, seq, trace, seen[trace])
					}
				}
				return seen
			}
			check(AuditChain, auditSeq)
			seen := check(TransactionChain, txSeq)
			for trace := range queued {
				if seen[trace] != 1 {
					t.Errorf("queued %q is in the files %d times", trace, seen[trace])
				}
			}
			if want := len(queued) + len(txSeq); len(ring) != want {
				t.Errorf("ring holds %d transactions, want %d", len(ring), want)
			}
			for _, tr := range ring {
				var w, i int
				_, _ = fmt.Sscanf(tr.TraceID, "w%d-%d", &w, &i)
				if seen[tr.TraceID] != 1 || (!queued[tr.TraceID] && txSeq[tr.Seq] != tr.TraceID) ||
					tr.Interaction != strings.Repeat("r", (w*perWriter+i)%300) {
					t.Errorf("ring entry seq %d %q does not match the files", tr.Seq, tr.TraceID)
				}
			}
		})
	}
}
