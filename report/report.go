// Package report turns the SSP's audit of one consumer into evidence for
// NHS consumer assurance: a result per consumer test ID (met, not met, not
// exercised) with the calls that show it, in HTML, JSON or JUnit XML.
package report

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"sspemu/audit"
	"sspemu/gpconnect"
)

// SpecVersion is the GP Connect version the catalogue and the SSP follow.
const SpecVersion = "1.2.7"

// The results of a test.
const (
	Met          = "met"
	NotMet       = "not met"
	NotExercised = "not exercised"
)

// Options is what the report is made from.
type Options struct {
	AuditDir string
	From     string // the consumer's ASID; "" picks the only one in range
	Since    time.Time
	Until    time.Time // zero: no upper bound
	Version  string    // sspemu's version
	// ConfigHash and ConfigSource name the configuration the SSP ran
	// with: the SHA-256 of the file given, or of the embedded default.
	ConfigHash   string
	ConfigSource string
	Now          time.Time
}

// Report is the whole report; its JSON form (the json tags) is the schema
// documented in the README ("Evidence for assurance").
type Report struct {
	Generated   time.Time `json:"generated"`
	Sspemu      string    `json:"sspemu_version"`
	SpecVersion string    `json:"spec_version"`
	Config      Config    `json:"config"`
	Consumer    string    `json:"consumer_asid"`
	Range       Range     `json:"range"`
	Summary     Summary   `json:"summary"`
	Results     []Result  `json:"results"`
	CannotProve []string  `json:"cannot_prove"`
	Notes       []string  `json:"notes,omitempty"`
}

// Config names the SSP's configuration.
type Config struct {
	SHA256 string `json:"sha256"`
	Source string `json:"source"` // the file hashed, or "embedded default"
}

// Range is the part of the audit the report covers and its chain anchor.
type Range struct {
	Since     *time.Time `json:"since,omitempty"`
	Until     *time.Time `json:"until,omitempty"`
	FirstSeq  uint64     `json:"first_seq"`
	LastSeq   uint64     `json:"last_seq"`
	Records   int        `json:"records"`
	FirstTime *time.Time `json:"first_time,omitempty"`
	LastTime  *time.Time `json:"last_time,omitempty"`
	// Anchor is the hash of the last audit record covered: whoever holds
	// it can check later that the records up to it are unchanged.
	Anchor string `json:"anchor"`
	// ChainLastSeq and ChainHead are the end of the whole audit chain when
	// the report was made, and ChainAnchored whether the head file vouched
	// for it (no records cut from the end).
	ChainLastSeq  uint64 `json:"chain_last_seq"`
	ChainHead     string `json:"chain_head"`
	ChainAnchored bool   `json:"chain_anchored"`
	// OldRecords counts records written before record version 2, which
	// lack the TLS, header and claim members.
	OldRecords int `json:"old_records,omitempty"`
	// V2Records counts records of version 2, whose transactions lack
	// audit_seq and the answer's facts (content type, provider code).
	V2Records int `json:"v2_records,omitempty"`
	// V3Records counts records of version 3, which lack If-Match and the
	// request body's summary, and whose transactions lack the answer's
	// Location and ETag.
	V3Records int `json:"v3_records,omitempty"`
	// SpineJournal is the number of Spine services journal entries (SDS
	// and PDS calls) in range; absent when the directory has no journal.
	SpineJournal *int `json:"spine_journal_entries,omitempty"`
}

// Summary counts the results.
type Summary struct {
	Met          int `json:"met"`
	NotMet       int `json:"not_met"`
	NotExercised int `json:"not_exercised"`
}

// Result is one test ID's outcome.
type Result struct {
	ID          string     `json:"id"`
	Group       string     `json:"group"`
	Title       string     `json:"title"`
	SCAL        []string   `json:"scal"`
	Result      string     `json:"result"` // met | not met | not exercised
	Why         string     `json:"why"`
	Evidence    []Evidence `json:"evidence"`
	CannotProve string     `json:"cannot_prove,omitempty"`
	Note        string     `json:"note,omitempty"`
	Source      string     `json:"source"`
}

// Evidence is one call that shows a result, and what was checked on it.
type Evidence struct {
	Seq     uint64    `json:"seq"`
	TraceID string    `json:"trace_id"`
	Time    time.Time `json:"time"`
	Status  int       `json:"status"`
	Checked []string  `json:"checked"`
	// Counter is true when this call speaks against the result (a
	// violation); false when it is an exemplar.
	Counter bool `json:"counter,omitempty"`
	// Journal is true when this is an entry of the Spine services journal
	// (an SDS or PDS call; Seq is then the journal's seq and TraceID its
	// X-Correlation-ID or X-Request-ID), not an SSP audit record.
	Journal bool `json:"journal,omitempty"`
}

