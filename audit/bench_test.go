package audit

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// BenchmarkAppend measures the audit writer with 1, 8 and 64 concurrent
// writers per sync mode; records/fsync shows the group commit (batch) and
// the background syncer (interval, at the default 100ms) at work. Under
// interval Append waits for the write only, which is the point.
func BenchmarkAppend(b *testing.B) {
	for _, mode := range []string{SyncInterval, SyncBatch, SyncAlways, SyncNone} {
		for _, writers := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("sync=%s/writers=%d", mode, writers), func(b *testing.B) {
				obs := &countingObserver{}
				s, err := Open(b.TempDir(), Options{Sync: mode, Observer: obs})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				rec := sampleRecord(1)
				obs.fsyncs.Store(0)
				obs.records.Store(0)
				b.ResetTimer()
				split(b, b.N, writers, func() error {
					_, err := s.Append(context.Background(), rec)
					return err
				})
				b.StopTimer()
				if f := obs.fsyncs.Load(); f > 0 {
					b.ReportMetric(float64(obs.records.Load())/float64(f), "records/fsync")
				}
			})
		}
	}
}

// BenchmarkQueueTransaction measures the transaction path of a finished
// request under sync batch: the caller only queues, so the figure is the
// writer's throughput once the queue is full, Close (the final fsync)
// included so every queued record is counted as written.
func BenchmarkQueueTransaction(b *testing.B) {
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{Sync: SyncBatch})
			if err != nil {
				b.Fatal(err)
			}
			tx := benchTransaction()
			b.ReportAllocs()
			b.ResetTimer()
			split(b, b.N, writers, func() error { return s.QueueTransaction(tx) })
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// split runs op n times in all, spread over writers goroutines, and stops
// a goroutine at its first error.
func split(b *testing.B, n, writers int, op func() error) {
	var wg sync.WaitGroup
	for w := range writers {
		k := n / writers
		if w < n%writers {
			k++
		}
		wg.Go(func() {
			for range k {
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
