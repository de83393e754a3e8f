package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// buildChain writes 32 records into five rotated files and returns
// the directory and its files.
func buildChain(t *testing.T) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	s := openStore(t, dir, Options{MaxFileBytes: 8 * 800})
	appendN(t, s, 1, 32)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := ChainFiles(dir, AuditChain)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("want at least 3 files, got %d", len(files))
	}
	return dir, files
}

// rehash recomputes a line's hash after an edit, as a careful forger would.
func rehash(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	content := append(bytes.Clone(line[:len(line)-hashSuffixLen]), '}')
	sum := sha256.Sum256(content)
	return append(append(append(content[:len(content)-1], hashKey...), hex.EncodeToString(sum[:])...), "\"}\n"...)
}

func TestVerifyDamage(t *testing.T) {
	type want struct {
		kind   string
		file   int // index into the files; -1 for the head file
		line   int
		seq    uint64
		detail string
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string, files []string) []string // returns the files to verify
		want   *want
		torn   bool
	}{
		{"intact", func(t *testing.T, dir string, files []string) []string { return files }, nil, false},
		{"field edited", func(t *testing.T, dir string, files []string) []string {
			lines := readLines(t, files[0])
			lines[4] = bytes.Replace(lines[4], []byte(`"status":200`), []byte(`"status":403`), 1)
			writeLines(t, files[0], lines)
			return files
		}, &want{KindEdited, 0, 5, 5, "hashes to"}, false},
		{"hash edited", func(t *testing.T, dir string, files []string) []string {
			lines := readLines(t, files[0])
			i := len(lines[2]) - 10
			lines[2][i] ^= 1 // still a hex digit: '0'..'9' and 'a'..'f' flip within range mostly
			if !isLowerHex(lines[2][i : i+1]) {
				lines[2][i] = '0'
			}
			writeLines(t, files[0], lines)
			return files
		}, &want{KindEdited, 0, 3, 3, "hashes to"}, false},
		{"field edited and re-hashed", func(t *testing.T, dir string, files []string) []string {
			lines := readLines(t, files[0])
			lines[3] = rehash(bytes.Replace(lines[3], []byte(`"decision":"forwarded"`), []byte(`"decision":"refused"`), 1))
			writeLines(t, files[0], lines)
			return files
		}, &want{KindEdited, 0, 4, 4, "changed and re-hashed"}, false},
		{"line deleted", func(t *testing.T, dir string, files []string) []string {
			lines := readLines(t, files[0])
			writeLines(t, files[0], append(lines[:4:4], lines[5:]...))
			return files
		}, &want{KindDeleted, 0, 5, 5, "records 5 to 5 are missing"}, false},
		{"two lines swapped", func(t *testing.T, dir string, files []string) []string {
			lines := readLines(t, files[1])
			lines[1], lines[2] = lines[2], lines[1]
			writeLines(t, files[1], lines)
			return files
		}, &want{KindReordered, 1, 2, 0, "appears later"}, false},
		{"line duplicated", func(t *testing.T, dir string, files []string) []string {
			lines := readLines(t, files[0])
			writeLines(t, files[0], append(lines[:3:3], append([][]byte{lines[2]}, lines[3:]...)...))
			return files
		}, &want{KindReordered, 0, 4, 3, "appears after seq 3"}, false},
		{"garbage line", func(t *testing.T, dir string, files []string) []string {
			lines := readLines(t, files[0])
			lines[1] = []byte("{\"hello\":1}\n")
			writeLines(t, files[0], lines)
			return files
		}, &want{KindMalformed, 0, 2, 2, "malformed record"}, false},
		{"newest file truncated at a record boundary", func(t *testing.T, dir string, files []string) []string {
			last := files[len(files)-1]
			lines := readLines(t, last)
			writeLines(t, last, lines[:len(lines)-2])
			return files
		}, &want{KindTruncated, -2, 0, 31, "vouches for seq 32"}, false},
		{"newest file truncated inside a record", func(t *testing.T, dir string, files []string) []string {
			last := files[len(files)-1]
			data, _ := os.ReadFile(last)
			if err := os.WriteFile(last, data[:len(data)-40], 0o600); err != nil {
				t.Fatal(err)
			}
			return files
		}, &want{KindTruncated, -2, 0, 32, "vouches for seq 32"}, true},
		{"torn last line from a crash", func(t *testing.T, dir string, files []string) []string {
			f, err := os.OpenFile(files[len(files)-1], os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteString(`{"seq":31,"prev":"ab`); err != nil {
				t.Fatal(err)
			}
			return files
		}, nil, true},
		{"rotated file removed from the middle", func(t *testing.T, dir string, files []string) []string {
			if err := os.Remove(files[1]); err != nil {
				t.Fatal(err)
			}
			return append([]string{files[0]}, files[2:]...)
		}, &want{KindDeleted, 1, 1, 0, "audit-000002.jsonl is missing"}, false},
		{"rotated file cut at a record boundary", func(t *testing.T, dir string, files []string) []string {
			lines := readLines(t, files[0])
			writeLines(t, files[0], lines[:len(lines)-1])
			return files
		}, &want{KindTruncated, 0, 0, 0, "were cut from its end"}, false},
		{"rotated file cut inside a record", func(t *testing.T, dir string, files []string) []string {
			data, _ := os.ReadFile(files[0])
			if err := os.WriteFile(files[0], data[:len(data)-30], 0o600); err != nil {
				t.Fatal(err)
			}
			return files
		}, &want{KindTruncated, 0, 0, 0, "ends inside a record"}, false},
		{"newest file removed", func(t *testing.T, dir string, files []string) []string {
			if err := os.Remove(files[len(files)-1]); err != nil {
				t.Fatal(err)
			}
			return files[:len(files)-1]
		}, &want{KindDeleted, -2, 1, 0, "which is missing"}, false},
		{"first file removed", func(t *testing.T, dir string, files []string) []string {
			if err := os.Rename(files[1], files[0]); err != nil {
				t.Fatal(err)
			}
			return append([]string{files[0]}, files[2:]...)
		}, &want{KindDeleted, 0, 1, 1, "records 1 to"}, false},
		{"head file garbage", func(t *testing.T, dir string, files []string) []string {
			if err := os.WriteFile(headPath(dir, AuditChain), []byte("nonsense"), 0o600); err != nil {
				t.Fatal(err)
			}
			return files
		}, &want{KindMalformed, -1, 1, 0, "head"}, false},
		{"chain re-hashed after an edit, head kept", func(t *testing.T, dir string, files []string) []string {
			last := files[len(files)-1]
			lines := readLines(t, last)
			n := len(lines) - 1
			lines[n] = rehash(bytes.Replace(lines[n], []byte(`"status":200`), []byte(`"status":500`), 1))
			writeLines(t, last, lines)
			return files
		}, &want{KindEdited, -2, 3, 32, "vouches for"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, files := buildChain(t)
			given := tt.damage(t, dir, files)
			rep, err := Verify(given...)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if (rep.TornTail != nil) != tt.torn {
				t.Errorf("torn tail = %v, want %v", rep.TornTail, tt.torn)
			}
			if tt.want == nil {
				if rep.First != nil {
					t.Fatalf("want intact, got %v", rep.First)
				}
				if rep.LastSeq != 32 || !rep.Anchored {
					t.Errorf("last seq %d anchored %v, want 32 and true", rep.LastSeq, rep.Anchored)
				}
				return
			}
			p := rep.First
			if p == nil {
				t.Fatalf("damage not found: %+v", rep)
			}
			w := tt.want
			if p.Kind != w.kind {
				t.Errorf("kind %q, want %q (%v)", p.Kind, w.kind, p)
			}
			wantFile := ""
			switch w.file {
			case -1:
				wantFile = headPath(dir, AuditChain)
			case -2:
				wantFile = files[len(files)-1]
			default:
				wantFile = given[w.file]
			}
			if p.File != wantFile {
				t.Errorf("file %s, want %s (%v)", filepath.Base(p.File), filepath.Base(wantFile), p)
			}
			if w.line != 0 && p.Line != w.line {
				t.Errorf("line %d, want %d (%v)", p.Line, w.line, p)
			}
			if w.seq != 0 && p.Seq != w.seq {
				t.Errorf("seq %d, want %d (%v)", p.Seq, w.seq, p)
			}
			if !strings.Contains(p.Detail, w.detail) {
				t.Errorf("detail %q does not contain %q", p.Detail, w.detail)
			}
		})
	}
}

// TestVerifyWithoutHeadCannotSeeTailCut pins the documented limit: without
// the head file, records cut from the end of the newest file leave a chain
// that is intact as far as it goes.
func TestVerifyWithoutHeadCannotSeeTailCut(t *testing.T) {
	dir, files := buildChain(t)
	if err := os.Remove(headPath(dir, AuditChain)); err != nil {
		t.Fatal(err)
	}
	last := files[len(files)-1]
	lines := readLines(t, last)
	writeLines(t, last, lines[:len(lines)-1])
	rep, err := Verify(files...)
	if err != nil {
		t.Fatal(err)
	}
	if rep.First != nil || rep.Anchored || rep.LastSeq != 31 {
		t.Errorf("want an unanchored intact chain ending at 31, got %+v", rep)
	}
}

func TestVerifyNoFiles(t *testing.T) {
	if _, err := Verify(); err == nil {
		t.Error("Verify() with no files returned no error")
	}
	if _, err := Verify(filepath.Join(t.TempDir(), "audit-000001.jsonl")); err == nil {
		t.Error("Verify of a missing file returned no error")
	}
}