// maxEvidence bounds the calls listed per test.
const maxEvidence = 5

// call is one audit record with its transaction joined.
type call struct {
	seq  uint64
	hash string
	rec  audit.Record
	tx   *audit.Transaction
	// ambiguous is true when the trace ID is not unique in the audit, so
	// the join could not pick a transaction.
	ambiguous bool
}

// status is the answer the consumer got: the transaction's, else the
// record's (a refusal's status is in both).
func (c *call) status() int {
	if c.tx != nil {
		return c.tx.Status
	}
	return c.rec.Status
}

// ok reports a forwarded call answered 2xx.
func (c *call) ok() bool {
	s := c.status()
	return c.rec.Decision == gpconnect.DecisionForwarded && s >= 200 && s < 300
}

// ErrTampered is returned, wrapped with the broken record, when a chain
// does not verify.
var ErrTampered = errors.New("the audit does not verify")

// Build verifies the audit in opt.AuditDir and evaluates the catalogue
// over the consumer's records in range.
func Build(opt Options) (*Report, error) {
	af, err := audit.ChainFiles(opt.AuditDir, audit.AuditChain)
	if err != nil {
		return nil, err
	}
	if len(af) == 0 {
		return nil, fmt.Errorf("--audit %s holds no audit-*.jsonl files", opt.AuditDir)
	}
	tf, err := audit.ChainFiles(opt.AuditDir, audit.TransactionChain)
	if err != nil {
		return nil, err
	}
	rep := &Report{Generated: opt.Now.UTC(), Sspemu: opt.Version, SpecVersion: SpecVersion,
		Config: Config{SHA256: opt.ConfigHash, Source: opt.ConfigSource}, CannotProve: CannotProve()}
	for _, files := range [][]string{af, tf} {
		if len(files) == 0 {
			continue
		}
		vr, err := audit.Verify(files...)
		if err != nil {
			return nil, err
		}
		if vr.First != nil {
			return nil, fmt.Errorf("%w: %s; no report is made from a tampered audit (sspemu audit verify %s shows the same)", ErrTampered, vr.First, opt.AuditDir)
		}
		if vr.TornTail != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("a crash cut the last line of %s short; it is not covered", vr.TornTail.File))
		}
		if files[0] == af[0] {
			rep.Range.ChainLastSeq, rep.Range.ChainAnchored = vr.LastSeq, vr.Anchored
		}
	}
	j, err := readJournal(opt.AuditDir, opt.Since, opt.Until, rep)
	if err != nil {
		return nil, err
	}
	if j != nil {
		n := len(j.entries)
		rep.Range.SpineJournal = &n
	}
	calls, head, err := readRecords(af)
	if err != nil {
		return nil, err
	}
	rep.Range.ChainHead = head
	txs, err := readTransactions(tf)
	if err != nil {
		return nil, err
	}
	from := opt.From
	if from == "" {
		if from, err = onlyConsumer(calls, opt); err != nil {
			return nil, err
		}
	}
	rep.Consumer = from
	var sel []*call
	for _, c := range calls {
		if c.rec.From != from || c.rec.Time.Before(opt.Since) || (!opt.Until.IsZero() && c.rec.Time.After(opt.Until)) {
			continue
		}
		sel = append(sel, c)
	}
	join(calls, txs)
	if !opt.Since.IsZero() {
		s := opt.Since.UTC()
		rep.Range.Since = &s
	}
	if !opt.Until.IsZero() {
		u := opt.Until.UTC()
		rep.Range.Until = &u
	}
	rep.Range.Records = len(sel)
	if len(sel) > 0 {
		first, last := sel[0], sel[len(sel)-1]
		ft, lt := first.rec.Time.UTC(), last.rec.Time.UTC()
		rep.Range.FirstSeq, rep.Range.LastSeq, rep.Range.FirstTime, rep.Range.LastTime = first.seq, last.seq, &ft, &lt
		rep.Range.Anchor = last.hash
	}
	for _, c := range sel {
		switch {
		case c.rec.V < 2:
			rep.Range.OldRecords++
		case c.rec.V < 3:
			rep.Range.V2Records++
		case c.rec.V < 4:
			rep.Range.V3Records++
		}
	}
	if rep.Range.OldRecords > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d record(s) were written before audit record version 2: their TLS, header and JWT claim members were not recorded, and no test counts them as not met for that", rep.Range.OldRecords))
	}
	if rep.Range.V2Records > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d record(s) were written with audit record version 2: their client certificate issuer, serial and notAfter, and their answers' content type, provider error code and searchset entries, were not recorded; those calls are judged without them", rep.Range.V2Records))
	}
	if rep.Range.V3Records > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d record(s) were written with audit record version 3: their If-Match header and request body summary, and their answers' Location and ETag, were not recorded; the tests that hinge on them say so rather than not met", rep.Range.V3Records))
	}
	for _, t := range Catalogue() {
		rep.add(evaluateIn(t, sel, j))
	}
	return rep, nil
}

