package audit

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// TestQueueTransaction checks that queued transaction records are all
// written, in one intact chain, by the time Close returns, and that the
// store refuses them once closed.
func TestQueueTransaction(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Sync: SyncBatch})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				if err := s.QueueTransaction(&Transaction{TraceID: fmt.Sprintf("g%d-%d", g, i), Status: 200, Decision: "forwarded"}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if _, err := s.Append(context.Background(), &Record{TraceID: "a", Decision: "forwarded"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.QueueTransaction(&Transaction{TraceID: "late"}); err != ErrClosed {
		t.Errorf("queue after Close: %v, want ErrClosed", err)
	}
	files, err := ChainFiles(dir, TransactionChain)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(files...)
	if err != nil || rep.First != nil || rep.Records != 400 {
		t.Fatalf("transactions chain: %+v %v", rep, err)
	}
	s, err = Open(dir, Options{Sync: SyncBatch})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ts, err := s.Transactions(Filter{TraceID: "g7-49"})
	if err != nil || len(ts) != 1 {
		t.Fatalf("queued transaction not found after reopen: %v %v", ts, err)
	}
}
