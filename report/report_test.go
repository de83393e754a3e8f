package report

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sspemu/audit"
)

const (
	asidA = "200000000359"
	asidB = "200000000360"
)

// writeAudit writes recs and txs through the real audit store into a new
// directory and returns it with the seq -> hash of every audit line.
func writeAudit(t *testing.T, recs []audit.Record, txs []audit.Transaction) (string, map[uint64]string) {
	t.Helper()
	dir := t.TempDir()
	s, err := audit.Open(dir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if _, err := s.Append(context.Background(), &recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range txs {
		if _, err := s.AppendTransaction(context.Background(), &txs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := audit.ChainFiles(dir, audit.AuditChain)
	if err != nil {
		t.Fatal(err)
	}
	hashes := map[uint64]string{}
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var l struct {
				Seq  uint64 `json:"seq"`
				Hash string `json:"hash"`
			}
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatal(err)
			}
			hashes[l.Seq] = l.Hash
		}
		f.Close()
	}
	return dir, hashes
}

// at is a good record of consumer from at t0+d, with a trace ID of its own.
func at(from string, d time.Duration, trace string, edits ...func(*audit.Record)) audit.Record {
	r := goodRecord()
	r.From, r.Time, r.TraceID = from, t0.Add(d), trace
	for _, e := range edits {
		e(&r)
	}
	return r
}

func TestBuildRangeAndAnchor(t *testing.T) {
	recs := []audit.Record{
		at(asidA, 0, "t1"),                  // seq 1
		at(asidA, time.Minute, "t2", v1),    // seq 2: an old record
		at(asidB, 90*time.Second, "t3"),     // seq 3: another consumer
		at(asidA, 2*time.Minute, "t4"),      // seq 4
		at(asidA, 3*time.Minute, "t5", v1),  // seq 5
		at(asidB, 4*time.Minute, "t6"),      // seq 6
		at(asidA, 5*time.Minute, "reused"),  // seq 7
		at(asidA, 6*time.Minute, "reused"),  // seq 8: same trace ID
		at(asidA, 7*time.Minute, "t9", v1),  // seq 9
		at(asidA, 8*time.Minute, "t10"),     // seq 10
		at(asidB, 9*time.Minute, "t11", v1), // seq 11: the chain's end
	}
	txs := []audit.Transaction{
		{Time: t0.Add(2 * time.Minute), TraceID: "t4", Status: 403},
		{Time: t0.Add(5 * time.Minute), TraceID: "reused", Status: 403},
	}
	dir, hashes := writeAudit(t, recs, txs)
	base := Options{AuditDir: dir, Version: "test", ConfigHash: "abc", ConfigSource: "embedded default", Now: t0.Add(time.Hour)}

	tests := []struct {
		name                string
		from                string
		since, until        time.Duration // -1: unset
		wantConsumer        string
		wantRecords         int
		wantFirst, wantLast uint64
		wantOld             int
		wantErr             string
	}{
		{"all of A", asidA, -1, -1, asidA, 8, 1, 10, 3, ""},
		{"A from 1m to 3m", asidA, time.Minute, 3 * time.Minute, asidA, 3, 2, 5, 2, ""},
		{"bounds are inclusive", asidA, 2 * time.Minute, 2 * time.Minute, asidA, 1, 4, 4, 0, ""},
		{"B", asidB, -1, -1, asidB, 3, 3, 11, 1, ""},
		{"only B in range picks B", "", 8*time.Minute + time.Second, -1, asidB, 1, 11, 11, 1, ""},
		{"only A in range picks A", "", 0, time.Minute, asidA, 2, 1, 2, 1, ""},
		{"two consumers need --from", "", -1, -1, "", 0, 0, 0, 0, "name one with --from ASID"},
		{"nobody in range", "", time.Hour, -1, "", 0, 0, 0, 0, "no consumer records in range"},
		{"named consumer, empty range", asidA, time.Hour, -1, asidA, 0, 0, 0, 0, ""},
		{"unknown consumer", "999999999999", -1, -1, "999999999999", 0, 0, 0, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opt := base
			opt.From = tc.from
			if tc.since >= 0 {
				opt.Since = t0.Add(tc.since).In(time.FixedZone("BST", 3600))
			}
			if tc.until >= 0 {
				opt.Until = t0.Add(tc.until)
			}
			rep, err := Build(opt)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				if tc.from == "" && tc.since < 0 && (!strings.Contains(err.Error(), asidA) || !strings.Contains(err.Error(), asidB)) {
					t.Errorf("the error does not name both consumers: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			g := rep.Range
			if rep.Consumer != tc.wantConsumer || g.Records != tc.wantRecords || g.FirstSeq != tc.wantFirst || g.LastSeq != tc.wantLast || g.OldRecords != tc.wantOld {
				t.Fatalf("consumer %s records %d seq %d..%d old %d; want %s %d %d..%d %d",
					rep.Consumer, g.Records, g.FirstSeq, g.LastSeq, g.OldRecords, tc.wantConsumer, tc.wantRecords, tc.wantFirst, tc.wantLast, tc.wantOld)
			}
			// The anchor is the hash of the last record covered; the chain
			// members describe the whole audit whatever the range.
			if g.Anchor != hashes[tc.wantLast] {
				t.Errorf("anchor %q, want %q (seq %d)", g.Anchor, hashes[tc.wantLast], tc.wantLast)
			}
			if tc.wantRecords > 0 && (g.Anchor == "" || g.FirstTime == nil || !g.FirstTime.Equal(recs[tc.wantFirst-1].Time) || !g.LastTime.Equal(recs[tc.wantLast-1].Time)) {
				t.Errorf("first/last time %v %v", g.FirstTime, g.LastTime)
			}
			if tc.wantRecords == 0 && (g.FirstTime != nil || g.LastTime != nil) {
				t.Errorf("empty range has times %v %v", g.FirstTime, g.LastTime)
			}
			if g.ChainLastSeq != 11 || g.ChainHead != hashes[11] || !g.ChainAnchored {
				t.Errorf("chain: last %d head %q anchored %v; want 11 %q true", g.ChainLastSeq, g.ChainHead, g.ChainAnchored, hashes[11])
			}
			if (tc.since >= 0) != (g.Since != nil) || (tc.until >= 0) != (g.Until != nil) {
				t.Errorf("since %v until %v", g.Since, g.Until)
			}
			if g.Since != nil && (g.Since.Location() != time.UTC || !g.Since.Equal(opt.Since)) {
				t.Errorf("since %v is not the option in UTC", g.Since)
			}
			hasNote := false
			for _, n := range rep.Notes {
				hasNote = hasNote || strings.Contains(n, "before audit record version")
			}
			if hasNote != (tc.wantOld > 0) {
				t.Errorf("old-record note %v with %d old records: %q", hasNote, tc.wantOld, rep.Notes)
			}
			s := rep.Summary
			if s.Met+s.NotMet+s.NotExercised != len(Catalogue()) || len(rep.Results) != len(Catalogue()) {
				t.Errorf("summary %+v over %d results, catalogue %d", s, len(rep.Results), len(Catalogue()))
			}
		})
	}

	// The joined 403 (t4) and the reused trace ID show in the results of all of A.
	rep, err := Build(Options{AuditDir: dir, From: asidA, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	res := map[string]Result{}
	for _, r := range rep.Results {
		res[r.ID] = r
	}
	if r := res["GPC-SPN-TST-07"]; r.Result != Met || len(r.Evidence) != 1 || r.Evidence[0].TraceID != "t4" {
		t.Errorf("TST-07 %s %+v: want met by the joined 403 of t4 only (the reused trace ID's 403 is not joined)", r.Result, r.Evidence)
	}
	if r := res["GPC-SPN-TST-13"]; r.Result != NotMet {
		t.Errorf("TST-13 %s: a reused trace ID must count against it", r.Result)
	}
}

func TestBuildRefuses(t *testing.T) {
	t.Run("no audit files", func(t *testing.T) {
		if _, err := Build(Options{AuditDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "holds no audit-") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("tampered", func(t *testing.T) {
		dir, _ := writeAudit(t, []audit.Record{at(asidA, 0, "t1"), at(asidA, time.Minute, "t2"), at(asidA, 2*time.Minute, "t3")}, nil)
		files, _ := audit.ChainFiles(dir, audit.AuditChain)
		b, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		b2 := strings.Replace(string(b), `"trace_id":"t2"`, `"trace_id":"tX"`, 1)
		if b2 == string(b) {
			t.Fatal("no record to edit")
		}
		if err := os.WriteFile(files[0], []byte(b2), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err = Build(Options{AuditDir: dir, From: asidA})
		if !errors.Is(err, ErrTampered) {
			t.Fatalf("err %v, want ErrTampered", err)
		}
		if !strings.Contains(err.Error(), filepath.Base(files[0])) {
			t.Errorf("error does not name the file: %v", err)
		}
	})
}
