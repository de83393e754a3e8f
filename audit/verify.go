package audit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// The kinds of Problem.
const (
	KindEdited    = "edited"    // a record's content no longer matches its hash, or its successor's prev
	KindDeleted   = "deleted"   // records (or a whole rotated file) are missing
	KindReordered = "reordered" // a record stands where another seq belongs
	KindTruncated = "truncated" // a file ends early: records cut from its end
	KindTornTail  = "torn-tail" // the newest file ends in a partial line from a crash; not an error
	KindMalformed = "malformed" // a line, or the head file, is not a record at all
)

// Problem pins one finding to a file, a line (1-based) and a seq.
type Problem struct {
	File   string
	Line   int
	Seq    uint64
	Kind   string
	Detail string
}

func (p *Problem) String() string {
	return fmt.Sprintf("%s line %d (seq %d): %s: %s", p.File, p.Line, p.Seq, p.Kind, p.Detail)
}

// Report is the outcome of Verify.
type Report struct {
	Files    int
	Records  int    // whole records read before the first break
	FirstSeq uint64 // seq of the first record read (1 for a complete chain)
	LastSeq  uint64
	TornTail *Problem // a crash's partial last line; reported, not a break
	First    *Problem // the first real break; nil when the chain is intact
	// Anchored is true when the chain's head file was found and agrees
	// with the files, which proves no records were cut from the end.
	Anchored bool
}

// Verify checks one chain across files given in chain order (a rotated set,
// as ChainFiles lists it). It returns an error only for I/O; damage is
// described in Report.First, the first break found:
//
//   - edited: a record's content does not match its own hash, or a
//     record's hash was recomputed after an edit, which its successor's
//     prev reveals (then the problem names the edited record);
//   - deleted: a gap in seq, or a missing file in the numbering;
//   - reordered: a seq out of place while the expected one appears later;
//   - truncated: a rotated file ends early (the next file starts past its
//     end), or the newest file ends before the record the head file
//     vouches for;
//   - malformed: a line that is not a record, or an unreadable head file.
//
// A partial last line of the last file is a write cut short by a crash and
// is reported in Report.TornTail, not as a break.
//
// What cannot be detected: records cut from the end of the newest file when
// the head file (<chain>.head beside the files) is missing, stale or
// rewritten along with the files; an entire chain rewritten with fresh hashes
// together with its head; and, when verifying a set that does not start at
// file 000001, anything before its first record. The head file is a local
// anchor only; copying its content somewhere else is what makes it strong.
func Verify(files ...string) (Report, error) {
	rep := Report{Files: len(files)}
	if len(files) == 0 {
		return rep, errors.New("audit: verify: no files given")
	}
	v := verifier{files: files, rep: &rep}
	// Read the head before the files: a live store writes its head only
	// after the records, so the files read next hold every record the
	// head vouches for.
	last := files[len(files)-1]
	if name, _, ok := parseChainFileName(filepath.Base(last)); ok {
		v.headPath = headPath(filepath.Dir(last), name)
		h, err := readHead(v.headPath)
		switch {
		case errors.Is(err, errMalformed):
			rep.First = &Problem{File: v.headPath, Line: 1, Kind: KindMalformed, Detail: err.Error()}
			return rep, nil
		case err != nil:
			return rep, err
		}
		v.head = h
	}
	for i := range files {
		if err := v.file(i); err != nil {
			return rep, err
		}
		if rep.First != nil {
			return rep, nil
		}
	}
	v.checkHead()
	return rep, nil
}

type verifier struct {
	files    []string
	rep      *Report
	headPath string
	head     *head

	have     bool
	lastSeq  uint64
	lastHash [32]byte
	lastFile string
	lastLine int

	headSeen  bool
	headMatch bool
	headFile  string
	headLine  int
}

