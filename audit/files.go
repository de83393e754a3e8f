package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The names of the two chains in an audit directory.
const (
	AuditChain       = "audit"
	TransactionChain = "transactions"
)

// chainFileName names file number index of a chain.
func chainFileName(chain string, index int) string {
	return fmt.Sprintf("%s-%06d.jsonl", chain, index)
}

// parseChainFileName splits "audit-000012.jsonl" into "audit" and 12.
func parseChainFileName(base string) (chain string, index int, ok bool) {
	stem, found := strings.CutSuffix(base, ".jsonl")
	if !found {
		return "", 0, false
	}
	i := strings.LastIndexByte(stem, '-')
	if i <= 0 || i == len(stem)-1 {
		return "", 0, false
	}
	digits := stem[i+1:]
	for _, c := range digits {
		if c < '0' || c > '9' {
			return "", 0, false
		}
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n <= 0 {
		return "", 0, false
	}
	return stem[:i], n, true
}

// ChainFiles lists the files of one chain ("audit" or "transactions") in
// dir in chain order, so a caller can hand a whole directory to Verify.
func ChainFiles(dir, chain string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: list %s: %w", dir, err)
	}
	type numbered struct {
		index int
		path  string
	}
	var found []numbered
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		name, index, ok := parseChainFileName(e.Name())
		if !ok || name != chain {
			continue
		}
		found = append(found, numbered{index, filepath.Join(dir, e.Name())})
	}
	slices.SortFunc(found, func(a, b numbered) int { return a.index - b.index })
	paths := make([]string, len(found))
	for i, f := range found {
		paths[i] = f.path
	}
	return paths, nil
}

// headSize is the fixed length of a head file, written in place at offset 0
// so an update never changes the file's size.
const headSize = 256

// head is the anchor of a chain: the last record known durable. Verify
// compares it with the files to detect records cut from the end of the
// newest file, which the chain alone cannot reveal.
type head struct {
	File string `json:"file"`
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

func headPath(dir, chain string) string { return filepath.Join(dir, chain+".head") }

// encode renders the head padded to headSize.
func (h head) encode() []byte {
	b, _ := json.Marshal(h)
	out := bytes.Repeat([]byte{' '}, headSize)
	copy(out, b)
	out[headSize-1] = '\n'
	return out
}

// readHead returns nil and no error when the chain has no head file.
func readHead(path string) (*head, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: read head %s: %w", path, err)
	}
	var h head
	dec := json.NewDecoder(bytes.NewReader(bytes.TrimSpace(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("audit: head %s: %w: %w", path, errMalformed, err)
	}
	if len(h.Hash) != 64 || !isLowerHex([]byte(h.Hash)) {
		return nil, fmt.Errorf("audit: head %s: %w: hash %q is not 64 lowercase hex digits", path, errMalformed, h.Hash)
	}
	return &h, nil
}

// syncDir makes a newly created file's directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit: open directory %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("audit: sync directory %s: %w", dir, err)
	}
	return nil
}
