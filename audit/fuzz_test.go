package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func FuzzParseLine(f *testing.F) {
	body, _ := json.Marshal(sampleRecord(1))
	line, _ := appendLine(nil, 1, &zeroHash, body)
	f.Add(line[:len(line)-1])
	f.Add([]byte(`{"seq":1,"prev":"` + string(bytes.Repeat([]byte("0"), 64)) + `","hash":"` + string(bytes.Repeat([]byte("a"), 64)) + `"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"seq":-1,"hash":"`))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := parseLine(line)
		if err != nil {
			return
		}
		if !json.Valid(line) {
			t.Fatalf("accepted invalid JSON %q", line)
		}
		if e.Seq == 0 {
			t.Fatalf("accepted seq 0 in %q", line)
		}
	})
}

func FuzzAppendLineRoundTrip(f *testing.F) {
	f.Add(uint64(1), []byte(`{"time":"2025-01-01T00:00:00Z","trace_id":"x"}`))
	f.Add(uint64(99), []byte(`{}`))
	f.Fuzz(func(t *testing.T, seq uint64, body []byte) {
		var obj map[string]json.RawMessage
		if seq == 0 || json.Unmarshal(body, &obj) != nil || obj == nil {
			return
		}
		for _, k := range []string{"seq", "prev", "hash"} {
			if _, ok := obj[k]; ok {
				return
			}
		}
		prev := [32]byte{1, 2, 3}
		line, sum := appendLine(nil, seq, &prev, body)
		e, err := parseLine(line[:len(line)-1])
		if err != nil {
			t.Fatalf("writer line does not parse: %v\n%s", err, line)
		}
		if e.Seq != seq || e.Prev != prev || e.Hash != sum || e.Sum != sum {
			t.Fatalf("round trip differs: %+v for seq %d\n%s", e, seq, line)
		}
	})
}

func FuzzVerify(f *testing.F) {
	var chain []byte
	prev := zeroHash
	for i := 1; i <= 3; i++ {
		body, _ := json.Marshal(sampleRecord(i))
		chain, prev = appendLine(chain, uint64(i), &prev, body)
	}
	f.Add(chain)
	f.Add(chain[:len(chain)-7])
	f.Add([]byte("\n\n{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "audit-000001.jsonl")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		rep, err := Verify(path)
		if err != nil {
			t.Fatalf("Verify of a readable file returned an I/O error: %v", err)
		}
		if rep.First == nil {
			lines := bytes.Count(data, []byte("\n"))
			if rep.Records != lines || (rep.Records > 0 && rep.LastSeq != uint64(rep.Records)) {
				t.Fatalf("intact report %+v for %d lines", rep, lines)
			}
		}
	})
}