// file checks files[i], stopping at the first break.
func (v *verifier) file(i int) error {
	path := v.files[i]
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	lineNo := 0
	firstInFile := true
	for {
		line, err := r.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("audit: verify: read %s: %w", path, err)
		}
		if len(line) == 0 {
			return nil
		}
		lineNo++
		if line[len(line)-1] != '\n' {
			if i == len(v.files)-1 {
				v.rep.TornTail = &Problem{File: path, Line: lineNo, Seq: v.lastSeq + 1, Kind: KindTornTail,
					Detail: fmt.Sprintf("the last line is %d bytes without a newline: a write cut short by a crash, never acknowledged", len(line))}
			} else {
				v.rep.First = &Problem{File: path, Line: lineNo, Seq: v.lastSeq + 1, Kind: KindTruncated,
					Detail: "the file ends inside a record, yet later files follow it: it was cut"}
			}
			return nil
		}
		e, perr := parseLine(line[:len(line)-1])
		if perr != nil {
			v.rep.First = &Problem{File: path, Line: lineNo, Seq: v.lastSeq + 1, Kind: KindMalformed, Detail: perr.Error()}
			return nil
		}
		if e.Hash != e.Sum {
			v.rep.First = &Problem{File: path, Line: lineNo, Seq: e.Seq, Kind: KindEdited,
				Detail: fmt.Sprintf("the content hashes to %s but the record says %s", hexString(e.Sum), hexString(e.Hash))}
			return nil
		}
		if p, err := v.link(e, i, path, lineNo, firstInFile, r); err != nil || p != nil {
			v.rep.First = p
			return err
		}
		v.have = true
		v.lastSeq, v.lastHash, v.lastFile, v.lastLine = e.Seq, e.Hash, path, lineNo
		v.rep.Records++
		v.rep.LastSeq = e.Seq
		if v.head != nil && e.Seq == v.head.Seq {
			v.headSeen = true
			v.headMatch = hexString(e.Hash) == v.head.Hash
			v.headFile, v.headLine = path, lineNo
		}
		firstInFile = false
	}
}

// link checks that e follows the previous record; r and the files after i
// are read ahead only to tell a reordering from a deletion.
func (v *verifier) link(e entry, i int, path string, lineNo int, firstInFile bool, r *bufio.Reader) (*Problem, error) {
	if !v.have {
		v.rep.FirstSeq = e.Seq
		_, index, named := parseChainFileName(filepath.Base(path))
		switch {
		case e.Seq == 1 && e.Prev != zeroHash:
			return &Problem{File: path, Line: lineNo, Seq: 1, Kind: KindEdited,
				Detail: "the first record of a chain must have a prev of 64 zeros"}, nil
		case e.Seq != 1 && named && index == 1:
			return &Problem{File: path, Line: lineNo, Seq: 1, Kind: KindDeleted,
				Detail: fmt.Sprintf("the chain's first file starts at seq %d: records 1 to %d are missing", e.Seq, e.Seq-1)}, nil
		}
		return nil, nil
	}
	want := v.lastSeq + 1
	switch {
	case e.Seq == want && e.Prev == v.lastHash:
		return nil, nil
	case e.Seq == want:
		return &Problem{File: v.lastFile, Line: v.lastLine, Seq: v.lastSeq, Kind: KindEdited,
			Detail: fmt.Sprintf("the next record (%s line %d) names prev %s but this record hashes to %s: it was changed and re-hashed (or the next record's prev was)",
				path, lineNo, hexString(e.Prev), hexString(v.lastHash))}, nil
	case e.Seq < want:
		return &Problem{File: path, Line: lineNo, Seq: e.Seq, Kind: KindReordered,
			Detail: fmt.Sprintf("seq %d appears after seq %d", e.Seq, v.lastSeq)}, nil
	}
	later, err := seqLater(r, v.files[i+1:], want)
	if err != nil {
		return nil, err
	}
	switch {
	case later:
		return &Problem{File: path, Line: lineNo, Seq: e.Seq, Kind: KindReordered,
			Detail: fmt.Sprintf("seq %d stands where seq %d belongs, which appears later", e.Seq, want)}, nil
	case firstInFile:
		if missing := missingFiles(v.lastFile, path); missing != "" {
			return &Problem{File: path, Line: lineNo, Seq: want, Kind: KindDeleted,
				Detail: fmt.Sprintf("%s missing: records %d to %d are gone", missing, want, e.Seq-1)}, nil
		}
		return &Problem{File: v.lastFile, Line: v.lastLine + 1, Seq: want, Kind: KindTruncated,
			Detail: fmt.Sprintf("the file ends at seq %d but the next file (%s) starts at seq %d: records %d to %d were cut from its end",
				v.lastSeq, path, e.Seq, want, e.Seq-1)}, nil
	}
	return &Problem{File: path, Line: lineNo, Seq: want, Kind: KindDeleted,
		Detail: fmt.Sprintf("seq %d follows seq %d: records %d to %d are missing before this line", e.Seq, v.lastSeq, want, e.Seq-1)}, nil
}

