package audit

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"
)

func sampleTransaction(i int) *Transaction {
	t := &Transaction{
		Time:            time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute),
		TraceID:         fmt.Sprintf("trace-%02d", i),
		Status:          200,
		BytesIn:         int64(100 + i),
		BytesOut:        int64(2000 + i),
		UpstreamSeconds: 0.01,
		TotalSeconds:    0.02,
		Decision:        "forwarded",
		From:            "200000000359",
		To:              "918999198993",
		Interaction:     "read-metadata",
	}
	switch i % 4 {
	case 1:
		t.Decision, t.Status, t.Rule = "refused", 403, "agreement"
	case 2:
		t.From = "200000000999"
	case 3:
		t.Interaction = "search-slot"
		t.ClientAborted = i%8 == 3
	}
	return t
}

func TestTransactions(t *testing.T) {
	dir := t.TempDir()
	// The first 20 go to disk and are read back from the files only.
	s := openStore(t, dir, Options{MaxFileBytes: 2048})
	for i := range 20 {
		if _, err := s.AppendTransaction(context.Background(), sampleTransaction(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The next 20 are also in a ring of 8, so answers mix memory and files.
	s = openStore(t, dir, Options{MaxFileBytes: 2048, RecentTransactions: 8})
	for i := 20; i < 40; i++ {
		seq, err := s.AppendTransaction(context.Background(), sampleTransaction(i))
		if err != nil || seq != uint64(i+1) {
			t.Fatalf("AppendTransaction %d = %d, %v", i, seq, err)
		}
	}

	traces := func(ts []Transaction) []string {
		out := make([]string, len(ts))
		for i, t := range ts {
			out[i] = t.TraceID
		}
		return out
	}
	tests := []struct {
		name string
		f    Filter
		want []string
	}{
		{"limit newest first", Filter{Limit: 3}, []string{"trace-39", "trace-38", "trace-37"}},
		{"trace ID from the files", Filter{TraceID: "trace-05"}, []string{"trace-05"}},
		{"refused across memory and files", Filter{Outcome: "refused", Limit: 4}, []string{"trace-37", "trace-33", "trace-29", "trace-25"}},
		{"from", Filter{From: "200000000999", Since: time.Date(2025, 1, 1, 0, 30, 0, 0, time.UTC)}, []string{"trace-38", "trace-34", "trace-30"}},
		{"to nobody", Filter{To: "999"}, []string{}},
		{"interaction and aborted", Filter{Interaction: "search-slot", Outcome: "aborted"}, []string{"trace-35", "trace-27", "trace-19", "trace-11", "trace-03"}},
		{"since", Filter{Since: time.Date(2025, 1, 1, 0, 37, 0, 0, time.UTC)}, []string{"trace-39", "trace-38", "trace-37"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Transactions(tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(traces(got)) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", traces(got), tt.want)
			}
		})
	}

	all, err := s.Transactions(Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 40 {
		t.Fatalf("got %d transactions, want 40", len(all))
	}
	for i, tr := range all {
		want := sampleTransaction(39 - i)
		want.Seq = uint64(40 - i)
		if !reflect.DeepEqual(tr, *want) {
			t.Errorf("position %d: got %+v, want %+v", i, tr, *want)
		}
	}
}

func TestFilterLimit(t *testing.T) {
	for _, tt := range []struct{ in, want int }{{0, DefaultLimit}, {-5, DefaultLimit}, {7, 7}, {MaxLimit + 1, MaxLimit}} {
		if got := (Filter{Limit: tt.in}).limit(); got != tt.want {
			t.Errorf("limit %d -> %d, want %d", tt.in, got, tt.want)
		}
	}
}