// add appends one test's result and counts it in the summary.
func (rep *Report) add(r Result) {
	switch r.Result {
	case Met:
		rep.Summary.Met++
	case NotMet:
		rep.Summary.NotMet++
	default:
		rep.Summary.NotExercised++
	}
	rep.Results = append(rep.Results, r)
}

// onlyConsumer is the one consumer ASID in range, when --from is left out.
func onlyConsumer(calls []*call, opt Options) (string, error) {
	seen := map[string]bool{}
	for _, c := range calls {
		if c.rec.From != "" && !c.rec.Time.Before(opt.Since) && (opt.Until.IsZero() || !c.rec.Time.After(opt.Until)) {
			seen[c.rec.From] = true
		}
	}
	asids := make([]string, 0, len(seen))
	for a := range seen {
		asids = append(asids, a)
	}
	sort.Strings(asids)
	switch len(asids) {
	case 1:
		return asids[0], nil
	case 0:
		return "", errors.New("the audit holds no consumer records in range: nothing to report")
	}
	return "", fmt.Errorf("the audit holds records of %d consumers (%s): name one with --from ASID", len(asids), strings.Join(asids, ", "))
}

// readRecords reads every audit record in chain order, and the hash of the
// last one.
func readRecords(files []string) ([]*call, string, error) {
	var out []*call
	var head string
	err := eachLine(files, func(line []byte) error {
		l, err := parseRecordLine(line)
		if err != nil {
			return err
		}
		head = l.Hash
		if l.Record.Time.IsZero() {
			return nil // a notice line the store writes on recovery
		}
		out = append(out, &call{seq: l.Seq, hash: l.Hash, rec: l.Record})
		return nil
	})
	return out, head, err
}

// recordLine is one line of the audit chain as the report reads it: the
// chain members it needs and the record.
type recordLine struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
	audit.Record
}

// parseRecordLine reads one audit line. It is the report's only reader of
// the untrusted file's content (FuzzParseRecordLine), kept apart from the
// file loop so it can be fuzzed alone.
func parseRecordLine(line []byte) (recordLine, error) {
	var l recordLine
	err := json.Unmarshal(line, &l)
	return l, err
}

func readTransactions(files []string) ([]audit.Transaction, error) {
	var out []audit.Transaction
	err := eachLine(files, func(line []byte) error {
		var t audit.Transaction
		if err := json.Unmarshal(line, &t); err != nil {
			return err
		}
		if !t.Time.IsZero() {
			out = append(out, t)
		}
		return nil
	})
	return out, err
}

// eachLine hands fn every complete line of files; a torn last line (Verify
// has reported it) is left out.
func eachLine(files []string, fn func([]byte) error) error {
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		n := 0
		for sc.Scan() {
			n++
			line := sc.Bytes()
			if len(line) == 0 || !strings.HasSuffix(string(line), "}") {
				continue
			}
			if err := fn(line); err != nil {
				f.Close()
				return fmt.Errorf("%s line %d: %w", path, n, err)
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// join gives each call its transaction. A transaction of record version 3
// names its audit record (audit_seq): that join is exact. An older one
// carries no audit seq, so the only key is the trace ID (report-tests.md
// finding 3): where a trace ID is used once in the whole audit the join is
// exact; where a consumer reused one the calls stay unjoined and are
// marked ambiguous, and their own record's status stands. A reused trace
// ID is marked ambiguous either way, as GPC-SPN-TST-13 counts it.
func join(calls []*call, txs []audit.Transaction) {
	n := map[string]int{}
	for _, c := range calls {
		n[c.rec.TraceID]++
	}
	bySeq := map[uint64]int{}
	byTrace := map[string][]int{}
	for i := range txs {
		if txs[i].AuditSeq != 0 {
			bySeq[txs[i].AuditSeq] = i
			continue
		}
		byTrace[txs[i].TraceID] = append(byTrace[txs[i].TraceID], i)
	}
	for _, c := range calls {
		if i, ok := bySeq[c.seq]; ok {
			c.tx = &txs[i]
			c.ambiguous = n[c.rec.TraceID] > 1
			continue
		}
		idx := byTrace[c.rec.TraceID]
		if n[c.rec.TraceID] == 1 && len(idx) == 1 {
			c.tx = &txs[idx[0]]
		} else if n[c.rec.TraceID] > 1 {
			c.ambiguous = true
		}
	}
}