// missingFiles names the chain files numbered between prev and next, if
// both follow the naming scheme and the numbering skips.
func missingFiles(prev, next string) string {
	name1, i1, ok1 := parseChainFileName(filepath.Base(prev))
	name2, i2, ok2 := parseChainFileName(filepath.Base(next))
	if !ok1 || !ok2 || name1 != name2 || i2 <= i1+1 {
		return ""
	}
	if i2 == i1+2 {
		return "file " + chainFileName(name1, i1+1) + " is"
	}
	return fmt.Sprintf("files %s to %s are", chainFileName(name1, i1+1), chainFileName(name1, i2-1))
}

// seqLater reports whether a record with seq want appears in the rest of r
// or in files.
func seqLater(r *bufio.Reader, files []string, want uint64) (bool, error) {
	scan := func(r *bufio.Reader) (bool, error) {
		for {
			line, err := r.ReadBytes('\n')
			if len(line) > 0 && line[len(line)-1] == '\n' {
				if e, perr := parseLine(line[:len(line)-1]); perr == nil && e.Seq == want {
					return true, nil
				}
			}
			if err == io.EOF {
				return false, nil
			}
			if err != nil {
				return false, fmt.Errorf("audit: verify: %w", err)
			}
		}
	}
	if found, err := scan(r); found || err != nil {
		return found, err
	}
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			return false, fmt.Errorf("audit: verify: %w", err)
		}
		found, err := scan(bufio.NewReader(f))
		_ = f.Close()
		if found || err != nil {
			return found, err
		}
	}
	return false, nil
}

// checkHead compares the chain's end with its head file, the only way to
// see records cut from the end of the newest file.
func (v *verifier) checkHead() {
	h := v.head
	if h == nil {
		return
	}
	last := v.files[len(v.files)-1]
	name, lastIndex, _ := parseChainFileName(filepath.Base(last))
	hName, hIndex, ok := parseChainFileName(h.File)
	if !ok || hName != name {
		v.rep.First = &Problem{File: v.headPath, Line: 1, Kind: KindMalformed,
			Detail: fmt.Sprintf("the head file names %q, not a file of the %s chain", h.File, name)}
		return
	}
	if hIndex > lastIndex {
		hFile := filepath.Join(filepath.Dir(last), h.File)
		if _, err := os.Stat(hFile); err == nil {
			return // a partial set was given; the head speaks of a later file
		}
		v.rep.First = &Problem{File: hFile, Line: 1, Seq: v.rep.LastSeq + 1, Kind: KindDeleted,
			Detail: fmt.Sprintf("%s vouches for seq %d in %s, which is missing", v.headPath, h.Seq, h.File)}
		return
	}
	switch {
	case h.Seq > v.rep.LastSeq:
		v.rep.First = &Problem{File: last, Line: v.lastLine + 1, Seq: v.rep.LastSeq + 1, Kind: KindTruncated,
			Detail: fmt.Sprintf("the chain ends at seq %d but %s vouches for seq %d: records were cut from the end", v.rep.LastSeq, v.headPath, h.Seq)}
	case v.headSeen && !v.headMatch:
		v.rep.First = &Problem{File: v.headFile, Line: v.headLine, Seq: h.Seq, Kind: KindEdited,
			Detail: fmt.Sprintf("record seq %d differs from the one %s vouches for: the chain was rewritten", h.Seq, v.headPath)}
	case v.headSeen, h.Seq == 0 && v.rep.Records == 0:
		v.rep.Anchored = true
	}
}
