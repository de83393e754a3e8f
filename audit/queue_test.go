package audit

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
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

// TestLazyTransactionChainSyncsWhenIdle: under sync batch the transaction
// chain fsyncs at most every transactionSyncEvery, so with no more traffic
// its head must still catch up with the written records by itself.
func TestLazyTransactionChainSyncsWhenIdle(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Sync: SyncBatch})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 10 {
		if err := s.QueueTransaction(&Transaction{TraceID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		h, err := readHead(headPath(dir, TransactionChain))
		if err == nil && h != nil && h.Seq == 10 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the head never reached seq 10: %+v %v", h, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
